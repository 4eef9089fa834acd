"""The web view at /ui/ (issue 14) in a real browser: Debian's chromium,
headless, driven by playwright-core (browserfix.py), against a real
queue with real agents running real jobs (host steps).

- without a token the view asks for one; a viewer token logs in, and is
  kept in an HttpOnly, SameSite=Strict (and Secure) session cookie that
  scripts cannot read and no URL carries;
- the pools and agents pages show the running agents and their states;
  a job submitted while the jobs page is open appears without a reload;
- a running job's page shows its log lines as they come and its step
  timeline filling in as steps end; ANSI colours and skf step markers;
- an artifact downloads byte-identical; the job's output variables show;
- a job named <img src=x onerror=alert(1)> printing
  <script>alert(2)</script> renders both as text and runs no script;
- the viewer token cannot submit, cancel, revoke or register (403).

Each test saves screenshots of the pages it shows (browserfix.py).
"""
import hashlib
import json
import os
import time
import urllib.request

import harness
from agentfix import AgentTestCase
from browserfix import Browser
from harness import wait_until

HOSTILE_NAME = "<img src=x onerror=alert(1)>"
HOSTILE_OUT = "<script>alert(2)</script>"


class UITestCase(AgentTestCase):
    def setUp(self):
        super().setUp()
        r = self.q.request("POST", "/v1/viewer-tokens",
                           {"description": "browser test"})
        self.assertEqual(r.status, 201, r)
        self.viewer = r.json()["token"]
        self.assertTrue(self.viewer.startswith("svw_"))
        self.b = Browser(self)
        self.addCleanup(self._page_events_clean)

    def _page_events_clean(self):
        """No page of any test raised a dialog or a script error, and
        nothing broke the CSP (chromium reports that as a console
        error)."""
        ev = self.b.do("events")
        self.assertEqual(ev["dialogs"], [], ev)
        self.assertEqual(ev["page_errors"], [], ev)
        # The view's own 401s (it asks for a token on one) and 403s are
        # logged by chromium as failed loads; anything else is a fault.
        errs = [e for e in ev["console_errors"]
                if not e.startswith("Failed to load resource: the server "
                                    "responded with a status of 40")]
        self.assertEqual(errs, [], ev)

    def login(self):
        self.b.do("open", url=self.q.url + "/ui/")
        self.b.wait("#login h1", "Viewer token")
        self.b.do("fill", selector="#token", value=self.viewer)
        self.b.do("click", selector="#login button[type=submit]")
        self.b.wait("#main h1", "Pools")

    def hold_file(self, name):
        """A host step that waits (bounded: 60 s) for a file the test
        makes."""
        path = os.path.join(self.tmp, name)
        return path, ("i=0; while [ ! -e %s ] && [ $i -lt 600 ]; do "
                      "sleep 0.1; i=$((i+1)); done" % path)


class TestLoginPoolsAgentsJobs(UITestCase):
    def test_login_cookie_pools_agents_and_live_job_list(self):
        # Without a token the view asks for one, and shows nothing else.
        self.b.do("open", url=self.q.url + "/ui/")
        self.b.wait("#login h1", "Viewer token")
        self.assertEqual(self.b.do("count", selector="#main table"), 0)
        self.b.shot("login")
        r = self.q.request("GET", "/v1/jobs", token=None)
        self.assertEqual(r.status, 401, r)

        # A wrong token is refused and the form stays.
        self.b.do("fill", selector="#token", value="svw_not-a-token")
        self.b.do("click", selector="#login button[type=submit]")
        self.b.wait("#login-error", "not valid")

        busy_agent = self.agent("busy-1")
        self.agent("idle-1")
        go, hold = self.hold_file("go-busy")
        running = self.submit_job(self.steps_job(hold, name="long job"))
        self.q.wait_state(running, "running", timeout=15 * harness.SLOW)

        self.login()
        cookies = [c for c in self.b.do("cookies") if c["name"] == "skiff_view"]
        self.assertEqual(len(cookies), 1, cookies)
        c = cookies[0]
        self.assertEqual(c["value"], self.viewer)
        self.assertTrue(c["httpOnly"], c)
        self.assertEqual(c["sameSite"], "Strict", c)
        self.assertTrue(c["secure"], c)
        self.assertEqual(c["expires"], -1, "a session cookie: %r" % c)
        self.assertNotIn("skiff_view", self.b.do("eval", expr="document.cookie"))
        self.assertNotIn(self.viewer, self.b.do("url"))

        # Pools: one busy agent, one idle, one job running.
        row = '#pools tr[data-pool="test"]'
        self.b.wait(row + " td.busy", "1")
        self.b.wait(row + " td.idle", "1")
        self.b.wait(row + " td.leased", "1")
        self.b.shot("pools")

        # Agents: both, by name, with their states.
        self.b.do("hash", hash="#/agents")
        self.b.wait("#agents tbody tr", "busy-1")
        rows = {}
        for t in self.b.wait("#agents tbody tr", "idle-1"):
            rows[t.split("test")[0]] = t
        self.b.wait("#agents tbody tr", "busy")
        texts = self.b.do("texts", selector="#agents tbody tr")
        self.assertTrue(any("busy-1" in t and "busy" in t.replace("busy-1", "")
                            and running in t for t in texts), texts)
        self.assertTrue(any("idle-1" in t and "idle" in t.replace("idle-1", "")
                            for t in texts), texts)
        self.b.shot("agents")

        # Jobs: a job submitted while the page is open appears, and the
        # page was not loaded again for it.
        self.b.do("hash", hash="#/jobs")
        self.b.wait("#jobs tbody tr", "long job")
        self.b.do("eval", expr="window.__skiffMark = 42")
        navs = self.b.do("events")["navigations"]
        fresh = self.submit_job(self.steps_job("echo fresh", name="fresh job"))
        self.b.wait('#jobs tr[data-job="%s"]' % fresh, "fresh job")
        self.assertEqual(self.b.do("eval", expr="window.__skiffMark"), 42)
        self.assertEqual(self.b.do("events")["navigations"], navs)
        # Newest first.
        first = self.b.do("eval", expr="document.querySelector("
                          "'#jobs tbody tr').getAttribute('data-job')")
        self.assertEqual(first, fresh)
        self.b.wait('#jobs tr[data-job="%s"] .state' % fresh, "succeeded",
                    timeout=20)
        # The name filter.
        self.b.do("hash", hash="#/jobs?name=long")
        self.b.wait("#jobs tbody tr", "long job")
        wait_until(lambda: self.b.do("count", selector="#jobs tbody tr") == 1,
                   10, what="the name filter to leave one row")
        self.b.do("hash", hash="#/jobs")
        self.b.wait('#jobs tr[data-job="%s"] .state' % fresh, "succeeded")
        self.b.shot("jobs")

        # The viewer's cookie, from the page itself, cannot cancel.
        r = self.b.do("fetch", path="/v1/jobs/%s/cancel" % running,
                      method="POST", body="{}")
        self.assertEqual(r["status"], 403, r)
        self.assertEqual(self.q.status(running)["cancel_requested"], False)

        with open(go, "w"):
            pass
        self.finished(running)
        self.assertTrue(busy_agent.running())

        # Logging out drops the cookie; the view asks again.
        self.b.do("click", selector="#logout")
        self.b.wait("#login h1", "Viewer token")
        r = self.b.do("fetch", path="/v1/jobs")
        self.assertEqual(r["status"], 401, r)

    def test_viewer_token_cannot_act(self):
        """The API answers 403 to a viewer token on every endpoint that
        changes something, and a viewer token registers no agent."""
        jws, job = self.job()
        v = self.viewer
        for method, path, body, headers in (
                ("POST", "/v1/jobs", jws, {"Content-Type": "application/jose"}),
                ("POST", "/v1/jobs/%s/cancel" % job, {}, None),
                ("DELETE", "/v1/agents/agt_x", None, None),
                ("POST", "/v1/pools/test/tokens", {}, None),
                ("DELETE", "/v1/tokens/tok_x", None, None),
                ("POST", "/v1/viewer-tokens", {}, None),
                ("GET", "/v1/viewer-tokens", None, None),
                ("GET", "/v1/pools/test/tokens", None, None)):
            r = self.q.request(method, path, body, headers, token=v)
            self.assertEqual(r.status, 403, (method, path, r))
        r = self.q.request("POST", "/v1/agents/register",
                           {"name": "x", "labels": [], "capacity": 1,
                            "version": "0"}, token=v)
        self.assertEqual(r.status, 401, r)
        self.assertEqual(self.q.request("GET", "/v1/jobs/" + job).status, 404)
        for path in ("/v1/jobs", "/v1/agents", "/v1/pools"):
            self.assertEqual(self.q.request("GET", path, token=v).status, 200)
        # The admin token is not for the browser: the login refuses it.
        r = self.q.request("POST", "/ui/login", token=self.q.admin_token)
        self.assertEqual(r.status, 403, r)
        # A login from another origin is refused.
        r = self.q.request("POST", "/ui/login", token=v,
                           headers={"Origin": "https://evil.example"})
        self.assertEqual(r.status, 403, r)
        # Revoked: the token and the cookie holding it are void at once.
        tid = [t for t in self.q.request("GET", "/v1/viewer-tokens").json()[
            "tokens"]][0]["id"]
        self.assertEqual(self.q.request("DELETE", "/v1/tokens/" + tid).status,
                         204)
        self.assertEqual(self.q.request("GET", "/v1/jobs", token=v).status,
                         401)
        r = self.q.request("GET", "/v1/jobs", token=None,
                           headers={"Cookie": "skiff_view=" + v})
        self.assertEqual(r.status, 401, r)
        # The session is over in the browser too: the view asks again.
        self.b.do("open", url=self.q.url + "/ui/#/jobs")
        self.b.wait("#login h1", "Viewer token")


class TestJobPage(UITestCase):
    def test_live_log_timeline_ansi_and_artifact(self):
        self.agent()
        go, hold = self.hold_file("go")
        job = self.submit_job(self.steps_job(
            {"name": "colours", "script":
             "printf '\\033[31mred text\\033[0m plain\\n'; echo first-step-done; "
             "echo \"##skiff[set-output name='COLOUR' value='red']\"; "
             "echo 'VERSION=1.4.2' >> \"$SKIFF_OUTPUT\""},
            {"name": "ticks", "script":
             "for i in 1 2 3; do echo tick $i; sleep 0.2; done; " + hold +
             "; echo after-go"},
            {"name": "make artifact", "continue_on_error": True, "script":
             "mkdir -p out; head -c 300000 /dev/urandom > out/data.bin; "
             "sha256sum out/data.bin; exit 3",
             "artifacts": ["out/*"]},
            name="timeline job"))
        self.login()
        self.b.do("hash", hash="#/job/" + job)
        self.b.wait("#job-name", "timeline job")
        # Live: lines of the running second step, its first step ended.
        self.b.wait("#log .rec", "tick 3", timeout=20)
        self.b.wait('#steps tr[data-step="1"] td.exit', "0")
        # What is still to run comes from the job itself (GET .../steps).
        self.b.wait('#steps tr[data-step="3"]', "make artifact")
        self.assertEqual(self.b.do("texts", selector=
                         '#steps tr[data-step="3"] td.coe'), ["yes"])
        self.assertEqual(self.b.do("texts", selector=
                         '#steps tr[data-step="3"] td.exit'), [""])
        self.assertEqual(self.b.do("texts", selector=
                         '#steps tr[data-step="2"] td.exit'), [""])
        self.assertEqual(self.b.do("texts", selector="#log .rec")[-1:] != [],
                         True)
        self.assertEqual(self.q.status(job)["state"], "running")
        self.assertNotIn("after-go", "".join(self.b.do(
            "texts", selector="#log .rec")))
        self.b.shot("job-running")
        with open(go, "w"):
            pass
        self.b.wait("#log .rec", "after-go", timeout=20)
        self.b.wait('#steps tr[data-step="2"] td.exit', "0")
        self.b.wait('#steps tr[data-step="3"] td.exit', "3", timeout=20)
        self.b.wait('#steps tr[data-step="3"] td.coe', "yes (failed, went on)")
        self.b.wait('#facts dd[data-fact="state"]', "succeeded", timeout=20)
        # The outputs the job's steps set (issue 13).
        self.b.wait('#outputs tr[data-output="COLOUR"]', "red")
        self.b.wait('#outputs tr[data-output="VERSION"]', "1.4.2")
        self.assertEqual(self.b.do("count", selector="#outputs tbody tr"), 2)

        # ANSI: a coloured span, no escape byte shown; skf markers.
        self.assertEqual(self.b.do("texts", selector="#log .a-fg31"),
                         ["red text"])
        self.assertNotIn("\x1b", "".join(self.b.do("texts",
                                                    selector="#log .rec")))
        self.assertEqual(self.b.do("count", selector="#log .skf.step-start"), 3)
        texts = self.b.do("texts", selector="#steps tbody tr")
        self.assertIn("colours", texts[0])
        self.assertIn("host", texts[0])
        self.assertIn("make artifact", texts[2])

        # The artifact: listed with size and SHA-256, downloaded
        # byte-identical to what the step wrote (its sha256sum).
        row = self.b.wait("#artifacts tbody tr", "out/data.bin", timeout=20)[0]
        log = self.log_of(job).decode()
        printed = [l.split()[2] for l in log.splitlines()
                   if l.endswith("out/data.bin") and " out " in l][0]
        self.assertIn(printed, row)
        self.assertIn("292.97 KiB".replace("292.97", "293.0")[:3], row)
        self.b.shot("job")
        dl = self.b.do("download", selector="#artifacts a",
                       path=os.path.join(self.tmp, "dl.bin"))
        self.assertEqual(dl["suggested"], "data.bin")
        with open(dl["path"], "rb") as f:
            data = f.read()
        self.assertEqual(len(data), 300000)
        self.assertEqual(hashlib.sha256(data).hexdigest(), printed)
        # Served as an attachment of a type no browser renders.
        r = self.q.request("GET", "/v1/jobs/%s/artifacts/out/data.bin" % job)
        self.assertEqual(r.header("Content-Type"), "application/octet-stream")
        self.assertEqual(r.header("Content-Disposition"),
                         'attachment; filename="data.bin"')
        self.assertEqual(r.header("X-Content-Type-Options"), "nosniff")
        # The raw log link: the log's bytes, with the cookie.
        raw = self.b.do("fetch", path="/v1/jobs/%s/log" % job)
        self.assertEqual(raw["status"], 200)
        self.assertIn("after-go", raw["body"])

    def test_hostile_job_renders_as_text(self):
        self.agent()
        job = self.submit_job(self.steps_job(
            {"name": HOSTILE_NAME, "script": "echo '%s'; echo '%s'; "
             "echo 'HTML=%s' >> \"$SKIFF_OUTPUT\"" % (
                 HOSTILE_OUT, HOSTILE_NAME, HOSTILE_NAME)}, name=HOSTILE_NAME))
        self.finished(job)
        self.login()
        self.b.do("hash", hash="#/jobs")
        self.b.wait('#jobs tr[data-job="%s"] td.name' % job, HOSTILE_NAME)
        self.b.do("hash", hash="#/job/" + job)
        self.b.wait("#job-name", HOSTILE_NAME)
        self.b.wait("#log .rec", HOSTILE_OUT)
        self.b.wait("#steps tbody tr", HOSTILE_NAME)
        self.b.wait('#outputs tr[data-output="HTML"]', HOSTILE_NAME)
        # Text, not markup: no element was made from the job's strings.
        self.assertEqual(self.b.do("count", selector="img"), 0)
        self.assertEqual(self.b.do("count", selector="main script"), 0)
        self.assertEqual(self.b.do("count", selector="script"), 1)
        self.assertEqual(self.b.do("eval", expr="typeof window.__pwned"),
                         "undefined")
        self.b.shot("hostile")
        # The job has ended and its log is complete: the page stops
        # asking (one last round at most), so an open tab costs nothing.
        self.b.wait("#log-state", "complete")
        path = "/v1/jobs/" + job
        before = self.b.do("requests").count(path)
        time.sleep(5)
        after = self.b.do("requests").count(path)
        self.assertLessEqual(after - before, 1, (before, after))
        # The headers that keep it so, on the page itself.
        req = urllib.request.Request(self.q.url + "/ui/")
        import ssl
        ctx = ssl.create_default_context(cafile=self.q.ca_file)
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            h = r.headers
            csp = h["Content-Security-Policy"]
            self.assertIn("script-src 'self'", csp)
            self.assertNotIn("unsafe-inline", csp)
            self.assertIn("frame-ancestors 'none'", csp)
            self.assertEqual(h["X-Frame-Options"], "DENY")
            self.assertEqual(h["X-Content-Type-Options"], "nosniff")
        # _page_events_clean (cleanup): no dialog, no script error.


if __name__ == "__main__":
    harness.main()
