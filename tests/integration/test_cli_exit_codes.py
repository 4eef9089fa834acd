#!/usr/bin/python3
"""Exit codes of skiff-agent (docs/agent.md "Exit codes") and skiffctl
(skiffctl --help, docs/skiffctl.md), each documented code from the real
binaries; the refusals behind them name what they refuse:

- skiff-agent: 0 (help, version, idle), 1 (runtime failure), 10 (signal),
  64 (the command line's shape), 77 (credentials refused), 78 (a bad
  setting, a configuration file or any other file named explicitly that
  cannot be used, a queue URL refused: plain http:// to anything but a
  loopback literal or localhost, userinfo, ...);
- skiffctl: 0, 1 (failed; a named file that cannot be read), 2 (usage; a
  refused URL, before any connection), 3 (queue unreachable or error);
- job ids that start with '-': skiffctl sign never makes one, and every
  command that takes an id takes one after "--", through the real queue.

Refused URLs that point off loopback are tried inside a network namespace
of the test's own, so that nothing leaves the machine even on code that
would let them through.
"""
import json
import os
import signal
import socket
import subprocess
import unittest

import agentfix
import harness
from harness import AGENT_BIN, SKIFFCTL, DASH_JTI


def in_netns(argv, env=None, timeout=30):
    """argv in a network namespace of its own (only a loopback that is
    down): whatever it tries to reach, nothing leaves the machine."""
    res = subprocess.run(["unshare", "--net", "--"] + argv, env=env,
                         capture_output=True, timeout=timeout * harness.SLOW)
    return res


def netns_available():
    try:
        return in_netns(["true"]).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


class AgentExitCodes(agentfix.AgentTestCase):

    def check(self, a, *args, env_extra=None):
        """skiff-agent --config <a's file> args...: CompletedProcess."""
        a.write_config()
        env = a.env()
        env.update(env_extra or {})
        return harness.run([AGENT_BIN, "--config", a.conf_path] + list(args),
                           check=False, env=env)

    def test_0_help_and_version(self):
        res = harness.run([AGENT_BIN, "--help"], check=False)
        self.assertEqual(res.returncode, 0)
        for code in (b"0 ", b"1 ", b"10 ", b"64 ", b"77 ", b"78 "):
            self.assertIn(b"  " + code, res.stdout)
        res = harness.run([AGENT_BIN, "--version"], check=False)
        self.assertEqual((res.returncode, res.stdout[:12]),
                         (0, b"skiff-agent "))
        # --help answers whatever else the command line holds.
        res = harness.run([AGENT_BIN, "--bogus", "--help"], check=False)
        self.assertEqual(res.returncode, 0)

    def test_0_idle_timeout(self):
        a = self.agent(idle_timeout="1s")
        self.assertEqual(a.wait_exit(20), 0)

    def test_1_runtime_failure(self):
        a = self.agent(start=False)
        # The instance id cannot be written: a directory is in its place.
        os.makedirs(os.path.join(a.state_dir, "instance", "x"))
        a.start()
        self.assertEqual(a.wait_exit(20), 1, a.log())
        self.assertIn("cannot write the instance id", a.log())

    def test_10_signal(self):
        a = self.agent()
        a.signal(signal.SIGTERM)
        self.assertEqual(a.wait_exit(20), 10)

    def test_64_usage(self):
        a = self.agent(start=False)
        cases = [(["--bogus"], b"--bogus"), (["-x"], b"-- 'x'"),
                 (["--pool"], b"--pool"), (["frob"], b"'frob'"),
                 (["run", "extra"], b"run takes no arguments"),
                 # The shape is checked before any file is read.
                 (["--bogus", "--config", "/nonexistent/typo.conf"],
                  b"--bogus")]
        for args, msg in cases:
            res = self.check(a, *args)
            self.assertEqual(res.returncode, 64, (args, res.stderr))
            self.assertIn(msg, res.stderr, args)
        # Nothing was touched: no state directory was made.
        self.assertFalse(os.path.exists(a.state_dir))
        res = self.check(a, "prepull")
        self.assertEqual(res.returncode, 64, res.stderr)

    def test_77_credentials_refused(self):
        a = self.agent(start=False, registration_token="srt_not-a-token")
        a.start()
        self.assertEqual(a.wait_exit(20), 77)

    def test_78_a_bad_value_from_any_source(self):
        a = self.agent(start=False, capacity="many")
        res = self.check(a, "--check-config")
        self.assertEqual(res.returncode, 78)
        self.assertIn(b"SKIFF_CAPACITY", res.stderr)
        a.settings["CAPACITY"] = "1"
        for args, env in ((["--capacity", "many"], None),
                          ([], {"SKIFF_CAPACITY": "many"})):
            res = self.check(a, "--check-config", *args, env_extra=env)
            self.assertEqual(res.returncode, 78, (args, env))
            self.assertIn(b"SKIFF_CAPACITY", res.stderr)

    def test_78_named_config_file_missing(self):
        a = self.agent(start=False)
        a.write_config()
        env = a.env()
        typo = os.path.join(self.tmp, "typo.conf")
        for argv, extra in (
                (["--config", typo], {}),
                (["--config=" + typo], {}),
                (["--conf", typo], {}),         # getopt's abbreviation
                (["--config", self.tmp], {}),   # a directory
                ([], {"SKIFF_CONFIG": typo}),
                ([], {"SKIFF_CONFIG": ""})):
            for mode in (["--check-config"], []):
                e = dict(env, **extra)
                res = harness.run([AGENT_BIN] + argv + mode, check=False,
                                  env=e)
                self.assertEqual(res.returncode, 78, (argv, extra, mode,
                                                      res.stderr))
                self.assertNotIn(b"configuration is valid", res.stderr)
                self.assertIn(b"configuration file", res.stderr)
                if argv[-1:] != [self.tmp] and extra.get("SKIFF_CONFIG") != "":
                    self.assertIn(typo.encode(), res.stderr)
        # A run was refused before it made anything.
        self.assertFalse(os.path.exists(a.state_dir))
        # --config wins over SKIFF_CONFIG, and then the named file is used.
        res = harness.run([AGENT_BIN, "--config", a.conf_path,
                           "--check-config"], check=False,
                          env=dict(env, SKIFF_CONFIG=typo))
        self.assertEqual(res.returncode, 0, res.stderr)

    def test_78_named_files_unusable(self):
        missing = os.path.join(self.tmp, "missing")
        plain = os.path.join(self.tmp, "not-executable")
        with open(plain, "w") as f:
            f.write("#!/bin/sh\n")
        os.chmod(plain, 0o644)
        empty = os.path.join(self.tmp, "empty-token")
        open(empty, "w").close()
        fifo = os.path.join(self.tmp, "fifo")
        os.mkfifo(fifo)
        cases = [
            ({"ca_file": missing}, "SKIFF_CA_FILE"),
            ({"ca_file": fifo}, "SKIFF_CA_FILE"),   # must not hang
            ({"inputs_ca_file": missing}, "SKIFF_INPUTS_CA_FILE"),
            ({"trusted_keys": missing}, "SKIFF_TRUSTED_KEYS"),
            ({"trusted_keys": self.tmp}, "SKIFF_TRUSTED_KEYS"),
            ({"pool_key": missing}, "SKIFF_POOL_KEY"),
            ({"registration_token": None,
              "registration_token_file": missing},
             "SKIFF_REGISTRATION_TOKEN_FILE"),
            ({"registration_token": None, "registration_token_file": empty},
             "SKIFF_REGISTRATION_TOKEN_FILE"),
            ({"on_exit": missing}, "SKIFF_ON_EXIT"),
            ({"on_exit": plain}, "SKIFF_ON_EXIT"),
        ]
        for settings, key in cases:
            a = self.agent(name="a%d" % len(self.agents), start=False)
            for k, v in settings.items():
                a.settings[k.upper()] = v
            path = list(settings.values())[-1]
            for mode in (["--check-config"], []):
                res = self.check(a, *mode)
                self.assertEqual(res.returncode, 78, (settings, mode,
                                                      res.stderr))
                self.assertIn(key.encode(), res.stderr)
                self.assertIn(path.encode(), res.stderr)
            self.assertFalse(os.path.exists(a.state_dir), settings)
        # A stored agent token does not excuse a token file that is gone:
        # the agent registers again after a revocation.
        a = self.agent(name="stored")
        a.kill9()
        a.settings["REGISTRATION_TOKEN"] = None
        a.settings["REGISTRATION_TOKEN_FILE"] = missing
        res = self.check(a)
        self.assertEqual(res.returncode, 78, res.stderr)
        self.assertIn(missing.encode(), res.stderr)

    def test_78_queue_urls(self):
        a = self.agent(start=False)
        refused = {
            # The two.
            "http://127.evil.example/": b"only allowed to a loopback",
            "http://localhost:80@evil.example/": b"userinfo",
            # Their neighbours.
            "http://127.0.0.1@evil.example/": b"userinfo",
            "http://127.0.0.1\\@evil.example/": b"userinfo",
            "http://@127.0.0.1/": b"userinfo",
            "https://user:secret@queue.example/": b"userinfo",
            "http://127.0.0.1.evil.example/": b"only allowed to a loopback",
            "http://127.0.0.1%2eevil.example/": b"only allowed to a loopback",
            "http://localhost.evil.example/": b"only allowed to a loopback",
            "http://localhost./": b"only allowed to a loopback",
            "http://127.0.0.1./": b"only allowed to a loopback",
            "http://x.localhost/": b"only allowed to a loopback",
            "http://[::ffff:127.0.0.1]/": b"only allowed to a loopback",
            "http://[::]/": b"only allowed to a loopback",
            "http://0.0.0.0/": b"only allowed to a loopback",
            "http://0/": b"only allowed to a loopback",
            "http://128.0.0.1/": b"only allowed to a loopback",
            "http://queue.example/": b"only allowed to a loopback",
            "HTTP://queue.example/": b"only allowed to a loopback",
            "http://[::1%25lo]/": b"zone id",
            "http://127.0.0.1/?next=http://evil/": b"query",
            "http://127.0.0.1/#x": b"fragment",
            "ftp://127.0.0.1/": b"must be https://",
            "queue.example:8443": b"not a URL",
            "http://127.0.0.1:99999/": b"not a URL",
        }
        for url, why in refused.items():
            a.settings["QUEUE_URL"] = url
            res = self.check(a, "--check-config")
            self.assertEqual(res.returncode, 78, (url, res.stderr))
            self.assertIn(b"SKIFF_QUEUE_URL", res.stderr, url)
            self.assertIn(why, res.stderr, url)
        accepted = {
            "http://127.0.0.1:8080/": "http://127.0.0.1:8080",
            "http://127.9.8.7/": "http://127.9.8.7",
            "http://[::1]:8080": "http://[::1]:8080",
            "http://localhost:8080/": "http://localhost:8080",
            "http://LOCALHOST/": "http://LOCALHOST",
            # Another spelling of 127.0.0.1 is 127.0.0.1: libcurl connects
            # there, and the URL the agent keeps says so.
            "http://0x7f.1:8080/": "http://127.0.0.1:8080",
            "http://127.1/": "http://127.0.0.1",
            "http://%31%32%37.0.0.1/": "http://127.0.0.1",
            "https://queue.example:8443/skiff/": "https://queue.example:8443/skiff",
        }
        for url, kept in accepted.items():
            a.settings["QUEUE_URL"] = url
            res = self.check(a, "--check-config")
            self.assertEqual(res.returncode, 0, (url, res.stderr))
            self.assertIn(("SKIFF_QUEUE_URL=%s\n" % kept).encode(), res.stdout)

    def test_78_docker_host(self):
        a = self.agent(start=False)
        for host in ("tcp://127.0.0.1:2375", "unix://host/var/run/d.sock",
                     "unix://relative.sock", "unix:///" + "x" * 120):
            a.settings["DOCKER_HOST"] = host
            res = self.check(a, "--check-config")
            self.assertEqual(res.returncode, 78, (host, res.stderr))
            self.assertIn(b"SKIFF_DOCKER_HOST", res.stderr)


class SkiffctlExitCodes(harness.SkiffTestCase):

    def ctl(self, *args, env=None, input=None):
        e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        for k, v in os.environ.items():
            if k.startswith(("ASAN_", "UBSAN_", "LSAN_")):
                e[k] = v
        e.update(env or {})
        return harness.run([SKIFFCTL] + list(args), check=False, env=e,
                           input=input)

    def test_0_and_2_usage(self):
        res = self.ctl("--help")
        self.assertEqual(res.returncode, 0)
        for code in (b"0  ", b"1  ", b"2  ", b"3  "):
            self.assertIn(b"  " + code, res.stdout)
        self.assertEqual(self.ctl("--version").returncode, 0)
        env = {"SKIFF_QUEUE_URL": "https://127.0.0.1:1",
               "SKIFF_ADMIN_TOKEN": "sadm_x"}
        for args in ([], ["frob"], ["status"], ["status", "a", "b"],
                     ["status", "--bogus", "abcdefgh"], ["logs", "--step"],
                     ["jobs", "extra"], ["artifacts"], ["artifacts", "frob"],
                     ["agents", "frob"], ["token", "frob", "x"],
                     ["token", "create"], ["sign", "x.json"],
                     ["verify", "x.jws"], ["seal"], ["keygen"],
                     ["submit"], ["cancel"]):
            res = self.ctl(*args, env=env)
            self.assertEqual(res.returncode, 2, (args, res.stderr))
            self.assertIn(b"usage", res.stderr, args)
        # What to reach is missing.
        res = self.ctl("jobs", env={"SKIFF_ADMIN_TOKEN": "sadm_x"})
        self.assertEqual(res.returncode, 2)
        self.assertIn(b"no queue URL", res.stderr)
        res = self.ctl("jobs", env={"SKIFF_QUEUE_URL": "https://127.0.0.1:1"})
        self.assertEqual(res.returncode, 2)
        self.assertIn(b"no admin token", res.stderr)

    def test_1_named_files_unreadable(self):
        missing = os.path.join(self.tmp, "missing")
        key, jwks = self.signing_key()
        url = {"SKIFF_QUEUE_URL": "https://127.0.0.1:1",
               "SKIFF_ADMIN_TOKEN": "sadm_x"}
        job = os.path.join(self.tmp, "job.json")
        with open(job, "w") as f:
            json.dump(harness.simple_job(), f)
        cases = [
            (["jobs", "--token-file", missing], {}, "--token-file"),
            (["jobs"], {"SKIFF_ADMIN_TOKEN": "",
                        "SKIFF_ADMIN_TOKEN_FILE": missing},
             "SKIFF_ADMIN_TOKEN_FILE"),
            # libcurl would only say "problem with the SSL CA cert" (3).
            (["jobs", "--ca", missing], {}, "--ca"),
            (["jobs", "--ca", self.tmp], {}, "--ca"),
            (["jobs"], {"SKIFF_CA_FILE": missing}, "SKIFF_CA_FILE"),
            (["submit", missing], {}, missing),
            (["sign", job, "--key", missing, "--aud", "p"], {}, missing),
            (["sign", missing, "--key", key, "--aud", "p"], {}, missing),
            (["verify", missing, "--keys", jwks], {}, missing),
            (["verify", "--keys", missing], {}, missing),
            # Named and unreadable, whatever the job: said before any
            # verdict.
            (["verify", job, "--keys", jwks, "--pool-key", missing], {},
             "--pool-key"),
            (["seal", "--pool-key", missing, "v"], {}, missing),
        ]
        for args, env, named in cases:
            res = self.ctl(*args, env=dict(url, **env))
            self.assertEqual(res.returncode, 1, (args, env, res.stderr))
            self.assertIn(named.encode(), res.stderr, args)
            self.assertNotIn(b"rejected", res.stdout, args)
        pool_priv, pool_pub = harness.make_pool_key(self.tmp)
        res = self.ctl("seal", "--pool-key", pool_pub, "--file", missing)
        self.assertEqual(res.returncode, 1)
        self.assertIn(missing.encode(), res.stderr)

    def test_0_valid_job_summed_up(self):
        key, jwks = self.signing_key()
        job = harness.simple_job(
            services=[{"name": "db", "image": "postgres:16",
                       "ports": [5432], "wait": {"tcp": 5432}},
                      {"name": "web", "image": "nginx:1", "ports": [80],
                       "wait": {"tcp": 80}}],
            caches=[{"key": "deps-1", "paths": ["node_modules"]}])
        res = self.ctl("verify", "--keys", jwks,
                       input=harness.sign_job(job, key, "p").encode())
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertRegex(res.stderr.decode(), r"skiffctl: valid: job \S+, "
                         r"1 step, 2 services, 1 cache, signed by a trusted "
                         r"key\n")
        self.assertEqual(json.loads(res.stdout)["job"]["services"][1]["name"],
                         "web")

    def test_1_operation_failed(self):
        key, jwks = self.signing_key()
        other_key, other_jwks = harness.make_signing_key(self.tmp, "other")
        jws = harness.sign_job(harness.simple_job(), other_key, "p")
        res = self.ctl("verify", "--keys", jwks, input=jws.encode())
        self.assertEqual(res.returncode, 1)
        self.assertIn(b"rejected", res.stdout)

    @unittest.skipUnless(netns_available(), "needs unshare --net")
    def test_2_refused_urls_before_any_connection(self):
        # A listener on loopback that must see no connection: the refusal
        # comes before libcurl is asked to connect.
        with socket.socket() as lsock:
            lsock.bind(("127.0.0.1", 0))
            lsock.listen(8)
            lsock.setblocking(False)
            port = lsock.getsockname()[1]
            refused = [
                "http://127.evil.example:%d/" % port,
                "http://localhost:%d@evil.example/" % port,
                "http://user@127.0.0.1:%d/" % port,
                "http://127.0.0.1:%d\\@evil.example/" % port,
                "http://127.0.0.1.evil.example:%d/" % port,
                "http://localhost.:%d/" % port,
                "http://[::ffff:127.0.0.1]:%d/" % port,
                "http://192.0.2.1:%d/" % port,
                "http://127.0.0.1:%d/?x" % port,
                "http://127.0.0.1:%d/#x" % port,
                "ftp://127.0.0.1:%d/" % port,
            ]
            for url in refused:
                for how in ("flag", "env"):
                    args = [SKIFFCTL, "jobs"]
                    env = {"PATH": "/usr/bin:/bin",
                           "SKIFF_ADMIN_TOKEN": "sadm_secret"}
                    if how == "flag":
                        args += ["--url", url]
                    else:
                        env["SKIFF_QUEUE_URL"] = url
                    # In a namespace of its own: were the URL let through
                    # (as before), nothing would leave the machine.
                    res = in_netns(args, env=env)
                    self.assertEqual(res.returncode, 2, (url, res.stderr))
                    self.assertIn(url.encode(), res.stderr)
                    self.assertIn(b"--url" if how == "flag" else
                                  b"SKIFF_QUEUE_URL", res.stderr)
            # Userinfo before a loopback host: outside the namespace, the
            # listener would see the connection were it let through.
            res = self.ctl("jobs", "--url", refused[2],
                           env={"SKIFF_ADMIN_TOKEN": "sadm_secret"})
            self.assertEqual(res.returncode, 2, res.stderr)
            with self.assertRaises(BlockingIOError):
                lsock.accept()

    def test_3_queue_unreachable_or_error(self):
        port = harness.free_port()
        res = self.ctl("jobs", "--url", "http://127.0.0.1:%d" % port,
                       env={"SKIFF_ADMIN_TOKEN": "sadm_x"})
        self.assertEqual(res.returncode, 3, res.stderr)
        q = self.start_queue()
        res = q.ctl("status", "no-such-job-x", check=False)
        self.assertEqual(res.returncode, 3, res.stderr)
        self.assertIn(b"404", res.stderr)
        res = q.ctl("jobs", check=False)
        self.assertEqual(res.returncode, 0, res.stderr)


UNPACK_BIN = os.path.join(harness.BUILD, "agent", "skiff-unpack")


class UnpackExitCodes(harness.SkiffTestCase):
    """skiff-unpack, which the agent runs for .tar.gz inputs: 0 unpacked,
    1 refused or broken (the reason on stderr), 64 usage."""

    def tgz(self, name, entries):
        import io
        import tarfile
        path = os.path.join(self.tmp, name)
        with tarfile.open(path, "w:gz") as t:
            for n, data in entries:
                ti = tarfile.TarInfo(n)
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
        return path

    def test_0_1_64(self):
        out = os.path.join(self.tmp, "out")
        os.makedirs(out)
        res = harness.run([UNPACK_BIN, "--help"], check=False)
        self.assertEqual(res.returncode, 0)
        self.assertIn(b"Exit: 0 unpacked, 1 refused", res.stdout)
        good = self.tgz("good.tgz", [("a/b.txt", b"b")])
        res = harness.run([UNPACK_BIN, good, out], check=False)
        self.assertEqual(res.returncode, 0, res.stderr)
        with open(os.path.join(out, "a", "b.txt"), "rb") as f:
            self.assertEqual(f.read(), b"b")
        bad = self.tgz("bad.tgz", [("../evil", b"x")])
        res = harness.run([UNPACK_BIN, bad, out], check=False)
        self.assertEqual(res.returncode, 1)
        self.assertIn(b"refused entry '../evil'", res.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "evil")))
        res = harness.run([UNPACK_BIN, "--max-bytes", "0", good, out],
                          check=False)
        self.assertEqual(res.returncode, 1)
        self.assertIn(b"unpacks to more than 0 bytes", res.stderr)
        res = harness.run([UNPACK_BIN, good, os.path.join(self.tmp, "none")],
                          check=False)
        self.assertEqual(res.returncode, 1)
        self.assertIn(b"cannot open", res.stderr)
        for argv in ([], [good], [good, out, "extra"], ["--bogus", good, out],
                     ["--dir-fd", "3", good, out]):
            res = harness.run([UNPACK_BIN] + argv, check=False)
            self.assertEqual(res.returncode, 64, (argv, res.stderr))
            self.assertIn(b"usage", res.stderr, argv)
        for opt, value in (("--max-bytes", "lots"), ("--max-entries", "0"),
                           ("--dir-fd", "-3")):
            res = harness.run([UNPACK_BIN, opt, value, good, out], check=False)
            self.assertEqual(res.returncode, 64, (opt, res.stderr))
            self.assertIn(opt.encode(), res.stderr)


class DashIds(harness.SkiffTestCase):
    """Ids that start with '-', given after "--", through the real queue."""

    def test_sign_never_starts_an_id_with_a_dash(self):
        key, _ = self.signing_key()
        seen = set()
        for _ in range(200):
            jws = harness.sign_job(harness.simple_job(), key, "p")
            jid = harness.job_id_of(jws)
            self.assertNotIn(jid[0], "-_", jid)
            self.assertEqual(len(jid), 22)
            seen.add(jid)
        self.assertEqual(len(seen), 200)
        for _ in range(2000):
            self.assertNotEqual(harness.random_jti()[0], "-")

    def test_every_id_command_after_double_dash(self):
        q = self.start_queue()
        key, _ = self.signing_key()
        res = harness.run([SKIFFCTL, "sign", "-", "--key", key, "--aud",
                           "test", "--jti", DASH_JTI],
                          input=json.dumps(harness.simple_job()).encode())
        self.assertIn(b"after '--'", res.stderr)
        jws_file = os.path.join(self.tmp, "-job.jws")
        with open(jws_file, "wb") as f:
            f.write(res.stdout)
        # A file whose name starts with '-' after "--" as well.
        old = os.getcwd()
        os.chdir(self.tmp)
        try:
            res = q.ctl("submit", "--", "-job.jws")
        finally:
            os.chdir(old)
        self.assertIn(DASH_JTI.encode(), res.stdout)

        # Without "--" the id is an option: that is the usage error.
        res = q.ctl("status", DASH_JTI, check=False)
        self.assertEqual(res.returncode, 2)
        res = q.ctl("status", "--", DASH_JTI)
        self.assertIn(b"job         " + DASH_JTI.encode(), res.stdout)
        res = q.ctl("status", "--json", "--", DASH_JTI)
        self.assertEqual(json.loads(res.stdout)["id"], DASH_JTI)

        # The job runs (a session of the agent protocol), logs, uploads.
        agent = q.register("test")
        lease = agent.lease_ok(0)["lease"]
        self.assertEqual(agent.heartbeat(lease).status, 200)
        line = b"2026-01-01T00:00:00.000Z out hello from a dashed job\n"
        self.assertEqual(agent.log(lease, 0, line).status, 200)
        self.assertEqual(agent.upload_file(lease, "out.txt", b"art\n").status,
                         200)
        self.assertEqual(agent.complete(lease, log_length=len(line)).status,
                         200)
        q.wait_state(DASH_JTI, "succeeded")

        res = q.ctl("logs", "--", DASH_JTI)
        self.assertIn(b"hello from a dashed job", res.stdout)
        res = q.ctl("logs", "--stream", "out", "-f", "--", DASH_JTI)
        self.assertEqual(res.stdout, b"hello from a dashed job\n")
        res = q.ctl("artifacts", "list", "--", DASH_JTI)
        self.assertIn(b"out.txt", res.stdout)
        out = os.path.join(self.tmp, "out")
        q.ctl("artifacts", "get", "--out", out, "--", DASH_JTI, "out.txt")
        with open(os.path.join(out, "out.txt"), "rb") as f:
            self.assertEqual(f.read(), b"art\n")
        self.assertIn(DASH_JTI.encode(), q.ctl("jobs").stdout)

        # cancel: a second job, still queued.
        other = "-cancel-me-" + harness.random_jti()
        q.submit_ok(harness.sign_job(harness.simple_job(), key, "test",
                                     jti=other))
        res = q.ctl("cancel", "--reason", "test", "--", other)
        self.assertIn(b"canceled", res.stdout)
        self.assertEqual(q.status(other)["state"], "canceled")

        # agents revoke and token revoke: the queue's own ids never start
        # with '-', but "--" takes them all the same; a dashed one that does
        # not exist reaches the queue (404), not getopt.
        for cmd in (["agents", "revoke"], ["token", "revoke"]):
            res = q.ctl(*cmd, "--", "-no-such-id", check=False)
            self.assertEqual(res.returncode, 3, (cmd, res.stderr))
            self.assertIn(b"404", res.stderr)
        res = q.ctl("agents", "revoke", "--", agent.id)
        self.assertIn(b"revoked", res.stdout)
        listing = q.ctl("token", "list", "--json", "--", "test").stdout
        tok = json.loads(listing)["tokens"][0]["id"]
        res = q.ctl("token", "revoke", "--", tok)
        self.assertIn(b"revoked", res.stdout)


if __name__ == "__main__":
    harness.main()
