#!/usr/bin/python3
"""skiff-queue --retain (docs/queue.md, Retention): ended jobs whose end is
older than the duration are deleted with their leases, uploads, log files
and artifact files; jobs that ended recently and jobs that have not ended
are untouched; thousands of jobs go in batches while a lease long-poll and
a submit on the same queue stay answered promptly; a restart after a
deletion loads cleanly; bad values are usage errors.

"Ended long ago" is made by editing the end (and exp) of chosen jobs in
the store (the SQLite database or the PostgreSQL tables, Queue.sql) with
the queue stopped, as the tests of a compromised queue do; one test waits
for a short --retain on the real clock instead. What SQLite keeps in
files (logs/, artifacts/ of the data directory) PostgreSQL keeps in chunk
rows: "kept" looks at whichever the store has.
"""
import hashlib
import os
import subprocess
import threading
import time

import harness
from harness import wait_until

DAY = 86400


def sha(b):
    return hashlib.sha256(b).hexdigest()


class RetentionTest(harness.SkiffTestCase):

    # -- helpers --

    def finished(self, q, agent, log=b"", art=None, result="succeeded",
                 ttl="1h"):
        """A job run through the agent protocol to its end: its log and
        one committed artifact. Returns the job id."""
        jws = harness.sign_job(harness.simple_job(), self.signing_key()[0],
                               "test", ttl)
        jid = harness.job_id_of(jws)
        q.submit_ok(jws)
        lease = agent.lease_ok(0)["lease"]
        self.assertEqual(agent.heartbeat(lease).status, 200)
        if log:
            self.assertEqual(agent.log(lease, 0, log).status, 200)
        if art is not None:
            self.assertEqual(agent.upload_file(lease, "out.bin", art).status,
                             200)
        r = agent.complete(lease, result, (0,), len(log))
        self.assertEqual(r.status, 200, r)
        return jid

    def age(self, q, ids, seconds):
        """Moves the end and exp of jobs seconds into the past (queue
        stopped meanwhile)."""
        q.stop()
        for jid in ids:
            rows = q.sql("UPDATE jobs SET completed = completed - ?, "
                         "exp = exp - ? WHERE id = ? RETURNING id",
                         (seconds, seconds, jid))
            self.assertEqual(rows, [[jid]], jid)

    def rows(self, q, table, jid):
        col = "id" if table == "jobs" else "job"
        return int(q.sql("SELECT count(*) FROM %s WHERE %s = ?" %
                         (table, col), (jid,))[0][0])

    def kept(self, q, kind, jid):
        """Whether the store still holds log or artifact bytes of jid:
        its directory under the data dir on SQLite, chunk rows on
        PostgreSQL (for artifacts also any chunk whose upload row is gone,
        which could no longer be told apart by job)."""
        if not harness.on_postgres():
            return os.path.exists(os.path.join(q.data_dir, kind, jid))
        if kind == "logs":
            stmt = ("SELECT (SELECT count(*) FROM logs WHERE job = ?) + "
                    "(SELECT count(*) FROM log_chunks WHERE job = ?)")
        else:
            stmt = ("SELECT (SELECT count(*) FROM upload_chunks WHERE upload"
                    " IN (SELECT id FROM uploads WHERE job = ?)) + "
                    "(SELECT count(*) FROM upload_chunks c WHERE NOT EXISTS"
                    " (SELECT 1 FROM uploads u WHERE u.id = c.upload)) + 0 * "
                    "length(?)")
        return int(q.sql(stmt, (jid, jid))[0][0]) > 0

    def nothing_kept(self, q):
        """No log or artifact bytes of any job are left in the store."""
        if harness.on_postgres():
            self.assertEqual(q.sql(
                "SELECT (SELECT count(*) FROM logs), (SELECT count(*) FROM "
                "log_chunks), (SELECT count(*) FROM upload_chunks)"),
                [["0", "0", "0"]])
            return
        for kind in ("logs", "artifacts"):
            left = os.listdir(os.path.join(q.data_dir, kind))
            self.assertEqual(left, [], kind)

    def stored(self, q):
        return (q.metric("skiff_stored_bytes", kind="logs"),
                q.metric("skiff_stored_bytes", kind="artifacts"))

    def deleted(self, q):
        return q.metric("skiff_jobs_deleted_total")

    def assert_gone(self, q, jid):
        for path in ("/v1/jobs/%s", "/v1/jobs/%s/log",
                     "/v1/jobs/%s/artifacts", "/v1/jobs/%s/artifacts?attempt=1",
                     "/v1/jobs/%s/artifacts/out.bin"):
            r = q.request("GET", path % jid)
            self.assertEqual(r.status, 404, (path, r))
            self.assertEqual(r.json()["error"], "not_found", (path, r))
        for args in (("status", jid), ("logs", jid),
                     ("artifacts", "list", jid)):
            res = q.ctl(*args, check=False)
            self.assertNotEqual(res.returncode, 0, args)
            self.assertIn(b"no job", res.stderr, args)
        self.assertFalse(self.kept(q, "logs", jid))
        self.assertFalse(self.kept(q, "artifacts", jid))

    # -- tests --

    def test_old_ended_jobs_go_the_rest_stays(self):
        q = self.start_queue("--retain", "1d")
        agent = q.register("test", capacity=4)
        old_log, old_art = os.urandom(3000), os.urandom(5000)
        old = [self.finished(q, agent, old_log, old_art),
               self.finished(q, agent, old_log, old_art, result="failed")]
        jws, canceled = self.job()
        q.submit_ok(jws)
        self.assertEqual(q.request("POST", "/v1/jobs/%s/cancel" % canceled,
                                   {}).status, 202)
        old.append(canceled)
        recent = self.finished(q, agent, b"recent\n", b"recent artifact")
        jws, running = self.job()
        q.submit_ok(jws)
        lease = agent.lease_ok(0)["lease"]
        self.assertEqual(agent.log(lease, 0, b"still going\n").status, 200)
        jws, queued = self.job(labels=["nobody-has-this"])
        q.submit_ok(jws)
        logs0, arts0 = self.stored(q)
        self.assertEqual(logs0, 2 * len(old_log) + len(b"recent\n") +
                         len(b"still going\n"))
        self.assertEqual(arts0, 2 * len(old_art) + len(b"recent artifact"))
        self.assertEqual(self.deleted(q), 0)
        self.assertEqual(self.rows(q, "leases", old[0]), 1)

        # Jobs that ended two days ago; the running one's exp is as old
        # (a queued one's would make it expire, which is an end).
        self.age(q, old + [running], 2 * DAY)
        q.start()
        wait_until(lambda: self.deleted(q) == 3, 10,
                   what="the three old jobs deleted")
        for jid in old:
            self.assert_gone(q, jid)
        self.assertEqual(self.stored(q), (logs0 - 2 * len(old_log),
                                          arts0 - 2 * len(old_art)))
        self.assertEqual(q.status(recent)["state"], "succeeded")
        r = q.request("GET", "/v1/jobs/%s/artifacts/out.bin" % recent)
        self.assertEqual(r.body, b"recent artifact")
        self.assertEqual(q.status(running)["state"], "running")
        self.assertEqual(q.status(queued)["state"], "queued")
        self.assertTrue(self.kept(q, "logs", running))
        self.assertTrue(self.kept(q, "artifacts", recent))
        # The running job goes on: its lease survived the restart.
        self.assertEqual(agent.log(lease, len(b"still going\n"),
                                   b"more\n").status, 200)
        self.assertEqual(agent.complete(lease, "succeeded", (0,),
                                        len(b"still going\nmore\n")).status,
                         200)

        # A restart after the deletion loads cleanly and counts the same.
        logs1, arts1 = self.stored(q)
        q.restart()
        self.assertIn("queue on PostgreSQL" if harness.on_postgres()
                      else "queue state loaded", q.log_tail(20))
        self.assertEqual(self.stored(q), (logs1, arts1))
        self.assertEqual(q.status(recent)["state"], "succeeded")
        self.assertEqual(q.status(queued)["state"], "queued")
        q.stop()
        for jid in old:
            for table in ("jobs", "leases", "uploads"):
                self.assertEqual(self.rows(q, table, jid), 0, (table, jid))
        self.assertEqual(self.rows(q, "leases", recent), 1)
        self.assertEqual(self.rows(q, "uploads", recent), 1)

    def test_short_retain_on_the_real_clock(self):
        """No edit: --retain 1s, jobs signed for 3 s, no clock skew. A job
        is deleted once it ended a second ago and its exp passed."""
        q = self.start_queue("--retain", "1s", "--clock-skew", "0")
        agent = q.register("test")
        jid = self.finished(q, agent, b"short\n", b"short-lived", ttl="3s")
        ended = time.time()
        wait_until(lambda: self.deleted(q) == 1, 15,
                   what="the job deleted by retention")
        # Not before its exp (3 s after signing) and its end + 1 s.
        self.assertGreater(time.time() - ended, 1.0)
        self.assert_gone(q, jid)
        self.assertEqual(self.stored(q), (0, 0))

    def test_thousands_in_batches_while_pickup_stays_prompt(self):
        n = 3000
        q = self.start_queue()
        agent = q.register("test")
        q.stop()
        self.plant_ended_jobs(q, n)
        q.start(extra=("--retain", "30d"))
        pickups, during, seen = [], 0, []
        for i in range(200):
            before = self.deleted(q)
            seen.append(int(before))
            if before == n and i >= 3:
                break
            pickups.append(self.pickup(q, agent))
            during += before < n
        wait_until(lambda: self.deleted(q) == n, 60,
                   what="all %d jobs deleted" % n)
        # Deleted in batches (the counter seen between 0 and n), with
        # pickups answered while it ran.
        self.assertTrue([v for v in seen if 0 < v < n], seen)
        self.assertGreater(during, 0, seen)
        worst = max(pickups)
        self.assertLess(worst, 1.0 * harness.SLOW, pickups)
        text = q.log_text()
        self.assertIn("retention deleted jobs", text)
        self.assertIn("jobs=%d" % n, text)
        self.assertEqual(self.stored(q), (0, 0))
        self.nothing_kept(q)
        q.restart(extra=("--retain", "30d"))
        self.assertEqual(self.deleted(q), 0)
        self.assertEqual(self.stored(q), (0, 0))
        q.stop()
        counts = [int(q.sql("SELECT count(*) FROM %s" % t)[0][0])
                  for t in ("jobs", "leases", "uploads")]
        self.assertEqual(counts, [len(pickups)] * 2 + [0])
        print("retention of %d jobs: %d pickups during it, worst %.1f ms; "
              "counter seen %s" % (n, during, worst * 1000, seen))

    def plant_ended_jobs(self, q, n):
        """n jobs that ended 60 days ago, each with a lease, a committed
        upload, a log file and an artifact file, as the queue writes them
        (on PostgreSQL: log and chunk rows)."""
        old = int(time.time()) - 60 * DAY
        if harness.on_postgres():
            return self.plant_ended_jobs_pg(q, n, old)
        import sqlite3
        db = sqlite3.connect(os.path.join(q.data_dir, "queue.db"))
        with db:
            for i in range(n):
                jid = "planted-%06d" % i
                upl = "upl_planted%06d" % i
                log, art = b"log line %d\n" % i, b"artifact %d" % i
                db.execute(
                    "INSERT INTO jobs (id, pool, name, labels, jws, exp, state,"
                    " attempt, max_attempts, agent, created, leased, completed,"
                    " result) VALUES (?, 'test', 'old', '[]', 'a.b.c', ?,"
                    " 'succeeded', 1, 3, 'agt_x', ?, ?, ?, 'succeeded')",
                    (jid, old, old, old, old))
                db.execute(
                    "INSERT INTO leases (id, job, attempt, agent, created,"
                    " acked, state, ended) VALUES (?, ?, 1, 'agt_x', ?, 1,"
                    " 'completed', ?)", ("lse_planted%06d" % i, jid, old, old))
                db.execute(
                    "INSERT INTO uploads (id, job, attempt, lease, name, size,"
                    " state, sha256, created) VALUES (?, ?, 1, ?, 'a.bin', ?,"
                    " 'committed', ?, ?)",
                    (upl, jid, "lse_planted%06d" % i, len(art), sha(art), old))
                for kind, name, data in (("logs", "1.log", log),
                                         ("artifacts", upl, art)):
                    d = os.path.join(q.data_dir, kind, jid)
                    os.makedirs(d, mode=0o700)
                    with open(os.path.join(d, name), "wb") as f:
                        f.write(data)
        db.close()

    def plant_ended_jobs_pg(self, q, n, old):
        """plant_ended_jobs in the PostgreSQL tables: one INSERT per table
        over generate_series, the same ids and bytes as on SQLite."""
        def rows(select):
            return (" SELECT " + select + " FROM (SELECT i, lpad(i::text, 6,"
                    " '0') AS k, convert_to('log line ' || i || chr(10),"
                    " 'UTF8') AS log, convert_to('artifact ' || i, 'UTF8')"
                    " AS art FROM generate_series(0, ? - 1) i) s RETURNING 1")
        for stmt, params in (
                ("INSERT INTO jobs (id, pool, name, labels, jws, exp, state,"
                 " attempt, max_attempts, agent, created, leased, completed,"
                 " result, queued_ms)" + rows(
                     "'planted-' || k, 'test', 'old', '{}', 'a.b.c', ?,"
                     " 'succeeded', 1, 3, 'agt_x', ?, ?, ?, 'succeeded',"
                     " ?::bigint * 1000"), (old, old, old, old, old, n)),
                ("INSERT INTO leases (id, job, attempt, agent, created, acked,"
                 " state, ended, deadline_ms)" + rows(
                     "'lse_planted' || k, 'planted-' || k, 1, 'agt_x', ?,"
                     " true, 'completed', ?, ?::bigint * 1000"),
                 (old, old, old, n)),
                ("INSERT INTO uploads (id, job, attempt, lease, name, size,"
                 " state, sha256, created, received, digest)" + rows(
                     "'upl_planted' || k, 'planted-' || k, 1,"
                     " 'lse_planted' || k, 'a.bin', length(art), 'committed',"
                     " encode(sha256(art), 'hex'), ?, length(art),"
                     " encode(sha256(art), 'hex')"), (old, n)),
                ("INSERT INTO upload_chunks (upload, off, data)" + rows(
                    "'upl_planted' || k, 0, art"), (n,)),
                ("INSERT INTO logs (job, attempt, length)" + rows(
                    "'planted-' || k, 1, length(log)"), (n,)),
                ("INSERT INTO log_chunks (job, attempt, off, data)" + rows(
                    "'planted-' || k, 1, 0, log"), (n,))):
            self.assertEqual(len(q.sql(stmt, params)), n, stmt)

    def pickup(self, q, agent):
        """A long-poll held, then a submit: seconds from the submit to
        the lease answer. The job is completed at once."""
        got = {}

        def poll():
            got["r"] = agent.lease(wait=20)
            got["t"] = time.monotonic()
        t = threading.Thread(target=poll, daemon=True)
        t.start()
        wait_until(lambda: q.metric("skiff_lease_waiters", pool="test") == 1,
                   10, what="the long-poll held")
        jws, jid = self.job()
        t0 = time.monotonic()
        q.submit_ok(jws)
        t.join(30 * harness.SLOW)
        self.assertFalse(t.is_alive(), "the long-poll was not answered")
        self.assertEqual(got["r"].status, 200, got["r"])
        lease = got["r"].json()["lease"]
        self.assertEqual(agent.complete(lease).status, 200)
        return got["t"] - t0

    def test_bad_values_are_usage_errors(self):
        data = os.path.join(self.tmp, "never-made")
        for bad in ("0", "-1d", "30x", "1.5d", "", "99999999d"):
            res = subprocess.run(
                [harness.QUEUE_BIN, "--data-dir", data, "--insecure-http",
                 "--listen", "127.0.0.1:0", "--retain", bad],
                capture_output=True, timeout=30 * harness.SLOW,
                env=dict(os.environ, SKIFF_ADMIN_TOKEN="sadm_test"))
            self.assertEqual(res.returncode, 2, (bad, res))
            # The option and its value with why, not "unknown option".
            self.assertIn(b"--retain %s: " % bad.encode(), res.stderr, bad)
            self.assertFalse(os.path.exists(data), bad)
        res = subprocess.run([harness.QUEUE_BIN, "--dev", "--retain"],
                             capture_output=True, timeout=30 * harness.SLOW)
        self.assertEqual(res.returncode, 2, res)
        self.assertIn(b"--retain", res.stderr)


if __name__ == "__main__":
    harness.main()
