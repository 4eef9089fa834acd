"""Steps in execution containers: the real agent, the real queue over TLS,
the real dockerd, and a real registry on loopback (Debian's
docker-registry, with htpasswd for the credential cases). Images are built
locally from busybox-static (dockerenv.py)."""
import os
import pwd
import signal
import subprocess
import time

import dockerenv
import harness
from agentfix import AgentTestCase, log_stream
from harness import wait_until


def engine():
    return dockerenv.Engine()


class DockerTestCase(AgentTestCase):
    queue_args = ("--heartbeat-interval", "1s")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.eng = engine()
        cls.images = dockerenv.build_images(cls.eng)
        cls.busybox = cls.images["busybox"]

    def containers_of(self, job):
        return self.eng.containers_with_label("io.skiff.job=%s" % job)

    def run_job(self, *steps, timeout=60, **extra):
        job = self.submit_job(self.steps_job(*steps, **extra))
        return job, self.finished(job, timeout=timeout)


class ContainerTests(DockerTestCase):
    def test_output_exit_codes_and_shared_workspace(self):
        a = self.agent()
        job, st = self.run_job(
            {"name": "host", "script": "echo from-host > shared.txt"},
            {"name": "box", "image": self.images["entrypoint"],
             "script": "echo \"argv0=$0 argc=$#\"; cat shared.txt; pwd; "
                       "echo to-err >&2; echo from-box > box.txt; exit 3",
             "continue_on_error": True},
            {"name": "host again", "script": "cat box.txt"})
        self.assertEqual(st["state"], "succeeded", st)
        self.assertEqual(st["exit_codes"], [0, 3, 0])
        log = self.log_of(job)
        out = log_stream(log, "out").decode()
        ws = os.path.join(a.work_dir, "%s.1" % job, "workspace")
        # The image's ENTRYPOINT and CMD are not used; the workspace has the
        # same path inside as on the host.
        self.assertIn("argv0=/bin/sh argc=0\nfrom-host\n%s\n" % ws, out)
        self.assertIn("from-box\n", out)
        self.assertEqual(log_stream(log, "err"), b"to-err\n")
        self.assertEqual(self.containers_of(job), [])

    def test_failing_container_step_fails_the_job(self):
        self.agent()
        job, st = self.run_job({"name": "box", "image": self.busybox,
                                "script": "exit 5"})
        self.assertEqual(st["state"], "failed")
        self.assertEqual(st["reason_code"], "step_failed")
        self.assertEqual(st["exit_codes"], [5])

    def test_env_secrets_and_masking_inside(self):
        pool_priv, pool_pub = harness.make_pool_key(self.tmp)
        sealed = harness.run([harness.SKIFFCTL, "seal", "--pool-key",
                              pool_pub], input=b"c0ntainer-s3cret"
                             ).stdout.decode().strip()
        self.agent(pool_key=pool_priv)
        job, st = self.run_job(
            {"name": "box", "image": self.busybox, "env": {"STEP_V": "s"},
             "script": "echo \"$JOB_V $STEP_V $SKIFF_JOB_ID\"; "
                       "echo \"secret=$TOKEN\"; env | grep -c MUST_NOT || true"},
            env={"JOB_V": "j"}, secrets={"TOKEN": sealed})
        self.assertEqual(st["state"], "succeeded", st)
        log = self.log_of(job)
        self.assertNotIn(b"c0ntainer-s3cret", log)
        out = log_stream(log, "out").decode()
        self.assertIn("j s %s\nsecret=***\n0\n" % job, out)

    def test_inputs_are_read_only(self):
        self.agent()
        job, st = self.run_job(
            {"name": "box", "image": self.busybox,
             "script": "if touch \"$SKIFF_INPUTS/x\" 2>/dev/null; then "
                       "echo writable; else echo read-only; fi"})
        self.assertEqual(st["state"], "succeeded", st)
        self.assertIn(b"read-only\n", log_stream(self.log_of(job), "out"))

    def test_non_root_user(self):
        self.agent()
        job, st = self.run_job(
            {"name": "image user", "image": self.images["nonroot"],
             "script": "id -u; echo ok > by-nonroot.txt"},
            {"name": "step user", "image": self.busybox, "user": "4321:4321",
             "script": "id -u; cat by-nonroot.txt"})
        self.assertEqual(st["state"], "succeeded", st)
        self.assertEqual(log_stream(self.log_of(job), "out"),
                         b"1000\n4321\nok\n")

    def test_step_timeout_kills_the_container(self):
        self.agent(kill_grace="1s")
        t0 = time.monotonic()
        job, st = self.run_job(
            {"name": "slow", "image": self.busybox, "timeout": 2,
             "script": "trap '' TERM; while :; do sleep 1; done"})
        self.assertEqual(st["state"], "timed_out", st)
        self.assertEqual(st["reason_code"], "step_timeout")
        self.assertEqual(st["exit_codes"], [137])
        self.assertLess(time.monotonic() - t0, 20 * harness.SLOW)
        self.assertEqual(self.containers_of(job), [])

    def ending_under_its_stop(self, marker, first=(), kill_grace="5s",
                              script="trap 'exit 5' TERM; sleep 30 & wait",
                              **settings):
        slow = dockerenv.SlowAnswers(self.tmp, marker, 2.0)
        self.addCleanup(slow.close)
        a = self.agent(kill_grace=kill_grace, docker_host=slow.host,
                       **settings)
        for i in range(2):
            job, st = self.run_job(*first,
                {"name": "quits%d" % i, "image": self.busybox, "timeout": 1,
                 "script": script})
            self.assertEqual(st["state"], "timed_out", st)
            self.assertEqual(st["exit_codes"], [0] * len(first) + [5], st)
            wait_until(lambda: self.containers_of(job) == [], 10 * harness.SLOW,
                       what="the step's container to go")
        self.assertEqual(slow.held, 2)
        time.sleep(2.5)     # the last held answer is let go
        self.assertTrue(a.running(), "the agent died")

    def test_step_ending_under_its_stop(self):
        # A container of its own ends on SIGTERM with a failing code while
        # the stop call is still out: the agent inspects it (OOM?) and the
        # stop's answer must not reach a step that is gone (ASan catches
        # it).
        self.ending_under_its_stop("/stop?", warm_containers="false")

    def test_exec_step_ending_under_its_kill(self):
        # The same for a step exec'd in a container made ahead (while the
        # step before it ran): SIGTERM makes it exit 5; the kill that ends
        # its container for the OOM check is held, the container is
        # retired meanwhile.
        self.ending_under_its_stop("/kill?", first=(
            {"name": "before", "image": self.busybox, "script": "true"},))

    def test_exec_step_grace_ending_under_its_end(self):
        # The step ends on SIGTERM at once (no child holds its output, so
        # its stream ends at once too); the grace (1 s) runs out while the
        # kill that ends its container is held (2 s): the grace must not
        # take that end over, or the step's end is never told and the job
        # never completes.
        self.ending_under_its_stop(
            "/kill?", kill_grace="1s",
            script="trap 'exit 5' TERM; while :; do sleep 0.1; done",
            first=({"name": "before", "image": self.busybox,
                    "script": "true"},))

    def test_cancel(self):
        self.agent()
        job = self.submit_job(self.steps_job(
            {"name": "long", "image": self.busybox,
             "script": "echo started; sleep 120"}))
        wait_until(lambda: b"started" in self.log_of(job), 30,
                   what="the container step to run")
        r = self.q.request("POST", "/v1/jobs/%s/cancel" % job, {})
        self.assertEqual(r.status, 202, r)
        st = self.finished(job, timeout=30)
        self.assertEqual(st["state"], "canceled", st)
        self.assertEqual(self.containers_of(job), [])

    def test_oom_killed_is_reported(self):
        self.agent()
        job, st = self.run_job(
            {"name": "hungry", "image": self.busybox,
             "resources": {"memory_mb": 32},
             "script": "tail -c 200000000 /dev/zero >/dev/null"})
        self.assertEqual(st["state"], "failed", st)
        self.assertEqual(st["reason_code"], "oom_killed", st)
        self.assertIn(b"out of memory", self.log_of(job))

    def test_kill9_agent_mid_step_then_sweep(self):
        a = self.agent()
        job = self.submit_job(self.steps_job(
            {"name": "long", "image": self.busybox,
             "script": "echo started; sleep 300"}))
        wait_until(lambda: b"started" in self.log_of(job), 30,
                   what="the container step to run")
        self.assertEqual(len(self.containers_of(job)), 1)
        a.kill9()
        # The container outlives the agent...
        self.assertEqual(len(self.containers_of(job)), 1)
        # ...until the agent comes back on the same state directory.
        a.start()
        wait_until(lambda: self.containers_of(job) == [], 30,
                   what="the restarted agent to sweep the leftover")
        self.assertIn("orphan sweep: removing", a.log())


class PullTests(DockerTestCase):
    def test_pull_policies(self):
        with dockerenv.Registry() as reg:
            ref = reg.push_unique(self.eng, "skiff/policy")
            self.addCleanup(self.eng.remove_image, ref)
            self.agent()
            # never: not on the machine, so the step cannot start.
            job, st = self.run_job({"name": "never", "image": ref,
                                    "pull": "never", "script": "true"})
            self.assertEqual(st["state"], "failed", st)
            self.assertEqual(st["reason_code"], "pull_failed")
            self.assertIn(b"pull policy is never", self.log_of(job))
            # if-not-present: pulled once for two steps.
            job, st = self.run_job(
                {"name": "one", "image": ref, "script": "echo one"},
                {"name": "two", "image": ref, "script": "echo two"})
            self.assertEqual(st["state"], "succeeded", st)
            log = self.log_of(job)
            self.assertEqual(log.count(b"pulling image"), 1)
            self.assertIn(b"pull ", log)
            # if-not-present, now present: no pull; always: pulled again.
            job, st = self.run_job({"name": "present", "image": ref,
                                    "script": "true"})
            self.assertNotIn(b"pulling image", self.log_of(job))
            job, st = self.run_job({"name": "always", "image": ref,
                                    "pull": "always", "script": "true"})
            self.assertEqual(st["state"], "succeeded", st)
            self.assertIn(b"pulling image", self.log_of(job))

    def sealed(self, pool_pub, value):
        return harness.run([harness.SKIFFCTL, "seal", "--pool-key", pool_pub],
                           input=value.encode()).stdout.decode().strip()

    def test_private_registry_credentials(self):
        pool_priv, pool_pub = harness.make_pool_key(self.tmp)
        self.agent(pool_key=pool_priv)
        with dockerenv.Registry(user="ci", password="s3cret-pw") as reg:
            ref = reg.push_unique(self.eng, "skiff/private")
            self.addCleanup(self.eng.remove_image, ref)
            registries = [{"server": reg.host, "username": "ci",
                           "password": "REG_PW"}]
            # Without credentials: refused, and said so.
            job, st = self.run_job({"name": "anon", "image": ref,
                                    "script": "true"})
            self.assertEqual(st["reason_code"], "pull_failed", st)
            self.assertIn(b"no credentials in the job", self.log_of(job))
            # Bad credentials: refused.
            job, st = self.run_job(
                {"name": "bad", "image": ref, "script": "true"},
                registries=registries,
                secrets={"REG_PW": self.sealed(pool_pub, "wrong")})
            self.assertEqual(st["reason_code"], "pull_failed", st)
            log = self.log_of(job)
            self.assertIn(b"bad credentials?", log)
            self.assertNotIn(b"wrong", log.replace(b"***", b""))
            # Good credentials: pulled and run; the password never shows.
            job, st = self.run_job(
                {"name": "good", "image": ref, "script": "echo pulled-ok"},
                registries=registries,
                secrets={"REG_PW": self.sealed(pool_pub, "s3cret-pw")})
            self.assertEqual(st["state"], "succeeded", st)
            log = self.log_of(job)
            self.assertIn(b"pulled-ok", log)
            self.assertNotIn(b"s3cret-pw", log)


class PrepullTests(DockerTestCase):
    def test_prepull(self):
        with dockerenv.Registry() as reg:
            ref = reg.push_unique(self.eng, "skiff/prepull")
            self.addCleanup(self.eng.remove_image, ref)
            env = {"PATH": "/usr/bin:/bin"}
            res = harness.run([harness.AGENT_BIN, "--config", "/dev/null",
                               "prepull", ref], check=False, env=env,
                              timeout=120)
            self.assertEqual(res.returncode, 0, res.stderr)
            self.assertIn(b"pulled", res.stdout)
            self.assertTrue(self.eng.image_labels(ref) is not None)
            missing = reg.host + "/skiff/not-there:1"
            res = harness.run([harness.AGENT_BIN, "--config", "/dev/null",
                               "prepull", ref, missing], check=False,
                              env=env, timeout=120)
            self.assertEqual(res.returncode, 1)
            self.assertIn(missing.encode(), res.stderr)


class NonRootAgentTests(DockerTestCase):
    """The agent as an ordinary user in the docker group, as the .deb runs
    it: files a container wrote as root in the workspace still go."""
    user = "skiff-it"

    def setUp(self):
        super().setUp()
        try:
            pwd.getpwnam(self.user)
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home",
                            "--groups", "docker", self.user], check=True)
        # The agent must reach its files through the test's directories.
        for d in (self._class_tmp, self.tmp):
            os.chmod(d, 0o711)
        for f in (self.jwks, self.pki.ca_file):
            os.chmod(f, 0o644)

    def test_root_owned_workspace_is_cleaned(self):
        pw = pwd.getpwnam(self.user)
        a = self.agent("nonroot", start=False)
        os.makedirs(a.state_dir)
        os.makedirs(a.work_dir)
        for d in (a.dir, a.state_dir, a.work_dir):
            os.chown(d, pw.pw_uid, pw.pw_gid)
        a.write_config()
        os.chmod(a.conf_path, 0o644)
        groups = os.getgrouplist(self.user, pw.pw_gid)
        with open(a.log_path, "ab") as log:
            a.proc = subprocess.Popen(
                [harness.AGENT_BIN, "--config", a.conf_path], env=a.env(),
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                user=pw.pw_uid, group=pw.pw_gid, extra_groups=groups,
                start_new_session=True)
        harness._live.append(a.proc)
        self.addCleanup(a._cleanup)
        a.wait_registered()
        job, st = self.run_job(
            {"name": "as root in the box", "image": self.busybox,
             "script": "mkdir -p deep/er && echo x > deep/er/f && "
                       "chmod -R 700 deep && chown -R 0:0 deep && id -u"},
            {"name": "on the host", "script": "id -u; ls deep/er 2>&1 || true"})
        self.assertEqual(st["state"], "succeeded", st)
        out = log_stream(self.log_of(job), "out").decode()
        self.assertTrue(out.startswith("0\n%d\n" % pw.pw_uid), out)
        wait_until(lambda: os.listdir(a.work_dir) == [], 30,
                   what="the workspace to be emptied")
        self.assertIn("workspace removed with a container", a.log())


class KernelLogOomTests(DockerTestCase):
    """An OOM kill the engine never records is still reported: Podman 4.3
    never sets State.OOMKilled (test_docker.c test_oom_killed), and Docker
    misses one when containerd's event comes late or not at all. The agent
    reads the kernel's own summary of the kill (agent/run/oomlog.c).

    The memory hogs of these tests are one process each (tail -c N
    /dev/zero): after a pipeline's reader is killed its writer makes the
    kernel kill again, and the kernel reports at most 10 kills per 5 s."""

    @classmethod
    def setUpClass(cls):
        super(DockerTestCase, cls).setUpClass()
        cls.pod, cls.eng, cls.images = dockerenv.podman_for_tests()
        cls.busybox = cls.images["busybox"]

    @classmethod
    def tearDownClass(cls):
        cls.pod.stop()
        super().tearDownClass()

    def agent(self, name="agent", start=True, **settings):
        settings.setdefault("docker_host", self.pod.host)
        return super().agent(name, start, **settings)

    def test_oom_kill_the_engine_does_not_record(self):
        a = self.agent()
        if "kernel log not readable" in a.log():
            self.skipTest("the kernel's log is not readable here")
        self.assertIn("OOM kills of container steps read from the kernel "
                      "log", a.log())
        hungry = {"name": "hungry", "image": self.busybox,
                  "resources": {"memory_mb": 32},
                  "script": "tail -c 200000000 /dev/zero >/dev/null"}
        # In a container of its own, and exec'd in one made ahead.
        for first in ((), ({"name": "before", "script": "true"},)):
            job, st = self.run_job(*(first + (hungry,)))
            self.assertEqual(st["state"], "failed", st)
            self.assertEqual(st["reason_code"], "oom_killed", st)
            self.assertIn(b"out of memory", self.log_of(job))
            self.assertEqual(self.containers_of(job), [])
        self.assertGreaterEqual(a.log().count(
            "OOM kill known from the kernel's log, not (yet) from the "
            "engine"), 2)
        # A SIGKILL that is no OOM kill stays what it is.
        job, st = self.run_job({"name": "killed", "image": self.busybox,
                                "resources": {"memory_mb": 32},
                                "script": "kill -9 $$"})
        self.assertEqual(st["state"], "failed", st)
        self.assertEqual(st["reason_code"], "step_failed", st)
        self.assertEqual(st["exit_codes"], [137], st)


if __name__ == "__main__":
    harness.main()
