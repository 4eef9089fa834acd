#!/usr/bin/python3
"""skiff-queue: cache endpoints (docs/protocol.md 4.9, 5.12): save through
the upload steps, find by key and prefix, download, caps and LRU eviction,
who may touch what, hostile sizes, offsets and keys; on both stores.
"""
import hashlib
import os

import harness


def sha(b):
    return hashlib.sha256(b).hexdigest()


class CacheQueueTest(harness.SkiffTestCase):

    def leased(self, q, pool="test", agent=None):
        agent = agent or q.register(pool)
        jws, jid = self.job(aud=pool)
        q.submit_ok(jws)
        lease = agent.lease_ok(0)["lease"]
        self.assertEqual(agent.heartbeat(lease).status, 200)
        return agent, lease, jid

    def create(self, agent, lease, key, size):
        return agent._req("POST", "/v1/leases/%s/caches" % lease,
                          {"key": key, "size": size})

    def find(self, agent, lease, key, restore=()):
        return agent._req("POST", "/v1/leases/%s/caches/restore" % lease,
                          {"key": key, "restore_keys": list(restore)})

    def get(self, agent, lease, cid):
        return agent._req("GET", "/v1/leases/%s/caches/%s" % (lease, cid))

    def save(self, agent, lease, key, data):
        r = self.create(agent, lease, key, len(data))
        self.assertEqual(r.status, 201, r)
        up = r.json()["upload"]
        self.assertEqual(agent.upload_put(up, 0, data).status, 200)
        r = agent.upload_commit(up, sha(data))
        self.assertEqual(r.status, 200, r)
        return up

    def listed(self, q, pool="test"):
        r = q.request("GET", "/v1/pools/%s/caches" % pool)
        self.assertEqual(r.status, 200, r)
        return r.json()

    def test_save_find_download(self):
        q = self.start_queue()
        agent, lease, jid = self.leased(q)
        data = os.urandom(200000)
        r = self.create(agent, lease, "deps-1", len(data))
        self.assertEqual(r.status, 201, r)
        up = r.json()["upload"]
        self.assertEqual(r.json()["offset"], 0)
        # Resumable like an artifact: raw then gzip, a wrong offset 409.
        self.assertEqual(agent.upload_put(up, 0, data[:50000]).json(),
                         {"offset": 50000})
        r = agent.upload_put(up, 7, data[7:])
        self.assertEqual((r.status, r.json()["length"]), (409, 50000))
        # The same key again on the same lease: the upload and its offset.
        r = self.create(agent, lease, "deps-1", len(data))
        self.assertEqual((r.status, r.json()), (200, {"upload": up,
                                                      "offset": 50000}))
        r = self.create(agent, lease, "deps-1", len(data) + 1)
        self.assertEqual(r.status, 409, r)
        # Not found while not committed.
        self.assertEqual(self.find(agent, lease, "deps-1").json(),
                         {"cache": None})
        r = agent.upload_put(up, 50000, data[50000:], gzip_body=True)
        self.assertEqual(r.json(), {"offset": len(data)})
        # A wrong digest discards the bytes, as for an artifact.
        r = agent.upload_commit(up, sha(b"other"))
        self.assertEqual(r.status, 422, r)
        self.assertEqual(agent.upload_status(up).json()["offset"], 0)
        agent.upload_put(up, 0, data)
        r = agent.upload_commit(up, sha(data))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(agent.upload_commit(up, sha(data)).status, 200)
        # Exists now: a second save is told so.
        r = self.create(agent, lease, "deps-1", 5)
        self.assertEqual((r.status, r.json()["exists"]), (200, True))
        r = self.find(agent, lease, "deps-1")
        self.assertEqual(r.status, 200, r)
        found = r.json()
        self.assertEqual((found["key"], found["size"], found["sha256"]),
                         ("deps-1", len(data), sha(data)))
        r = self.get(agent, lease, found["cache"])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, data)
        self.assertEqual(r.header("Skiff-Sha256"), sha(data))
        # The cache outlives its job's artifacts: none are listed.
        self.assertEqual(q.request("GET", "/v1/jobs/%s/artifacts" % jid)
                         .json()["artifacts"], [])
        (c,) = self.listed(q)["caches"]
        self.assertEqual((c["key"], c["size"]), ("deps-1", len(data)))

    def test_prefix_order_and_pools(self):
        q = self.start_queue()
        agent, lease, _ = self.leased(q)
        self.save(agent, lease, "npm-a", b"a")
        self.save(agent, lease, "npm-b", b"b")
        self.save(agent, lease, "pip-c", b"c")
        f = self.find(agent, lease, "npm-zzz", ["nope-", "npm-", "pip-"]).json()
        self.assertEqual(f["key"], "npm-b")
        f = self.find(agent, lease, "npm-a", ["pip-"]).json()
        self.assertEqual(f["key"], "npm-a")
        f = self.find(agent, lease, "x", ["pip-"]).json()
        self.assertEqual(f["key"], "pip-c")
        # Another pool sees none of them, and cannot download one.
        other, olease, _ = self.leased(q, pool="other")
        self.assertEqual(self.find(other, olease, "npm-a", ["npm-"]).json(),
                         {"cache": None})
        cid = self.find(agent, lease, "npm-a").json()["cache"]
        r = self.get(other, olease, cid)
        self.assertEqual(r.status, 403, r)
        self.assertEqual(self.listed(q, "other")["caches"], [])

    def test_auth_and_lease(self):
        q = self.start_queue()
        agent, lease, _ = self.leased(q)
        self.save(agent, lease, "k", b"data")
        cid = self.find(agent, lease, "k").json()["cache"]
        other = q.register("test", name="other")
        # Another agent's lease: 403; no token: 401; admin token: 401.
        for who, status in ((other, 403),):
            self.assertEqual(self.create(who, lease, "k2", 1).status, status)
            self.assertEqual(self.find(who, lease, "k").status, status)
            self.assertEqual(self.get(who, lease, cid).status, status)
        self.assertEqual(q.request("POST", "/v1/leases/%s/caches" % lease,
                                   {"key": "k", "size": 1},
                                   token=None).status, 401)
        self.assertEqual(q.request("GET", "/v1/leases/%s/caches/%s" % (
            lease, cid)).status, 401)
        # Admin endpoints refuse agent tokens.
        r = q.request("GET", "/v1/pools/test/caches", token=agent.token)
        self.assertEqual(r.status, 401, r)
        # After the lease ended: 410.
        self.assertEqual(agent.complete(lease).status, 200)
        self.assertEqual(self.find(agent, lease, "k").status, 410)
        self.assertEqual(self.get(agent, lease, cid).status, 410)
        self.assertEqual(self.create(agent, lease, "k3", 1).status, 410)

    def test_hostile_values(self):
        q = self.start_queue("--max-cache", "1000")
        agent, lease, _ = self.leased(q)
        for key in ("", "a b", "k;x", "k\n", "é", "x" * 256, 5, None, "k\\"):
            r = self.create(agent, lease, key, 1)
            self.assertEqual(r.status, 400, (key, r))
            r = self.find(agent, lease, key)
            self.assertEqual(r.status, 400, (key, r))
        for size in (-1, 2 ** 54, "10", 1.5):
            r = self.create(agent, lease, "k", size)
            self.assertEqual(r.status, 400, (size, r))
        r = self.create(agent, lease, "k", 1001)
        self.assertEqual((r.status, r.json()["limit"]), (413, 1000))
        r = agent._req("POST", "/v1/leases/%s/caches/restore" % lease,
                       {"key": "k", "restore_keys": ["a"] * 9})
        self.assertEqual(r.status, 400, r)
        # Bytes past the declared size, raw or inflated: refused, none kept.
        up = self.create(agent, lease, "k", 1000).json()["upload"]
        self.assertEqual(agent.upload_put(up, 0, b"y" * 1001).status, 413)
        self.assertEqual(agent.upload_put(up, 0, b"y" * 999 + b"zz",
                                          gzip_body=True).status, 413)
        self.assertEqual(agent.upload_put(up, 5, b"y").status, 409)
        self.assertEqual(agent.upload_status(up).json()["offset"], 0)
        # Committing short is a conflict.
        agent.upload_put(up, 0, b"y" * 10)
        self.assertEqual(agent.upload_commit(up, sha(b"y" * 10)).status, 409)
        # Ids that look like paths or options.
        for cid in ("..", "-rf", "x%2Fy", "a" * 65):
            r = self.get(agent, lease, cid)
            self.assertIn(r.status, (403, 404), (cid, r))
        r = q.request("DELETE", "/v1/pools/test/caches/..")
        self.assertIn(r.status, (400, 404), r)
        r = q.request("GET", "/v1/pools/a%20b/caches")
        self.assertEqual(r.status, 400, r)

    def test_eviction_lru_and_delete(self):
        q = self.start_queue("--max-cache-pool", "2500", "--max-cache",
                             "2000")
        agent, lease, _ = self.leased(q)
        self.save(agent, lease, "a", b"a" * 1000)
        self.save(agent, lease, "b", b"b" * 1000)
        self.find(agent, lease, "a")  # a used: b is the least recent
        self.save(agent, lease, "c", b"c" * 1000)
        keys = sorted(c["key"] for c in self.listed(q)["caches"])
        self.assertEqual(keys, ["a", "c"])
        self.assertEqual(self.listed(q)["bytes"], 2000)
        self.assertEqual(q.metric("skiff_stored_bytes", kind="caches"), 2000)
        self.assertEqual(q.metric("skiff_stored_bytes", kind="artifacts"), 0)
        self.assertEqual(self.listed(q)["limit"], 2500)
        # One bigger than the rest evicts all but itself.
        self.save(agent, lease, "d", b"d" * 2000)
        self.assertEqual([c["key"] for c in self.listed(q)["caches"]], ["d"])
        cid = self.listed(q)["caches"][0]["id"]
        self.assertEqual(q.request("DELETE", "/v1/pools/other/caches/%s" %
                                   cid).status, 404)
        self.assertEqual(q.request("DELETE", "/v1/pools/test/caches/%s" %
                                   cid).status, 204)
        self.assertEqual(self.listed(q)["caches"], [])
        self.assertEqual(self.find(agent, lease, "d").json(), {"cache": None})
        if q.store != "postgres":
            self.assertEqual(os.listdir(os.path.join(q.data_dir, "caches")),
                             [])
        # skiffctl
        self.save(agent, lease, "e", b"e")
        out = q.ctl("cache", "list", "test").stdout.decode()
        self.assertIn(" e\n", out)
        cid = self.listed(q)["caches"][0]["id"]
        out = q.ctl("cache", "delete", "test", cid).stdout.decode()
        self.assertIn("cache %s revoked" % cid, out)
        self.assertEqual(q.ctl("cache", "frob", check=False).returncode, 2)

    def test_concurrent_save_and_abandoned_upload(self):
        q = self.start_queue()
        a1, l1, _ = self.leased(q)
        a2, l2, _ = self.leased(q, agent=q.register("test", name="a2"))
        up = self.create(a1, l1, "k", 3).json()["upload"]
        # Another lease while the first is saving: told it exists.
        r = self.create(a2, l2, "k", 3)
        self.assertEqual((r.status, r.json().get("saving")), (200, True))
        # The first lease ends without committing: its upload is dropped
        # and the next lease saves the key.
        self.assertEqual(a1.complete(l1).status, 200)
        r = self.create(a2, l2, "k", 3)
        self.assertEqual(r.status, 201, r)
        self.assertNotEqual(r.json()["upload"], up)
        up2 = r.json()["upload"]
        a2.upload_put(up2, 0, b"xyz")
        self.assertEqual(a2.upload_commit(up2, sha(b"xyz")).status, 200)
        self.assertEqual(self.listed(q)["caches"][0]["size"], 3)
        # An upload of another key whose lease ended goes with the next
        # save in the pool: its bytes do not stay.
        a3, l3, _ = self.leased(q, agent=q.register("test", name="a3"))
        up3 = self.create(a3, l3, "lost", 10).json()["upload"]
        self.assertEqual(a3.upload_put(up3, 0, b"12345").status, 200)
        self.assertEqual(a3.complete(l3).status, 200)
        self.assertEqual(q.sql("SELECT count(*) FROM uploads WHERE id = ?",
                               (up3,)), [["1"]])
        self.assertEqual(self.create(a2, l2, "next", 1).status, 201)
        self.assertEqual(q.sql("SELECT count(*) FROM uploads WHERE id = ?",
                               (up3,)), [["0"]])
        if q.store != "postgres":
            self.assertFalse(os.path.exists(os.path.join(
                q.data_dir, "caches", up3)))
        else:
            self.assertEqual(q.sql("SELECT count(*) FROM upload_chunks "
                                   "WHERE upload = ?", (up3,)), [["0"]])

    def test_open_uploads_per_lease_capped(self):
        # An agent saves its caches one after the other; a lease opening
        # more at once (each up to the per-cache cap) would fill the disk
        # past every cap: the fifth is refused, a retry of an open one is
        # not, and a commit makes room.
        q = self.start_queue()
        agent, lease, _ = self.leased(q)
        ups = []
        for i in range(4):
            r = self.create(agent, lease, "open-%d" % i, 3)
            self.assertEqual(r.status, 201, r)
            ups.append(r.json()["upload"])
        r = self.create(agent, lease, "open-4", 3)
        self.assertEqual(r.status, 409, r)
        self.assertIn(b"caches being saved", r.body)
        self.assertEqual(self.create(agent, lease, "open-0", 3).status, 200)
        self.assertEqual(agent.upload_put(ups[0], 0, b"abc").status, 200)
        self.assertEqual(agent.upload_commit(ups[0], sha(b"abc")).status, 200)
        self.assertEqual(self.create(agent, lease, "open-4", 3).status, 201)

    def test_survives_restart(self):
        q = self.start_queue()
        agent, lease, _ = self.leased(q)
        self.save(agent, lease, "k", b"kept")
        q.restart()
        agent2, lease2, _ = self.leased(q, agent=q.register("test", "n2"))
        f = self.find(agent2, lease2, "k").json()
        self.assertEqual(self.get(agent2, lease2, f["cache"]).body, b"kept")

    @harness.sqlite_only("the PostgreSQL schema migration is tested below")
    def test_sqlite_store_gains_caches_table(self):
        q = self.start_queue()
        q.stop()
        q.sql("DROP TABLE caches")
        q.start()
        agent, lease, _ = self.leased(q)
        self.save(agent, lease, "k", b"x")
        self.assertEqual(len(self.listed(q)["caches"]), 1)

    def test_postgres_v2_migrates_to_v3(self):
        if not harness.on_postgres():
            self.skipTest("PostgreSQL only")
        import test_queue_view
        q = self.start_queue()
        q.stop()
        q.sql(test_queue_view.DROP_V3 +
              "UPDATE meta SET v = '2' WHERE k = 'schema_version'")
        q.start()
        self.assertEqual(q.sql("SELECT v FROM meta WHERE k = "
                               "'schema_version'"), [["3"]])
        self.assertIn("schema at version 3", q.log_text())
        agent, lease, _ = self.leased(q)
        self.save(agent, lease, "k", b"x")
        self.assertEqual(len(self.listed(q)["caches"]), 1)


if __name__ == "__main__":
    harness.main()
