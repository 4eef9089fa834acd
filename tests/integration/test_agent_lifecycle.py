"""The agent's life: idle exit, ephemeral agents, capacity, signals,
revocation, a registration token of the wrong pool."""
import os
import signal
import time

import harness
from agentfix import AgentTestCase, log_stream
from harness import wait_until


def agents_of(q):
    r = q.request("GET", "/v1/agents")
    assert r.status == 200, r
    return r.json()["agents"]


class LifecycleTests(AgentTestCase):
    queue_args = ("--heartbeat-interval", "1s")

    def test_idle_timeout_deregisters_and_exits_0(self):
        hook_out = os.path.join(self.tmp, "hook-ran")
        hook = os.path.join(self.tmp, "hook.sh")
        with open(hook, "w") as f:
            f.write("#!/bin/sh\necho \"$1 $SKIFF_EXIT_REASON\" > %s\n" % hook_out)
        os.chmod(hook, 0o755)
        t0 = time.monotonic()
        a = self.agent(idle_timeout="2s", on_exit=hook)
        self.assertEqual(a.wait_exit(15), 0)
        self.assertGreaterEqual(time.monotonic() - t0, 2)
        self.assertIn('msg="deregistered"', a.log())
        with open(hook_out) as f:
            self.assertEqual(f.read(), "idle idle\n")
        states = [x["state"] for x in agents_of(self.q)]
        self.assertEqual(states, ["gone"])
        # The stored token was dropped with the registration.
        self.assertFalse(os.path.exists(os.path.join(a.state_dir, "net",
                                                     "agent.json")))

    def test_idle_timer_counts_only_without_jobs(self):
        a = self.agent(idle_timeout="2s")
        job = self.submit_job(self.steps_job("sleep 4"))
        self.q.wait_state(job, "running")
        # Longer than the idle timeout, but a job runs.
        time.sleep(3)
        self.assertTrue(a.running())
        self.assertEqual(self.finished(job)["state"], "succeeded")
        self.assertEqual(a.wait_exit(15), 0)

    def test_max_jobs_1_is_ephemeral(self):
        a = self.agent(max_jobs=1)
        first = self.submit_job(self.steps_job("echo one"))
        second = self.submit_job(self.steps_job("echo two"))
        self.assertEqual(a.wait_exit(20), 0)
        self.assertEqual(self.q.status(first)["state"], "succeeded")
        self.assertEqual(self.q.status(second)["state"], "queued")
        self.assertEqual(a.log().count('msg="leased job"'), 1)

    def test_capacity_3_runs_three_jobs_at_once(self):
        self.agent(capacity=3)
        gate = os.path.join(self.tmp, "gate")
        jobs = []
        for i in range(3):
            # Each job waits until all three are running, then writes its
            # own lines: they can only finish if they run at once.
            jobs.append(self.submit_job(self.steps_job(
                "touch %s.%d; n=0; while [ $(ls %s.* | wc -l) -lt 3 ]; do "
                "n=$((n+1)); [ $n -gt 300 ] && exit 9; sleep 0.05; done; "
                "for k in 1 2 3 4 5; do echo job-%d-line-$k; done" %
                (gate, i, gate, i), name="job%d" % i)))
        for i, j in enumerate(jobs):
            st = self.finished(j, timeout=30)
            self.assertEqual(st["state"], "succeeded", st)
            out = log_stream(self.log_of(j), "out").decode()
            self.assertEqual(out, "".join("job-%d-line-%d\n" % (i, k)
                                          for k in range(1, 6)))

    def test_sigterm_drains_the_running_job(self):
        a = self.agent()
        job = self.submit_job(self.steps_job("sleep 2; echo finished"))
        self.q.wait_state(job, "running")
        a.signal(signal.SIGTERM)
        self.assertEqual(a.wait_exit(20), 10)
        st = self.q.status(job)
        self.assertEqual(st["state"], "succeeded", st)
        self.assertIn(b"finished", self.log_of(job))
        self.assertIn('msg="deregistered"', a.log())

    def test_second_sigterm_cancels_at_once(self):
        a = self.agent()
        job = self.submit_job(self.steps_job("sleep 60", "echo never"))
        self.q.wait_state(job, "running")
        a.signal(signal.SIGTERM)
        a.wait_log("draining")
        t0 = time.monotonic()
        a.signal(signal.SIGTERM)
        self.assertEqual(a.wait_exit(20), 10)
        self.assertLess(time.monotonic() - t0, 10 * harness.SLOW)
        st = self.q.status(job)
        self.assertEqual(st["state"], "canceled", st)
        self.assertEqual(st["reason_code"], "agent_shutdown")

    def test_drain_grace_then_cancel(self):
        a = self.agent(drain_grace="1s")
        job = self.submit_job(self.steps_job("sleep 60"))
        self.q.wait_state(job, "running")
        a.signal(signal.SIGINT)
        self.assertEqual(a.wait_exit(20), 10)
        self.assertEqual(self.q.status(job)["reason_code"], "agent_shutdown")

    def test_sigquit_leaves_at_once(self):
        a = self.agent()
        pidfile = os.path.join(self.tmp, "pid")
        job = self.submit_job(self.steps_job("echo $$ > %s; sleep 60" % pidfile))
        self.q.wait_state(job, "running")
        wait_until(lambda: os.path.exists(pidfile), 10)
        a.signal(signal.SIGQUIT)
        self.assertEqual(a.wait_exit(10), 10)
        with open(pidfile) as f:
            pid = int(f.read())
        wait_until(lambda: not os.path.exists("/proc/%d" % pid), 5,
                   what="step process gone")

    def test_revoked_agent_exits_77(self):
        a = self.agent()
        agent_id = agents_of(self.q)[0]["id"]
        r = self.q.request("DELETE", "/v1/agents/" + agent_id)
        self.assertEqual(r.status, 204, r)
        # The held long-poll ends within its wait; the next one gets 401.
        a.settings["LEASE_WAIT"] = "1s"
        self.assertEqual(a.wait_exit(45), 77)
        self.assertIn("revoked", a.log())

    def test_refused_registration_exits_77(self):
        a = self.agent(start=False, registration_token="srt_not-a-token")
        a.start()
        self.assertEqual(a.wait_exit(15), 77)

    def test_registration_in_another_pool_exits_78(self):
        other = self.q.registration_token("another-pool")
        a = self.agent(start=False, registration_token=other)
        a.start()
        self.assertEqual(a.wait_exit(15), 78)
        self.assertIn("another pool", a.log())

    def test_restart_reuses_the_stored_token(self):
        a = self.agent()
        a.kill9()
        a.start()
        a.wait_log("using stored agent token")
        job = self.submit_job(self.steps_job("echo again"))
        self.assertEqual(self.finished(job)["state"], "succeeded")
        self.assertEqual(len(agents_of(self.q)), 1)

    def test_check_config(self):
        a = self.agent(start=False)
        a.write_config()
        res = harness.run([harness.AGENT_BIN, "--config", a.conf_path,
                           "--check-config"], check=False, env=a.env())
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn(b"SKIFF_REGISTRATION_TOKEN=<redacted>", res.stdout)
        self.assertNotIn(self.reg.encode(), res.stdout + res.stderr)
        a.settings["CAPACITY"] = "lots"
        a.settings["IDLE_TIMEOT"] = "1m"
        a.write_config()
        res = harness.run([harness.AGENT_BIN, "--config", a.conf_path],
                          check=False, env=a.env())
        self.assertEqual(res.returncode, 78)
        self.assertIn(b"SKIFF_CAPACITY", res.stderr)
        self.assertIn(b"SKIFF_IDLE_TIMEOT", res.stderr)


if __name__ == "__main__":
    harness.main()
