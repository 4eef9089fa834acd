"""Containers made ahead and steps as execs in them (docs/docker.md
"Containers made ahead"): the real agent, the real queue over TLS and the
real dockerd. What a step leaves behind outside the workspace is gone in
the next step unless the job shares its container; a stopped step's whole
process tree dies, also what ignores SIGTERM or left its process group.

A job's first container step with nothing before it runs as its
container's own process (nothing could be made ahead of it): the tests of
execs put a quick step first."""
import json
import os
import time

import harness
from harness import wait_until
from agentfix import log_stream
from test_agent_docker import DockerTestCase


def host_processes_with(marker):
    """Host pids whose command line contains marker (bytes)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                if marker in f.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found


# Step 1 leaves a process and a file outside the workspace; step 2 reports
# what it sees of them and which container it is in.
LEAVE = ("sleep 3171 >/dev/null 2>&1 & echo here > /tmp/outside; "
         "hostname > first-host")
LOOK = ("echo procs=$(ps | grep -c '[s]leep 3171'); "
        "test -e /tmp/outside && echo file=present || echo file=absent; "
        "test \"$(hostname)\" = \"$(cat first-host)\" && echo same-container "
        "|| echo new-container")


class WarmTests(DockerTestCase):
    def first(self):
        return {"name": "first", "image": self.busybox, "script": "true"}

    def out_of(self, job):
        return log_stream(self.log_of(job), "out").decode()

    def test_each_step_starts_in_a_fresh_container(self):
        self.agent()
        job, st = self.run_job(
            {"name": "leave", "image": self.busybox, "script": LEAVE},
            {"name": "look", "image": self.busybox, "script": LOOK})
        self.assertEqual(st["state"], "succeeded", st)
        self.assertIn("procs=0\nfile=absent\nnew-container\n",
                      self.out_of(job))
        self.assertEqual(self.containers_of(job), [])

    def test_shared_container_keeps_processes_and_files(self):
        self.agent()
        job, st = self.run_job(
            {"name": "leave", "image": self.busybox, "script": LEAVE},
            {"name": "look", "image": self.busybox, "script": LOOK},
            # other resources: a container of its own
            {"name": "other", "image": self.busybox,
             "resources": {"memory_mb": 64}, "script": LOOK},
            container="shared")
        self.assertEqual(st["state"], "succeeded", st)
        self.assertIn("procs=1\nfile=present\nsame-container\n"
                      "procs=0\nfile=absent\nnew-container\n",
                      self.out_of(job))
        self.assertEqual(self.containers_of(job), [])

    def test_bad_container_mode_is_refused(self):
        job = self.steps_job(
            {"name": "x", "image": self.busybox, "script": "true"},
            container="--shared")
        # skiffctl sign checks the job first: it never signs this one.
        r = harness.run([harness.SKIFFCTL, "sign", "-", "--key", self.key,
                         "--aud", self.pool], input=json.dumps(job).encode(),
                        check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"job.container", r.stderr)
        # Signed anyway, the agent refuses it before running anything.
        self.agent()
        now = int(time.time())
        jws = harness.sign_claims({"iss": "test", "aud": self.pool,
                                   "jti": "bad-container-mode", "iat": now,
                                   "exp": now + 600, "job": job}, self.key)
        self.q.submit_ok(jws)
        st = self.finished("bad-container-mode")
        self.assertEqual(st["state"], "rejected", st)
        self.assertEqual(st["reason_code"], "schema", st)
        self.assertIn(b"job.container", self.log_of("bad-container-mode"))

    def test_next_container_is_made_while_a_step_runs(self):
        a = self.agent()
        job = self.submit_job(self.steps_job(
            {"name": "wait", "image": self.busybox, "timeout": 60,
             "script": "while [ ! -e go ]; do sleep 0.1; done"},
            {"name": "second", "image": self.busybox, "script": "true"},
            {"name": "third", "image": self.busybox, "script": "true"}))
        ws = os.path.join(a.work_dir, "%s.1" % job, "workspace")

        def running_steps():
            return sorted(c["Labels"].get("io.skiff.step")
                          for c in self.containers_of(job)
                          if c["State"] == "running")
        wait_until(lambda: running_steps() == ["0", "1"], 30 * harness.SLOW,
                   what="step 1's container to be up while step 0 runs")
        with open(os.path.join(ws, "go"), "w"):
            pass
        st = self.finished(job, timeout=60)
        self.assertEqual(st["state"], "succeeded", st)
        self.assertEqual(st["exit_codes"], [0, 0, 0])
        self.assertEqual(self.containers_of(job), [])

    # A step that takes SIGTERM (and says so) but does not end on it, with
    # a child that ignores it and one that left its process group.
    TREE = ("trap 'echo got-term' TERM; "
            "setsid sh -c \"trap '' TERM; exec sleep 3172\" & "
            "(trap '' TERM; exec sleep 3173) & "
            "echo started; while :; do sleep 1; done")

    def assert_tree_gone(self, job):
        self.assertEqual(self.containers_of(job), [])
        wait_until(lambda: not host_processes_with(b"sleep\x003172") and
                   not host_processes_with(b"sleep\x003173"),
                   10 * harness.SLOW, what="the step's processes to be gone")

    def test_timeout_kills_the_whole_tree(self):
        self.agent(kill_grace="1s")
        t0 = time.monotonic()
        job, st = self.run_job(
            self.first(),
            {"name": "stubborn", "image": self.busybox, "timeout": 3,
             "script": self.TREE})
        self.assertEqual(st["state"], "timed_out", st)
        self.assertEqual(st["reason_code"], "step_timeout")
        self.assertEqual(st["exit_codes"], [0, 137])
        self.assertLess(time.monotonic() - t0, 30 * harness.SLOW)
        out = self.out_of(job)
        self.assertIn("started\n", out)
        self.assertIn("got-term\n", out)    # the grace was given
        self.assert_tree_gone(job)

    def test_cancel_kills_the_whole_tree_in_a_shared_container(self):
        self.agent(kill_grace="1s")
        job = self.submit_job(self.steps_job(
            {"name": "first", "image": self.busybox, "script": "true"},
            {"name": "stubborn", "image": self.busybox, "script": self.TREE},
            container="shared"))
        wait_until(lambda: b"started" in self.log_of(job), 30 * harness.SLOW,
                   what="the step to run")
        self.assertTrue(host_processes_with(b"sleep\x003172"))
        r = self.q.request("POST", "/v1/jobs/%s/cancel" % job, {})
        self.assertEqual(r.status, 202, r)
        st = self.finished(job, timeout=30 * harness.SLOW)
        self.assertEqual(st["state"], "canceled", st)
        self.assertEqual(st["exit_codes"], [0, 137])
        self.assert_tree_gone(job)

    def test_exit_codes_and_output_order(self):
        self.agent()
        job, st = self.run_job(
            self.first(),
            {"name": "a", "image": self.busybox, "continue_on_error": True,
             "script": "for i in 1 2 3; do echo out$i; echo err$i >&2; done;"
                       " exit 42"},
            {"name": "b", "image": self.busybox, "continue_on_error": True,
             "script": "kill -9 $$"},
            {"name": "c", "image": self.busybox, "script": "echo after"})
        self.assertEqual(st["state"], "succeeded", st)
        self.assertEqual(st["exit_codes"], [0, 42, 137, 0])
        log = self.log_of(job)
        self.assertEqual(log_stream(log, "out"), b"out1\nout2\nout3\nafter\n")
        self.assertEqual(log_stream(log, "err"), b"err1\nerr2\nerr3\n")

    def test_oom_in_an_exec_is_reported(self):
        # The engine records an exec's OOM kill only once the container is
        # down: the failed step's container is ended before its end is told.
        self.agent()
        job, st = self.run_job(
            self.first(),
            {"name": "hungry", "image": self.busybox,
             "resources": {"memory_mb": 32},
             "script": "tail -c 200000000 /dev/zero >/dev/null"})
        self.assertEqual(st["state"], "failed", st)
        self.assertEqual(st["reason_code"], "oom_killed", st)
        self.assertIn(b"out of memory", self.log_of(job))
        self.assertEqual(self.containers_of(job), [])

    def test_an_earlier_steps_oom_kill_is_not_the_failing_steps(self):
        # In a shared container the engine's OOMKilled stays set once a
        # child of step 1 was killed (its shell went on): step 2 failing
        # for its own reason is no OOM kill. The kernel's log tells. (One
        # process alone fills the memory: a pipeline's writer would make
        # the kernel kill a second process, maybe the shell.)
        a = self.agent()
        if "kernel log not readable" in a.log():
            self.skipTest("the kernel's log is not readable here")
        hungry = {"name": "survives", "image": self.busybox,
                  "resources": {"memory_mb": 32},
                  "script": "tail -c 200000000 /dev/zero >/dev/null || "
                            "echo survived"}
        fails = dict(hungry, name="fails", script="exit 3")
        job, st = self.run_job(self.first(), hungry, fails,
                               container="shared")
        self.assertEqual(st["state"], "failed", st)
        self.assertEqual(st["reason_code"], "step_failed", st)
        self.assertEqual(st["exit_codes"], [0, 0, 3], st)
        self.assertIn("survived", self.out_of(job))
        # And a later step killed for memory itself is one.
        job, st = self.run_job(self.first(), hungry, dict(
            hungry, name="killed", script="tail -c 200000000 /dev/zero "
            ">/dev/null"), container="shared")
        self.assertEqual(st["state"], "failed", st)
        self.assertEqual(st["reason_code"], "oom_killed", st)
        self.assertEqual(st["exit_codes"], [0, 0, 137], st)

    def test_sweep_after_a_crash_takes_containers_made_ahead(self):
        a = self.agent()
        job = self.submit_job(self.steps_job(
            {"name": "long", "image": self.busybox,
             "script": "echo started; sleep 300"},
            {"name": "next", "image": self.busybox, "script": "true"}))
        wait_until(lambda: b"started" in self.log_of(job) and
                   len(self.containers_of(job)) == 2, 30 * harness.SLOW,
                   what="the step and the next one's container")
        a.kill9()
        a.start()
        wait_until(lambda: self.containers_of(job) == [], 30 * harness.SLOW,
                   what="the restarted agent to sweep both")


if __name__ == "__main__":
    harness.main()
