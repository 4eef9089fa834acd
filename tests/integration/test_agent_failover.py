"""The agent fails over between the queue's URLs (issue 11, item 3).

Two replicas that share their state are two TCP forwarders in front of one
real skiff-queue (agentfix.Forwarder; TLS passes through, so the queue's
certificate is valid on both ports). Killing a forwarder resets its
connections and makes its port refuse, as a dead replica does. A TLS
stand-in that answers every request 503 is a replica that is up but
unwell. Real agent, real queue, real TLS."""
import json
import os
import re
import socket
import time

import harness
from agentfix import Agent, AgentTestCase, Forwarder, log_stream
from harness import wait_until

MiB = 1 << 20


class FailoverTests(AgentTestCase):
    # A short TTL: an agent that did not move on within a few seconds
    # would lose its lease, and the job would come back as attempt 2.
    queue_args = ("--lease-ttl", "10s", "--heartbeat-interval", "2s")

    def forwarder(self, name, **kw):
        return Forwarder(self, self.q.port, name, **kw).start()

    def moves(self, agent):
        return re.findall(r'msg="queue (?:unreachable|unavailable \(HTTP \d+\)),'
                          r' moving to URL (\d+) of (\d+)"', agent.log())

    def test_forwarder_killed_mid_job(self):
        """The replica in use dies twice, mid-log and mid-artifact: the
        log comes out byte-identical, the artifact complete, the job
        succeeds on its first attempt."""
        fa = self.forwarder("fwdA")
        # Slowed, so that the artifact is still uploading when B dies.
        fb = self.forwarder("fwdB", rate=8 * MiB)
        a = self.agent(queue_url="%s,%s" % (fa.url, fb.url))
        # Sticky: everything so far went to the first URL.
        self.assertGreater(fa.connections(), 0)
        self.assertEqual(fb.connections(), 0)
        lines = "".join("line %d\n" % i for i in range(2000))
        job = self.submit_job(self.steps_job(
            {"name": "talk", "script":
             "i=0; while [ $i -lt 2000 ]; do echo \"line $i\"; i=$((i+1)); "
             "[ $((i % 200)) -eq 0 ] && sleep 0.3; done"},
            {"name": "build", "script":
             "head -c 30000000 /dev/urandom > big.bin && "
             "sha256sum big.bin | cut -c1-64",
             "artifacts": ["big.bin"]}))

        def out():
            return log_stream(self.log_of(job), "out")
        wait_until(lambda: b"line 300\n" in out(), 30, what="the log to flow")
        fa.kill()
        a.wait_log("queue unreachable, moving to URL 2 of 2", 20)
        self.assertIn(("2", "2"), self.moves(a))
        fa.start()      # the same port: where the next failure leads
        digest = wait_until(
            lambda: re.search(rb"\n([0-9a-f]{64})\n$", out()), 60,
            what="the artifact's digest in the log").group(1).decode()
        base = fb.upstream_bytes()
        wait_until(lambda: fb.upstream_bytes() >= base + 6 * MiB, 30,
                   what="the artifact upload to be under way through B")
        fb.kill()
        a.wait_log("moving to URL 1 of 2", 20)
        st = self.finished(job, timeout=120)
        self.assertEqual(st["state"], "succeeded", st)
        self.assertEqual(st["attempt"], 1, st)
        self.assertEqual(out().decode(), lines + digest + "\n")
        arts = self.q.request("GET", "/v1/jobs/%s/artifacts" % job).json()
        self.assertEqual([(x["name"], x["sha256"], x["size"])
                          for x in arts["artifacts"]],
                         [("big.bin", digest, 30000000)])
        log = a.log()
        self.assertIn("artifact upload failed", log)    # B died mid-upload
        self.assertNotIn("lease lost", log)
        self.assertGreater(fb.connections(), 0)
        # One move per death, not one per request that was in flight.
        self.assertEqual(self.moves(a), [("2", "2"), ("1", "2")])

    def test_first_url_refuses_at_start(self):
        dead = "https://127.0.0.1:%d" % harness.free_port()
        fb = self.forwarder("fwdB")
        a = self.agent(queue_url="%s,%s" % (dead, fb.url))
        self.assertIn(("2", "2"), self.moves(a))
        self.assertIn('during="registration failed"', a.log())
        job = self.submit_job(self.steps_job("echo through B"))
        st = self.finished(job)
        self.assertEqual(st["state"], "succeeded", st)
        self.assertIn(b"through B", self.log_of(job))
        # It stays on the URL that works.
        self.assertEqual(self.moves(a), [("2", "2")])

    def test_stored_token_and_the_list(self):
        """agent.json keeps the token for the same set of URLs in any
        order and for a list that shares a URL with it (rewritten); a list
        with none in common is another queue: register again."""
        fa, fb, fc = (self.forwarder(n) for n in ("fwdA", "fwdB", "fwdC"))
        # Short long-polls: a killed agent's poll may still be held by the
        # queue (through a relay it cannot see close), and a job handed to
        # it waits out the ack window. With 2 s polls such ghosts are gone
        # before the job below is submitted.
        a = self.agent(queue_url="%s,%s" % (fa.url, fb.url), lease_wait="2s")
        creds = os.path.join(a.state_dir, "net", "agent.json")

        def restart(urls):
            a.kill9()
            a.settings["QUEUE_URL"] = urls
            a.start()
            return wait_until(lambda: re.search(
                r'msg="(using stored agent token|registered)"',
                a.log().split("---- start\n")[-1]), 15,
                what="the agent to come up").group(1)

        def stored(key="queue_url"):
            with open(creds) as f:
                return json.load(f)[key]
        agent_id = stored("agent_id")
        self.assertEqual(restart("%s,%s" % (fb.url, fa.url)),
                         "using stored agent token")
        self.assertEqual(stored(), "%s,%s" % (fa.url, fb.url))
        self.assertEqual(restart("%s,%s" % (fb.url, fc.url)),
                         "using stored agent token")
        self.assertIn("the queue URL list changed; keeping the agent token",
                      a.log())
        self.assertEqual(stored(), "%s,%s" % (fb.url, fc.url))
        self.assertEqual(stored("agent_id"), agent_id)
        # Still good for work, through the list it was restarted with, once
        # the polls of the killed instances have ended.
        time.sleep(2.5)
        wait_until(lambda: (self.q.metric("skiff_lease_waiters", pool="test")
                            or 0) <= 1, 10, what="only the live poll held")
        job = self.submit_job(self.steps_job("echo kept"))
        self.assertEqual(self.finished(job)["state"], "succeeded")
        self.assertEqual(restart(fa.url), "registered")
        self.assertIn("the stored agent token is for other queue URLs",
                      a.log())
        self.assertNotEqual(stored("agent_id"), agent_id)
        self.assertEqual(stored(), fa.url)

    def test_503_moves_on(self):
        """The replica in use dies; the next answers 503 to everything;
        the agent goes on to the third, mid-job, lease kept."""
        fa = self.forwarder("fwdA")
        sick = Forwarder(self, 0, "sick", mode="503").start()
        fc = self.forwarder("fwdC")
        a = self.agent(queue_url="%s,%s,%s" % (fa.url, sick.url, fc.url))
        lines = "".join("tick %d\n" % i for i in range(40))
        job = self.submit_job(self.steps_job(
            "i=0; while [ $i -lt 40 ]; do echo \"tick $i\"; i=$((i+1)); "
            "sleep 0.1; done"))
        wait_until(lambda: b"tick 5\n" in log_stream(self.log_of(job), "out"),
                   30, what="the job to run")
        fa.kill()
        a.wait_log("queue unavailable (HTTP 503), moving to URL 3 of 3", 30)
        st = self.finished(job, timeout=60)
        self.assertEqual(st["state"], "succeeded", st)
        self.assertEqual(st["attempt"], 1, st)
        self.assertEqual(log_stream(self.log_of(job), "out").decode(), lines)
        self.assertTrue(sick.answered(), sick.log())
        self.assertEqual(self.moves(a)[:2], [("2", "3"), ("3", "3")])
        self.assertNotIn("lease lost", a.log())

    def test_401_does_not_fail_over(self):
        """A revoked token is revoked on every replica: exit 77, as with
        one URL, without trying the others."""
        fa, fb = self.forwarder("fwdA"), self.forwarder("fwdB")
        a = self.agent(queue_url="%s,%s" % (fa.url, fb.url), lease_wait="2s")
        agents = self.q.request("GET", "/v1/agents?pool=test").json()["agents"]
        r = self.q.request("DELETE", "/v1/agents/" + agents[0]["id"])
        self.assertEqual(r.status, 204, r)
        self.assertEqual(a.wait_exit(30), 77)
        self.assertIn("revoked", a.log())
        self.assertEqual(self.moves(a), [])
        self.assertEqual(fb.connections(), 0)

    def test_refused_registration_does_not_fail_over(self):
        fa, fb = self.forwarder("fwdA"), self.forwarder("fwdB")
        a = self.agent(start=False, registration_token="srt_not-a-token",
                       queue_url="%s,%s" % (fa.url, fb.url))
        a.start()
        self.assertEqual(a.wait_exit(15), 77)
        self.assertEqual(self.moves(a), [])
        self.assertGreater(fa.connections(), 0)
        self.assertEqual(fb.connections(), 0)


class SeveralAddressesTests(AgentTestCase):
    """One name with several addresses: libcurl resolves "localhost" to
    127.0.0.1 and ::1 and tries each on connect. The queue listens on one
    of them only; the agent gets through either way."""

    def check_through_localhost(self, q, other):
        # The other address refuses: the agent must have tried both.
        fam = socket.AF_INET6 if ":" in other else socket.AF_INET
        with socket.socket(fam, socket.SOCK_STREAM) as s:
            with self.assertRaises(ConnectionRefusedError):
                s.connect((other, q.port))
        a = Agent(self, q, self.pool, q.registration_token(self.pool),
                  self.jwks, "via-" + q.name,
                  queue_url="https://localhost:%d" % q.port)
        self.agents.append(a)
        a.start()
        a.wait_registered()
        jws = harness.sign_job(self.steps_job("echo via localhost"), self.key,
                               self.pool)
        q.submit_ok(jws)
        st = q.wait_state(harness.job_id_of(jws), ("succeeded", "failed"), 30)
        self.assertEqual(st["state"], "succeeded", st)
        a.kill9()

    def test_queue_on_ipv4_only(self):
        self.check_through_localhost(self.q, "::1")

    def test_queue_on_ipv6_only(self):
        q6 = self.start_queue(name="queue6", host="::1")
        self.check_through_localhost(q6, "127.0.0.1")


if __name__ == "__main__":
    harness.main()
