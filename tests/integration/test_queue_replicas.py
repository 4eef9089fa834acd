#!/usr/bin/python3
"""skiff-queue replicas on one PostgreSQL (docs/queue.md, "Replicas on
PostgreSQL"): a poll held on one replica takes a job submitted on
another, a job is never leased twice, the ack window and the TTL end a
lease once whichever replicas run the timers, follows are woken by
appends made elsewhere, artifacts upload across replicas, and the
replicas ride out a restart of PostgreSQL.

Always on PostgreSQL (a cluster of pgfix.py), whatever SKIFF_TEST_STORE
says: replicas are what the PostgreSQL store is for.
"""
import hashlib
import os
import threading
import time

import harness
from harness import wait_until

FAST = ("--ack-window", "1", "--lease-ttl", "2", "--heartbeat-interval", "1",
        "--max-attempts", "3")


class ReplicaTest(harness.SkiffTestCase):

    def replicas(self, n, *args):
        first = harness.Queue(self.tmp, args, pki=self.pki, name="replica1",
                              store="postgres")
        self._queues.append(first)
        first.start()
        out = [first]
        for i in range(2, n + 1):
            q = harness.Queue(self.tmp, args, pki=self.pki,
                              name="replica%d" % i, store="postgres",
                              database=first.database,
                              admin_token=first.admin_token)
            self._queues.append(q)
            out.append(q.start())
        return out

    def session_on(self, q, token, name, capacity=1):
        a = harness.AgentSession(q, token)
        a.register(name, (), capacity)
        return a

    def psql(self, q, sql):
        return q.pg.psql(q.database, sql).strip()

    def test_poll_on_one_replica_takes_a_job_submitted_on_another(self):
        a, b = self.replicas(2)
        tok = a.registration_token("test")
        agent = self.session_on(b, tok, "on-b")
        box = {}

        def poll():
            box["r"] = agent.lease(20)
            box["t"] = time.monotonic()
        t = threading.Thread(target=poll, daemon=True)
        t.start()
        wait_until(lambda: b.metric("skiff_lease_waiters", pool="test") == 1,
                   what="the poll to be held on replica 2")
        jws, jid = self.job()
        t0 = time.monotonic()
        a.submit_ok(jws)
        t.join(15 * harness.SLOW)
        self.assertFalse(t.is_alive())
        r = box["r"]
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["job"], jid)
        # Woken by the NOTIFY, not at the end of the 20 s wait; the tight
        # figure is bench/queue's.
        self.assertLess(box["t"] - t0, 2.0 * harness.SLOW)
        self.assertEqual(a.status(jid)["state"], "leased")

    def test_every_job_leased_and_completed_once(self):
        reps = self.replicas(3)
        tok = reps[0].registration_token("test")
        njobs, nagents = 2000, 24
        jobs = {}
        for i in range(njobs):
            jws, jid = self.job(name="j%d" % i)
            jobs[jid] = jws
        done = {}
        lock = threading.Lock()
        errors = []
        stop = threading.Event()

        def agent_loop(k):
            q = reps[k % len(reps)]
            s = self.session_on(q, tok, "agent%d" % k, capacity=2)
            deadline = time.monotonic() + 300 * harness.SLOW
            while not stop.is_set() and time.monotonic() < deadline:
                r = s.lease(1)
                if r.status == 204:
                    continue
                if r.status != 200:
                    errors.append("lease: %s" % r)
                    return
                lease = r.json()
                line = ("%s attempt %d by %s\n" % (
                    lease["job"], lease["attempt"], s.id)).encode()
                rl = s.log(lease["lease"], 0, line)
                rc = s.complete(lease["lease"], log_length=len(line))
                if rl.status != 200 or rc.status != 200:
                    errors.append("log %s complete %s" % (rl, rc))
                    return
                with lock:
                    done.setdefault(lease["job"], []).append(s.id)
                    if len(done) >= njobs:
                        stop.set()

        threads = [threading.Thread(target=agent_loop, args=(k,), daemon=True)
                   for k in range(nagents)]
        for t in threads:
            t.start()
        # Submitted through the three replicas in turn while agents poll.
        for i, (jid, jws) in enumerate(jobs.items()):
            reps[i % 3].submit_ok(jws)
        stop.wait(300 * harness.SLOW)
        stop.set()
        for t in threads:
            t.join(30)
        self.assertEqual(errors, [])
        self.assertEqual(len(done), njobs)
        twice = {j: who for j, who in done.items() if len(who) != 1}
        self.assertEqual(twice, {})
        # The store agrees: one lease per job, every job succeeded at its
        # first attempt, and each log is the one line its agent wrote.
        self.assertEqual(self.psql(reps[0], "SELECT count(*) FROM (SELECT job "
                         "FROM skiff.leases GROUP BY job HAVING count(*) > 1) "
                         "d"), "0")
        self.assertEqual(self.psql(reps[0], "SELECT count(*) FROM skiff.jobs "
                         "WHERE state = 'succeeded' AND attempt = 1"),
                         str(njobs))
        for jid in list(jobs)[:50]:
            r = reps[1].request("GET", "/v1/jobs/%s/log" % jid)
            self.assertEqual(r.status, 200)
            self.assertEqual(r.body, ("%s attempt 1 by %s\n" % (
                jid, done[jid][0])).encode())

    def test_an_unacknowledged_lease_goes_back_once(self):
        reps = self.replicas(2, *FAST)
        tok = reps[0].registration_token("test")
        agent = self.session_on(reps[0], tok, "silent")
        jws, jid = self.job()
        reps[1].submit_ok(jws)
        lease = agent.lease_ok(0)
        # Never acknowledged: both replicas sweep; it goes back once.
        wait_until(lambda: reps[1].status(jid)["state"] == "queued",
                   timeout=10 * harness.SLOW, what="the ack window to pass")
        time.sleep(2.5)     # more sweeps of both replicas
        self.assertEqual(self.psql(reps[0], "SELECT state FROM skiff.leases "
                         "WHERE id = '%s'" % lease["lease"]), "expired")
        for q in reps:
            self.assertEqual(q.metric("skiff_leases_expired_total",
                                      pool="test", kind="ack"), 1)
        self.assertEqual(reps[0].status(jid)["attempt"], 1)

    def test_a_ttl_expiry_is_counted_once(self):
        reps = self.replicas(3, *FAST)
        tok = reps[0].registration_token("test")
        agent = self.session_on(reps[2], tok, "quiet")
        jws, jid = self.job()
        reps[0].submit_ok(jws)
        lease = agent.lease_ok(0)
        self.assertEqual(agent.heartbeat(lease["lease"]).status, 200)
        wait_until(lambda: reps[1].status(jid)["attempt"] == 2,
                   timeout=10 * harness.SLOW, what="the TTL to pass")
        time.sleep(2.5)
        self.assertEqual(reps[0].metric("skiff_leases_expired_total",
                                        pool="test", kind="ttl"), 1)
        self.assertEqual(reps[1].status(jid)["state"], "queued")

    def test_follow_woken_by_an_append_on_another_replica(self):
        a, b = self.replicas(2)
        tok = a.registration_token("test")
        agent = self.session_on(a, tok, "writer")
        jws, jid = self.job()
        a.submit_ok(jws)
        lease = agent.lease_ok(0)
        self.assertEqual(agent.log(lease["lease"], 0, b"first\n").status, 200)
        box = {}

        def follow():
            box["r"] = b.request("GET", "/v1/jobs/%s/log?offset=6&wait=20"
                                 % jid, timeout=40)
            box["t"] = time.monotonic()
        t = threading.Thread(target=follow, daemon=True)
        t.start()
        time.sleep(0.5)     # the follow is held on replica 2
        t0 = time.monotonic()
        self.assertEqual(agent.log(lease["lease"], 6, b"second\n").status, 200)
        t.join(15 * harness.SLOW)
        self.assertFalse(t.is_alive())
        self.assertEqual(box["r"].status, 200)
        self.assertEqual(box["r"].body, b"second\n")
        self.assertLess(box["t"] - t0, 2.0 * harness.SLOW)

    def test_an_artifact_uploads_across_replicas(self):
        reps = self.replicas(3)
        tok = reps[0].registration_token("test")
        jws, jid = self.job()
        reps[0].submit_ok(jws)
        sessions = [harness.AgentSession(q, tok) for q in reps]
        sessions[0].register("mover", (), 1)
        for s in sessions[1:]:
            s.id, s.token = sessions[0].id, sessions[0].token
        lease = sessions[0].lease_ok(0)["lease"]
        data = os.urandom(3 * 1024 * 1024 + 17)
        r = sessions[1].artifact_create(lease, "out/blob.bin", len(data))
        self.assertEqual(r.status, 201, r)
        up = r.json()["upload"]
        # Three PUTs, each to another replica, the middle one gzip.
        cut = [0, 1024 * 1024 + 5, 2 * 1024 * 1024 + 9, len(data)]
        for i in range(3):
            r = sessions[i].upload_put(up, cut[i], data[cut[i]:cut[i + 1]],
                                       gzip_body=(i == 1))
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["offset"], cut[i + 1])
        st = sessions[2].upload_status(up).json()
        self.assertEqual(st["offset"], len(data))
        sha = hashlib.sha256(data).hexdigest()
        r = sessions[0].upload_commit(up, sha)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["sha256"], sha)
        for q in reps:
            r = q.request("GET", "/v1/jobs/%s/artifacts/out/blob.bin" % jid)
            self.assertEqual(r.status, 200)
            self.assertEqual(hashlib.sha256(r.body).hexdigest(), sha)

    def test_replicas_share_one_port_with_reuse_port(self):
        port = harness.free_port()
        reps = []
        for i in (1, 2):
            q = harness.Queue(self.tmp, ("--reuse-port",), pki=self.pki,
                              name="shared%d" % i, store="postgres",
                              database=reps[0].database if reps else None,
                              admin_token=reps[0].admin_token if reps
                              else None)
            q.port = port
            self._queues.append(q)
            reps.append(q.start())
        self.assertEqual([q.port for q in reps], [port, port])
        # The kernel spreads new connections over both; each answers as
        # the one queue (a job submitted through either is seen by both).
        for i in range(20):
            jws, jid = self.job(name="s%d" % i)
            reps[0].submit_ok(jws)
            self.assertEqual(reps[1].status(jid)["state"], "queued")
        served = [q.log_text().count("job submitted") for q in reps]
        self.assertEqual(sum(served), 20)
        self.assertTrue(all(n > 0 for n in served), served)
        # Without --reuse-port the port is taken: exit 3.
        other = harness.Queue(self.tmp, (), pki=self.pki, name="taken",
                              store="postgres", database=reps[0].database,
                              admin_token=reps[0].admin_token)
        other.port = port
        with self.assertRaises(AssertionError) as cm:
            other.start()
        self.assertIn("exited 3", str(cm.exception))

    def test_replicas_ride_out_a_restart_of_postgres(self):
        a, b = self.replicas(2)
        tok = a.registration_token("test")
        agent = self.session_on(a, tok, "survivor")
        jws, jid = self.job()
        a.submit_ok(jws)
        lease = agent.lease_ok(0)["lease"]
        self.assertEqual(agent.log(lease, 0, b"before\n").status, 200)
        a.pg.restart("immediate")
        # Answers are 503 with Retry-After until the replicas are back;
        # then everything acknowledged before is there.

        def appended():
            r = agent.log(lease, 7, b"after\n")
            if r.status == 200:
                return r
            self.assertEqual(r.status, 503, r)
            self.assertIsNotNone(r.header("Retry-After"))
            return None
        wait_until(appended, timeout=30 * harness.SLOW, interval=0.2,
                   what="the replica to reconnect")
        r = agent.complete(lease, log_length=13)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(b.status(jid)["state"], "succeeded")
        r = b.request("GET", "/v1/jobs/%s/log" % jid)
        self.assertEqual(r.body, b"before\nafter\n")
        self.assertIn("PostgreSQL connection up", a.log_text())


if __name__ == "__main__":
    harness.main()
