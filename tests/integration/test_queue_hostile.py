#!/usr/bin/python3
"""skiff-queue against hostile or broken clients: malformed JSON, oversized
bodies and headers, slow clients, too many connections, garbage instead of
TLS. Each gets an error (JSON naming the problem, where HTTP gets that
far) and the queue keeps serving everyone else meanwhile.
"""
import base64
import json
import os
import signal
import select
import socket
import subprocess
import ssl
import threading
import time

import harness
import pgfix
from agentfix import AgentTestCase
from harness import wait_until


class HostileTest(harness.SkiffTestCase):

    def raw_tls(self, q):
        """A TLS socket to the queue, handshake done."""
        ctx = ssl.create_default_context(cafile=q.ca_file)
        s = socket.create_connection(("127.0.0.1", q.port), timeout=10)
        return ctx.wrap_socket(s, server_hostname="127.0.0.1")

    def held_poll(self, q):
        """An agent long-poll held by the queue, to prove it is still
        answered at once while others misbehave."""
        agent = q.register("test")
        box = {}
        t = threading.Thread(target=lambda: box.update(r=agent.lease(30)),
                             daemon=True)
        t.start()
        wait_until(lambda: q.metric("skiff_lease_waiters", pool="test") == 1,
                   what="the poll to be held")
        return t, box

    def assert_poll_answered(self, q, t, box):
        jws, jid = self.job()
        t0 = time.monotonic()
        q.submit_ok(jws)
        t.join(10)
        self.assertEqual(box["r"].status, 200)
        self.assertEqual(box["r"].json()["job"], jid)
        self.assertLess(time.monotonic() - t0, 3 * harness.SLOW)

    def test_malformed_json_answered_while_others_served(self):
        q = self.start_queue()
        t, box = self.held_poll(q)
        agent = q.register("test", name="bad")
        cases = [
            (b"{not json", "not valid JSON"),
            (b"[1, 2]", "must be a JSON object"),
            (b'{"wait": "ten"}', "'wait'"),
            (b'{"wait": 61}', "'wait'"),
            (b'{"wait": 1.5}', "'wait'"),
            (b'{"wait": 1, "wait": 2}', "duplicate key"),
            (b"[" * 100 + b"]" * 100, "nests deeper"),
            (b'{"a": "\\u0000"}', "not valid JSON"),
        ]
        for body, why in cases:
            r = q.request("POST", "/v1/agent/lease", body,
                          {"Content-Type": "application/json"},
                          token=agent.token)
            self.assertEqual(r.status, 400, (body, r))
            self.assertEqual(r.json()["error"], "bad_request")
            self.assertIn(why, r.json()["message"], body)
        r = q.request("POST", "/v1/agents/register", b'{"name": 5}',
                      token=agent.registration_token)
        self.assertEqual(r.status, 400)
        self.assertIn("'name'", r.json()["message"])
        self.assert_poll_answered(q, t, box)

    def test_oversized_bodies_refused(self):
        q = self.start_queue()
        t, box = self.held_poll(q)
        agent = q.register("test", name="big")
        big = b'{"wait": 1, "pad": "' + b"x" * (70 * 1024) + b'"}'
        r = q.request("POST", "/v1/agent/lease", big, token=agent.token)
        self.assertEqual((r.status, r.json()["error"], r.json()["limit"]),
                         (413, "too_large", 64 * 1024))
        # The same without Content-Length (chunked): refused at the end.
        c = q.client(agent.token).connect()
        c.putrequest("POST", "/v1/agent/lease")
        c.putheader("Authorization", "Bearer " + agent.token)
        c.putheader("Transfer-Encoding", "chunked")
        c.endheaders()
        for i in range(0, len(big), 8192):
            part = big[i:i + 8192]
            c.send(b"%x\r\n%s\r\n" % (len(part), part))
        c.send(b"0\r\n\r\n")
        r = c.getresponse()
        self.assertEqual(r.status, 413)
        c.close()
        # A job over 256 KiB.
        r = q.submit("a" * (257 * 1024))
        self.assertEqual((r.status, r.json()["limit"]), (413, 256 * 1024))
        self.assert_poll_answered(q, t, box)

    def test_oversized_headers_refused(self):
        q = self.start_queue()
        r = q.request("GET", "/v1/health", token=None,
                      headers={"X-Big": "y" * (17 * 1024)})
        self.assertEqual((r.status, r.json()["error"], r.json()["limit"]),
                         (413, "too_large", 16 * 1024))
        # Past the connection's memory libmicrohttpd answers 431 itself.
        try:
            r = q.request("GET", "/v1/health", token=None,
                          headers={"X-Big": "y" * (64 * 1024)})
            self.assertIn(r.status, (413, 431))
        except (ConnectionError, OSError):
            pass
        self.assertEqual(q.request("GET", "/v1/health").status, 200)

    def test_slow_client_dropped_others_served(self):
        q = self.start_queue("--client-timeout", "2")
        t, box = self.held_poll(q)
        slow = self.raw_tls(q)
        slow.sendall(b"POST /v1/agent/lease HTTP/1.1\r\nHost: x\r\n")
        # Meanwhile everyone else is served at once.
        t0 = time.monotonic()
        self.assertEqual(q.request("GET", "/v1/health").status, 200)
        self.assertLess(time.monotonic() - t0, 1 * harness.SLOW)
        self.assert_poll_answered(q, t, box)
        # The slow client is cut off after the timeout.
        slow.settimeout(10 * harness.SLOW)
        t0 = time.monotonic()
        try:
            data = slow.recv(100)
        except (ConnectionError, ssl.SSLError):
            data = b""
        self.assertEqual(data, b"")
        self.assertLess(time.monotonic() - t0, 8 * harness.SLOW)
        slow.close()

    def test_connection_limit_answers_429(self):
        q = self.start_queue("--max-connections", "16")
        idle = [self.raw_tls(q) for _ in range(16)]
        try:
            r = q.request("GET", "/v1/health")
            self.assertEqual(r.status, 429, r)
            self.assertEqual(r.json()["error"], "too_many_requests")
            self.assertTrue(r.header("Retry-After"))
        finally:
            for s in idle:
                s.close()
        wait_until(lambda: q.request("GET", "/v1/health").status == 200, 5,
                   what="the queue to accept again")

    def test_garbage_and_plain_http_on_tls_port(self):
        q = self.start_queue()
        for junk in (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"\x16\x03\x01" +
                     b"\xff" * 300, b"\0" * 1000):
            s = socket.create_connection(("127.0.0.1", q.port), timeout=5)
            try:
                s.sendall(junk)
                s.recv(100)
            except OSError:
                pass
            s.close()
        self.assertEqual(q.request("GET", "/v1/health").status, 200)
        self.assertTrue(q.running())

    def test_unknown_paths_methods_and_escapes(self):
        q = self.start_queue()
        r = q.request("GET", "/v1/nothing")
        self.assertEqual((r.status, r.json()["error"]), (404, "not_found"))
        r = q.request("DELETE", "/v1/jobs")
        self.assertEqual((r.status, r.json()["error"]),
                         (405, "method_not_allowed"))
        self.assertIn("GET", r.header("Allow"))
        self.assertIn("POST", r.header("Allow"))
        r = q.request("GET", "/v1/jobs/%zz")
        self.assertEqual(r.status, 400)
        r = q.request("GET", "/v1/jobs/abc%00def")
        self.assertEqual(r.status, 400)
        r = q.request("GET", "/v1/jobs?limit=100000")
        self.assertEqual(r.status, 400)
        self.assertIn("limit", r.json()["message"])
        r = q.request("GET", "/v1/jobs?state=bogus")
        self.assertEqual(r.status, 400)
        r = q.request("GET", "/v1/jobs/doesnotexist")
        self.assertEqual((r.status, r.json()["error"]), (404, "not_found"))

    def test_many_bad_requests_in_parallel(self):
        q = self.start_queue()
        t, box = self.held_poll(q)
        agent = q.register("test", name="noisy")
        errors = []

        def hammer():
            for i in range(20):
                try:
                    r = q.request("POST", "/v1/agent/lease", b"{bad",
                                  token=agent.token)
                    if r.status != 400:
                        errors.append(r)
                except OSError as e:
                    errors.append(e)
        threads = [threading.Thread(target=hammer, daemon=True)
                   for _ in range(8)]
        for th in threads:
            th.start()
        self.assert_poll_answered(q, t, box)
        for th in threads:
            th.join(60)
        self.assertEqual(errors, [])
        self.assertGreaterEqual(q.metric("skiff_http_requests_total",
                                         code="4xx"), 160)

    # ---- connections that never make a request (issue 10, item 5) ----

    # The first 11 bytes of a TLS 1.2 ClientHello record: a record header
    # promising 512 bytes, and the start of the handshake message.
    HALF_HELLO = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"

    def hostile_conn(self, q, kind, src):
        """A connection from src that never sends a whole request head."""
        s = socket.create_connection(("127.0.0.1", q.port), timeout=10,
                                     source_address=(src, 0))
        if kind == "half-hello":
            s.sendall(self.HALF_HELLO)
        elif kind in ("tls-idle", "tls-half-head"):
            ctx = ssl.create_default_context(cafile=q.ca_file)
            s = ctx.wrap_socket(s, server_hostname="127.0.0.1")
            if kind == "tls-half-head":
                s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")
        return s

    def trickle(self, s, data, stop):
        """Sends data one byte every 0.3 s until stopped or refused
        (bounded by the length of data)."""
        for b in data:
            if stop.is_set():
                return
            try:
                s.send(bytes([b]))
            except OSError:
                return
            stop.wait(0.3)

    @staticmethod
    def trickle_tls_until_closed(s, data, timeout):
        """Sends data over the TLS socket s one byte every 0.3 s and
        returns the seconds until the peer closed it, or None. One thread
        only: an SSL socket used by two threads at once fails in ways
        that would look like a close."""
        t0 = time.monotonic()
        for b in data:
            if time.monotonic() - t0 > timeout:
                return None
            try:
                s.send(bytes([b]))
            except (ConnectionError, ssl.SSLError, OSError):
                return time.monotonic() - t0
            end = time.monotonic() + 0.3
            while time.monotonic() < end:
                if not select.select([s], [], [], end - time.monotonic())[0]:
                    break
                try:
                    if s.recv(4096) == b"":
                        return time.monotonic() - t0
                except ssl.SSLWantReadError:
                    continue
                except (ConnectionError, ssl.SSLError, OSError):
                    return time.monotonic() - t0
        return None

    @staticmethod
    def eof_within(s, timeout):
        """Seconds until the peer closed s (EOF or reset), or None."""
        t0 = time.monotonic()
        s.settimeout(0.2)
        while time.monotonic() - t0 < timeout:
            try:
                if s.recv(4096) == b"":
                    return time.monotonic() - t0
            except (socket.timeout, ssl.SSLWantReadError):
                continue
            except (ConnectionError, ssl.SSLError, OSError):
                return time.monotonic() - t0
        return None

    @staticmethod
    def cpu_seconds(q):
        with open("/proc/%d/stat" % q.proc.pid) as f:
            f = f.read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")

    def test_connections_without_a_request_closed_at_the_deadline(self):
        # --client-timeout is far away: only the handshake deadline can
        # close these. 33 connections are all libmicrohttpd takes with
        # --max-connections 16 (N + N/16 + 16), from eleven addresses.
        q = self.start_queue("--handshake-timeout", "2",
                             "--client-timeout", "60",
                             "--max-connections", "16")
        kinds = ["silent", "half-hello", "trickle", "tls-idle",
                 "tls-half-head"]
        stop = threading.Event()
        self.addCleanup(stop.set)
        conns, trickles = [], []
        cpu0, t0 = self.cpu_seconds(q), time.monotonic()
        for i in range(33):
            kind = kinds[i % len(kinds)]
            s = self.hostile_conn(q, kind, "127.0.0.%d" % (2 + i // 3))
            if kind == "trickle":
                th = threading.Thread(target=self.trickle, daemon=True,
                                      args=(s, self.HALF_HELLO * 4, stop))
                th.start()
                trickles.append(th)
            conns.append((kind, s))
        # A real client is locked out only until the deadline frees room.
        wait_until(lambda: self.health_ok(q), 8, interval=0.2,
                   what="a real client to be served")
        for kind, s in conns:
            took = self.eof_within(s, 10 * harness.SLOW)
            self.assertIsNotNone(took, "%s connection still open" % kind)
            s.close()
        elapsed = time.monotonic() - t0
        self.assertLess(elapsed, 2 + 4 * harness.SLOW)
        stop.set()
        for th in trickles:
            th.join(5)
        # Half a handshake must not spin the queue meanwhile (it did:
        # 100% of a core until the connection went).
        self.assertLess(self.cpu_seconds(q) - cpu0, 0.5 * elapsed)
        self.assertEqual(q.request("GET", "/v1/health").status, 200)

    def test_deadline_is_not_renewed_by_a_trickled_head(self):
        q = self.start_queue("--handshake-timeout", "2",
                             "--client-timeout", "60")
        s = self.raw_tls(q)
        head = b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 40
        took = self.trickle_tls_until_closed(s, head, 10 * harness.SLOW)
        s.close()
        self.assertIsNotNone(took, "a head trickled a byte at a time was "
                             "held past the deadline")
        self.assertGreater(took, 1)
        self.assertLess(took, 2 + 3 * harness.SLOW)
        # A request that is on time is served, and its connection then
        # lives by --client-timeout: a second request after the deadline.
        cl = q.client()
        c = cl.connect()
        self.assertEqual(cl.request("GET", "/v1/health", conn=c).status, 200)
        time.sleep(2.5)
        self.assertEqual(cl.request("GET", "/v1/health", conn=c).status, 200)
        c.close()

    def test_next_head_after_an_answer_has_a_deadline_too(self):
        # One request answered, then the next head trickled a byte at a
        # time: every byte renews libmicrohttpd's own timeout, so only a
        # deadline that runs from the answer closes it.
        q = self.start_queue("--handshake-timeout", "2",
                             "--client-timeout", "4")
        s = self.raw_tls(q)
        s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        got = b""
        while b"\r\n\r\n" not in got:
            more = s.recv(4096)
            self.assertTrue(more, "the first request was not answered")
            got += more
        head, _, body = got.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200"), head)
        length = int([h.split(b":")[1] for h in head.split(b"\r\n")
                      if h.lower().startswith(b"content-length:")][0])
        while len(body) < length:
            body += s.recv(4096)
        nxt = b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 60
        took = self.trickle_tls_until_closed(s, nxt, 20 * harness.SLOW)
        s.close()
        self.assertIsNotNone(took, "a second head trickled a byte at a time "
                             "was held past --client-timeout")
        # Not at once (a keep-alive connection waits for its next head),
        # and not past the deadline.
        self.assertGreater(took, 3)
        self.assertLess(took, 4 + 3 * harness.SLOW)

    def health_ok(self, q, src="127.0.0.1"):
        """GET /v1/health from source address src; True on 200."""
        try:
            s = socket.create_connection(("127.0.0.1", q.port), timeout=3,
                                         source_address=(src, 0))
            ctx = ssl.create_default_context(cafile=q.ca_file)
            with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
                t.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n"
                          b"Connection: close\r\n\r\n")
                return t.recv(64).startswith(b"HTTP/1.1 200")
        except (OSError, ssl.SSLError):
            return False

    def test_connections_per_address_bounded(self):
        q = self.start_queue("--max-connections-per-ip", "8",
                             "--handshake-timeout", "60")
        held = [self.hostile_conn(q, "silent", "127.0.0.2") for _ in range(8)]
        try:
            # The ninth from the same address is closed at once...
            extra = self.hostile_conn(q, "silent", "127.0.0.2")
            took = self.eof_within(extra, 5 * harness.SLOW)
            extra.close()
            self.assertIsNotNone(took, "a ninth connection from one "
                                 "address was held")
            self.assertFalse(self.health_ok(q, "127.0.0.2"))
            # ...while other addresses are served, up to their own eight.
            self.assertTrue(self.health_ok(q, "127.0.0.1"))
            more = [self.hostile_conn(q, "half-hello", "127.0.0.3")
                    for _ in range(7)]
            self.assertTrue(self.health_ok(q, "127.0.0.3"))
            for s in more:
                s.close()
        finally:
            for s in held:
                s.close()
        wait_until(lambda: self.health_ok(q, "127.0.0.2"), 5, interval=0.1,
                   what="the address to be served again")

    def test_help_names_the_connection_options(self):
        out = harness.run([harness.QUEUE_BIN, "--help"]).stdout.decode()
        for opt in ("--handshake-timeout", "--max-connections-per-ip",
                    "EXIT STATUS"):
            self.assertIn(opt, out)


# ---- UTF-8 at the JSON boundary (issue 10, item 8) ----

# Not UTF-8, each for its own reason: an overlong '/', a lone continuation
# byte, an encoded surrogate, past U+10FFFF, a sequence cut short.
BAD_UTF8 = [b"\xc0\xaf", b"\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
            b"\xe2\x82"]
MARK = "UTF8-PLACEHOLDER"
# Invalid UTF-8 in the store is planted by editing the SQLite database; a
# PostgreSQL database in UTF8 refuses such text in every text column, so
# that compromised or older database cannot be staged there at all.
STAGED_IN_SQLITE = ("plants invalid UTF-8 in the SQLite database; "
                    "PostgreSQL text cannot hold it")


def sign_raw(claims, raw, key):
    """A compact JWS of claims whose MARK (in a string) is replaced by the
    raw bytes raw in the signed payload: properly signed, not UTF-8."""
    import nacl.signing  # Debian's python3-nacl, as harness.sign_claims
    with open(key) as f:
        jwk = json.load(f)
    d = base64.urlsafe_b64decode(jwk["d"] + "=" * (-len(jwk["d"]) % 4))
    hdr = {"alg": "EdDSA", "kid": jwk["kid"], "typ": "JWT"}
    payload = json.dumps(claims).encode().replace(MARK.encode(), raw)
    signing_input = (harness._b64u(json.dumps(hdr).encode()) + "." +
                     harness._b64u(payload))
    sig = nacl.signing.SigningKey(d).sign(signing_input.encode()).signature
    return signing_input + "." + harness._b64u(sig)


def strict_json(body):
    """The answer as JSON, decoded as strict UTF-8 (json.loads on bytes
    would let encoded surrogates through)."""
    return json.loads(body.decode("utf-8", errors="strict"))


class Utf8Test(AgentTestCase):

    def bad_jobs(self, where):
        """(raw bytes, signed job) for each of BAD_UTF8 in the job name
        ("job") or a step name ("step")."""
        for raw in BAD_UTF8:
            job = self.steps_job("touch %s" % self.marker, name="j" + MARK)
            if where == "step":
                job["name"] = "fine"
                job["steps"][0]["name"] = "s" + MARK
            claims = harness.claims_for(job, self.pool)
            yield raw, claims["jti"], sign_raw(claims, raw, self.key)

    def setUp(self):
        super().setUp()
        self.marker = os.path.join(self.tmp, "ran")

    def assert_listing_is_utf8(self, q):
        r = q.request("GET", "/v1/jobs")
        self.assertEqual(r.status, 200)
        return strict_json(r.body)

    def test_submit_refuses_invalid_utf8_with_bad_json(self):
        qt = self.start_queue("--trusted-keys", self.jwks, name="verifying")
        for where in ("job", "step"):
            for raw, jti, jws in self.bad_jobs(where):
                # Without trusted keys the queue reads name and labels: a
                # 400 with reason bad_json, naming the offset.
                r = self.q.submit(jws)
                self.assertEqual(r.status, 400, (where, raw, r))
                body = strict_json(r.body)
                self.assertEqual((body["error"], body["reason"]),
                                 ("bad_request", "bad_json"), body)
                self.assertIn("not UTF-8 at offset", body["message"])
                # With them, the agent's own check: 422 rejected bad_json.
                r = qt.submit(jws)
                self.assertEqual(r.status, 422, (where, raw, r))
                body = strict_json(r.body)
                self.assertEqual((body["error"], body["reason"]),
                                 ("rejected", "bad_json"), body)
                self.assertIn("not valid UTF-8", body["message"])
                for q in (self.q, qt):
                    r = q.request("GET", "/v1/jobs/" + jti)
                    self.assertEqual(r.status, 404, r)
        # A lone surrogate written as an escape is refused the same way
        # (cJSON refuses it as a syntax error).
        claims = harness.claims_for(self.steps_job("true", name="x\ud800"),
                                    self.pool)
        jws = sign_raw(claims, b"", self.key)
        for q, status in ((self.q, 400), (qt, 422)):
            r = q.submit(jws)
            self.assertEqual((r.status, strict_json(r.body)["reason"]),
                             (status, "bad_json"), r)
        self.assertEqual(self.assert_listing_is_utf8(self.q)["jobs"], [])

    def test_bodies_of_every_endpoint_refuse_invalid_utf8(self):
        agent = self.q.register(self.pool, name="utf8")
        for raw in BAD_UTF8:
            for method, path, body, token in (
                    ("POST", "/v1/agents/register",
                     b'{"name": "vm' + raw + b'"}', self.reg),
                    ("POST", "/v1/agent/lease",
                     b'{"wait": 1, "x": "' + raw + b'"}', agent.token),
                    ("POST", "/v1/pools/p/tokens",
                     b'{"description": "' + raw + b'"}', ...)):
                r = self.q.request(method, path, body,
                                   {"Content-Type": "application/json"},
                                   token=token)
                self.assertEqual(r.status, 400, (path, raw, r))
                b = strict_json(r.body)
                self.assertEqual(b["reason"], "bad_json", (path, b))
                self.assertIn("UTF-8", b["message"])

    @harness.sqlite_only(STAGED_IN_SQLITE)
    def test_agent_rejects_invalid_utf8_from_a_compromised_queue(self):
        """A queue whose database was edited hands an agent a job whose
        signed payload is not UTF-8: the agent rejects it, runs nothing."""
        import sqlite3
        self.agent()
        for raw in (b"\xc0\xaf", b"\x80"):
            if os.path.exists(self.marker):
                os.unlink(self.marker)
            job = self.steps_job("touch %s" % self.marker, name="j" + MARK)
            claims = harness.claims_for(job, self.pool)
            jti = claims["jti"]
            forged = sign_raw(claims, raw, self.key)
            self.q.stop()
            db = sqlite3.connect(os.path.join(self.q.data_dir, "queue.db"))
            with db:
                db.execute("INSERT INTO jobs (id, pool, name, labels, jws, exp,"
                           " state, attempt, max_attempts, created) VALUES "
                           "(?, ?, ?, '[]', ?, ?, 'queued', 1, 3, ?)",
                           (jti, self.pool, "forged", forged,
                            claims["exp"], int(time.time())))
            db.close()
            self.q.start()
            st = self.finished(jti, timeout=30)
            self.assertEqual(st["state"], "rejected", st)
            self.assertEqual(st["reason_code"], "bad_json", st)
            self.assertIn("not valid UTF-8", st["reason"])
            self.assertIn("0x%02x" % raw[0], st["reason"])
            self.assertFalse(os.path.exists(self.marker))
        self.assert_listing_is_utf8(self.q)

    @harness.sqlite_only(STAGED_IN_SQLITE)
    def test_answers_are_utf8_whatever_was_stored(self):
        """Strings the queue stored before it checked (a job name written
        by an older queue) are answered as valid UTF-8, the bytes at fault
        as U+FFFD."""
        import sqlite3
        jws, jti = self.job(aud=self.pool)
        self.q.submit_ok(jws)
        self.q.stop()
        db = sqlite3.connect(os.path.join(self.q.data_dir, "queue.db"))
        with db:
            db.execute("UPDATE jobs SET name = CAST(? AS TEXT) WHERE id = ?",
                       (b"old\xc0\xafname\x80", jti))
        db.close()
        self.q.start()
        for path in ("/v1/jobs", "/v1/jobs/" + jti):
            r = self.q.request("GET", path)
            self.assertEqual(r.status, 200, r)
            body = strict_json(r.body)
            job = body["jobs"][0] if "jobs" in body else body
            self.assertEqual(job["name"], "old\ufffd\ufffdname\ufffd")

    def test_answers_are_utf8_whatever_was_sent(self):
        """A raw path the router refuses is echoed in its message as valid
        UTF-8, the bytes at fault as U+FFFD."""
        s = socket.create_connection(("127.0.0.1", self.q.port), timeout=10)
        ctx = ssl.create_default_context(cafile=self.q.ca_file)
        with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
            t.sendall(b"GET /v1/\xc0\xaf\x80\xe2\x82 HTTP/1.1\r\nHost: x\r\n"
                      b"Connection: close\r\n\r\n")
            data = b""
            for _ in range(100):
                chunk = t.recv(65536)
                if not chunk:
                    break
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 404"), head)
        self.assertIn("\ufffd", strict_json(body)["message"])


# ---- exit codes (issue 10, item 9): one test per documented code ----

class ExitCodeTest(harness.SkiffTestCase):

    def run_queue(self, argv, env_token=False):
        env = {k: v for k, v in os.environ.items()
               if k != "SKIFF_ADMIN_TOKEN"}
        if env_token:
            env["SKIFF_ADMIN_TOKEN"] = "sadm_exit-code-test"
        return subprocess.run([harness.QUEUE_BIN] + argv, capture_output=True,
                              timeout=30 * harness.SLOW, env=env)

    def test_exit_0_help_version_and_signals(self):
        for argv in (["--help"], ["--version"], ["--dev", "--help"]):
            res = self.run_queue(argv)
            self.assertEqual(res.returncode, 0, (argv, res.stderr))
            self.assertTrue(res.stdout)
        self.assertIn(b"EXIT STATUS", self.run_queue(["--help"]).stdout)
        for sig in (signal.SIGTERM, signal.SIGINT):
            q = self.start_queue()
            self.assertEqual(q.stop(sig), 0)

    @harness.sqlite_only("overwrites the files of the SQLite database")
    def test_exit_1_database_damaged_while_serving(self):
        q = self.start_queue()
        q.submit_ok(self.job()[0])
        # Every file of the database overwritten: the next write fails
        # with "file is not a database", and the queue stops.
        for name in ("queue.db", "queue.db-wal", "queue.db-shm"):
            path = os.path.join(q.data_dir, name)
            if os.path.exists(path):
                with open(path, "r+b") as f:
                    f.write(os.urandom(os.path.getsize(path)))
        r = q.submit(self.job()[0])
        self.assertEqual(r.status, 500, r)
        self.assertEqual(r.json()["error"], "internal")
        q.proc.wait(timeout=10 * harness.SLOW)
        self.assertEqual(q.proc.returncode, 1, q.log_tail())
        self.assertIn("the database is damaged", q.log_tail())

    def test_exit_2_bad_command_line_touches_nothing(self):
        d = os.path.join(self.tmp, "never")
        pf = os.path.join(self.tmp, "never.port")
        base = ["--data-dir", d, "--insecure-http", "--port-file", pf]
        cases = [
            ["--listen", "127.0.0.1:99999"], ["--listen", "127.0.0.1"],
            ["--listen", "localhost:8443"], ["--listen", "[::1:8443"],
            ["--listen", "127.0.0.1:-1"], ["--listen", ":80"],
            ["--bogus"], ["--listen"], ["unexpected"],
            ["--handshake-timeout", "0"], ["--handshake-timeout", "1y"],
            ["--max-connections-per-ip", "-1"],
            ["--client-timeout", "0"], ["--max-connections", "15"],
            ["--max-log", "1"], ["--sync", "sometimes"],
            ["--log-level", "loud"], ["--lease-wait", "50",
                                       "--max-lease-wait", "40"],
            ["--tls-cert", "/nonexistent"],
        ]
        for extra in cases:
            res = self.run_queue(base + extra, env_token=True)
            self.assertEqual(res.returncode, 2, (extra, res.stderr))
            self.assertIn(b"skiff-queue: ", res.stderr, extra)
            self.assertFalse(os.path.exists(d), extra)
            self.assertFalse(os.path.exists(pf), extra)
        if harness.on_postgres():
            # Nor is a database touched: no schema is made in it.
            pg = pgfix.shared()
            db = pg.new_database()
            for extra in cases:
                res = self.run_queue(["--postgres", pg.conninfo(db)] +
                                     base[2:] + extra, env_token=True)
                self.assertEqual(res.returncode, 2, (extra, res.stderr))
                self.assertFalse(os.path.exists(pf), extra)
            self.assertEqual(pg.psql(db, "SELECT count(*) FROM pg_namespace "
                                     "WHERE nspname = 'skiff'"), "0\n")
        # The message names what is wrong.
        res = self.run_queue(base + ["--listen", "127.0.0.1:99999"],
                             env_token=True)
        self.assertIn(b"--listen 127.0.0.1:99999", res.stderr)

    def test_exit_3_could_not_start(self):
        d = os.path.join(self.tmp, "d")
        tok = os.path.join(self.tmp, "admin-token")
        with open(tok, "w") as f:
            f.write("sadm_exit-code-test\n")
        tls = ["--tls-cert", self.pki.cert_file, "--tls-key",
               self.pki.key_file]
        common = ["--data-dir", d, "--listen", "127.0.0.1:0"]
        # Files named on the command line are read before the data
        # directory is made: nothing is left behind.
        for extra, why in (
                (["--tls-cert", "/nonexistent", "--tls-key", "/nonexistent",
                  "--admin-token-file", tok], b"--tls-cert"),
                (tls + ["--admin-token-file", "/nonexistent"],
                 b"--admin-token-file"),
                (tls, b"admin token is required"),
                (tls + ["--admin-token-file", tok, "--trusted-keys",
                        "/nonexistent"], b"--trusted-keys"),
                (tls + ["--admin-token-file", tok, "--metrics-token-file",
                        "/nonexistent"], b"--metrics-token-file")):
            res = self.run_queue(common + extra)
            self.assertEqual(res.returncode, 3, (extra, res.stderr))
            self.assertIn(why, res.stderr)
            self.assertFalse(os.path.exists(d), extra)
            if harness.on_postgres():
                # Nor is the database touched: no schema is made in it.
                pg = pgfix.shared()
                db = pg.new_database()
                res = self.run_queue(["--postgres", pg.conninfo(db),
                                      "--listen", "127.0.0.1:0"] + extra)
                self.assertEqual(res.returncode, 3, (extra, res.stderr))
                self.assertIn(why, res.stderr)
                self.assertEqual(pg.psql(db, "SELECT count(*) FROM "
                                 "pg_namespace WHERE nspname = 'skiff'"),
                                 "0\n", extra)
        ok = tls + ["--admin-token-file", tok]
        # PostgreSQL that cannot be reached: exit 3, saying so.
        closed = harness.free_port()
        res = self.run_queue(["--postgres", "host=127.0.0.1 port=%d "
                              "user=skiff dbname=skiff connect_timeout=5"
                              % closed, "--listen", "127.0.0.1:0"] + ok)
        self.assertEqual(res.returncode, 3, res.stderr)
        self.assertIn(b"cannot connect to PostgreSQL", res.stderr)
        self.assertIn(b"port %d failed" % closed, res.stderr)
        # A password in the connection string is a bad command line
        # (other users of the host would see it): exit 2, where it goes
        # instead, and the server is not even asked.
        pf = os.path.join(self.tmp, "pw.port")
        res = self.run_queue(["--postgres", "host=127.0.0.1 port=%d "
                              "password=hunter2 dbname=skiff" % closed,
                              "--listen", "127.0.0.1:0", "--port-file", pf]
                             + ok)
        self.assertEqual(res.returncode, 2, res.stderr)
        self.assertIn(b"no password on the command line", res.stderr)
        self.assertIn(b"--postgres-password-file", res.stderr)
        self.assertNotIn(b"hunter2", res.stderr)
        self.assertFalse(os.path.exists(pf))
        # A data directory that cannot be made.
        blocker = os.path.join(self.tmp, "file")
        open(blocker, "w").close()
        res = self.run_queue(["--data-dir", blocker + "/d", "--listen",
                              "127.0.0.1:0"] + ok)
        self.assertEqual(res.returncode, 3, res.stderr)
        self.assertIn(b"cannot create the data dir", res.stderr)
        # A listen address that is in use, or not of this host.
        q = self.start_queue()
        for listen in ("127.0.0.1:%d" % q.port, "192.0.2.1:0"):
            res = self.run_queue(["--data-dir", d, "--listen", listen] + ok)
            self.assertEqual(res.returncode, 3, (listen, res.stderr))
            self.assertIn(b"cannot listen", res.stderr)
        if not harness.on_postgres():
            # Another queue on the same data directory (replicas on one
            # PostgreSQL database are the design: test_queue_replicas).
            res = self.run_queue(["--data-dir", q.data_dir, "--listen",
                                  "127.0.0.1:0"] + ok)
            self.assertEqual(res.returncode, 3, res.stderr)
            self.assertIn(b"another skiff-queue uses this data dir",
                          res.stderr)
        self.assertTrue(q.running())


if __name__ == "__main__":
    harness.main()
