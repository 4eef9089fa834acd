#!/usr/bin/python3
"""skiff-queue: nothing it acknowledged is lost when it is killed with
SIGKILL and started again on the same data directory: queued jobs stay
queued (in order), results stay, acknowledged log bytes and artifacts
stay, agents and tokens stay valid, and leases in flight go on (with a
fresh ack window or TTL) or expire as the protocol says.
"""
import hashlib
import os
import signal
import threading
import time

import harness
from harness import wait_until


class DurabilityTest(harness.SkiffTestCase):

    def test_kill9_and_restart_loses_nothing_acknowledged(self):
        q = self.start_queue("--ack-window", "2", "--lease-ttl", "3",
                             "--heartbeat-interval", "1")
        done_agent = q.register("test", name="done")
        runner = q.register("test", name="runner", capacity=2)
        # A job that ended, with a result and a log.
        jws, done_id = self.job(name="finished")
        q.submit_ok(jws)
        l = done_agent.lease_ok(0)["lease"]
        done_agent.heartbeat(l)
        done_agent.log(l, 0, b"finished log\n")
        self.assertEqual(done_agent.complete(l, "failed", [3], 13,
                                             reason_code="step_failed",
                                             reason="exit 3").status, 200)
        # A running job with log bytes and a committed artifact.
        jws, run_id = self.job(name="running")
        q.submit_ok(jws)
        rl = runner.lease_ok(0)["lease"]
        runner.heartbeat(rl)
        log = b"".join(b"2026-11-25T04:13:39.123Z out line %d\n" % i
                       for i in range(200))
        self.assertEqual(runner.log(rl, 0, log).json(), {"length": len(log)})
        art = os.urandom(100000)
        self.assertEqual(runner.upload_file(rl, "a.bin", art).status, 200)
        # A half-uploaded artifact: the acknowledged offset survives.
        up = runner.artifact_create(rl, "half.bin", 5000).json()["upload"]
        self.assertEqual(runner.upload_put(up, 0, b"h" * 2000).json(),
                         {"offset": 2000})
        # Queued jobs, in order.
        queued = [self.job(name="q%d" % i) for i in range(3)]
        for jws, _ in queued:
            q.submit_ok(jws)
        spare_token = q.registration_token("test", "spare")

        q.kill9()
        self.assertFalse(q.running())
        q.start()

        st = q.status(done_id)
        self.assertEqual((st["state"], st["result"], st["exit_codes"],
                          st["reason"], st["log_length"]),
                         ("failed", "failed", [3], "exit 3", 13))
        r = q.request("GET", "/v1/jobs/%s/log" % done_id)
        self.assertEqual(r.body, b"finished log\n")
        # The running lease goes on: the same agent token, lease and log.
        self.assertEqual(q.status(run_id)["state"], "running")
        self.assertEqual(runner.heartbeat(rl).status, 200)
        more = b"2026-11-25T04:13:40.000Z out after restart\n"
        self.assertEqual(runner.log(rl, len(log), more).json(),
                         {"length": len(log) + len(more)})
        self.assertEqual(runner.upload_status(up).json()["offset"], 2000)
        self.assertEqual(runner.upload_put(up, 2000, b"h" * 3000).json(),
                         {"offset": 5000})
        self.assertEqual(runner.upload_commit(
            up, hashlib.sha256(b"h" * 5000).hexdigest()).status, 200)
        r = q.request("GET", "/v1/jobs/%s/artifacts/a.bin" % run_id)
        self.assertEqual(r.body, art)
        # Queued jobs come out in submit order.
        fresh = q.register("test", name="fresh", capacity=3,
                           token=spare_token)
        got = [fresh.lease_ok(0)["job"] for _ in range(3)]
        self.assertEqual(got, [jid for _, jid in queued])
        self.assertEqual(q.metric("skiff_jobs_queued", pool="test"), 0)

    def test_lease_in_flight_expires_after_restart(self):
        q = self.start_queue("--ack-window", "1", "--lease-ttl", "2",
                             "--heartbeat-interval", "1")
        agent = q.register("test")
        jws, jid = self.job()
        q.submit_ok(jws)
        lease = agent.lease_ok(0)["lease"]
        agent.heartbeat(lease)
        q.kill9()
        q.start()
        # Nobody heartbeats: after a fresh TTL the attempt is counted.
        st = q.wait_state(jid, "queued", timeout=8)
        self.assertEqual(st["attempt"], 2)
        self.assertEqual(agent.heartbeat(lease).status, 410)

    def test_unacknowledged_lease_requeued_after_restart(self):
        q = self.start_queue("--ack-window", "1")
        agent = q.register("test")
        jws, jid = self.job()
        q.submit_ok(jws)
        agent.lease_ok(0)
        q.kill9()
        q.start()
        st = q.wait_state(jid, "queued", timeout=6)
        self.assertEqual(st["attempt"], 1)

    def test_sigterm_answers_held_polls_and_exits_0(self):
        q = self.start_queue()
        agent = q.register("test")
        box = {}
        t = threading.Thread(target=lambda: box.update(r=agent.lease(30)),
                             daemon=True)
        t.start()
        wait_until(lambda: q.metric("skiff_lease_waiters", pool="test") == 1,
                   what="the poll to be held")
        t0 = time.monotonic()
        self.assertEqual(q.stop(signal.SIGTERM), 0)
        self.assertLess(time.monotonic() - t0, 6 * harness.SLOW)
        t.join(5)
        self.assertEqual(box["r"].status, 503)
        self.assertTrue(box["r"].header("Retry-After"))
        q.start()
        self.assertEqual(agent.lease(0).status, 204)

    @harness.sqlite_only("a data directory is one queue's alone; on "
                         "PostgreSQL several replicas share one database "
                         "by design (test_queue_replicas)")
    def test_second_queue_on_same_data_dir_refused(self):
        q = self.start_queue()
        other = harness.Queue(self.tmp, pki=self.pki, name="queue")
        other.port = 0
        other.port_file = os.path.join(self.tmp, "other.port")
        proc = harness.start_process(other.argv(), log=os.path.join(
            self.tmp, "other.log"))
        wait_until(lambda: proc.poll() is not None, 10,
                   what="the second queue to give up")
        self.assertEqual(proc.returncode, 3)
        with open(os.path.join(self.tmp, "other.log")) as f:
            self.assertIn("another skiff-queue uses this data dir", f.read())
        self.assertTrue(q.running())


if __name__ == "__main__":
    harness.main()
