"""Artifacts and job inputs, with the real agent, queue and dockerd."""
import hashlib
import io
import os
import tarfile

import dockerenv
import harness
from agentfix import AgentTestCase, FileServer, log_stream


class ArtifactTests(AgentTestCase):
    def test_globs_and_service_messages_restore_byte_identical(self):
        self.agent()
        blob = os.urandom(3 * 1024 * 1024 + 17)
        src = os.path.join(self.tmp, "blob")
        with open(src, "wb") as f:
            f.write(blob)
        job = self.submit_job(self.steps_job(
            {"name": "build",
             "script": "mkdir -p dist/sub logs && cp %s dist/app.bin && "
                       "seq 1 100000 > dist/sub/numbers.txt && "
                       "echo log > logs/build.log && echo extra > extra.txt && "
                       "echo \"##skiff[artifact path='extra.txt' "
                       "name='named/extra.txt']\"" % src,
             "artifacts": ["dist/**", "*.nothing"]},
            {"name": "later", "script": "echo later > logs/later.log",
             "artifacts": ["logs/*.log"]}))
        st = self.finished(job, timeout=60)
        self.assertEqual(st["state"], "succeeded", st)
        listed = {a["name"]: a for a in self.q.request(
            "GET", "/v1/jobs/%s/artifacts" % job).json()["artifacts"]}
        self.assertEqual(sorted(listed), ["dist/app.bin",
                                          "dist/sub/numbers.txt",
                                          "logs/build.log", "logs/later.log",
                                          "named/extra.txt"])
        out = os.path.join(self.tmp, "got")
        self.q.ctl("artifacts", "get", job, "--out", out)
        with open(os.path.join(out, "dist/app.bin"), "rb") as f:
            self.assertEqual(f.read(), blob)
        with open(os.path.join(out, "dist/sub/numbers.txt"), "rb") as f:
            self.assertEqual(f.read(), "".join("%d\n" % i for i in
                                                range(1, 100001)).encode())
        self.assertEqual(listed["dist/app.bin"]["sha256"],
                         hashlib.sha256(blob).hexdigest())
        # The service message line is still in the log.
        self.assertIn(b"##skiff[artifact path='extra.txt'",
                      log_stream(self.log_of(job), "out"))

    def test_escapes_are_refused(self):
        self.agent()
        job = self.submit_job(self.steps_job(
            {"name": "sneaky",
             "script": "mkdir -p dist && ln -s /etc/passwd dist/passwd && "
                       "ln -s /etc dist/etc && echo ok > dist/ok.txt && "
                       "echo \"##skiff[artifact path='../../../etc/hostname']\" && "
                       "echo \"##skiff[artifact path='/etc/hostname']\" && "
                       "echo \"##skiff[artifact path='dist/ok.txt' "
                       "name='../escape.txt']\"",
             "artifacts": ["dist/**", "dist/etc/hostname"]}))
        st = self.finished(job)
        self.assertEqual(st["state"], "succeeded", st)
        names = [a["name"] for a in self.q.request(
            "GET", "/v1/jobs/%s/artifacts" % job).json()["artifacts"]]
        self.assertEqual(names, ["dist/ok.txt"])
        skf = log_stream(self.log_of(job), "skf").decode()
        for refused in ("'dist/passwd' refused: it is a link",
                        "'dist/etc' refused: it is a link",
                        "'../../../etc/hostname' refused: it lies outside",
                        "'/etc/hostname' refused: it lies outside",
                        "'../escape.txt': not a valid name"):
            self.assertIn(refused, skf)

    def test_caps(self):
        self.agent(max_artifacts="2")
        job = self.submit_job(self.steps_job(
            {"name": "many", "script": "touch a b c", "artifacts": ["*"]}))
        st = self.finished(job)
        self.assertEqual(st["state"], "succeeded", st)
        names = [a["name"] for a in self.q.request(
            "GET", "/v1/jobs/%s/artifacts" % job).json()["artifacts"]]
        self.assertEqual(names, ["a", "b"])
        self.assertIn(b"artifact 'c' skipped", self.log_of(job))


def tgz(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for name, data in entries:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


class InputTests(AgentTestCase):
    def setUp(self):
        super().setUp()
        self.files = FileServer(self)
        self.base = self.files.base

    def serve(self, path, data):
        return self.files.serve(path, data)

    def test_inputs_verified_cached_read_only(self):
        self.agent(inputs_ca_file=self.pki.ca_file)
        pkg = os.urandom(100000)
        arch = tgz([("tool/bin/run.sh", b"echo from the package\n"),
                    ("tool/README", b"readme\n")])
        inputs = [dict(self.serve("/pkg.bin", pkg), path="dl/pkg.bin"),
                  dict(self.serve("/tool.tar.gz", arch), path="tool",
                       extract=True)]
        # The agent runs as root here, for whom modes are advice: check
        # them (containers get a read-only mount, tested below).
        script = ("sha256sum \"$SKIFF_INPUTS/dl/pkg.bin\" | cut -c1-64; "
                  "sh \"$SKIFF_INPUTS/tool/tool/bin/run.sh\"; "
                  "stat -c %a \"$SKIFF_INPUTS/dl/pkg.bin\" "
                  "\"$SKIFF_INPUTS/tool/tool/bin\" \"$SKIFF_INPUTS\"")
        job = self.submit_job(self.steps_job(script, inputs=inputs))
        st = self.finished(job, timeout=30)
        self.assertEqual(st["state"], "succeeded", st)
        out = log_stream(self.log_of(job), "out").decode()
        self.assertEqual(out, "%s\nfrom the package\n444\n555\n555\n" %
                         hashlib.sha256(pkg).hexdigest())
        # Again: from the cache, nothing downloaded.
        job2 = self.submit_job(self.steps_job(script, inputs=inputs))
        self.assertEqual(self.finished(job2, timeout=30)["state"], "succeeded")
        self.assertEqual(self.files.hits, {"/pkg.bin": 1, "/tool.tar.gz": 1})
        self.assertIn(b"in the cache", self.log_of(job2))

    def test_inputs_in_a_container_are_read_only(self):
        eng = dockerenv.Engine()
        image = dockerenv.build_images(eng)["busybox"]
        self.agent(inputs_ca_file=self.pki.ca_file)
        data = b"input for the container\n"
        job = self.submit_job(self.steps_job(
            {"name": "box", "image": image,
             "script": "cat \"$SKIFF_INPUTS/in.txt\"; "
                       "touch \"$SKIFF_INPUTS/x\" 2>/dev/null || echo ro"},
            inputs=[dict(self.serve("/in.txt", data), path="in.txt")]))
        st = self.finished(job, timeout=60)
        self.assertEqual(st["state"], "succeeded", st)
        self.assertEqual(log_stream(self.log_of(job), "out"), data + b"ro\n")

    def test_bad_digest_runs_nothing(self):
        self.agent(inputs_ca_file=self.pki.ca_file)
        marker = os.path.join(self.tmp, "ran")
        bad = self.serve("/x", b"the real bytes")
        bad["sha256"] = hashlib.sha256(b"other bytes").hexdigest()
        job = self.submit_job(self.steps_job(
            "touch %s" % marker, inputs=[dict(bad, path="x")]))
        st = self.finished(job)
        self.assertEqual(st["state"], "failed", st)
        self.assertEqual(st["reason_code"], "input_failed")
        self.assertIn("SHA-256 mismatch", st["reason"])
        self.assertFalse(os.path.exists(marker))

    def test_unsafe_archive_runs_nothing(self):
        self.agent(inputs_ca_file=self.pki.ca_file)
        marker = os.path.join(self.tmp, "ran")
        arch = tgz([("ok.txt", b"ok"), ("../../escape.txt", b"evil")])
        job = self.submit_job(self.steps_job(
            "touch %s" % marker,
            inputs=[dict(self.serve("/a.tgz", arch), path="a", extract=True)]))
        st = self.finished(job)
        self.assertEqual(st["reason_code"], "input_failed", st)
        self.assertIn("with '..'", st["reason"])
        self.assertFalse(os.path.exists(marker))

    def test_cancel_while_an_input_downloads(self):
        # The download stalls; its stall timeout (60 s) and retries would
        # hold the job for minutes: a cancel ends it now.
        self.agent(inputs_ca_file=self.pki.ca_file)
        job = self.submit_job(self.steps_job(
            "touch ran", inputs=[self.files.hang("/slow.bin", path="s")]))
        harness.wait_until(lambda: self.files.hits.get("/slow.bin"), 30,
                           what="the input download to start")
        st = self.cancel_and_finish(job, within=20)
        self.assertEqual(st["state"], "canceled", st)
        self.assertIn(b"stopped before the inputs were in place",
                      self.log_of(job))
        self.assertEqual(self.files.hits["/slow.bin"], 1)

    def test_missing_input_fails(self):
        self.agent(inputs_ca_file=self.pki.ca_file)
        job = self.submit_job(self.steps_job(
            "true", inputs=[{"url": self.base + "/nope", "path": "n",
                             "sha256": "0" * 64}]))
        st = self.finished(job)
        self.assertEqual(st["reason_code"], "input_failed", st)


if __name__ == "__main__":
    harness.main()
