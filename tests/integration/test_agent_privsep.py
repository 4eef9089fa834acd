"""The agent's two processes (docs/agent.md, "The two halves"): the real
agent started as root, its network half as skiff-net in its sandbox, host
steps as skiff-step without a view of the agent's secrets, and what
happens when either half dies."""
import os
import pwd
import re
import signal
import subprocess
import time

import harness
from agentfix import AgentTestCase, log_stream
from harness import wait_until


def status_of(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


class PrivsepTestCase(AgentTestCase):
    queue_args = ("--heartbeat-interval", "1s")

    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("the halves' users need an agent started as root")
        super().setUp()

    def net_pid(self, a):
        m = wait_until(lambda: re.search(r"net_pid=(\d+)", a.log()), 10,
                       what="the agent to start its network half")
        return int(m.group(1))


class SandboxTests(PrivsepTestCase):
    def test_network_half_is_a_sandboxed_process_of_its_own(self):
        a = self.agent()
        pid = self.net_pid(a)
        st = status_of(pid)
        net = pwd.getpwnam("skiff-net")
        self.assertEqual(st["Seccomp"], "2", st)
        self.assertEqual(st["NoNewPrivs"], "1", st)
        self.assertEqual(st["Uid"].split()[0], str(net.pw_uid))
        self.assertEqual(st["Uid"].split(), [str(net.pw_uid)] * 4)
        self.assertEqual(st["Groups"], "")
        self.assertEqual(int(st["CapEff"], 16), 0)
        self.assertEqual(int(st["CapPrm"], 16), 0)
        self.assertEqual(int(st["PPid"]), a.proc.pid)
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            self.assertEqual(f.read(), b"skiff-agent\0--net-half\0")
        # Nothing of the agent's environment, no descriptor of the
        # runner's files: the socketpair, its own state directory, and what
        # it opened itself (sockets, an epoll, pipes).
        with open("/proc/%d/environ" % pid, "rb") as f:
            self.assertNotIn(b"SKIFF_", f.read())
        targets = [os.readlink("/proc/%d/fd/%s" % (pid, fd))
                   for fd in os.listdir("/proc/%d/fd" % pid)]
        for t in targets:
            self.assertFalse(t.startswith(a.work_dir), targets)
            self.assertNotIn("docker.sock", t)
            self.assertNotIn("replay", t)
        self.assertIn(os.path.join(a.state_dir, "net"), targets)
        # It holds the agent token; the runner does not keep one.
        creds = os.path.join(a.state_dir, "net", "agent.json")
        self.assertEqual(os.stat(creds).st_uid, net.pw_uid)
        self.assertEqual(os.stat(creds).st_mode & 0o777, 0o600)
        self.assertFalse(os.path.exists(os.path.join(a.state_dir,
                                                     "agent.json")))
        # And it still does its job.
        job = self.submit_job(self.steps_job("echo through-both-halves"))
        self.assertEqual(self.finished(job)["state"], "succeeded")
        self.assertIn(b"through-both-halves", self.log_of(job))

    def test_check_sandbox_execve_is_killed_and_reads_refused(self):
        a = self.agent(start=False)
        a.write_config()
        r = subprocess.run([harness.AGENT_BIN, "--config", a.conf_path,
                            "check-sandbox"], env=a.env(),
                           capture_output=True, timeout=60 * harness.SLOW)
        out = r.stdout.decode()
        self.assertEqual(r.returncode, 0, r)
        self.assertIn("execve: killed by the seccomp filter", out)
        self.assertIn("open outside the sandbox: refused by Landlock", out)
        # The network half's own line names the system call.
        self.assertIn(b"seccomp allow-list\" syscall=59", r.stderr)

    def test_stored_token_moves_to_the_network_half(self):
        a = self.agent()
        pid = self.net_pid(a)
        old = os.path.join(a.state_dir, "net", "agent.json")
        wait_until(lambda: os.path.exists(old), 10, what="the agent token")
        a.kill9()
        # As a run before the halves left it: in the state directory.
        os.rename(old, os.path.join(a.state_dir, "agent.json"))
        os.chown(os.path.join(a.state_dir, "agent.json"), 0, 0)
        a.start()
        wait_until(lambda: 'msg="using stored agent token"' in a.log(), 10,
                   what="the agent to use the stored token")
        self.assertNotEqual(self.net_pid(a), 0)
        st = os.stat(old)
        self.assertEqual(st.st_uid, pwd.getpwnam("skiff-net").pw_uid)
        self.assertIsNotNone(pid)


class StepUserTests(PrivsepTestCase):
    def test_host_step_cannot_read_the_agents_secrets(self):
        pool_priv, _ = harness.make_pool_key(self.tmp)
        a = self.agent(pool_key=pool_priv, capacity=2)
        # A second job holds its workspace while the first looks for it.
        other = self.submit_job(self.steps_job(
            "echo other-secret > mine.txt; sleep 20", name="other"))
        wait_until(lambda: any(
            e.startswith(other) for e in os.listdir(a.work_dir)), 20,
            what="the other job's workspace")
        other_dir = os.path.join(a.work_dir, [
            e for e in os.listdir(a.work_dir) if e.startswith(other)][0])
        wait_until(lambda: os.path.exists(
            os.path.join(other_dir, "workspace", "mine.txt")), 20,
            what="the other job's file")
        paths = {
            "token": os.path.join(a.state_dir, "net", "agent.json"),
            "pool_key": pool_priv,
            "trusted": self.jwks,
            "config": a.conf_path,
            "other": os.path.join(other_dir, "workspace", "mine.txt"),
            "replay": os.path.join(a.state_dir, "replay"),
        }
        # Open every door the file modes could close, so that only the
        # step's own view of the file system keeps them out; the control
        # below shows skiff-step could read them all without it.
        for d in (self._class_tmp, self.tmp, a.dir, a.state_dir,
                  os.path.join(a.state_dir, "net"),
                  os.path.join(a.state_dir, "spool"), other_dir):
            os.chmod(d, 0o755)
        for p in paths.values():
            if os.path.isfile(p):
                os.chmod(p, 0o644)
        for name, p in paths.items():
            if os.path.isfile(p):
                r = subprocess.run(["setpriv", "--reuid=skiff-step",
                                    "--regid=skiff-step", "--clear-groups",
                                    "cat", p], capture_output=True)
                self.assertEqual(r.returncode, 0, (name, r))
        script = "id -u; id -G; "
        for name, p in sorted(paths.items()):
            script += ("if cat %s >/dev/null 2>&1; then echo %s=READ; "
                       "else echo %s=denied; fi; " % (p, name, name))
        script += ("if ls %s/spool >/dev/null 2>&1 && [ -n \"$(ls -A %s/spool)\" ]; "
                   "then echo spool=LISTED; else echo spool=denied; fi; "
                   % (a.state_dir, a.state_dir))
        script += ("if [ -S /var/run/docker.sock ] && [ -w /var/run/docker.sock ]; "
                   "then echo docker=WRITABLE; else echo docker=denied; fi; ")
        # The kernel's log, which the runner reads for OOM kills, with
        # dmesg_restrict off so that only the step's view keeps it out.
        with open("/proc/sys/kernel/dmesg_restrict") as f:
            restrict = f.read().strip()
        self.addCleanup(self._set_dmesg_restrict, restrict)
        self._set_dmesg_restrict("0")
        r = subprocess.run(["setpriv", "--reuid=skiff-step",
                            "--regid=skiff-step", "--clear-groups", "dd",
                            "if=/dev/kmsg", "bs=8192", "count=1",
                            "iflag=nonblock"], capture_output=True)
        self.assertEqual(r.returncode, 0, ("kmsg", r))
        script += ("if dd if=/dev/kmsg bs=8192 count=1 iflag=nonblock "
                   ">/dev/null 2>&1; then echo kmsg=READ; "
                   "else echo kmsg=denied; fi; ")
        script += "echo mine > own.txt && cat own.txt"
        job = self.submit_job(self.steps_job(script))
        st = self.finished(job, timeout=30)
        out = log_stream(self.log_of(job), "out").decode()
        self.assertEqual(st["state"], "succeeded", out)
        step = pwd.getpwnam("skiff-step")
        lines = out.splitlines()
        self.assertEqual(lines[0], str(step.pw_uid))
        self.assertNotIn("0", lines[1].split())
        for name in list(paths) + ["spool", "docker", "kmsg"]:
            self.assertIn("%s=denied" % name, out)
        self.assertNotIn("READ", out)
        self.assertIn("mine\n", out)
        # The other job was not disturbed.
        self.assertEqual(self.q.status(other)["state"], "running",
                         self.log_of(other))
        r = self.q.request("POST", "/v1/jobs/%s/cancel" % other, {})
        self.assertEqual(r.status, 202, r)
        self.finished(other, timeout=30)

    @staticmethod
    def _set_dmesg_restrict(value):
        with open("/proc/sys/kernel/dmesg_restrict", "w") as f:
            f.write(value)

    def test_host_step_user_root_is_refused(self):
        self.agent()
        job = self.submit_job(self.steps_job(
            {"name": "root", "script": "id -u", "user": "0:0"}))
        st = self.finished(job, timeout=30)
        self.assertEqual(st["state"], "failed", st)
        self.assertIn(b"never runs as root", self.log_of(job))


class HalfDiesTests(PrivsepTestCase):
    def test_network_half_killed_mid_job(self):
        a = self.agent()
        pid = self.net_pid(a)
        job = self.submit_job(self.steps_job(
            "echo $$ > step.pid; echo started; while :; do sleep 0.2; done"))
        wait_until(lambda: b"started" in self.log_of(job), 20,
                   what="the step to run")
        ws = [os.path.join(a.work_dir, e, "workspace")
              for e in os.listdir(a.work_dir)][0]
        with open(os.path.join(ws, "step.pid")) as f:
            step_pid = int(f.read())
        self.assertTrue(alive(step_pid))
        spools = os.path.join(a.state_dir, "spool")
        self.assertEqual(len(os.listdir(spools)), 1)
        os.kill(pid, signal.SIGKILL)
        self.assertEqual(a.wait_exit(30), 75)
        log = a.log()
        self.assertIn("lost the network half", log)
        self.assertIn("the network half was killed", log)
        # The step is gone with it...
        wait_until(lambda: not alive(step_pid), 10, what="the step to die")
        # ...and the log it wrote is still in the spool.
        names = os.listdir(spools)
        self.assertEqual(len(names), 1)
        with open(os.path.join(spools, names[0]), "rb") as f:
            self.assertIn(b"started", f.read())

    def test_runner_killed_takes_the_network_half(self):
        a = self.agent()
        pid = self.net_pid(a)
        self.assertTrue(alive(pid))
        os.kill(a.proc.pid, signal.SIGKILL)
        a.proc.wait(10)
        wait_until(lambda: not alive(pid), 10,
                   what="the network half to leave with the runner")


if __name__ == "__main__":
    harness.main()
