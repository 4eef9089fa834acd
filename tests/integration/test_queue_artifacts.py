#!/usr/bin/python3
"""skiff-queue: artifact uploads (docs/protocol.md section 4.5): create with
caps, PUT at offsets (raw and gzip), resume, the SHA-256 check on commit,
names that could escape refused; download and `skiffctl artifacts` (5.4)
restoring byte-identical files.
"""
import hashlib
import os
import urllib.parse

import harness


def sha(b):
    return hashlib.sha256(b).hexdigest()


class ArtifactTest(harness.SkiffTestCase):

    def leased(self, q, pool="test", jti=None):
        agent = q.register(pool)
        if jti:
            jws = harness.sign_job(harness.simple_job(), self.signing_key()[0],
                                   pool, jti=jti)
            jid = harness.job_id_of(jws)
        else:
            jws, jid = self.job(aud=pool)
        q.submit_ok(jws)
        lease = agent.lease_ok(0)["lease"]
        self.assertEqual(agent.heartbeat(lease).status, 200)
        return agent, lease, jid

    def test_upload_resume_commit_download(self):
        q = self.start_queue()
        agent, lease, jid = self.leased(q)
        data = os.urandom(300000)
        r = agent.artifact_create(lease, "dist/app.bin", len(data))
        self.assertEqual(r.status, 201, r)
        up = r.json()["upload"]
        self.assertTrue(up.startswith("upl_"))
        self.assertEqual(r.json()["offset"], 0)
        # First part raw, second part gzip: offsets count decoded bytes.
        self.assertEqual(agent.upload_put(up, 0, data[:100000]).json(),
                         {"offset": 100000})
        # A PUT at the wrong offset answers the server's.
        r = agent.upload_put(up, 5, data[5:])
        self.assertEqual((r.status, r.json()["length"]), (409, 100000))
        # The same name again answers the upload and where it stands.
        r = agent.artifact_create(lease, "dist/app.bin", len(data))
        self.assertEqual((r.status, r.json()),
                         (200, {"upload": up, "offset": 100000}))
        st = agent.upload_status(up).json()
        self.assertEqual((st["offset"], st["size"]), (100000, len(data)))
        # Committing before the end is a conflict.
        self.assertEqual(agent.upload_commit(up, sha(data)).status, 409)
        r = agent.upload_put(up, 100000, data[100000:], gzip_body=True)
        self.assertEqual(r.json(), {"offset": len(data)})
        r = agent.upload_commit(up, sha(data))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"name": "dist/app.bin", "size": len(data),
                                    "sha256": sha(data)})
        # Committing again is harmless; creating again says complete.
        self.assertEqual(agent.upload_commit(up, sha(data)).status, 200)
        self.assertEqual(agent.artifact_create(lease, "dist/app.bin",
                                               len(data)).json(),
                         {"upload": up, "complete": True})
        lst = q.request("GET", "/v1/jobs/%s/artifacts" % jid).json()
        self.assertEqual(lst["artifacts"], [{"name": "dist/app.bin",
                                             "size": len(data),
                                             "sha256": sha(data)}])
        r = q.request("GET", "/v1/jobs/%s/artifacts/dist/app.bin" % jid)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, data)
        self.assertEqual(r.header("Skiff-Sha256"), sha(data))
        self.assertEqual(r.header("Content-Length"), str(len(data)))
        # Percent-encoded names work too.
        r = q.request("GET", "/v1/jobs/%s/artifacts/dist%%2Fapp.bin" % jid)
        self.assertEqual(r.body, data)

    def test_digest_mismatch_discards(self):
        q = self.start_queue()
        agent, lease, jid = self.leased(q)
        data = b"the real bytes\n" * 1000
        up = agent.artifact_create(lease, "out.txt", len(data)).json()["upload"]
        agent.upload_put(up, 0, data)
        r = agent.upload_commit(up, sha(b"something else"))
        self.assertEqual(r.status, 422, r)
        self.assertEqual(r.json()["error"], "digest_mismatch")
        self.assertIn(sha(data), r.json()["message"])
        # Discarded: back at offset 0, not listed.
        self.assertEqual(agent.upload_status(up).json()["offset"], 0)
        self.assertEqual(q.request("GET", "/v1/jobs/%s/artifacts" % jid)
                         .json()["artifacts"], [])
        # The agent may start again from 0.
        agent.upload_put(up, 0, data)
        self.assertEqual(agent.upload_commit(up, sha(data)).status, 200)
        # A malformed digest is a bad request, not a mismatch.
        self.assertEqual(agent.upload_commit(up, "ABC").status, 400)

    def test_traversal_names_refused(self):
        q = self.start_queue()
        agent, lease, jid = self.leased(q)
        for name in ("../etc/passwd", "/etc/passwd", "a/../../b", "a//b",
                     "a/./b", ".", "..", "a/", "back\\slash", "nul\0byte",
                     "tab\there", "x" * 256, ""):
            r = agent.artifact_create(lease, name, 1)
            self.assertEqual(r.status, 400, (name, r))
            self.assertEqual(r.json()["error"], "bad_request")
        # Downloads refuse them as well.
        for raw in ("..%2F..%2Fqueue.db", "a%2F..%2F..%2Fx", "%2E%2E"):
            r = q.request("GET", "/v1/jobs/%s/artifacts/%s" % (jid, raw))
            self.assertIn(r.status, (400, 404), (raw, r))
        r = q.request("GET", "/v1/jobs/%s/artifacts/a%%00b" % jid)
        self.assertEqual(r.status, 400)
        # Names are data, not paths: bytes are stored under generated ids
        # (files on SQLite, chunk rows on PostgreSQL), and nothing of the
        # refused names was kept.
        ok = agent.upload_file(lease, "dir with space/ünïcode.txt", b"x")
        self.assertEqual(ok.status, 200, ok)
        if harness.on_postgres():
            self.assertEqual(len(q.sql("SELECT id FROM uploads")), 1)
            stored = [r[0] for r in q.sql(
                "SELECT DISTINCT upload FROM upload_chunks")]
        else:
            stored = []
            for root, _, files in os.walk(os.path.join(q.data_dir,
                                                       "artifacts")):
                stored += files
        self.assertEqual(len(stored), 1)
        self.assertTrue(stored[0].startswith("upl_"), stored)

    def test_caps(self):
        q = self.start_queue("--max-artifact", "1000",
                             "--max-artifacts-total", "1500",
                             "--max-artifact-count", "2")
        agent, lease, _ = self.leased(q)
        r = agent.artifact_create(lease, "big", 1001)
        self.assertEqual((r.status, r.json()["limit"]), (413, 1000))
        self.assertEqual(agent.artifact_create(lease, "a", 1000).status, 201)
        r = agent.artifact_create(lease, "b", 501)
        self.assertEqual((r.status, r.json()["limit"]), (413, 1500))
        self.assertEqual(agent.artifact_create(lease, "b", 500).status, 201)
        r = agent.artifact_create(lease, "c", 0)
        self.assertEqual((r.status, r.json()["limit"]), (413, 2))
        # Bytes past the declared size are refused, and nothing is kept.
        up = agent.artifact_create(lease, "a", 1000).json()["upload"]
        r = agent.upload_put(up, 0, b"y" * 1001)
        self.assertEqual(r.status, 413, r)
        r = agent.upload_put(up, 0, b"y" * 999 + b"zz", gzip_body=True)
        self.assertEqual(r.status, 413, r)
        self.assertEqual(agent.upload_status(up).json()["offset"], 0)

    def test_upload_needs_the_lease_agent(self):
        q = self.start_queue()
        agent, lease, _ = self.leased(q)
        other = q.register("test", name="other")
        up = agent.artifact_create(lease, "f", 3).json()["upload"]
        r = other.upload_put(up, 0, b"abc")
        self.assertEqual(r.status, 403, r)
        r = q.request("PUT", "/v1/uploads/%s?offset=0" % up, b"abc", token=None)
        self.assertEqual(r.status, 401)

    def test_skiffctl_artifacts_get_byte_identical(self):
        q = self.start_queue()
        agent, lease, jid = self.leased(q)
        files = {"result.txt": b"built\n",
                 "dist/app.tar.gz": os.urandom(200000),
                 "dist/deep/empty": b"",
                 "logs/build.log": b"line\n" * 5000}
        for name, data in files.items():
            self.assertEqual(agent.upload_file(lease, name, data).status, 200)
        out = os.path.join(self.tmp, "restored")
        res = q.ctl("artifacts", "get", jid, "--out", out)
        for name, data in files.items():
            with open(os.path.join(out, name), "rb") as f:
                self.assertEqual(f.read(), data, name)
            self.assertIn(sha(data).encode(), res.stdout)
        listing = q.ctl("artifacts", "list", jid).stdout.decode()
        for name in files:
            self.assertIn(name, listing)
        # One by name.
        out2 = os.path.join(self.tmp, "one")
        q.ctl("artifacts", "get", jid, "result.txt", "--out", out2)
        self.assertEqual(os.listdir(out2), ["result.txt"])
        r = q.ctl("artifacts", "get", jid, "nope", "--out", out2, check=False)
        self.assertEqual(r.returncode, 1)

    def test_skiffctl_refuses_a_corrupted_download(self):
        q = self.start_queue()
        # An id that starts with '-' on purpose (1 in 64 of them did, when
        # skiffctl sign drew it from all of base64url): given after "--".
        agent, lease, jid = self.leased(q, jti=harness.DASH_JTI)
        self.assertEqual(jid, harness.DASH_JTI)
        data = b"original content\n" * 100
        self.assertEqual(agent.upload_file(lease, "f.txt", data).status, 200)
        # Damage the stored bytes behind the queue's back: the client must
        # notice rather than keep them.
        q.damage_artifact(jid)
        out = os.path.join(self.tmp, "out")
        r = q.ctl("artifacts", "get", "--out", out, "--", jid, check=False)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(b"does not match", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(out, "f.txt")))
        self.assertEqual([n for n in os.listdir(out) if n.endswith(".tmp")], [])


if __name__ == "__main__":
    harness.main()
