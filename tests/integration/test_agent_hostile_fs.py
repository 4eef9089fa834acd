"""Hostile trees: what a signed job puts on disk cannot lead the agent out.

Every test here runs the real queue, agent (as root, as on a worker VM)
and, where a step must be root inside a container, dockerd. Each one
checks the refusal and its reason, and that nothing was written under a
target directory outside the job that the test chose and watches.
"""
import fcntl
import glob
import io
import os
import signal
import stat
import tarfile
import time

import dockerenv
import harness
from agentfix import AgentTestCase, FileServer, log_stream

DEPTH = 16
F_SETLEASE = 1024    # fcntl.F_SETLEASE, missing before Python 3.13


def tgz(entries):
    """entries: (name, kind, data) with kind 'file', 'dir' or 'link'."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for name, kind, data in entries:
            ti = tarfile.TarInfo(name)
            if kind == "dir":
                ti.type = tarfile.DIRTYPE
                ti.mode = 0o755
                t.addfile(ti)
            elif kind == "link":
                ti.type = tarfile.SYMTYPE
                ti.linkname = data
                t.addfile(ti)
            else:
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def late_chain():
    """x/l -> .., x/m1 -> l/.., ... x/m15 -> m14/..: made last first, so
    each link dangles when it is made and passes a check of where it
    leads at that moment; once x/l is in, x/m15 climbs to /. The
    unpacker looks at every link again once the archive ends."""
    links = [("x/m%d" % i, "link", "m%d/.." % (i - 1)) for i in
             range(DEPTH - 1, 1, -1)]
    links += [("x/m1", "link", "l/.."), ("x/l", "link", "..")]
    return [("x", "dir", b"")] + links


def listing(d):
    out = []
    for root, dirs, files in os.walk(d):
        out += [os.path.join(root, n) for n in dirs + files]
    return sorted(out)


class HostileTrees(AgentTestCase):
    def setUp(self):
        super().setUp()
        self.files = FileServer(self)
        # What an escape would reach: watched, and empty at the end.
        self.target = os.path.join(self.tmp, "target")
        os.makedirs(self.target)
        self.marker = os.path.join(self.tmp, "a-step-ran")

    def serve(self, url_path, data, **extra):
        return self.files.serve(url_path, data, **extra)

    def assert_untouched(self):
        self.assertEqual(listing(self.target), [])

    def via_chain(self, rest):
        """An input path (no '..', not absolute) through the chain."""
        return "a/x/m%d%s/%s" % (DEPTH - 1, self.target, rest)

    def run_inputs(self, inputs):
        job = self.submit_job(self.steps_job("touch %s" % self.marker,
                                             inputs=inputs))
        st = self.finished(job, timeout=30)
        self.assertEqual(st["state"], "failed", st)
        self.assertEqual(st["reason_code"], "input_failed", st)
        self.assertFalse(os.path.exists(self.marker))
        self.assert_untouched()
        return st

    def test_an_input_placed_through_a_chain_of_links(self):
        self.agent(inputs_ca_file=self.pki.ca_file)
        chain = self.serve("/chain.tgz", tgz(late_chain()), path="a",
                           extract=True)
        st = self.run_inputs([chain, self.serve(
            "/placed", b"placed outside\n", path=self.via_chain("placed"))])
        # Refused at the chain; were it not, the placement beneath the
        # inputs directory would be (unit.common.test_beneath).
        self.assertIn("input a: extraction failed: refused entry 'x/m15': a "
                      "link pointing outside (through links made after it)",
                      st["reason"])

    def test_an_input_unpacked_through_a_chain_of_links(self):
        self.agent(inputs_ca_file=self.pki.ca_file)
        chain = self.serve("/chain.tgz", tgz(late_chain()), path="a",
                           extract=True)
        second = self.serve("/second.tgz", tgz([("evil", "file", b"x")]),
                            path=self.via_chain("unpacked"), extract=True)
        st = self.run_inputs([chain, second])
        self.assertIn("a link pointing outside", st["reason"])

    def test_links_in_one_archive(self):
        self.agent(inputs_ca_file=self.pki.ca_file)
        # The chain in its natural order: refused at the first link that
        # climbs out through another.
        natural = [("x", "dir", b""), ("x/l", "link", ".."),
                   ("x/m1", "link", "l/.."), ("x/m2", "link", "m1/..")]
        st = self.run_inputs([self.serve("/n.tgz", tgz(natural), path="a",
                                         extract=True)])
        self.assertIn("refused entry 'x/m1': a link pointing outside",
                      st["reason"])
        # Made dangling first, then written through from the same archive.
        late = late_chain() + [
            ("x/m%d%s/evil" % (DEPTH - 1, self.target), "file", b"x")]
        st = self.run_inputs([self.serve("/l.tgz", tgz(late), path="a",
                                         extract=True)])
        self.assertIn("leads outside", st["reason"])
        # An absolute link, and a file written through it.
        absl = [("abs", "link", self.target), ("abs/evil", "file", b"x")]
        st = self.run_inputs([self.serve("/a.tgz", tgz(absl), path="a",
                                         extract=True)])
        self.assertIn("refused entry 'abs': a link pointing outside",
                      st["reason"])

    def test_a_refusal_quoting_bytes_that_are_not_utf8(self):
        self.agent(inputs_ca_file=self.pki.ca_file)
        # The refusal quotes the entry's name: raw bytes, and long enough
        # that the reason is cut, in the middle of a character if cut by
        # bytes. The queue takes only strict UTF-8 of at most 1 KiB.
        name = "\udcff\udcc0\udcaf" + "\u00e9" * 150 + "/../evil"
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.GNU_FORMAT,
                          encoding="utf-8", errors="surrogateescape") as t:
            ti = tarfile.TarInfo(name)
            ti.size = 1
            t.addfile(ti, io.BytesIO(b"x"))
        st = self.run_inputs([self.serve("/u.tgz", buf.getvalue(), path="a",
                                         extract=True)])
        self.assertIn("refused entry '???\u00e9\u00e9", st["reason"])
        self.assertLessEqual(len(st["reason"].encode()), 1024)

    def test_links_that_stay_inside_still_work(self):
        self.agent(inputs_ca_file=self.pki.ca_file)
        arch = tgz([("pkg/lib64", "dir", b""), ("pkg/lib", "link", "lib64"),
                    ("pkg/lib/tool.sh", "file", b"echo tool\n")])
        job = self.submit_job(self.steps_job(
            "sh \"$SKIFF_INPUTS/p/pkg/lib64/tool.sh\"; "
            "cat \"$SKIFF_INPUTS/p/pkg/lib64/beside.txt\"",
            inputs=[self.serve("/p.tgz", arch, path="p", extract=True),
                    self.serve("/in", b"beside\n",
                               path="p/pkg/lib/beside.txt")]))
        st = self.finished(job, timeout=30)
        self.assertEqual(st["state"], "succeeded", st)
        self.assertEqual(log_stream(self.log_of(job), "out"),
                         b"tool\nbeside\n")

    def test_a_workdir_through_a_link_a_step_made(self):
        eng = dockerenv.Engine()
        image = dockerenv.build_images(eng)["busybox"]
        self.agent()
        # A container step is root: its links are the agent's problem
        # once the next step names a workdir through them.
        for link in (self.target, "../../../../../../../../../../.." +
                     self.target):
            job = self.submit_job(self.steps_job(
                {"name": "plant", "image": image,
                 "script": "ln -s '%s' esc" % link},
                {"name": "climb", "workdir": "esc/a/b",
                 "script": "touch %s" % self.marker}))
            st = self.finished(job, timeout=60)
            self.assertEqual(st["state"], "failed", st)
            skf = log_stream(self.log_of(job), "skf").decode()
            self.assertIn("cannot create workdir 'esc/a/b': it leads outside "
                          "the workspace", skf)
            self.assertFalse(os.path.exists(self.marker))
            self.assert_untouched()
        # A link inside is followed, beneath the workspace.
        job = self.submit_job(self.steps_job(
            "mkdir real && ln -s real in",
            {"name": "inside", "workdir": "in/x", "script": "pwd -P"}))
        st = self.finished(job, timeout=30)
        self.assertEqual(st["state"], "succeeded", st)
        self.assertTrue(log_stream(self.log_of(job), "out").endswith(
            b"/workspace/real/x\n"))

    def test_artifacts_that_are_not_files_never_block(self):
        agent = self.agent()
        # A FIFO with no writer, a device, and a file under a write lease
        # (whose open would wait for the lease break time, 45 s). The
        # lease is taken by the test itself: whatever a step leaves
        # running is killed when the step ends, before artifacts go. The
        # device is made by the test too: a host step runs as skiff-step,
        # which may not make one (a container step, as root, could).
        script = (
            "mkfifo fifo && : > leased && "
            "for i in $(seq 200); do [ -e lease-held ] && break; sleep 0.05; "
            "done && [ -e lease-held ] && "
            "echo \"##skiff[artifact path='fifo']\" && "
            "echo \"##skiff[artifact path='null']\" && "
            "echo \"##skiff[artifact path='leased']\" && "
            "echo ok > ok.txt")
        t0 = time.monotonic()
        job = self.submit_job(self.steps_job(
            {"name": "traps", "script": script,
             "artifacts": ["fifo", "null", "ok.txt"]}))
        leased = harness.wait_until(lambda: glob.glob(os.path.join(
            agent.work_dir, "*", "workspace", "leased")), 10,
            what="the step's file to lease")[0]
        # The lease break signals its holder: this process must live.
        old = signal.signal(signal.SIGIO, signal.SIG_IGN)
        self.addCleanup(signal.signal, signal.SIGIO, old)
        fd = os.open(leased, os.O_RDWR)
        self.addCleanup(os.close, fd)
        fcntl.fcntl(fd, F_SETLEASE, fcntl.F_WRLCK)
        os.mknod(os.path.join(os.path.dirname(leased), "null"),
                 stat.S_IFCHR | 0o666, os.makedev(1, 3))
        open(os.path.join(os.path.dirname(leased), "lease-held"), "w").close()
        st = self.finished(job, timeout=20)
        self.assertLess(time.monotonic() - t0, 20 * harness.SLOW)
        skf = log_stream(self.log_of(job), "skf").decode()
        self.assertEqual(st["state"], "succeeded", (st, skf))
        self.assertIn("artifact 'fifo' refused: not a regular file", skf)
        self.assertIn("artifact 'null' refused: not a regular file", skf)
        self.assertIn("artifact 'leased' refused", skf)
        names = [a["name"] for a in self.q.request(
            "GET", "/v1/jobs/%s/artifacts" % job).json()["artifacts"]]
        self.assertEqual(names, ["ok.txt"])


if __name__ == "__main__":
    harness.main()
