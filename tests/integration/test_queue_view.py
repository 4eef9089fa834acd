"""What the web view reads from the queue (issue 14), without a browser:
viewer tokens on both stores (kept as hashes, revoked through
DELETE /v1/tokens/{id}, listed, refused where they do not belong), the
pools summary, the job list's name filter and paging, the view's files
and their headers, the session cookie's edge cases, and the store's
upgrade to the viewer tokens (SQLite: the table made at start; PostgreSQL:
schema version 1 migrated to 2). test_ui_browser.py drives the view
itself in chromium."""
import hashlib

import harness
from harness import SkiffTestCase, STORE


class TestView(SkiffTestCase):
    def setUp(self):
        super().setUp()
        self.q = self.start_queue()

    def viewer(self, description="test"):
        r = self.q.request("POST", "/v1/viewer-tokens",
                           {"description": description})
        self.assertEqual(r.status, 201, r)
        return r.json()

    def test_viewer_tokens_are_hashed_listed_and_revoked(self):
        v = self.viewer("dashboard")
        self.assertRegex(v["token"], r"^svw_[A-Za-z0-9_-]{43}$")
        self.assertRegex(v["id"], r"^tok_")
        lst = self.q.request("GET", "/v1/viewer-tokens").json()["tokens"]
        self.assertEqual([(t["id"], t["description"], t["revoked"])
                          for t in lst], [(v["id"], "dashboard", None)])
        self.assertNotIn("token", lst[0])
        self.assertNotIn(v["token"], self.q.store_dump())
        h = hashlib.sha256(v["token"].encode()).hexdigest()
        rows = self.q.sql("SELECT id FROM viewer_tokens WHERE hash = ?",
                          (bytes.fromhex(h),))
        self.assertEqual(rows, [[v["id"]]])
        self.assertEqual(self.q.request("GET", "/v1/agents",
                                        token=v["token"]).status, 200)
        # skiffctl makes and lists them too.
        out = self.q.ctl("token", "create", "--viewer", "--description",
                         "from ctl").stdout.decode().strip()
        self.assertTrue(out.startswith("svw_"), out)
        self.assertEqual(self.q.request("GET", "/v1/pools",
                                        token=out).status, 200)
        listed = self.q.ctl("token", "list", "--viewer").stdout.decode()
        self.assertIn("from ctl", listed)
        self.assertEqual(self.q.ctl("token", "create", "--viewer", "pool",
                                    check=False).returncode, 2)
        # Revoked through the one token endpoint; again 204; unknown 404.
        for _ in range(2):
            self.assertEqual(self.q.request(
                "DELETE", "/v1/tokens/" + v["id"]).status, 204)
        self.assertEqual(self.q.request("DELETE", "/v1/tokens/tok_nope")
                         .status, 404)
        self.assertEqual(self.q.request("GET", "/v1/agents",
                                        token=v["token"]).status, 401)
        lst = self.q.request("GET", "/v1/viewer-tokens").json()["tokens"]
        self.assertIsNotNone([t for t in lst if t["id"] == v["id"]][0][
            "revoked"])
        # A registration token is no viewer token, nor the other way.
        reg = self.q.registration_token("test")
        self.assertEqual(self.q.request("GET", "/v1/jobs", token=reg).status,
                         401)
        r = self.q.request("POST", "/v1/agents/register",
                           {"name": "a", "labels": [], "capacity": 1,
                            "version": "0"}, token=out)
        self.assertEqual(r.status, 401, r)
        # A made-up token of the viewer form is 401 on admin endpoints.
        r = self.q.request("POST", "/v1/jobs/x/cancel", {}, token="svw_x")
        self.assertEqual(r.status, 401, r)

    def test_cookie_and_login(self):
        v = self.viewer()["token"]
        ck = {"Cookie": "skiff_view=" + v}
        self.assertEqual(self.q.request("GET", "/v1/jobs", token=None,
                                        headers=ck).status, 200)
        for bad in ("skiff_view=%s; skiff_view=%s" % (v, v),
                    "skiff_view=", "skiff_view=svw_nope", "other=" + v):
            r = self.q.request("GET", "/v1/jobs", token=None,
                               headers={"Cookie": bad})
            self.assertEqual(r.status, 401, (bad, r))
        # The admin token in the cookie is no admin's way in.
        adm = {"Cookie": "skiff_view=" + self.q.admin_token}
        for method, path in (("GET", "/v1/jobs"), ("POST", "/v1/jobs/x/cancel")):
            r = self.q.request(method, path, {} if method == "POST" else None,
                               token=None, headers=adm)
            self.assertEqual(r.status, 401, (path, r))
        # The cookie is never the admin's way in, and never acts.
        r = self.q.request("POST", "/v1/jobs/x/cancel", {}, token=None,
                           headers=ck)
        self.assertEqual(r.status, 403, r)
        r = self.q.request("POST", "/ui/login", token=v)
        self.assertEqual(r.status, 204, r)
        sc = r.header("Set-Cookie")
        self.assertEqual(sc, "skiff_view=%s; Path=/; HttpOnly; "
                         "SameSite=Strict; Secure" % v)
        r = self.q.request("POST", "/ui/login", token=None, headers=ck)
        self.assertEqual(r.status, 401, r)
        r = self.q.request("POST", "/ui/login", token="svw_nope")
        self.assertEqual(r.status, 401, r)
        for h in ({"Origin": "https://127.0.0.1:1"},
                  {"Sec-Fetch-Site": "cross-site"}, {"Origin": "null"}):
            r = self.q.request("POST", "/ui/login", token=v, headers=h)
            self.assertEqual(r.status, 403, (h, r))
        r = self.q.request("POST", "/ui/login", token=v, headers={
            "Origin": "https://127.0.0.1:%d" % self.q.port,
            "Sec-Fetch-Site": "same-origin"})
        self.assertEqual(r.status, 204, r)
        r = self.q.request("POST", "/ui/logout", token=None)
        self.assertEqual(r.status, 204, r)
        self.assertIn("Max-Age=0", r.header("Set-Cookie"))
        r = self.q.request("GET", "/ui/login", token=None)
        self.assertEqual(r.status, 404, r)

    def test_files_and_headers(self):
        for path, ctype in (("/ui/", "text/html"), ("/ui/index.html",
                            "text/html"), ("/ui/app.js", "text/javascript"),
                            ("/ui/app.css", "text/css"),
                            ("/ui/favicon.svg", "image/svg+xml")):
            r = self.q.request("GET", path, token=None)
            self.assertEqual(r.status, 200, (path, r))
            self.assertTrue(r.header("Content-Type").startswith(ctype), r)
            self.assertIn("default-src 'none'",
                          r.header("Content-Security-Policy"))
            self.assertEqual(r.header("X-Frame-Options"), "DENY")
            self.assertEqual(r.header("X-Content-Type-Options"), "nosniff")
        r = self.q.request("GET", "/ui", token=None)
        self.assertEqual((r.status, r.header("Location")), (308, "/ui/"))
        for path in ("/ui/nope.js", "/ui/%2e%2e/queue.db", "/ui/app.js/x"):
            self.assertEqual(self.q.request("GET", path, token=None).status,
                             404, path)
        self.assertEqual(self.q.request("POST", "/ui/app.js", token=None)
                         .status, 405)

    def test_pools_and_job_list(self):
        v = self.viewer()["token"]
        key = self.signing_key()[0]
        ids = []
        for i in range(7):
            jws = harness.sign_job(harness.simple_job(
                name="build %d%s" % (i, " nightly" if i % 3 == 0 else "")),
                key, "test")
            self.q.submit_ok(jws)
            ids.append(harness.job_id_of(jws))
        pools = {p["pool"]: p for p in self.q.request(
            "GET", "/v1/pools", token=v).json()["pools"]}
        self.assertEqual(set(pools), {"test"})
        t = pools["test"]
        self.assertEqual((t["queued"], t["leased"], t["agents_idle"],
                          t["agents_busy"]), (7, 0, 0, 0))
        self.assertEqual(t["pickup_seconds"], {"count": 0, "mean": None,
                                               "p50": None, "p90": None})
        # One lease: a pickup time, a busy agent.
        a = harness.AgentSession(self.q, self.q.registration_token("test"))
        a.register()
        a.lease_ok()
        t = [p for p in self.q.request("GET", "/v1/pools", token=v).json()[
            "pools"] if p["pool"] == "test"][0]
        self.assertEqual((t["queued"], t["leased"], t["agents_busy"]),
                         (6, 1, 1))
        self.assertEqual(t["pickup_seconds"]["count"], 1)
        self.assertIsNotNone(t["pickup_seconds"]["p50"])

        def names(q):
            r = self.q.request("GET", "/v1/jobs?" + q, token=v)
            self.assertEqual(r.status, 200, r)
            return [j["id"] for j in r.json()["jobs"]]
        newest = list(reversed(ids))
        self.assertEqual(names("limit=3"), newest[:3])
        self.assertEqual(names("limit=3&offset=3"), newest[3:6])
        self.assertEqual(names("limit=3&offset=6"), newest[6:])
        self.assertEqual(names("offset=7"), [])
        self.assertEqual(names("name=nightly"), [ids[6], ids[3], ids[0]])
        self.assertEqual(names("name=nightly&offset=1&limit=1"), [ids[3]])
        self.assertEqual(names("name=build%205&pool=test"), [ids[5]])
        self.assertEqual(names("name=BUILD"), [])
        self.assertEqual(names("name=nightly&state=leased"), [ids[0]])
        for bad in ("offset=-1", "offset=10001", "offset=x", "name=",
                    "name=" + "n" * 200):
            r = self.q.request("GET", "/v1/jobs?" + bad, token=v)
            self.assertEqual(r.status, 400, (bad, r))

    def test_steps_of_a_job(self):
        """The steps of the stored payload, for the timeline: name, image
        (null: the host), continue_on_error; a hostile name as it is."""
        v = self.viewer()["token"]
        key = self.signing_key()[0]
        job = {"name": "steps", "steps": [
            {"name": "on host", "script": "true"},
            {"name": "<b>in image</b>", "image": "debian:12-slim",
             "script": "true", "continue_on_error": True},
            {"name": "odd", "script": "true", "continue_on_error": "yes",
             "image": 7}]}
        # As signed: skiffctl sign would refuse the odd step.
        jws = harness.sign_claims(harness.claims_for(job, "test"), key)
        self.q.submit_ok(jws)
        jid = harness.job_id_of(jws)
        r = self.q.request("GET", "/v1/jobs/%s/steps" % jid, token=v)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"steps": [
            {"name": "on host", "image": None, "continue_on_error": False},
            {"name": "<b>in image</b>", "image": "debian:12-slim",
             "continue_on_error": True},
            {"name": "odd", "image": None, "continue_on_error": False}]})
        self.assertEqual(self.q.request("GET", "/v1/jobs/nojob1234/steps",
                                        token=v).status, 404)
        self.assertEqual(self.q.request("GET", "/v1/jobs/%s/steps" % jid,
                                        token=None).status, 401)

    def test_store_gains_viewer_tokens_on_upgrade(self):
        """A store from before viewer tokens: SQLite gets the table at the
        next start; PostgreSQL's schema version 1 is migrated to 2 (and on
        to the newest, 3)."""
        self.q.stop()
        if STORE == "postgres":
            self.q.sql(
                "DROP TABLE viewer_tokens; "
                "DROP FUNCTION op_viewer_create(text, bytea, text); "
                "DROP FUNCTION op_viewer_list(); "
                "DROP FUNCTION op_viewer_auth(bytea); "
                "DROP FUNCTION op_job_jws(text); "
                "DROP FUNCTION op_jobs(text, text, text, int, int); "
                "CREATE FUNCTION op_jobs(p text, st text, lim int) "
                "RETURNS jsonb LANGUAGE sql AS $$ SELECT NULL::jsonb $$; "
                + DROP_V3 +
                "UPDATE meta SET v = '1' WHERE k = 'schema_version'")
        else:
            self.q.sql("DROP TABLE viewer_tokens")
        self.q.start()
        v = self.viewer()["token"]
        self.assertEqual(self.q.request("GET", "/v1/jobs", token=v).status,
                         200)
        if STORE == "postgres":
            self.assertEqual(self.q.sql("SELECT v FROM meta WHERE "
                                        "k = 'schema_version'"), [["3"]])
            self.assertEqual(self.q.sql(
                "SELECT count(*) FROM pg_proc WHERE proname = 'op_jobs'"),
                [["1"]])
            self.assertIn("schema at version 2", self.q.log_text())
            self.assertIn("schema at version 3", self.q.log_text())
            # A schema newer than this binary is refused.
            self.q.stop()
            self.q.sql("UPDATE meta SET v = '4' WHERE k = 'schema_version'")
            with self.assertRaises(AssertionError):
                self.q.start()


# What queue/pgschema3.sql adds (caches, issue 13), for a test that takes
# a database back to an older version.
DROP_V3 = (
    "DROP TRIGGER cache_committed ON uploads; "
    "DROP FUNCTION cache_committed(); "
    "DROP FUNCTION op_cache_create(bytea, int, text, text, bigint, bigint, "
    "bigint, bigint); "
    "DROP FUNCTION op_cache_find(bytea, int, text, text, text[], bigint); "
    "DROP FUNCTION op_cache_open(bytea, int, text, text, bigint); "
    "DROP FUNCTION op_caches_list(text, bigint); "
    "DROP FUNCTION op_cache_delete(text, text); "
    "DROP FUNCTION cache_drop(text); DROP FUNCTION cache_next_use(text); "
    "DROP TABLE caches; DROP TABLE cache_uploads; ")


if __name__ == "__main__":
    harness.main()
