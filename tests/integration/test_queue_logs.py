#!/usr/bin/python3
"""skiff-queue: log appends at offsets (docs/protocol.md section 4.4), the
inflate cap, the admin log endpoint and its follow long-poll (5.3), and
`skiffctl logs` (--follow, --stream) over real TLS.
"""
import gzip
import io
import os
import threading
import time

import harness
from harness import wait_until


def bomb(size):
    """A gzip member of size zero bytes: a few KiB that inflate to size."""
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=9) as f:
        chunk = b"\0" * (1 << 20)
        for _ in range(size >> 20):
            f.write(chunk)
    return buf.getvalue()


class LogTest(harness.SkiffTestCase):

    def leased(self, q):
        agent = q.register("test")
        jws, jid = self.job()
        q.submit_ok(jws)
        lease = agent.lease_ok(0)["lease"]
        self.assertEqual(agent.heartbeat(lease).status, 200)
        return agent, lease, jid

    def log_of(self, q, jid, **params):
        query = "&".join("%s=%s" % kv for kv in params.items())
        return q.request("GET", "/v1/jobs/%s/log?%s" % (jid, query))

    def test_offsets_duplicate_and_gap(self):
        q = self.start_queue()
        agent, lease, jid = self.leased(q)
        a = b"2026-11-25T04:13:39.123Z out hello\n"
        b = b"2026-11-25T04:13:39.200Z out world\n"
        r = agent.log(lease, 0, a)
        self.assertEqual((r.status, r.json()), (200, {"length": len(a)}))
        # The same chunk again: nothing changes.
        r = agent.log(lease, 0, a)
        self.assertEqual((r.status, r.json()), (200, {"length": len(a)}))
        # Overlapping: only the part past the server's length is added.
        r = agent.log(lease, 10, a[10:] + b)
        self.assertEqual(r.json(), {"length": len(a + b)})
        # A gap: refused with the server's length to resume from.
        r = agent.log(lease, len(a + b) + 5, b"lost?\n")
        self.assertEqual(r.status, 409, r)
        self.assertEqual(r.json()["error"], "offset_mismatch")
        self.assertEqual(r.json()["length"], len(a + b))
        r = self.log_of(q, jid)
        self.assertEqual(r.body, a + b)
        self.assertEqual(r.header("Skiff-Log-Length"), str(len(a + b)))
        self.assertEqual(r.header("Skiff-Log-Complete"), "0")
        self.assertEqual(r.header("Skiff-Log-Attempt"), "1")
        # Reads at an offset; past the end is 416 with the length.
        self.assertEqual(self.log_of(q, jid, offset=len(a)).body, b)
        r = self.log_of(q, jid, offset=len(a + b) + 1)
        self.assertEqual(r.status, 416)
        self.assertEqual(r.json()["length"], len(a + b))
        self.assertEqual(q.status(jid)["log_length"], len(a + b))

    def test_plain_body_accepted_other_encodings_refused(self):
        q = self.start_queue()
        agent, lease, jid = self.leased(q)
        r = agent.log(lease, 0, b"plain\n", gzip_body=False)
        self.assertEqual(r.json(), {"length": 6})
        r = q.request("PUT", "/v1/leases/%s/log?offset=6" % lease, b"x",
                      {"Content-Encoding": "br"}, token=agent.token)
        self.assertEqual((r.status, r.json()["error"]),
                         (415, "unsupported_media_type"))
        r = q.request("PUT", "/v1/leases/%s/log?offset=6" % lease,
                      b"not gzip at all", {"Content-Encoding": "gzip"},
                      token=agent.token)
        self.assertEqual((r.status, r.json()["error"]), (400, "bad_request"))
        r = q.request("PUT", "/v1/leases/%s/log" % lease, harness.gz(b"x"),
                      {"Content-Encoding": "gzip"}, token=agent.token)
        self.assertEqual(r.status, 400)
        self.assertIn("offset", r.json()["message"])

    def test_gzip_bomb_refused(self):
        q = self.start_queue()
        agent, lease, jid = self.leased(q)
        body = bomb(64 << 20)
        self.assertLess(len(body), 128 << 10)
        t0 = time.monotonic()
        r = q.request("PUT", "/v1/leases/%s/log?offset=0" % lease, body,
                      {"Content-Encoding": "gzip"}, token=agent.token)
        self.assertEqual(r.status, 413, r)
        self.assertEqual(r.json()["error"], "too_large")
        self.assertEqual(r.json()["limit"], 1 << 20)
        # Refused without inflating the 64 MiB.
        self.assertLess(time.monotonic() - t0, 2 * harness.SLOW)
        self.assertEqual(q.status(jid)["log_length"], 0)
        # A chunk of exactly 1 MiB inflated is fine.
        r = agent.log(lease, 0, b"x" * (1 << 20))
        self.assertEqual(r.json(), {"length": 1 << 20})
        # The compressed body itself is capped at 1 MiB too.
        noise = os.urandom((1 << 20) + 4096)
        r = q.request("PUT", "/v1/leases/%s/log?offset=%d" % (lease, 1 << 20),
                      noise, token=agent.token)
        self.assertEqual(r.status, 413, r)

    def test_log_cap_per_attempt(self):
        q = self.start_queue("--max-log", "4k")
        agent, lease, _ = self.leased(q)
        self.assertEqual(agent.log(lease, 0, b"a" * 4000).status, 200)
        r = agent.log(lease, 4000, b"b" * 200)
        self.assertEqual((r.status, r.json()["limit"]), (413, 4096))

    def test_follow_wakes_on_append_and_completes(self):
        q = self.start_queue()
        agent, lease, jid = self.leased(q)
        box = {}

        def follow():
            t0 = time.monotonic()
            box["r"] = self.log_of(q, jid, offset=0, wait=20)
            box["t"] = time.monotonic() - t0
        t = threading.Thread(target=follow, daemon=True)
        t.start()
        time.sleep(0.3)
        agent.log(lease, 0, b"2026-11-25T04:13:39.123Z out first\n")
        t.join(10)
        self.assertEqual(box["r"].body, b"2026-11-25T04:13:39.123Z out first\n")
        self.assertLess(box["t"], 5 * harness.SLOW)
        # A follower at the end is answered when the job ends.
        n = len(box["r"].body)
        t = threading.Thread(target=lambda: box.update(
            r=self.log_of(q, jid, offset=n, wait=20)), daemon=True)
        t.start()
        time.sleep(0.3)
        agent.complete(lease, "succeeded", [0], n)
        t.join(10)
        self.assertEqual(box["r"].status, 200)
        self.assertEqual(box["r"].body, b"")
        self.assertEqual(box["r"].header("Skiff-Log-Complete"), "1")
        # wait without new bytes and without an end: an empty 200.
        q2 = self.start_queue(name="q2")
        _, _, jid2 = self.leased(q2)
        t0 = time.monotonic()
        r = self.log_of(q2, jid2, offset=0, wait=1)
        self.assertEqual((r.status, r.body), (200, b""))
        self.assertGreaterEqual(time.monotonic() - t0, 0.9)

    def test_skiffctl_logs_stream_rebuilds_output(self):
        q = self.start_queue()
        agent, lease, jid = self.leased(q)
        ts = b"2026-11-25T04:13:39.123Z "
        records = [
            ts + b"skf step 1/2 'build' started",
            ts + b"out+ partial ",
            ts + b"err oops",
            ts + b"out line one",
            ts + b"out ",
            ts + b"skf step 2/2 'test' started",
            ts + b"out second step",
            ts + b"out+ no newline at the end",
        ]
        log = b"".join(r + b"\n" for r in records)
        off = 0
        # Uploaded in awkward pieces, as an agent may.
        for piece in (log[:7], log[7:60], log[60:]):
            self.assertEqual(agent.log(lease, off, piece).status, 200)
            off += len(piece)
        out = q.ctl("logs", jid, "--stream", "out").stdout
        self.assertEqual(out, b"partial line one\n\nsecond step\n"
                              b"no newline at the end")
        self.assertEqual(q.ctl("logs", jid, "--stream", "err").stdout,
                         b"oops\n")
        self.assertEqual(q.ctl("logs", jid, "--stream", "out", "--step",
                               "2").stdout,
                         b"second step\nno newline at the end")
        self.assertEqual(q.ctl("logs", jid).stdout, log)

    def test_skiffctl_logs_follow_until_end(self):
        q = self.start_queue()
        agent, lease, jid = self.leased(q)
        env_proc = harness.start_process(
            [harness.SKIFFCTL, "logs", jid, "--follow", "--stream", "out"],
            env=dict(os.environ, SKIFF_QUEUE_URL=q.url,
                     SKIFF_ADMIN_TOKEN=q.admin_token,
                     SKIFF_CA_FILE=q.ca_file),
            log=self.tmp + "/follow.out")
        ts = b"2026-11-25T04:13:39.123Z out "
        off = 0
        for i in range(3):
            chunk = ts + b"line %d\n" % i
            agent.log(lease, off, chunk)
            off += len(chunk)
            time.sleep(0.2)
        agent.complete(lease, "succeeded", [0], off)
        wait_until(lambda: env_proc.poll() is not None, 15,
                   what="skiffctl logs --follow to end with the job")
        self.assertEqual(env_proc.returncode, 0)
        with open(self.tmp + "/follow.out", "rb") as f:
            self.assertEqual(f.read(), b"line 0\nline 1\nline 2\n")

    def test_logs_per_attempt(self):
        q = self.start_queue("--ack-window", "1", "--lease-ttl", "1",
                             "--heartbeat-interval", "1")
        a1 = q.register("test", name="a1")
        a2 = q.register("test", name="a2")
        jws, jid = self.job()
        q.submit_ok(jws)
        l1 = a1.lease_ok(0)["lease"]
        a1.log(l1, 0, b"attempt one\n")
        q.wait_state(jid, "queued", timeout=5)
        l2 = a2.lease_ok(0)["lease"]
        a2.log(l2, 0, b"two\n")
        self.assertEqual(self.log_of(q, jid).body, b"two\n")
        r = self.log_of(q, jid, attempt=1)
        self.assertEqual(r.body, b"attempt one\n")
        self.assertEqual(r.header("Skiff-Log-Complete"), "1")
        self.assertEqual(self.log_of(q, jid, attempt=3).status, 404)


if __name__ == "__main__":
    harness.main()
