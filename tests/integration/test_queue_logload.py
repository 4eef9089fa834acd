#!/usr/bin/python3
"""skiff-queue under log load (issue 11, item 4): a pickup is not held up
by jobs streaming 1 MiB log chunks; concurrent PUTs of one lease leave one
consistent log; kill -9 in the middle of the load leaves every log at
least as long as what was acknowledged, and a correct prefix of what was
sent.

The bound on pickup here is generous (it must hold on a slow or
instrumented machine); the tight figure is bench/queue's. Every queue is
started through start(), which takes the store's arguments from
queue_args, so that the same tests can run on another store.
"""
import gzip
import hashlib
import http.client
import threading
import time

import harness
from harness import SLOW, wait_until

MIB = 1 << 20


def text(seed, n):
    """n bytes of log-like text, different for each seed, that deflates
    about 2:1 (hex digits of a hash chain): inflating it is real work."""
    out = bytearray()
    h = hashlib.sha256(seed.encode()).digest()
    line = 0
    while len(out) < n:
        h = hashlib.sha256(h).digest()
        out += b"%08d out %s\n" % (line, h.hex().encode())
        line += 1
    return bytes(out[:n])


class Streamer(threading.Thread):
    """One job's agent side: PUTs the same chunk again and again (count
    times at most) on one keep-alive connection until stop is set;
    records the last length acknowledged and any unexpected answer. The
    chunk is compressed once, so that the client's CPU goes to sending."""

    def __init__(self, q, agent, lease, chunk, count, stop, crash=None):
        super().__init__(daemon=True)
        self.q, self.agent, self.lease = q, agent, lease
        self.chunk, self.size, self.stop = chunk, len(chunk) * count, stop
        self.crash = crash
        self.body = gzip.compress(chunk, compresslevel=1)
        self.acked = 0
        self.puts = 0
        self.error = None

    def expected(self, n):
        """The first n bytes this streamer sends."""
        k, rest = divmod(n, len(self.chunk))
        return self.chunk * k + self.chunk[:rest]

    def run(self):
        c = self.q.client(self.agent.token)
        conn = c.connect(60)
        h = {"Content-Type": "application/octet-stream",
             "Content-Encoding": "gzip"}
        try:
            while not self.stop.is_set() and self.acked < self.size:
                off = self.acked
                r = c.request("PUT", "/v1/leases/%s/log?offset=%d" % (
                    self.lease, off), self.body, h, conn=conn)
                want = off + len(self.chunk)
                if r.status != 200 or r.json()["length"] != want:
                    self.error = "PUT at %d: %r" % (off, r)
                    return
                self.acked = want
                self.puts += 1
        except (OSError, http.client.HTTPException) as e:
            # The queue was killed under us (the crash test).
            if not (self.crash and self.crash.is_set()):
                self.error = "PUT failed: %r" % e
        finally:
            conn.close()


class LogLoadTest(harness.SkiffTestCase):

    # The store's arguments (SQLite: none beyond the data directory the
    # harness gives); another store's test case sets its own.
    queue_args = ()

    def start(self, *extra, **kw):
        return self.start_queue(*(tuple(self.queue_args) + extra), **kw)

    def leases(self, q, pool, n):
        """n jobs of pool leased (and acknowledged) by one agent: the agent
        and [(lease, job id)]."""
        agent = q.register(pool, capacity=n)
        for _ in range(n):
            q.submit_ok(self.job(aud=pool)[0])
        out = []
        for _ in range(n):
            got = agent.lease_ok(0)
            self.assertEqual(agent.heartbeat(got["lease"]).status, 200)
            out.append((got["lease"], got["job"]))
        return agent, out

    def streamers(self, q, agent, leases, chunk, count, stop, crash=None):
        ss = []
        for lease, jid in leases:
            s = Streamer(q, agent, lease, text(jid, chunk), count, stop,
                         crash)
            s.job = jid
            ss.append(s)
        for s in ss:
            s.start()
        return ss

    def log_of(self, q, lease_job, offset=0):
        r = q.request("GET", "/v1/jobs/%s/log?offset=%d" % (lease_job,
                                                             offset))
        self.assertEqual(r.status, 200, r)
        return r

    def whole_log(self, q, jid):
        out = b""
        for _ in range(4096):
            r = self.log_of(q, jid, len(out))
            if not r.body:
                return out, int(r.header("Skiff-Log-Length"))
            out += r.body
        self.fail("the log of %s did not end" % jid)

    def test_pickup_under_log_load(self):
        q = self.start()
        n_stream, pickups = 64, 30
        agent, leases = self.leases(q, "load", n_stream)
        picker = q.register("pick", capacity=pickups)
        jobs = [self.job(aud="pick")[0] for _ in range(pickups)]
        stop = threading.Event()
        ss = self.streamers(q, agent, leases, MIB, 24, stop)
        wait_until(lambda: sum(s.puts for s in ss) >= n_stream, 60,
                   what="every job to have appended once")
        times = []
        try:
            for jws in jobs:
                got = {}

                def lease():
                    got["r"] = picker.lease(30)
                    got["t"] = time.monotonic()
                t = threading.Thread(target=lease, daemon=True)
                t.start()
                wait_until(lambda: got or q.metric(
                    "skiff_lease_waiters", pool="pick") == 1, 30,
                    interval=0.005, what="the lease to be held")
                self.assertNotIn("r", got, "answered before the submit")
                t0 = time.monotonic()
                q.submit_ok(jws)
                t.join(60 * SLOW)
                self.assertEqual(got["r"].status, 200, got["r"])
                times.append(got["t"] - t0)
                picked = got["r"].json()["lease"]
                self.assertEqual(picker.heartbeat(picked).status, 200)
                # The load must still be running for the figure to count.
                self.assertFalse(any(s.error for s in ss),
                                 [s.error for s in ss if s.error])
        finally:
            stop.set()
            for s in ss:
                s.join(120 * SLOW)
        self.assertFalse(any(s.error for s in ss),
                         [s.error for s in ss if s.error])
        times.sort()
        p99 = times[int(len(times) * 0.99)]
        # The load was real: every stream kept appending meanwhile.
        puts = sum(s.puts for s in ss)
        self.assertGreater(puts, 2 * n_stream)
        # On PostgreSQL a lease's commit waits for the WAL written before
        # it, and here that is the 1 MiB chunks of 64 streams: the same
        # bound would measure the disk under the CI's other tests, not
        # whether leasing waits behind log work (it did, for 5 s, before
        # control and bulk queries got their own connections).
        # The median says whether leasing waits behind log work (before
        # the log path left the loop it was 200 ms and more at this load);
        # the slowest of 30 says more about the machine's other work than
        # about the queue, so it only has to stay under a second.
        p50 = times[len(times) // 2]
        what = "pickup p50 %.1f ms p99 %.1f ms under %d streams (%d PUTs)" % (
            p50 * 1e3, p99 * 1e3, n_stream, puts)
        self.assertLess(p50, (0.5 if harness.on_postgres() else 0.150) * SLOW,
                        what)
        self.assertLess(p99, 1.0 * SLOW * (2 if harness.on_postgres() else 1),
                        what)

    def test_concurrent_puts_of_one_lease(self):
        """Eight writers race on one lease, each resuming from the length
        it was last told, overlapping and resending: the log is exactly the
        data, and every answer is a length the log really had."""
        self.race()

    def test_concurrent_puts_of_one_lease_sync_normal(self):
        """The same without the group commit (nothing is synced)."""
        self.race("--sync", "normal")

    def race(self, *extra):
        q = self.start(*extra)
        agent = q.register("load")
        jws, jid = self.job(aud="load")
        q.submit_ok(jws)
        lease = agent.lease_ok(0)["lease"]
        self.assertEqual(agent.heartbeat(lease).status, 200)
        data = text("race", 3 * MIB + 12345)
        seen, errors = [], []

        def writer(k):
            c = q.client(agent.token)
            conn = c.connect(60)
            known, step = 0, 64 * 1024 + 97 * k
            try:
                for _ in range(5000):
                    if known >= len(data):
                        return
                    # Some writers start a little before what they know:
                    # the overlap must be skipped, not appended again.
                    off = max(0, known - (k % 3) * 1000)
                    body = gzip.compress(data[off:off + step],
                                         compresslevel=1)
                    r = c.request("PUT", "/v1/leases/%s/log?offset=%d" % (
                        lease, off), body, {
                            "Content-Encoding": "gzip",
                            "Content-Type": "application/octet-stream"},
                        conn=conn)
                    if r.status not in (200, 409):
                        errors.append(repr(r))
                        return
                    length = r.json()["length"]
                    if r.status == 200 and length < min(off + step,
                                                        len(data)):
                        errors.append("length %d after a PUT of [%d, %d)" % (
                            length, off, off + step))
                    seen.append(length)
                    known = max(known, length)
                errors.append("writer %d did not finish" % k)
            finally:
                conn.close()
        ts = [threading.Thread(target=writer, args=(k,)) for k in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(300 * SLOW)
        self.assertEqual(errors, [])
        log, length = self.whole_log(q, jid)
        self.assertEqual(length, len(data))
        self.assertEqual(log, data)
        self.assertTrue(all(0 < s <= len(data) for s in seen))
        r = agent.complete(lease, log_length=len(data))
        self.assertEqual(r.status, 200, r)

    def test_kill9_mid_load_keeps_acknowledged_prefix(self):
        q = self.start()
        n = 16
        agent, leases = self.leases(q, "load", n)
        stop, crash = threading.Event(), threading.Event()
        ss = self.streamers(q, agent, leases, 256 * 1024, 256, stop, crash)
        wait_until(lambda: all(s.puts >= 2 for s in ss), 60,
                   what="every job to have appended twice")
        crash.set()
        q.kill9()
        stop.set()
        for s in ss:
            s.join(60 * SLOW)
        self.assertFalse(any(s.error for s in ss),
                         [s.error for s in ss if s.error])
        q.start()
        for s in ss:
            log, length = self.whole_log(q, s.job)
            self.assertGreaterEqual(length, s.acked, s.job)
            self.assertEqual(len(log), length)
            self.assertEqual(log, s.expected(length), s.job)
            self.assertEqual(q.status(s.job)["log_length"], length)


if __name__ == "__main__":
    harness.main()
