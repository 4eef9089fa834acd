"""Host steps leave nothing behind (issue 10, item 4): whatever a host step
starts (a background job, a double fork, a new session or process group,
a process ignoring SIGTERM, a fork loop) is gone when the job ends, when
it is canceled or times out, and after the agent was killed with SIGKILL
and restarted. Both ways of tracking (docs/agent.md, "How host steps are
tracked"): a cgroup per job, and the session with PR_SET_PDEATHSIG and a
record in the state directory.

Processes are found by a marker unique to each test run, in their
environment (the job's env) and command line; tearDown kills every one
still there and removes the agent's cgroups, also when the test fails."""
import os
import signal
import time
import uuid

import harness
from agentfix import AgentTestCase
from harness import wait_until


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


def marked(marker):
    """Live processes (not zombies) whose environment or command line holds
    marker."""
    found = []
    m = marker.encode()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        stat = _read("/proc/%s/stat" % name)
        if not stat or stat[stat.rfind(b")") + 2:][:1] == b"Z":
            continue
        if m in _read("/proc/%s/environ" % name) or \
                m in _read("/proc/%s/cmdline" % name):
            found.append(int(name))
    return found


def kill_marked(marker):
    """SIGKILL to every marked process until none is left (bounded)."""
    for _ in range(100):
        pids = marked(marker)
        if not pids:
            return
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.05)


def cgroup2_dir():
    """This process's cgroup v2 directory, or None."""
    own = None
    for line in _read("/proc/self/cgroup").decode().splitlines():
        if line.startswith("0::"):
            own = line[3:]
    for line in _read("/proc/self/mountinfo").decode().splitlines():
        left, _, right = line.partition(" - ")
        if right.split(" ")[0] != "cgroup2" or own is None:
            continue
        root, mnt = left.split(" ")[3:5]
        if root != "/" and not own.startswith(root):
            return None
        rel = own[len(root):] if root != "/" else own
        return mnt + rel.rstrip("/")
    return None


def cgroup_usable():
    d = cgroup2_dir()
    if d is None:
        return False
    probe = os.path.join(d, "skiff-test-probe-%d" % os.getpid())
    try:
        os.mkdir(probe)
        os.rmdir(probe)
        return True
    except OSError:
        return False


def remove_cgroup_tree(path):
    """Kills what is in the cgroup tree at path and removes it (bounded)."""
    if not os.path.isdir(path):
        return
    for _ in range(100):
        busy = False
        for top, dirs, _ in os.walk(path, topdown=False):
            for p in _read(os.path.join(top, "cgroup.procs")).split():
                busy = True
                try:
                    os.kill(int(p), signal.SIGKILL)
                except OSError:
                    pass
            try:
                os.rmdir(top)
            except OSError:
                busy = True
        if not busy or not os.path.isdir(path):
            return
        time.sleep(0.05)


# What a hostile step leaves. Each survivor carries the job's environment
# (and so the marker); the sleeps' arguments name them in the log. The
# python3 one moves into a process group of its own (the group kill of
# the step misses it); setsid leaves the session too (only the cgroup
# catches that: TRACKS_SETSID).
def leftovers(setsid, workdir_note):
    parts = [
        "sleep 7770 &",                                     # background
        "(sleep 7771 &) &",                                 # double fork
        "sh -c 'trap \"\" TERM HUP; while :; do sleep 7773; done' &",
        "sh -c 'while :; do sleep 7774 & sleep 0.3; done' &",  # fork loop
        "/usr/bin/python3 -c 'import os; os.setpgid(0, 0); "
        "os.execvp(\"sleep\", [\"sleep\", \"7775\"])' &",
    ]
    if setsid:
        parts.append("setsid sh -c '(sleep 7772 &) ; sleep 7772' &")
    parts.append("sleep 0.5; echo leftovers-started %s" % workdir_note)
    return " ".join(parts)


class HostTrackingBase:
    """The tests, for one way of tracking (set by the subclass)."""
    tracking = None
    queue_args = ("--lease-ttl", "6s", "--heartbeat-interval", "2s")

    def setUp(self):
        super().setUp()
        self.marker = "hostproc-%s" % uuid.uuid4().hex
        self.addCleanup(self._kill_leftovers)

    def _kill_leftovers(self):
        kill_marked(self.marker)
        d = cgroup2_dir()
        for a in self.agents:
            inst = _read(os.path.join(a.state_dir, "instance")).decode()[:32]
            if d and len(inst) == 32:
                remove_cgroup_tree(os.path.join(d, "skiff-%s" % inst))

    def start_agent(self, **kw):
        a = self.agent(host_tracking=self.tracking, **kw)
        a.wait_log("tracking=%s" % self.tracking)
        return a

    def host_job(self, script, **extra):
        return self.submit_job(self.steps_job(
            {"name": "hostile", "script": script},
            env={"HOSTPROC_MARK": self.marker}, **extra))

    def wait_started(self, job, n):
        wait_until(lambda: b"leftovers-started" in self.log_of(job), 30,
                   what="the step to start its leftovers")
        return wait_until(lambda: len(marked(self.marker)) >= n and
                          marked(self.marker), 10,
                          what="the leftovers to run")

    def assert_none_left(self, timeout=5.0):
        # The job's end was reported after its processes were killed;
        # allow only for SIGKILLed processes to be reaped.
        try:
            wait_until(lambda: not marked(self.marker), timeout,
                       what="no process with the job's marker")
        except harness.Timeout:
            left = marked(self.marker)
            raise AssertionError("left behind: %s" % [
                _read("/proc/%d/cmdline" % p).replace(b"\0", b" ")
                for p in left])

    def test_job_ends_normally(self):
        self.start_agent()
        job = self.host_job(leftovers(self.tracks_setsid, "and-exits"))
        st = self.finished(job, timeout=30)
        self.assertEqual(st["state"], "succeeded", st)
        self.assert_none_left()

    def test_canceled(self):
        self.start_agent()
        job = self.host_job(leftovers(self.tracks_setsid, "") +
                            "; trap '' TERM; sleep 120")
        self.q.wait_state(job, "running")
        self.wait_started(job, 6)
        r = self.q.request("POST", "/v1/jobs/%s/cancel" % job,
                           {"reason": "test"})
        self.assertEqual(r.status, 202, r)
        st = self.finished(job, timeout=30)
        self.assertEqual(st["state"], "canceled", st)
        self.assert_none_left()

    def test_timed_out(self):
        self.start_agent()
        job = self.submit_job(self.steps_job(
            {"name": "hostile", "timeout": 4, "script":
             leftovers(self.tracks_setsid, "") + "; sleep 120"},
            env={"HOSTPROC_MARK": self.marker}))
        st = self.finished(job, timeout=30)
        self.assertEqual(st["state"], "timed_out", st)
        self.assert_none_left()

    def test_kill9_mid_step_then_restart(self):
        a = self.start_agent()
        job = self.host_job(leftovers(self.tracks_setsid, "") +
                            "; sleep 120")
        self.q.wait_state(job, "running")
        self.wait_started(job, 6)
        self.check_tracked(a, job)
        a.kill9()
        # The step's processes survive the agent (it had no chance to do
        # anything), except the step's shell in session mode (its
        # parent-death signal).
        time.sleep(0.5)
        self.assertNotEqual(marked(self.marker), [])
        # Not to be run again on the restart: the lease ends canceled.
        r = self.q.request("POST", "/v1/jobs/%s/cancel" % job,
                           {"reason": "test"})
        self.assertEqual(r.status, 202, r)
        a.start()
        # The log file holds both runs. The sweeps (processes, then the
        # work directory) come before this line.
        wait_until(lambda: a.log().count("skiff-agent starting") >= 2, 15,
                   what="the restarted agent to start")
        self.assert_none_left(timeout=2.0)
        self.assertIn("killing what a host step of an earlier run left",
                      a.log())
        self.assertEqual(os.listdir(a.work_dir), [], a.log()[-4000:])
        st = self.finished(job, timeout=30)
        self.assertEqual(st["state"], "canceled", st)

    def check_tracked(self, agent, job):
        pass


class CgroupTrackingTests(HostTrackingBase, AgentTestCase):
    tracking = "cgroup"
    tracks_setsid = True

    def setUp(self):
        if not cgroup_usable():
            self.skipTest("cgroup v2 is not writable here")
        super().setUp()

    def check_tracked(self, agent, job):
        inst = _read(os.path.join(agent.state_dir, "instance")).decode()[:32]
        want = "/skiff-%s/%s.1" % (inst, job)
        for p in marked(self.marker):
            cg = [l for l in _read("/proc/%d/cgroup" % p).decode().splitlines()
                  if l.startswith("0::")]
            if cg:      # gone meanwhile (the fork loop's sleeps come and go)
                self.assertTrue(cg[0].endswith(want), (p, cg, want))

    def test_restarted_with_session_tracking_still_sweeps_cgroups(self):
        """What a run tracking by cgroup left is killed by the next run
        also when that one is told to track by session."""
        a = self.start_agent()
        job = self.host_job(leftovers(True, "") + "; sleep 120")
        self.q.wait_state(job, "running")
        self.wait_started(job, 6)
        a.kill9()
        r = self.q.request("POST", "/v1/jobs/%s/cancel" % job,
                           {"reason": "test"})
        self.assertEqual(r.status, 202, r)
        a.settings["HOST_TRACKING"] = "session"
        a.start()
        wait_until(lambda: a.log().count("skiff-agent starting") >= 2, 15,
                   what="the restarted agent to start")
        self.assertIn("tracking=session", a.log())
        self.assert_none_left(timeout=2.0)
        self.assertIn("killing what a host step of an earlier run left\" "
                      "tracking=cgroup", a.log())

    def test_two_agents_sharing_a_cgroup_keep_to_their_own(self):
        """A restarted agent sweeps only its own instance's cgroups: the
        host step of another agent under the same parent cgroup runs on."""
        a = self.start_agent()
        b = self.start_agent(name="other")
        job = self.submit_job(self.steps_job(
            {"name": "long", "script": "sleep 7776 & echo up; sleep 120"},
            env={"HOSTPROC_MARK": self.marker}))
        self.q.wait_state(job, "running")
        wait_until(lambda: len(marked(self.marker)) >= 2, 15,
                   what="the step to run")
        runner = b if b"on agent other" in self.log_of(job) else a
        other = a if runner is b else b
        other.kill9()
        other.start()
        wait_until(lambda: other.log().count("skiff-agent starting") >= 2,
                   15, what="the restarted agent to start")
        time.sleep(0.5)
        self.assertGreaterEqual(len(marked(self.marker)), 2)
        r = self.q.request("POST", "/v1/jobs/%s/cancel" % job,
                           {"reason": "test"})
        self.assertEqual(r.status, 202, r)
        self.assertEqual(self.finished(job, timeout=30)["state"], "canceled")
        self.assert_none_left()


class SessionTrackingTests(HostTrackingBase, AgentTestCase):
    """The fallback: a process that calls setsid() itself leaves the
    session and is not caught (docs/agent.md), so the steps here do not."""
    tracking = "session"
    tracks_setsid = False

    def test_records_go_with_the_job(self):
        a = self.start_agent()
        job = self.host_job(leftovers(False, "and-exits"))
        self.assertEqual(self.finished(job, timeout=30)["state"], "succeeded")
        self.assert_none_left()
        self.assertEqual(os.listdir(os.path.join(a.state_dir, "hoststeps")),
                         [])


if __name__ == "__main__":
    harness.main()
