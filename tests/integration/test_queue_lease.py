#!/usr/bin/python3
"""skiff-queue: long-poll leases, the ack window, the lease TTL, attempts,
cancel through heartbeats, label matching and FIFO (docs/protocol.md
sections 4.2, 4.3, 5.5 and 9), over real TLS.
"""
import threading
import time

import harness
from harness import wait_until

# Short timing so that expiry paths take seconds, not minutes.
FAST = ("--ack-window", "1", "--lease-ttl", "2", "--heartbeat-interval", "1",
        "--max-attempts", "2")


class LeaseTest(harness.SkiffTestCase):

    def lease_in_background(self, agent, wait):
        """Starts a lease long-poll in a thread; returns (thread, box)
        where box gets 'response' and 'elapsed'."""
        box = {}

        def poll():
            t0 = time.monotonic()
            box["response"] = agent.lease(wait)
            box["elapsed"] = time.monotonic() - t0
        t = threading.Thread(target=poll, daemon=True)
        t.start()
        return t, box

    def test_long_poll_woken_by_submit(self):
        q = self.start_queue()
        agent = q.register("test")
        t, box = self.lease_in_background(agent, 20)
        wait_until(lambda: q.metric("skiff_lease_waiters", pool="test") == 1,
                   what="the lease request to be held")
        jws, jid = self.job()
        t0 = time.monotonic()
        q.submit_ok(jws)
        t.join(10)
        self.assertFalse(t.is_alive())
        woke = time.monotonic() - t0
        r = box["response"]
        self.assertEqual(r.status, 200, r)
        body = r.json()
        self.assertEqual(body["job"], jid)
        self.assertEqual(body["jws"], jws)
        self.assertEqual(body["attempt"], 1)
        self.assertTrue(body["lease"].startswith("lse_"))
        for k in ("ack_window", "lease_ttl", "heartbeat_interval"):
            self.assertIsInstance(body[k], int)
        # Answered at once, not at the end of the 20 s wait.
        self.assertLess(woke, 2.0 * harness.SLOW)
        self.assertEqual(q.status(jid)["state"], "leased")
        self.assertEqual(q.metric("skiff_pickup_seconds_count", pool="test"), 1)

    def test_204_after_the_wait(self):
        q = self.start_queue()
        agent = q.register("test")
        t0 = time.monotonic()
        r = agent.lease(2)
        elapsed = time.monotonic() - t0
        self.assertEqual(r.status, 204, r)
        self.assertEqual(r.body, b"")
        self.assertGreaterEqual(elapsed, 1.9)
        self.assertLess(elapsed, 5 * harness.SLOW)
        # wait 0 answers at once.
        r = agent.lease(0)
        self.assertEqual(r.status, 204)
        # The server caps the wait at --max-lease-wait.
        q2 = self.start_queue("--max-lease-wait", "1", "--lease-wait", "1",
                              name="capped")
        a2 = q2.register("test")
        t0 = time.monotonic()
        self.assertEqual(a2.lease(30).status, 204)
        self.assertLess(time.monotonic() - t0, 4 * harness.SLOW)

    def test_queued_job_answers_at_once_fifo(self):
        q = self.start_queue()
        jobs = [self.job() for _ in range(3)]
        for jws, _ in jobs:
            q.submit_ok(jws)
        self.assertEqual(q.metric("skiff_jobs_queued", pool="test"), 3)
        agent = q.register("test", capacity=3)
        got = [agent.lease_ok(0)["job"] for _ in range(3)]
        self.assertEqual(got, [jid for _, jid in jobs])
        self.assertEqual(agent.lease(0).status, 204)

    def test_labels_must_all_match(self):
        q = self.start_queue()
        plain = q.register("test", name="plain")
        docker = q.register("test", name="docker", labels=["docker", "x64"])
        jws, jid = self.job(labels=["docker"])
        q.submit_ok(jws)
        self.assertEqual(plain.lease(0).status, 204)
        self.assertEqual(docker.lease_ok(0)["job"], jid)
        # Another pool never sees the job.
        other = q.register("other")
        jws2, _ = self.job()
        q.submit_ok(jws2)
        self.assertEqual(other.lease(0).status, 204)

    def test_ack_window_requeues_same_attempt(self):
        q = self.start_queue(*FAST)
        agent = q.register("test")
        jws, jid = self.job()
        q.submit_ok(jws)
        first = agent.lease_ok(0)
        # No heartbeat: the lease goes back after the ack window.
        st = q.wait_state(jid, "queued", timeout=5)
        self.assertEqual(st["attempt"], 1)
        self.assertEqual(q.metric("skiff_leases_expired_total", pool="test",
                                  kind="ack"), 1)
        # The old lease is gone; the job can be leased again, same attempt,
        # also by the same agent (an unacknowledged lease is no attempt).
        self.assertEqual(agent.heartbeat(first["lease"]).status, 410)
        second = agent.lease_ok(0)
        self.assertEqual(second["job"], jid)
        self.assertEqual(second["attempt"], 1)
        self.assertNotEqual(second["lease"], first["lease"])

    def test_heartbeat_acknowledges_and_extends(self):
        q = self.start_queue(*FAST)
        agent = q.register("test")
        jws, jid = self.job()
        q.submit_ok(jws)
        lease = agent.lease_ok(0)["lease"]
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            r = agent.heartbeat(lease)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json(), {"lease_ttl": 2,
                                        "heartbeat_interval": 1,
                                        "cancel": False})
            time.sleep(0.5)
        # Five seconds on a two-second TTL: heartbeats kept it alive.
        self.assertEqual(q.status(jid)["state"], "running")

    def test_ttl_expiry_requeues_then_loses(self):
        q = self.start_queue(*FAST)
        a1 = q.register("test", name="a1")
        a2 = q.register("test", name="a2")
        jws, jid = self.job()
        q.submit_ok(jws)
        l1 = a1.lease_ok(0)
        self.assertEqual(a1.heartbeat(l1["lease"]).status, 200)
        st = q.wait_state(jid, "queued", timeout=6)
        self.assertEqual(st["attempt"], 2)
        self.assertEqual(a1.heartbeat(l1["lease"]).status, 410)
        # a1 held attempt 1: it is never offered the job again.
        self.assertEqual(a1.lease(0).status, 204)
        l2 = a2.lease_ok(0)
        self.assertEqual((l2["job"], l2["attempt"]), (jid, 2))
        self.assertEqual(a2.heartbeat(l2["lease"]).status, 200)
        # The second attempt expires too: max attempts 2, the job is lost.
        st = q.wait_state(jid, "lost", timeout=6)
        self.assertEqual(st["attempt"], 2)
        self.assertIsNotNone(st["completed"])
        self.assertEqual(q.metric("skiff_leases_expired_total", pool="test",
                                  kind="ttl"), 2)
        self.assertEqual(q.metric("skiff_jobs_completed_total", pool="test",
                                  result="lost"), 1)

    def test_cancel_through_heartbeat(self):
        q = self.start_queue()
        agent = q.register("test")
        jws, jid = self.job()
        q.submit_ok(jws)
        lease = agent.lease_ok(0)["lease"]
        self.assertEqual(agent.heartbeat(lease).json()["cancel"], False)
        r = q.request("POST", "/v1/jobs/%s/cancel" % jid,
                      {"reason": "operator changed their mind"})
        self.assertEqual(r.status, 202, r)
        self.assertTrue(r.json()["cancel_requested"])
        hb = agent.heartbeat(lease).json()
        self.assertTrue(hb["cancel"])
        self.assertEqual(hb["cancel_reason"], "operator changed their mind")
        r = agent.complete(lease, "canceled", [-1], 0, reason_code="canceled",
                           reason="canceled by operator")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"state": "canceled"})
        st = q.status(jid)
        self.assertEqual((st["state"], st["result"], st["reason_code"]),
                         ("canceled", "canceled", "canceled"))
        # An ended job cannot be canceled again.
        self.assertEqual(q.request("POST", "/v1/jobs/%s/cancel" % jid).status,
                         409)

    def test_cancel_queued_job_ends_at_once(self):
        q = self.start_queue()
        jws, jid = self.job()
        q.submit_ok(jws)
        r = q.request("POST", "/v1/jobs/%s/cancel" % jid)
        self.assertEqual(r.status, 202)
        self.assertEqual(r.json()["state"], "canceled")
        agent = q.register("test")
        self.assertEqual(agent.lease(0).status, 204)

    def test_complete_is_idempotent_and_checks_log_length(self):
        q = self.start_queue()
        agent = q.register("test")
        jws, jid = self.job()
        q.submit_ok(jws)
        lease = agent.lease_ok(0)["lease"]
        self.assertEqual(agent.log(lease, 0, b"hello\n").json(), {"length": 6})
        r = agent.complete(lease, "failed", [0, 2], 3)
        self.assertEqual(r.status, 409, r)
        self.assertEqual(r.json()["error"], "offset_mismatch")
        self.assertEqual(r.json()["length"], 6)
        r = agent.complete(lease, "failed", [0, 2], 6, reason_code="step_failed",
                           reason="step 'test' exited with 2")
        self.assertEqual(r.json(), {"state": "failed"})
        r = agent.complete(lease, "failed", [0, 2], 6)
        self.assertEqual((r.status, r.json()), (200, {"state": "failed"}))
        st = q.status(jid)
        self.assertEqual(st["exit_codes"], [0, 2])
        self.assertEqual(st["log_length"], 6)
        self.assertEqual(st["reason"], "step 'test' exited with 2")
        # The lease is over for everything else.
        self.assertEqual(agent.heartbeat(lease).status, 410)

    def test_lease_of_another_agent_is_forbidden(self):
        q = self.start_queue()
        a1 = q.register("test", name="a1")
        a2 = q.register("test", name="a2")
        jws, _ = self.job()
        q.submit_ok(jws)
        lease = a1.lease_ok(0)["lease"]
        r = a2.heartbeat(lease)
        self.assertEqual((r.status, r.json()["error"]), (403, "forbidden"))
        r = a2.heartbeat("lse_doesnotexist")
        self.assertEqual((r.status, r.json()["error"]), (404, "not_found"))

    def test_job_expires_while_queued(self):
        q = self.start_queue("--clock-skew", "0")
        jws, jid = self.job(ttl="2s")
        q.submit_ok(jws)
        st = q.wait_state(jid, "expired", timeout=6)
        self.assertEqual(st["reason_code"], "expired")
        agent = q.register("test")
        self.assertEqual(agent.lease(0).status, 204)

    def test_capacity_limits_leases(self):
        q = self.start_queue()
        agent = q.register("test", capacity=1)
        for _ in range(2):
            q.submit_ok(self.job()[0])
        lease = agent.lease_ok(0)["lease"]
        self.assertEqual(agent.lease(0).status, 204)
        self.assertEqual(agent.heartbeat(lease).status, 200)
        self.assertEqual(agent.complete(lease, log_length=0).status, 200)
        self.assertEqual(agent.lease(0).status, 200)

    def test_deregistered_agent_gets_401(self):
        q = self.start_queue()
        agent = q.register("test")
        self.assertEqual(agent.deregister().status, 204)
        r = agent.lease(0)
        self.assertEqual((r.status, r.json()["error"]), (401, "unauthorized"))

    def test_metrics_series(self):
        q = self.start_queue()
        agent = q.register("test")
        jws, _ = self.job()
        q.submit_ok(jws)
        text = q.metrics()
        for series in ("skiff_jobs_queued", "skiff_jobs_leased", "skiff_agents",
                       "skiff_lease_waiters", "skiff_lease_wait_seconds",
                       "skiff_pickup_seconds", "skiff_jobs_completed_total",
                       "skiff_leases_expired_total",
                       "skiff_http_requests_total"):
            self.assertIn("# TYPE %s " % series, text)
        self.assertEqual(q.metric("skiff_jobs_queued", pool="test"), 1)
        self.assertEqual(q.metric("skiff_agents", pool="test", state="idle"), 1)
        agent.lease_ok(0)
        self.assertEqual(q.metric("skiff_jobs_leased", pool="test"), 1)
        self.assertEqual(q.metric("skiff_agents", pool="test", state="busy"), 1)
        self.assertGreater(q.metric("skiff_http_requests_total", code="2xx"), 3)


if __name__ == "__main__":
    harness.main()
