"""The real agent against the real queue over TLS: what jobs do.

Byte-exact logs, failing steps, timeouts, cancellation, secret masking,
and jobs that must be rejected without running anything."""
import base64
import json
import os
import time

import harness
from agentfix import AgentTestCase, log_stream
from harness import wait_until


class JobTests(AgentTestCase):
    # Cancel arrives on the next heartbeat: keep them frequent.
    queue_args = ("--heartbeat-interval", "1s", "--lease-ttl", "30s")

    def test_log_is_byte_exact(self):
        """What a step writes to stdout comes back byte for byte: long
        lines cut into records, a partial line flushed while the step
        pauses, carriage returns, tabs, UTF-8, control bytes, no final
        newline."""
        payload = bytearray()
        payload += b"plain line\n\n\ttabbed\r\n"
        payload += "\u00e9t\u00e9 \u2603 utf-8\n".encode()
        payload += bytes(range(1, 10)) + bytes(range(11, 256)) + b"\n"
        payload += b"x" * 200000 + b"\n"         # one line over 64 KiB
        payload += b"".join(b"line %d\n" % i for i in range(20000))
        payload += b"no newline at the end"
        path = os.path.join(self.tmp, "payload")
        with open(path, "wb") as f:
            f.write(payload)
        a = self.agent()
        job = self.submit_job(self.steps_job(
            "cat %s; printf ' + part1'; sleep 1.5; printf 'part2\\n'; "
            "echo to-stderr >&2" % path))
        st = self.finished(job)
        self.assertEqual(st["state"], "succeeded", st)
        log = self.log_of(job)
        self.assertEqual(st["log_length"], len(log))
        self.assertEqual(log_stream(log, "out"),
                         bytes(payload) + b" + part1part2\n")
        self.assertEqual(log_stream(log, "err"), b"to-stderr\n")
        # The pause flushed the partial line as a continued record.
        self.assertIn(b" out+ ", log)
        # skiffctl reconstructs the same bytes.
        out = self.q.ctl("logs", job, "--stream", "out").stdout
        self.assertEqual(out, bytes(payload) + b" + part1part2\n")
        self.assertTrue(a.running())

    def test_failing_step_stops_the_job(self):
        self.agent()
        marker = os.path.join(self.tmp, "after")
        job = self.submit_job(self.steps_job(
            "echo first", "echo failing; exit 7", "touch %s" % marker))
        st = self.finished(job)
        self.assertEqual(st["state"], "failed")
        self.assertEqual(st["reason_code"], "step_failed")
        self.assertEqual(st["exit_codes"], [0, 7])
        self.assertFalse(os.path.exists(marker))

    def test_continue_on_error(self):
        self.agent()
        job = self.submit_job(self.steps_job(
            {"name": "may fail", "script": "exit 3", "continue_on_error": True},
            "echo still here"))
        st = self.finished(job)
        self.assertEqual(st["state"], "succeeded", st)
        self.assertEqual(st["exit_codes"], [3, 0])
        self.assertIn(b"still here", self.log_of(job))

    def test_step_timeout(self):
        self.agent()
        marker = os.path.join(self.tmp, "never")
        job = self.submit_job(self.steps_job(
            {"name": "slow", "script": "sleep 60", "timeout": 1},
            "touch %s" % marker))
        t0 = time.monotonic()
        st = self.finished(job, timeout=20)
        self.assertEqual(st["state"], "timed_out", st)
        self.assertEqual(st["reason_code"], "step_timeout")
        self.assertLess(time.monotonic() - t0, 10 * harness.SLOW)
        self.assertEqual(st["exit_codes"], [128 + 15])
        self.assertFalse(os.path.exists(marker))

    def test_step_ignoring_sigterm_is_killed_after_grace(self):
        self.agent(kill_grace="1s")
        job = self.submit_job(self.steps_job(
            {"name": "stubborn", "timeout": 1,
             "script": "trap '' TERM; while :; do sleep 0.2; done"}))
        st = self.finished(job, timeout=20)
        self.assertEqual(st["state"], "timed_out")
        self.assertEqual(st["exit_codes"], [128 + 9])

    def test_job_timeout(self):
        self.agent()
        job = self.submit_job(self.steps_job("sleep 1", "sleep 60",
                                             timeout=3))
        st = self.finished(job, timeout=20)
        self.assertEqual(st["state"], "timed_out", st)
        self.assertEqual(st["reason_code"], "job_timeout")

    def test_cancel(self):
        self.agent()
        pidfile = os.path.join(self.tmp, "pid")
        job = self.submit_job(self.steps_job(
            "echo $$ > %s; sleep 120 & wait" % pidfile, "echo never"))
        self.q.wait_state(job, "running")
        wait_until(lambda: os.path.exists(pidfile), 10, what="step start")
        r = self.q.request("POST", "/v1/jobs/%s/cancel" % job,
                           {"reason": "test"})
        self.assertEqual(r.status, 202, r)
        st = self.finished(job, timeout=15)
        self.assertEqual(st["state"], "canceled", st)
        self.assertEqual(st["reason_code"], "canceled")
        self.assertNotIn(b"never", log_stream(self.log_of(job), "out"))
        with open(pidfile) as f:
            pid = int(f.read())
        self.assertFalse(os.path.exists("/proc/%d" % pid))

    def test_clean_environment(self):
        self.agent()
        job = self.submit_job(self.steps_job(
            {"name": "env", "script": "env | sort", "env": {"STEP_VAR": "s"}},
            env={"JOB_VAR": "j", "STEP_VAR": "overridden"}))
        self.assertEqual(self.finished(job)["state"], "succeeded")
        out = log_stream(self.log_of(job), "out").decode()
        self.assertIn("JOB_VAR=j\n", out)
        self.assertIn("STEP_VAR=s\n", out)
        self.assertIn("SKIFF_JOB_ID=%s\n" % job, out)
        self.assertIn("SKIFF_WORKSPACE=", out)
        for leak in ("SKIFF_MUST_NOT_LEAK", "SKIFF_REGISTRATION_TOKEN",
                     "sat_", self.reg):
            self.assertNotIn(leak, out)

    def test_workspace_shared_by_steps_and_removed(self):
        a = self.agent()
        job = self.submit_job(self.steps_job(
            "mkdir -p sub && echo data > sub/file",
            {"name": "workdir", "workdir": "sub", "script": "cat file; pwd"}))
        st = self.finished(job)
        self.assertEqual(st["state"], "succeeded", st)
        out = log_stream(self.log_of(job), "out").decode()
        self.assertIn("data\n", out)
        self.assertIn("/workspace/sub\n", out)
        wait_until(lambda: os.listdir(a.work_dir) == [], 5,
                   what="workspace removal")


class SecretTests(AgentTestCase):
    def setUp(self):
        super().setUp()
        self.pool_priv, self.pool_pub = harness.make_pool_key(self.tmp)

    def seal(self, value):
        return harness.run([harness.SKIFFCTL, "seal", "--pool-key",
                            self.pool_pub], input=value.encode()
                           ).stdout.decode().strip()

    def test_secrets_are_masked_also_when_split(self):
        secret = "s3cr3t-VALUE-42-xyz"
        self.agent(pool_key=self.pool_priv)
        script = (
            'echo "whole: $TOKEN"\n'
            'printf "split: %s" "$(printf %s "$TOKEN" | cut -c1-7)"\n'
            'sleep 1.5\n'
            'printf "%s end\\n" "$(printf %s "$TOKEN" | cut -c8-)"\n'
            'printf "%s" "$TOKEN" | base64\n'
            'echo "err: $TOKEN" >&2\n')
        job = self.submit_job(self.steps_job(
            script, secrets={"TOKEN": self.seal(secret)}))
        st = self.finished(job)
        self.assertEqual(st["state"], "succeeded", st)
        log = self.log_of(job)
        for piece in (secret, secret[:7] + secret[7:],
                      base64.b64encode(secret.encode()).decode().rstrip("=")):
            self.assertNotIn(piece.encode(), log)
        out = log_stream(log, "out").decode()
        self.assertIn("whole: ***\n", out)
        self.assertIn("split: *** end\n", out)
        self.assertIn("err: ***", log_stream(log, "err").decode())

    def test_secret_without_pool_key_is_rejected(self):
        self.agent()
        marker = os.path.join(self.tmp, "ran")
        job = self.submit_job(self.steps_job(
            "touch %s" % marker, secrets={"T": self.seal("x")}))
        st = self.finished(job)
        self.assertEqual(st["state"], "rejected")
        self.assertEqual(st["reason_code"], "secret")
        self.assertFalse(os.path.exists(marker))


class RejectTests(AgentTestCase):
    """Each job below must run nothing and complete as rejected with the
    reason code of docs/protocol.md section 11; the agent keeps working."""

    def marker_job(self):
        self.marker = os.path.join(self.tmp, "ran-%d" % time.monotonic_ns())
        return self.steps_job("touch %s" % self.marker)

    def expect_rejected(self, jws, code):
        job = harness.job_id_of(jws)
        self.q.submit_ok(jws)
        st = self.finished(job)
        self.assertEqual(st["state"], "rejected", st)
        self.assertEqual(st["reason_code"], code, st)
        self.assertFalse(os.path.exists(self.marker))
        self.assertIn(b"rejected before running anything", self.log_of(job))
        return st

    def test_tampered_payload(self):
        a = self.agent()
        jws = harness.sign_job(self.marker_job(), self.key, self.pool)
        h, p, s = jws.split(".")
        claims = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
        claims["job"]["steps"][0]["script"] = "touch %s; echo evil" % self.marker
        p2 = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(
            b"=").decode()
        self.expect_rejected("%s.%s.%s" % (h, p2, s), "bad_signature")
        # The agent keeps working.
        ok = self.submit_job(self.steps_job("echo fine"))
        self.assertEqual(self.finished(ok)["state"], "succeeded")
        self.assertTrue(a.running())

    def test_flipped_signature(self):
        self.agent()
        jws = harness.sign_job(self.marker_job(), self.key, self.pool)
        h, p, s = jws.split(".")
        sig = bytearray(base64.urlsafe_b64decode(s + "=="))
        sig[10] ^= 1
        s2 = base64.urlsafe_b64encode(bytes(sig)).rstrip(b"=").decode()
        self.expect_rejected("%s.%s.%s" % (h, p, s2), "bad_signature")

    def test_unknown_key(self):
        self.agent()
        other, _ = harness.make_signing_key(self.tmp, "other")
        self.expect_rejected(harness.sign_job(self.marker_job(), other,
                                              self.pool), "unknown_kid")

    def test_expired(self):
        # Expired ten seconds ago: the queue (clock skew 60 s) still
        # hands it out; the agent, with no skew, must refuse it.
        self.agent(clock_skew="0s")
        now = int(time.time())
        claims = harness.claims_for(self.marker_job(), self.pool,
                                    iat=now - 100, exp=now - 10)
        self.expect_rejected(harness.sign_claims(claims, self.key), "expired")

    def test_not_yet_valid(self):
        self.agent()
        claims = harness.claims_for(self.marker_job(), self.pool,
                                    nbf=int(time.time()) + 3600)
        self.expect_rejected(harness.sign_claims(claims, self.key),
                             "not_yet_valid")

    def test_wrong_pool_from_a_compromised_queue(self):
        """A queue that files a job of another pool under ours (its
        database edited while it was down) cannot make the agent run it."""
        self.agent()
        jws = harness.sign_job(self.marker_job(), self.key, "another-pool")
        job = harness.job_id_of(jws)
        self.q.submit_ok(jws)
        self.q.stop()
        rows = self.q.sql("UPDATE jobs SET pool = ? WHERE id = ? "
                          "RETURNING id", (self.pool, job))
        self.assertEqual(rows, [[job]])
        self.q.start()
        st = self.finished(job)
        self.assertEqual(st["state"], "rejected", st)
        self.assertEqual(st["reason_code"], "wrong_audience")
        self.assertFalse(os.path.exists(self.marker))

    def test_replayed_after_restart(self):
        """A job the agent ran once is refused when a (compromised) queue
        hands it over again, even after the agent restarted."""
        a = self.agent()
        jws = harness.sign_job(self.marker_job(), self.key, self.pool)
        job = harness.job_id_of(jws)
        self.q.submit_ok(jws)
        self.assertEqual(self.finished(job)["state"], "succeeded")
        self.assertTrue(os.path.exists(self.marker))
        os.unlink(self.marker)
        a.kill9()
        # A second queue (the first refuses a duplicate job id) hands the
        # same signed job to the same agent, restarted on the same state.
        q2 = self.start_queue(name="queue2")
        a.queue = q2
        a.settings["QUEUE_URL"] = q2.url
        a.settings["REGISTRATION_TOKEN"] = q2.registration_token(self.pool)
        a.start()
        a.wait_registered()
        q2.submit_ok(jws)
        st = q2.wait_state(job, ("rejected", "succeeded"), 20)
        self.assertEqual(st["state"], "rejected", st)
        self.assertEqual(st["reason_code"], "replayed")
        self.assertFalse(os.path.exists(self.marker))

    def test_alg_none(self):
        self.agent()
        claims = harness.claims_for(self.marker_job(), self.pool)
        with open(self.key) as f:
            kid = json.load(f)["kid"]
        jws = harness.sign_claims(claims, self.key,
                                  header={"alg": "none", "kid": kid})
        self.expect_rejected(jws, "alg_not_allowed")


if __name__ == "__main__":
    harness.main()
