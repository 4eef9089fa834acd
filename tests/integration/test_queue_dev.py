#!/usr/bin/python3
"""skiff-queue --dev (its own certificates made with GnuTLS, tokens,
dev.env), --help, --version, exit codes, and skiffctl's admin commands
end to end against it.
"""
import json
import os
import signal
import subprocess

import harness
from harness import wait_until


def read_env(path):
    env = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("=")
            env[k] = v
    return env


class DevTest(harness.SkiffTestCase):

    def start_dev(self, data_dir, *extra):
        port_file = os.path.join(self.tmp, "dev.port")
        if os.path.exists(port_file):
            os.unlink(port_file)
        proc = harness.start_process(
            [harness.QUEUE_BIN, "--dev", "--data-dir", data_dir,
             "--listen", "127.0.0.1:0", "--port-file", port_file] + list(extra),
            env={k: v for k, v in os.environ.items()
                 if k != "SKIFF_ADMIN_TOKEN"},
            log=os.path.join(self.tmp, "dev.log"))
        wait_until(lambda: os.path.exists(port_file) or proc.poll() is not None,
                   10, what="the dev queue to listen")
        self.assertIsNone(proc.poll())
        return proc, read_env(os.path.join(data_dir, "dev.env"))

    def ctl(self, env, *args, check=True):
        e = dict(os.environ)
        e.update({k: v for k, v in env.items() if k.startswith("SKIFF_")})
        e.pop("SKIFF_ADMIN_TOKEN_FILE", None)
        return harness.run([harness.SKIFFCTL] + list(args), env=e, check=check)

    def test_dev_mode_certificates_tokens_and_env(self):
        data = os.path.join(self.tmp, "dev-data")
        proc, env = self.start_dev(data)
        for k in ("SKIFF_QUEUE_URL", "SKIFF_CA_FILE", "SKIFF_ADMIN_TOKEN",
                  "SKIFF_REGISTRATION_TOKEN", "SKIFF_POOL"):
            self.assertTrue(env.get(k), k)
        self.assertEqual(env["SKIFF_POOL"], "dev")
        self.assertTrue(env["SKIFF_QUEUE_URL"].startswith("https://127.0.0.1:"))
        self.assertEqual(os.stat(os.path.join(data, "dev.env")).st_mode & 0o777,
                         0o600)
        # curl verifies the generated certificate with the generated CA.
        r = harness.run(["curl", "-sS", "--cacert", env["SKIFF_CA_FILE"],
                         env["SKIFF_QUEUE_URL"] + "/v1/health"])
        self.assertEqual(json.loads(r.stdout)["status"], "ok")
        r = harness.run(["curl", "-sS", "--cacert", env["SKIFF_CA_FILE"],
                         "https://localhost:%s/v1/health" %
                         env["SKIFF_QUEUE_URL"].rsplit(":", 1)[1]])
        self.assertEqual(json.loads(r.stdout)["protocol"], 1)
        # openssl agrees about what the certificate covers.
        text = harness.run(["openssl", "x509", "-in",
                            os.path.join(data, "tls", "server.pem"), "-noout",
                            "-text"]).stdout.decode()
        for san in ("DNS:localhost", "IP Address:127.0.0.1", "IP Address:0:0:0:0:0:0:0:1"):
            self.assertIn(san, text)
        harness.run(["openssl", "verify", "-CAfile", env["SKIFF_CA_FILE"],
                     os.path.join(data, "tls", "server.pem")])
        # The registration token works for pool dev.
        q = harness.Queue(self.tmp, pki=None, name="devclient")
        client = harness.Client(env["SKIFF_QUEUE_URL"], env["SKIFF_CA_FILE"],
                                env["SKIFF_REGISTRATION_TOKEN"])
        r = client.request("POST", "/v1/agents/register", {"name": "dev-agent"})
        self.assertEqual((r.status, r.json()["pool"]), (201, "dev"))
        del q
        # A restart on the same data dir keeps the CA and the tokens.
        self.assertEqual(harness.stop_process(proc), 0)
        proc, env2 = self.start_dev(data)
        self.assertEqual(env2["SKIFF_ADMIN_TOKEN"], env["SKIFF_ADMIN_TOKEN"])
        self.assertEqual(env2["SKIFF_REGISTRATION_TOKEN"],
                         env["SKIFF_REGISTRATION_TOKEN"])
        r = self.ctl(env2, "agents")
        self.assertIn(b"dev-agent", r.stdout)
        harness.stop_process(proc)

    def test_dev_mode_temporary_dir_removed(self):
        tmpdir = os.path.join(self.tmp, "tmpdirs")
        os.makedirs(tmpdir)
        port_file = os.path.join(self.tmp, "p")
        env = dict(os.environ, TMPDIR=tmpdir)
        env.pop("SKIFF_ADMIN_TOKEN", None)
        proc = harness.start_process([harness.QUEUE_BIN, "--dev", "--listen",
                                      "127.0.0.1:0", "--port-file", port_file],
                                     env=env, log=os.path.join(self.tmp, "l"))
        wait_until(lambda: os.path.exists(port_file), 10, what="listening")
        made = os.listdir(tmpdir)
        self.assertEqual(len(made), 1)
        self.assertTrue(made[0].startswith("skiff-queue-dev."))
        self.assertEqual(harness.stop_process(proc, signal.SIGINT), 0)
        self.assertEqual(os.listdir(tmpdir), [])

    def test_help_version_and_exit_codes(self):
        r = harness.run([harness.QUEUE_BIN, "--help"])
        text = r.stdout.decode()
        for word in ("SYNOPSIS", "--dev", "--tls-cert", "--insecure-http",
                     "--ack-window", "--lease-ttl", "--max-attempts",
                     "EXIT STATUS", "--port-file"):
            self.assertIn(word, text)
        r = harness.run([harness.QUEUE_BIN, "--version"])
        self.assertIn(b"protocol 1", r.stdout)
        for argv, code in (([], 2), (["--bogus"], 2),
                           (["--insecure-http"], 2),
                           (["--dev", "--ack-window", "0"], 2),
                           (["--dev", "--tls-cert", "x"], 2),
                           (["--data-dir", self.tmp + "/d", "--insecure-http"],
                            3),
                           (["--data-dir", self.tmp + "/d", "--tls-cert",
                             "/nonexistent", "--tls-key", "/nonexistent"], 3)):
            env = {k: v for k, v in os.environ.items()
                   if k != "SKIFF_ADMIN_TOKEN"}
            res = subprocess.run([harness.QUEUE_BIN] + argv, capture_output=True,
                                 timeout=30, env=env)
            self.assertEqual(res.returncode, code, (argv, res.stderr))
            self.assertTrue(res.stderr, argv)
        # A port in use is a start-up failure too.
        q = self.start_queue()
        res = subprocess.run([harness.QUEUE_BIN, "--data-dir", self.tmp + "/e",
                              "--insecure-http", "--listen",
                              "127.0.0.1:%d" % q.port, "--admin-token-file",
                              q.token_file], capture_output=True, timeout=30)
        self.assertEqual(res.returncode, 3, res.stderr)
        self.assertIn(b"cannot listen", res.stderr)

    def test_insecure_http_and_ipv6(self):
        q = self.start_queue(insecure=True)
        self.assertTrue(q.url.startswith("http://"))
        self.assertEqual(q.request("GET", "/v1/health").status, 200)
        try:
            socket_ok = __import__("socket").has_ipv6
            v6 = harness.Queue(self.tmp, pki=self.pki, host="::1", name="v6")
            self._queues.append(v6)
            v6.start()
        except AssertionError:
            socket_ok = False
        if socket_ok:
            self.assertEqual(v6.request("GET", "/v1/health").status, 200)

    def test_skiffctl_end_to_end(self):
        q = self.start_queue()
        key, _ = self.signing_key()
        # token create / list / revoke
        tok = q.ctl("token", "create", "ci", "--description", "ci agents")
        token = tok.stdout.decode().strip()
        self.assertTrue(token.startswith("srt_"))
        listing = q.ctl("token", "list", "ci", "--json")
        tokens = json.loads(listing.stdout)["tokens"]
        self.assertEqual(tokens[0]["description"], "ci agents")
        agent = q.register(token=token, name="ctl-agent")
        # submit (from standard input), status, jobs
        jws = harness.sign_job(harness.simple_job(name="via ctl"), key, "ci")
        jid = harness.job_id_of(jws)
        r = q.ctl("submit", "-", input=jws.encode())
        self.assertIn(jid.encode(), r.stdout)
        self.assertIn(b"queued", r.stdout)
        st = json.loads(q.ctl("status", jid, "--json").stdout)
        self.assertEqual((st["id"], st["state"], st["name"]),
                         (jid, "queued", "via ctl"))
        self.assertIn(b"via ctl", q.ctl("status", jid).stdout)
        self.assertIn(jid.encode(), q.ctl("jobs", "--pool", "ci").stdout)
        self.assertNotIn(jid.encode(), q.ctl("jobs", "--state",
                                             "running").stdout)
        # agents
        lease = agent.lease_ok(0)["lease"]
        agent.heartbeat(lease)
        agents = json.loads(q.ctl("agents", "--pool", "ci", "--json").stdout)
        self.assertEqual(agents["agents"][0]["jobs"], [jid])
        self.assertIn(b"busy", q.ctl("agents").stdout)
        # cancel reaches the agent
        self.assertIn(b"cancel requested", q.ctl("cancel", jid, "--reason",
                                                 "stop it").stdout)
        self.assertTrue(agent.heartbeat(lease).json()["cancel"])
        agent.complete(lease, "canceled", [-1], 0, reason_code="canceled")
        r = q.ctl("cancel", jid, check=False)
        self.assertEqual(r.returncode, 3)
        self.assertIn(b"409", r.stderr)
        # submit --wait reports the end
        jws2 = harness.sign_job(harness.simple_job(), key, "ci")
        waiter = harness.start_process(
            [harness.SKIFFCTL, "submit", "--wait", "-", "--url", q.url,
             "--token-file", q.token_file, "--ca", q.ca_file],
            stdin=subprocess.PIPE, log=self.tmp + "/wait.out")
        waiter.stdin.write(jws2.encode())
        waiter.stdin.close()
        l2 = agent.lease_ok(10)["lease"]
        agent.heartbeat(l2)
        agent.complete(l2, "succeeded", [0], 0)
        wait_until(lambda: waiter.poll() is not None, 15, what="submit --wait")
        self.assertEqual(waiter.returncode, 0)
        # agents revoke, token revoke
        self.assertEqual(q.ctl("agents", "revoke", agent.id).returncode, 0)
        self.assertEqual(agent.lease(0).status, 401)
        self.assertEqual(q.ctl("token", "revoke", tokens[0]["id"]).returncode,
                         0)
        # errors: bad admin token, no URL
        r = q.ctl("jobs", "--token-file", "/dev/null", check=False)
        self.assertNotEqual(r.returncode, 0)
        env = dict(os.environ)
        env.pop("SKIFF_QUEUE_URL", None)
        r = harness.run([harness.SKIFFCTL, "jobs"], env=env, check=False)
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"SKIFF_QUEUE_URL", r.stderr)


if __name__ == "__main__":
    harness.main()
