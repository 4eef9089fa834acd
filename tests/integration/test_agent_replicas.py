#!/usr/bin/python3
"""A real agent on two real queue replicas sharing one PostgreSQL (issue
11): the replica the agent is using is killed with SIGKILL mid-job, the
agent moves to the other URL, and the job goes on where it was: same
lease and attempt, the log byte-identical, the artifact complete.

Always on PostgreSQL (pgfix.py), whatever SKIFF_TEST_STORE says."""
import hashlib
import re

import harness
from agentfix import AgentTestCase, log_stream
from harness import wait_until


class AgentOnReplicas(AgentTestCase):

    def setUp(self):
        harness.SkiffTestCase.setUp(self)
        args = ("--lease-ttl", "10s", "--heartbeat-interval", "2s")
        self.q = harness.Queue(self.tmp, args, pki=self.pki, name="replica1",
                               store="postgres")
        self._queues.append(self.q)
        self.q.start()
        self.q2 = harness.Queue(self.tmp, args, pki=self.pki,
                                name="replica2", store="postgres",
                                database=self.q.database,
                                admin_token=self.q.admin_token)
        self._queues.append(self.q2)
        self.q2.start()
        self.key, self.jwks = self.signing_key()
        self.reg = self.q.registration_token(self.pool)
        self.agents = []
        self.addCleanup(self._show_agent_logs)

    def test_replica_killed_mid_job(self):
        a = self.agent(queue_url="%s,%s" % (self.q.url, self.q2.url))
        lines = "".join("line %d\n" % i for i in range(2000))
        job = self.submit_job(self.steps_job(
            {"name": "talk", "script":
             "i=0; while [ $i -lt 2000 ]; do echo \"line $i\"; i=$((i+1)); "
             "[ $((i % 200)) -eq 0 ] && sleep 0.3; done"},
            {"name": "build", "script":
             "head -c 20000000 /dev/urandom > big.bin && "
             "sha256sum big.bin | cut -c1-64",
             "artifacts": ["big.bin"]}))
        # The log is read through replica 2, which outlives replica 1.
        self.q, alive = self.q2, self.q

        def out():
            return log_stream(self.log_of(job), "out")
        wait_until(lambda: b"line 300\n" in out(), 30 * harness.SLOW,
                   what="the log to flow")
        alive.kill9()
        a.wait_log("moving to URL 2 of 2", 20 * harness.SLOW)
        st = self.finished(job, timeout=120 * harness.SLOW)
        self.assertEqual(st["state"], "succeeded", st)
        self.assertEqual(st["attempt"], 1, st)
        digest = re.search(rb"\n([0-9a-f]{64})\n$", out()).group(1).decode()
        self.assertEqual(out().decode(), lines + digest + "\n")
        arts = self.q2.request("GET", "/v1/jobs/%s/artifacts" % job).json()
        self.assertEqual([(x["name"], x["sha256"], x["size"])
                          for x in arts["artifacts"]],
                         [("big.bin", digest, 20000000)])
        r = self.q2.request("GET", "/v1/jobs/%s/artifacts/big.bin" % job)

        self.assertEqual(hashlib.sha256(r.body).hexdigest(), digest)
        self.assertNotIn("lease lost", a.log())


if __name__ == "__main__":
    harness.main()
