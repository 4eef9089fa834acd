#!/usr/bin/python3
"""skiff-queue: tokens (docs/protocol.md sections 1, 4.1, 5.6, 5.7): the
admin token, registration tokens per pool, agent tokens; revocation;
hashes only in the store; early verification of submitted jobs with
--trusted-keys.
"""
import base64
import json
import time

import harness


class AuthTest(harness.SkiffTestCase):

    def test_admin_endpoints_need_the_admin_token(self):
        q = self.start_queue()
        for method, path in (("GET", "/v1/jobs"), ("GET", "/v1/agents"),
                             ("POST", "/v1/pools/p/tokens"),
                             ("GET", "/v1/jobs/abcdefgh")):
            for tok in (None, "wrong", q.admin_token + "x"):
                r = q.request(method, path, token=tok)
                self.assertEqual(r.status, 401, (method, path, tok, r))
                self.assertEqual(r.json()["error"], "unauthorized")
        r = q.request("GET", "/v1/jobs", headers={"Authorization": "Basic eDp5"},
                      token=None)
        self.assertEqual(r.status, 401)
        r = q.request("GET", "/v1/jobs", token="bad token with spaces")
        self.assertEqual(r.status, 401)
        # An agent token is no admin token.
        agent = q.register("test")
        self.assertEqual(q.request("GET", "/v1/jobs", token=agent.token).status,
                         401)
        # Health needs nothing.
        r = q.request("GET", "/v1/health", token=None)
        self.assertEqual(r.json(), {"status": "ok", "version": r.json()["version"],
                                    "protocol": 1})

    def test_revoked_registration_token_refused(self):
        q = self.start_queue()
        r = q.request("POST", "/v1/pools/linux-x64/tokens",
                      {"description": "ci pool"})
        self.assertEqual(r.status, 201, r)
        tok = r.json()
        self.assertTrue(tok["token"].startswith("srt_"))
        self.assertTrue(tok["id"].startswith("tok_"))
        agent = q.register(token=tok["token"], name="a1")
        self.assertEqual(agent.info["pool"], "linux-x64")
        self.assertTrue(agent.token.startswith("sat_"))
        self.assertEqual(agent.lease(0).status, 204)
        lst = q.request("GET", "/v1/pools/linux-x64/tokens").json()["tokens"]
        self.assertEqual([(t["id"], t["description"], t["revoked"])
                          for t in lst], [(tok["id"], "ci pool", None)])
        self.assertEqual(q.request("DELETE", "/v1/tokens/" + tok["id"]).status,
                         204)
        # Registration with it fails, and the agents it made are revoked.
        r = q.request("POST", "/v1/agents/register", {"name": "a2"},
                      token=tok["token"])
        self.assertEqual((r.status, r.json()["error"]), (401, "unauthorized"))
        r = agent.lease(0)
        self.assertEqual((r.status, r.json()["error"]), (401, "unauthorized"))
        lst = q.request("GET", "/v1/pools/linux-x64/tokens").json()["tokens"]
        self.assertIsNotNone(lst[0]["revoked"])
        # Revoking twice is fine; an unknown token is 404.
        self.assertEqual(q.request("DELETE", "/v1/tokens/" + tok["id"]).status,
                         204)
        self.assertEqual(q.request("DELETE", "/v1/tokens/tok_nope").status, 404)

    def test_revoked_agent_refused_and_its_lease_requeued(self):
        q = self.start_queue()
        agent = q.register("test", name="revoked")
        other = q.register("test", name="other")
        jws, jid = self.job()
        q.submit_ok(jws)
        lease = agent.lease_ok(0)["lease"]
        self.assertEqual(agent.heartbeat(lease).status, 200)
        r = q.request("DELETE", "/v1/agents/" + agent.id)
        self.assertEqual(r.status, 204)
        for r in (agent.lease(0), agent.heartbeat(lease),
                  agent.log(lease, 0, b"x")):
            self.assertEqual((r.status, r.json()["error"]),
                             (401, "unauthorized"))
        # Its acknowledged attempt counted; the job goes to another agent.
        st = q.status(jid)
        self.assertEqual((st["state"], st["attempt"]), ("queued", 2))
        self.assertEqual(other.lease_ok(0)["job"], jid)
        agents = {a["id"]: a for a in
                  q.request("GET", "/v1/agents?pool=test").json()["agents"]}
        self.assertEqual(agents[agent.id]["state"], "gone")
        self.assertEqual(agents[other.id]["state"], "busy")
        self.assertEqual(agents[other.id]["jobs"], [jid])
        self.assertEqual(q.request("DELETE", "/v1/agents/agt_nope").status, 404)

    def test_tokens_are_stored_hashed(self):
        q = self.start_queue()
        agent = q.register("test")
        reg = agent.registration_token
        q.stop()
        dump = q.store_dump()
        # The dump is of this queue's store: the agent is in it.
        self.assertIn(agent.id, dump)
        for secret in (reg, agent.token, q.admin_token):
            self.assertNotIn(secret, dump)

    def test_trusted_keys_refuse_bad_jobs_early(self):
        signer, jwks = harness.make_signing_key(self.tmp, "trusted")
        rogue, _ = harness.make_signing_key(self.tmp, "rogue")
        q = self.start_queue("--trusted-keys", jwks)
        good = harness.sign_job(harness.simple_job(), signer, "test")
        self.assertEqual(q.submit(good).status, 201)
        bad = harness.sign_job(harness.simple_job(), rogue, "test")
        r = q.submit(bad)
        self.assertEqual((r.status, r.json()["error"], r.json()["reason"]),
                         (422, "rejected", "unknown_kid"))
        # A flipped signature byte.
        h, p, s = good.split(".")
        forged = harness.sign_job(harness.simple_job(name="other"), signer,
                                  "test")
        r = q.submit(".".join([h, forged.split(".")[1], s]))
        self.assertEqual(r.json()["reason"], "bad_signature")
        # Without trusted keys the queue takes the same job: agents decide.
        q2 = self.start_queue(name="open")
        self.assertEqual(q2.submit(bad).status, 201)

    def test_submit_refusals(self):
        q = self.start_queue()
        jws, jid = self.job()
        self.assertEqual(q.submit(jws).status, 201)
        r = q.submit(jws)
        self.assertEqual((r.status, r.json()["error"]), (409, "conflict"))
        r = q.request("POST", "/v1/jobs", jws, {"Content-Type": "text/plain"})
        self.assertEqual(r.status, 415)
        r = q.submit("not.a.jws")
        self.assertEqual((r.status, r.json()["error"]), (400, "bad_request"))
        r = q.submit("onlyone")
        self.assertEqual(r.json()["reason"], "malformed")
        # A payload that is not a job.
        payload = base64.urlsafe_b64encode(json.dumps(
            {"jti": "shortid"}).encode()).decode().rstrip("=")
        r = q.submit("eyJhbGciOiJFZERTQSJ9.%s.c2ln" % payload)
        self.assertEqual(r.status, 400)
        self.assertIn("jti", r.json()["message"])
        # Expired beyond the clock skew.
        now = int(time.time())
        claims = harness.claims_for(harness.simple_job(), "test",
                                    iat=now - 7200, exp=now - 3600)
        r = q.submit(harness.sign_claims(claims, self.signing_key()[0]))
        self.assertEqual((r.status, r.json()["reason"]), (422, "expired"))
        # Within the clock skew the queue takes it (an agent may too).
        claims = harness.claims_for(harness.simple_job(), "test",
                                    exp=now - 5)
        r = q.submit(harness.sign_claims(claims, self.signing_key()[0]))
        self.assertEqual(r.status, 201, r)
        # A pool name the queue cannot serve.
        r = q.submit(harness.sign_job(harness.simple_job(),
                                      self.signing_key()[0], "bad pool"))
        self.assertEqual(r.status, 400)


if __name__ == "__main__":
    harness.main()
