"""Caches that outlive the VM (docs/protocol.md 4.9, docs/agent.md
"Caches"): real queue (both stores), real agents, real TLS."""
import hashlib
import io
import json
import os
import tarfile
import time

import harness
from agentfix import AgentTestCase, Forwarder, log_stream


def skf(log):
    return log_stream(log, "skf").decode(errors="replace")


def cache_job(key, script, paths=("cache",), restore=None, name="job"):
    c = {"key": key, "paths": list(paths)}
    if restore is not None:
        c["restore_keys"] = list(restore)
    return {"name": name, "caches": [c],
            "steps": [{"name": "s", "script": script}]}


class CacheTests(AgentTestCase):
    queue_args = ()

    def run_job(self, job, state="succeeded", timeout=60):
        jid = self.submit_job(job)
        st = self.finished(jid, timeout=timeout)
        self.assertEqual(st["state"], state, (st, self.log_of(jid)[-3000:]))
        return jid, skf(self.log_of(jid)), log_stream(self.log_of(jid),
                                                      "out").decode()

    def caches(self):
        r = self.q.request("GET", "/v1/pools/%s/caches" % self.pool)
        self.assertEqual(r.status, 200, r)
        return r.json()

    def test_saved_on_one_agent_restored_on_another(self):
        a = self.agent("a")
        blob = os.urandom(300000)
        src = os.path.join(self.tmp, "blob")
        with open(src, "wb") as f:
            f.write(blob)
        long_name = "d" * 120
        _, log1, _ = self.run_job(cache_job(
            "deps-v1",
            "test ! -e cache/blob && mkdir -p cache/sub/%s && "
            "cp %s cache/blob && echo hi > cache/sub/%s/f && "
            "chmod 0750 cache/blob && ln -s /etc/passwd cache/link && "
            "mkfifo cache/fifo" % (long_name, src, long_name)))
        self.assertIn("cache deps-v1: no cache in the pool matches", log1)
        self.assertIn("cache deps-v1: saved", log1)
        self.assertIn("cache/link: skipped: a symbolic link", log1)
        self.assertIn("cache/fifo: skipped: a FIFO", log1)
        listed = self.caches()["caches"]
        self.assertEqual([c["key"] for c in listed], ["deps-v1"])
        # The agent that saved it goes; another with an empty work dir
        # restores it.
        harness.stop_process(a.proc)
        b = self.agent("b")
        self.assertFalse(os.path.exists(os.path.join(b.work_dir, "x")))
        _, log2, out2 = self.run_job(cache_job(
            "deps-v1",
            "sha256sum cache/blob | cut -c1-64; cat cache/sub/%s/f; "
            "stat -c %%a cache/blob; test ! -e cache/link && echo nolink" %
            long_name))
        self.assertIn("cache deps-v1: restored from 'deps-v1'", log2)
        self.assertIn(hashlib.sha256(blob).hexdigest(), out2)
        self.assertIn("hi\n", out2)
        self.assertIn("750\n", out2)
        self.assertIn("nolink", out2)
        # Restored by its own key: not packed or sent again.
        self.assertIn("restored by its own key; not saved again", log2)

    def test_many_links_and_a_lingering_host_process(self):
        # Thousands of links skipped (each would be a note: more than the
        # pipe the packer's notes go through holds), and a process a host
        # step left writing into the cached path (killed before the save):
        # the job completes and its cache is restored.
        self.agent()
        _, log, _ = self.run_job(cache_job(
            "links-v1",
            "mkdir -p cache && i=0; while [ $i -lt 3000 ]; do "
            "ln -s /etc/passwd cache/link-$(printf %0200d $i); "
            "i=$((i+1)); done; echo kept > cache/kept; "
            "(trap '' TERM; while :; do date >> cache/late; sleep 0.05; "
            "done) >/dev/null 2>&1 &"), timeout=120)
        self.assertIn("cache links-v1: saved", log)
        self.assertIn("(more skipped entries not listed)", log)
        self.assertLess(log.count("skipped: a symbolic link"), 100)
        self.assertIn("3000 skipped", log)
        _, log2, out2 = self.run_job(cache_job(
            "links-v1", "cat cache/kept; ls cache | grep -c link || true"))
        self.assertIn("kept\n0\n", out2)

    def test_restore_key_prefix_and_existing_key_kept(self):
        self.agent()
        self.run_job(cache_job("npm-linux-aaa",
                               "mkdir cache && echo old > cache/v"))
        self.run_job(cache_job("npm-linux-bbb",
                               "mkdir cache && echo new > cache/v"))
        self.run_job(cache_job("other-ccc",
                               "mkdir cache && echo other > cache/v"))
        # No exact match: the newest whose key starts with the first
        # restore key that matches anything.
        _, log, out = self.run_job(cache_job(
            "npm-linux-ddd", "cat cache/v; echo changed > cache/v",
            restore=["nothing-", "npm-linux-", "other-"]))
        self.assertIn("restored from 'npm-linux-bbb'", log)
        self.assertEqual(out.strip(), "new")
        self.assertIn("cache npm-linux-ddd: saved", log)
        # A key that exists is not overwritten.
        _, log, _ = self.run_job(cache_job(
            "npm-linux-aaa", "rm -rf cache; mkdir cache; echo x > cache/v",
            restore=[]))
        self.assertIn("restored from 'npm-linux-aaa'", log)
        _, log, out = self.run_job(cache_job(
            "npm-linux-aaa", "cat cache/v"))
        self.assertEqual(out.strip(), "old")
        # A failed job saves nothing.
        self.run_job(cache_job("failed-key", "mkdir cache; touch cache/f; "
                               "exit 3"), state="failed")
        keys = sorted(c["key"] for c in self.caches()["caches"])
        self.assertEqual(keys, ["npm-linux-aaa", "npm-linux-bbb",
                                "npm-linux-ddd", "other-ccc"])

    def test_two_caches_under_one_directory_merge(self):
        self.agent()
        two = [{"key": "pip-1", "paths": [".cache/pip"]},
               {"key": "npm-1", "paths": [".cache/npm"]}]
        jid = self.submit_job({"name": "fill", "caches": two, "steps": [
            {"name": "s", "script": "mkdir -p .cache/pip .cache/npm && "
             "echo p > .cache/pip/w && echo n > .cache/npm/t"}]})
        self.assertEqual(self.finished(jid, 60)["state"], "succeeded")
        _, log, out = self.run_job({"name": "use", "caches": two, "steps": [
            {"name": "s", "script": "cat .cache/pip/w .cache/npm/t"}]})
        self.assertIn("cache pip-1: restored", log)
        self.assertIn("cache npm-1: restored", log)
        self.assertEqual(out, "p\nn\n")

    def test_tampered_cache_refused(self):
        self.agent()
        self.run_job(cache_job("k1", "mkdir cache && echo data > cache/v"))
        (c,) = self.caches()["caches"]
        self.q.damage_cache(c["id"])
        jid, log, out = self.run_job(cache_job(
            "k1", "test -e cache/v && echo present || echo absent"))
        self.assertIn("cache k1: not restored: its SHA-256 is", log)
        self.assertEqual(out.strip(), "absent")
        # The bytes intact but the digest the queue keeps changed: refused
        # as well (the agent checks what it got against what it was told).
        self.run_job(cache_job("k2", "mkdir cache && echo data > cache/v"))
        (c2,) = [x for x in self.caches()["caches"] if x["key"] == "k2"]
        self.q.sql("UPDATE caches SET sha256 = ? WHERE id = ?",
                   ("0" * 64, c2["id"]))
        _, log, out = self.run_job(cache_job(
            "k2", "test -e cache/v && echo present || echo absent"))
        self.assertIn("cache k2: not restored: its SHA-256 is", log)
        self.assertIn("not %s as the queue says" % ("0" * 64), log)
        self.assertEqual(out.strip(), "absent")

    def test_cancel_while_a_cache_downloads(self):
        # 8 MB that cannot be compressed, fetched through a relay that
        # lets 200 KB/s come from the queue: 40 s of download, which a
        # cancel does not wait for.
        self.agent("a")
        self.run_job(cache_job("big", "mkdir cache && head -c 8000000 "
                               "/dev/urandom > cache/blob"))
        harness.stop_process(self.agents[0].proc)
        slow = Forwarder(self, self.q.port, "slow", mode="slow-down",
                         rate=200000).start()
        b = self.agent("b", queue_url=slow.url)
        jid = self.submit_job(cache_job("big", "touch ran"))
        harness.wait_until(
            lambda: b"cache big: looking for it" in self.log_of(jid), 30,
            what="the cache lookup to start")
        time.sleep(2)   # into the download (its answer comes at its end)
        st = self.cancel_and_finish(jid, within=25)
        self.assertEqual(st["state"], "canceled", st)
        log = skf(self.log_of(jid))
        self.assertIn("cache big: not restored: the job is stopping", log)
        self.assertNotIn("cache big: restored", log)
        # Nothing of it is left in the agent's work directory.
        harness.wait_until(lambda: os.listdir(b.work_dir) == [], 10,
                           what="the job directory to go")

    def test_truncated_cache_refused(self):
        self.agent()
        self.run_job(cache_job("k1", "mkdir cache && seq 1 100000 > "
                               "cache/v"))
        (c,) = self.caches()["caches"]
        self.q.damage_cache(c["id"], truncate=True)
        _, log, out = self.run_job(cache_job(
            "k1", "test -e cache/v && echo present || echo absent"))
        self.assertIn("cache k1: not restored", log)
        self.assertEqual(out.strip(), "absent")


# A lease of our own, to craft caches through the agent API.
class _Lessee:
    def __init__(self, tc):
        self.tc = tc
        r = tc.q.request("POST", "/v1/agents/register",
                         {"name": "crafter", "labels": ["crafter"]},
                         token=tc.reg)
        tc.assertEqual(r.status, 201, r)
        self.token = r.json()["agent_token"]

    def lease(self, jid):
        r = self.tc.q.request("POST", "/v1/agent/lease", {"wait": 5},
                              token=self.token)
        self.tc.assertEqual(r.status, 200, r)
        lease = r.json()["lease"]
        r = self.tc.q.request("POST", "/v1/leases/%s/heartbeat" % lease, {},
                              token=self.token)
        self.tc.assertEqual(r.status, 200, r)
        return lease

    def save(self, lease, key, blob):
        q = self.tc.q
        r = q.request("POST", "/v1/leases/%s/caches" % lease,
                      {"key": key, "size": len(blob)}, token=self.token)
        self.tc.assertEqual(r.status, 201, r)
        up = r.json()["upload"]
        r = q.request("PUT", "/v1/uploads/%s?offset=0" % up, blob,
                      headers={"Content-Type": "application/octet-stream"},
                      token=self.token)
        self.tc.assertEqual(r.status, 200, r)
        r = q.request("POST", "/v1/uploads/%s/commit" % up,
                      {"sha256": hashlib.sha256(blob).hexdigest()},
                      token=self.token)
        self.tc.assertEqual(r.status, 200, r)

    def complete(self, lease):
        r = self.tc.q.request("POST", "/v1/leases/%s/complete" % lease,
                              {"result": "succeeded", "exit_codes": [0],
                               "log_length": 0}, token=self.token)
        self.tc.assertEqual(r.status, 200, r)


def tar_of(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz",
                      format=tarfile.PAX_FORMAT) as t:
        for e in entries:
            ti = tarfile.TarInfo(e["name"])
            ti.type = e.get("type", tarfile.REGTYPE)
            data = e.get("data", b"")
            if ti.type == tarfile.REGTYPE:
                ti.size = len(data)
            ti.linkname = e.get("link", "")
            t.addfile(ti, io.BytesIO(data) if ti.type == tarfile.REGTYPE
                      else None)
    return buf.getvalue()


class ExampleTests(AgentTestCase):
    def test_examples_cache_json(self):
        """examples/cache.json runs, saves, and the next run restores."""
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                            "..", "..", "examples", "cache.json")
        with open(path) as f:
            job = json.load(f)
        self.agent()
        outs = []
        for _ in range(2):
            jid = self.submit_job(job)
            st = self.finished(jid, 60)
            self.assertEqual(st["state"], "succeeded", st)
            outs.append(log_stream(self.log_of(jid), "out").decode())
        self.assertIn("deps fetched", outs[0])
        self.assertIn("deps restored from the cache: 3 files", outs[1])


class HostileCacheTests(AgentTestCase):
    def craft(self, key, blob):
        """A cache made through the agent API by a lease of our own, as a
        compromised agent of the pool could."""
        lessee = _Lessee(self)
        jid = self.submit_job({"name": "crafter", "labels": ["crafter"],
                               "steps": [{"name": "s", "script": "true"}]})
        lease = lessee.lease(jid)
        lessee.save(lease, key, blob)
        lessee.complete(lease)

    def restore_out(self, key, outside):
        self.agent()
        jid = self.submit_job(cache_job(
            key, "ls -A; find . | sort", name="victim"))
        st = self.finished(jid, timeout=60)
        self.assertEqual(st["state"], "succeeded", st)
        log = self.log_of(jid)
        for p in outside:
            self.assertFalse(os.path.lexists(p), p)
        return skf(log), log_stream(log, "out").decode()

    def test_symlink_entry_refused(self):
        target = os.path.join(self.tmp, "outside-target")
        self.craft("evil-link", tar_of([
            {"name": "cache/ok", "data": b"ok"},
            {"name": "cache/l", "type": tarfile.SYMTYPE, "link": target},
            {"name": "cache/l/x", "data": b"pwned"}]))
        log, out = self.restore_out("evil-link", [target])
        self.assertIn("cache evil-link: not restored", log)
        self.assertIn("a link, where none may be", log)
        # Nothing of it reached the workspace.
        self.assertNotIn("cache", out)

    def test_dotdot_entry_refused(self):
        escape = os.path.join(self.tmp, "escaped")
        self.craft("evil-dotdot", tar_of([
            {"name": "cache/ok", "data": b"ok"},
            {"name": "../../../../../../../../%s" % escape.lstrip("/"),
             "data": b"pwned"}]))
        log, out = self.restore_out("evil-dotdot", [escape])
        self.assertIn("cache evil-dotdot: not restored", log)
        self.assertIn("absolute or with '..'", log)
        self.assertNotIn("cache", out)

    def test_hard_link_and_fifo_refused(self):
        self.craft("evil-hard", tar_of([
            {"name": "cache/h", "type": tarfile.LNKTYPE,
             "link": "/etc/passwd"}]))
        log, _ = self.restore_out("evil-hard", [])
        self.assertIn("cache evil-hard: not restored", log)

    def test_not_a_tar(self):
        self.craft("garbage", os.urandom(5000))
        log, out = self.restore_out("garbage", [])
        self.assertIn("cache garbage: not restored", log)


class ContainerCacheTests(AgentTestCase):
    """A cache a container step filled as root, restored for a container
    step on another agent."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        import dockerenv
        cls.eng = dockerenv.Engine()
        cls.images = dockerenv.build_images(cls.eng)

    def test_root_owned_files_in_a_container(self):
        box = self.images["busybox"]
        a = self.agent("a")
        job = {"name": "fill", "caches": [{"key": "box-1",
                                            "paths": ["cache", "missing"]}],
               "steps": [{"name": "s", "image": box, "script":
                          "mkdir -p cache/d && echo root > cache/d/f && "
                          "chmod 0600 cache/d/f && chmod 0700 cache/d && "
                          "ln -s /etc cache/etc"}]}
        jid = self.submit_job(job)
        st = self.finished(jid, timeout=90)
        self.assertEqual(st["state"], "succeeded", st)
        log = skf(self.log_of(jid))
        self.assertIn("cache box-1: saved", log)
        self.assertIn("cache/etc: skipped: a symbolic link", log)
        self.assertIn("missing: not there, nothing to save", log)
        harness.stop_process(a.proc)
        b = self.agent("b")
        job = {"name": "use", "caches": [{"key": "box-1",
                                           "paths": ["cache"]}],
               "steps": [{"name": "s", "image": box, "script":
                          "cat cache/d/f; test ! -e cache/etc && echo nolink"}]}
        jid = self.submit_job(job)
        st = self.finished(jid, timeout=90)
        self.assertEqual(st["state"], "succeeded", st)
        log = self.log_of(jid)
        self.assertIn("cache box-1: restored from 'box-1'", skf(log))
        self.assertEqual(log_stream(log, "out").decode(), "root\nnolink\n")
        # The step ran in a container made while the cache was restored
        # (an exec), and saw what the restore put in the workspace.
        self.assertIn("/exec", b.log())


class EvictionTests(AgentTestCase):
    queue_args = ("--max-cache-pool", "300k", "--max-cache", "200k")

    def run_job(self, key, size, script_extra=""):
        job = cache_job(key, "mkdir -p cache && head -c %d /dev/urandom > "
                        "cache/r%s" % (size, script_extra))
        jid = self.submit_job(job)
        st = self.finished(jid, timeout=60)
        self.assertEqual(st["state"], "succeeded", st)
        return skf(self.log_of(jid))

    def keys(self):
        r = self.q.request("GET", "/v1/pools/%s/caches" % self.pool)
        self.assertEqual(r.status, 200, r)
        return sorted(c["key"] for c in r.json()["caches"])

    def test_lru_eviction_and_caps(self):
        self.agent()
        self.run_job("a", 120000)
        self.run_job("b", 120000)
        self.assertEqual(self.keys(), ["a", "b"])
        # a is used: b is now the least recently used.
        log = self.run_job("a", 1)
        self.assertIn("restored from 'a'", log)
        self.run_job("c", 120000)
        self.assertEqual(self.keys(), ["a", "c"])
        # Over the per-cache cap: refused, the job still succeeds.
        log = self.run_job("big", 250000)
        self.assertIn("cache big: not saved", log)
        self.assertIn("413", log)
        self.assertEqual(self.keys(), ["a", "c"])
        # An operator deletes one.
        (c,) = [x for x in self.q.request(
            "GET", "/v1/pools/%s/caches" % self.pool).json()["caches"]
            if x["key"] == "c"]
        r = self.q.request("DELETE", "/v1/pools/%s/caches/%s" % (
            self.pool, c["id"]))
        self.assertEqual(r.status, 204, r)
        self.assertEqual(self.keys(), ["a"])
        out = self.q.ctl("cache", "list", self.pool).stdout.decode()
        self.assertIn("a", out)


if __name__ == "__main__":
    harness.main()
