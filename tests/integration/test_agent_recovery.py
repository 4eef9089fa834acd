"""Surviving faults (issue 6): the queue killed mid-job, the network cut for
a minute, the agent killed and replaced, a full spool disk, and a queue
behind a proxy that breaks answers. Real agent, queue, TLS and dockerd."""
import ctypes
import hashlib
import http.client
import http.server
import os
import re
import signal
import socketserver
import ssl
import subprocess
import threading
import time

import dockerenv
import harness
from agentfix import AgentTestCase, log_stream
from harness import wait_until


class QueueRestartTests(AgentTestCase):
    def test_queue_killed_and_restarted_mid_job(self):
        """The log comes out byte-identical and the artifacts complete,
        though the queue died twice while the job ran and uploaded."""
        self.agent()
        job = self.submit_job(self.steps_job(
            {"name": "talk", "script":
             "i=0; while [ $i -lt 2000 ]; do echo \"line $i\"; i=$((i+1)); "
             "[ $((i % 200)) -eq 0 ] && sleep 0.2; done"},
            {"name": "build", "script":
             "head -c 30000000 /dev/urandom > big.bin && "
             "sha256sum big.bin | cut -c1-64",
             "artifacts": ["big.bin"]}))
        self.q.wait_state(job, "running")
        time.sleep(1)
        self.q.kill9()
        time.sleep(2)
        self.q.start()
        # Again while the artifact may be on its way.
        wait_until(lambda: b"'build' started" in self.log_of(job), 30,
                   what="the second step")
        time.sleep(0.3)
        self.q.kill9()
        time.sleep(2)
        self.q.start()
        st = self.finished(job, timeout=120)
        self.assertEqual(st["state"], "succeeded", st)
        out = log_stream(self.log_of(job), "out").decode()
        lines = "".join("line %d\n" % i for i in range(2000))
        self.assertTrue(out.startswith(lines), out[:200])
        digest = out[len(lines):].strip()
        arts = self.q.request("GET", "/v1/jobs/%s/artifacts" % job).json()
        self.assertEqual([(a["name"], a["sha256"], a["size"])
                          for a in arts["artifacts"]],
                         [("big.bin", digest, 30000000)])
        got = os.path.join(self.tmp, "got")
        self.q.ctl("artifacts", "get", job, "--out", got)
        with open(os.path.join(got, "big.bin"), "rb") as f:
            self.assertEqual(hashlib.sha256(f.read()).hexdigest(), digest)


def enter_new_netns():
    """Moves this process into a network namespace of its own (loopback
    only), so that the queue, the agent and the test talk on a loopback
    that iptables rules can cut without touching the machine's."""
    libc = ctypes.CDLL(None, use_errno=True)
    CLONE_NEWNET = 0x40000000
    if libc.unshare(CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET)")
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)


class NetworkCutTests(AgentTestCase):
    queue_args = ("--lease-ttl", "120s")

    @classmethod
    def setUpClass(cls):
        if harness.on_postgres():
            # The process's PostgreSQL listens on the loopback this
            # process is about to leave: the next queue starts a cluster
            # of its own in the new namespace (the cut drops only the
            # queue's port, so the queue keeps its database).
            import pgfix
            pgfix.destroy_shared()
        enter_new_netns()
        super().setUpClass()

    def iptables(self, *args):
        subprocess.run(["iptables"] + list(args), check=True)

    def test_network_cut_for_60s(self):
        a = self.agent()
        ticks = 160
        job = self.submit_job(self.steps_job(
            {"name": "ticks", "script":
             "i=0; while [ $i -lt %d ]; do echo \"tick $i\"; i=$((i+1)); "
             "sleep 0.5; done; head -c 2000000 /dev/urandom > out.bin"
             % ticks, "artifacts": ["out.bin"]}))
        wait_until(lambda: b"tick 5\n" in log_stream(self.log_of(job), "out"),
                   30, what="the job to run")
        rule = ["INPUT", "-p", "tcp", "--dport", str(self.q.port), "-j",
                "DROP"]
        self.iptables("-I", *rule)
        self.addCleanup(subprocess.run, ["iptables", "-D"] + rule)
        t0 = time.monotonic()
        time.sleep(60)
        self.iptables("-D", *rule)
        cut = time.monotonic() - t0
        st = self.finished(job, timeout=180)
        self.assertEqual(st["state"], "succeeded", st)
        self.assertEqual(st["attempt"], 1)
        out = log_stream(self.log_of(job), "out").decode()
        # Every tick once, in order: nothing lost, nothing duplicated.
        self.assertEqual(out, "".join("tick %d\n" % i for i in range(ticks)))
        self.assertEqual([x["name"] for x in self.q.request(
            "GET", "/v1/jobs/%s/artifacts" % job).json()["artifacts"]],
            ["out.bin"])
        self.assertGreaterEqual(cut, 60)
        self.assertIn("failed", a.log())     # it did notice the cut


class AgentKilledTests(AgentTestCase):
    queue_args = ("--lease-ttl", "6s", "--heartbeat-interval", "2s")

    def test_kill9_then_a_second_agent_runs_the_job(self):
        image = dockerenv.build_images(dockerenv.Engine())["busybox"]
        eng = dockerenv.Engine()
        first = self.agent("first")
        job = self.submit_job(self.steps_job(
            {"name": "work", "image": image, "script":
             "echo \"on $SKIFF_AGENT_NAME\"; "
             "if [ \"$SKIFF_AGENT_NAME\" = first ]; then sleep 300; fi"}))
        wait_until(lambda: b"on first" in self.log_of(job), 30,
                   what="the step to run on the first agent")
        first.kill9()
        leftover = eng.containers_with_label("io.skiff.job=%s" % job)
        self.assertEqual(len(leftover), 1)
        self.assertNotEqual(os.listdir(first.work_dir), [])
        self.agent("second")
        st = self.finished(job, timeout=60)
        self.assertEqual(st["state"], "succeeded", st)
        self.assertEqual(st["attempt"], 2)
        self.assertIn(b"on second", self.log_of(job))
        # The first agent comes back and clears what it left.
        first.start()
        first.wait_registered()
        wait_until(lambda: eng.containers_with_label(
            "io.skiff.job=%s" % job) == [], 30, what="the sweep")
        self.assertEqual(os.listdir(first.work_dir), [])
        self.assertIn("removed a leftover of an earlier run", first.log())


class SpoolFullTests(AgentTestCase):
    def test_full_spool_disk_fails_the_job_cleanly(self):
        spool = os.path.join(self.tmp, "spool")
        os.makedirs(spool)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs",
                        spool], check=True)
        self.addCleanup(subprocess.run, ["umount", "-l", spool])
        a = self.agent(spool_dir=spool)
        job = self.submit_job(self.steps_job("seq 1 300000", "echo never"))
        st = self.finished(job, timeout=30)
        self.assertEqual(st["state"], "failed", st)
        self.assertEqual(st["reason_code"], "spool_failed", st)
        self.assertIn("cannot keep the job's log", a.log())
        self.assertTrue(a.running())
        # The agent keeps serving once the space is back.
        ok = self.submit_job(self.steps_job("echo fine"))
        self.assertEqual(self.finished(ok)["state"], "succeeded")
        self.assertEqual(log_stream(self.log_of(ok), "out"), b"fine\n")


class Breaker(http.server.BaseHTTPRequestHandler):
    """A TLS proxy in front of the queue that breaks some answers after
    the queue has acted on the request: a 500, a 200 of garbage, or a body
    cut short."""
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return body
                body += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else None

    def proxy(self):
        body = self.read_body()
        hdrs = {k: v for k, v in self.headers.items()
                if k.lower() not in ("host", "content-length", "connection",
                                     "transfer-encoding")}
        srv = self.server
        c = http.client.HTTPSConnection("127.0.0.1", srv.upstream_port,
                                        context=srv.client_ctx, timeout=90)
        c.request(self.command, self.path, body, hdrs)
        r = c.getresponse()
        data = r.read()
        c.close()
        kind = re.sub(r"/(lse|upl|agt)_[^/?]*|\?.*", "", self.path)
        with srv.lock:
            # Every third answer of each kind (registration aside) is
            # broken, the kinds of breakage taking turns.
            n = srv.count[kind] = srv.count.get(kind, 0) + 1
            fault = n % 3 == 2 and kind != "/v1/agents/register"
            mode = ("500", "garbage", "truncate")[len(srv.faults) % 3]
            if fault:
                srv.faults.append((kind, mode))
        if not fault:
            self.send_response(r.status)
            for k, v in r.getheaders():
                if k.lower() not in ("content-length", "connection",
                                     "transfer-encoding"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        elif mode == "500":
            body = b'{"error":"internal","message":"injected"}'
            self.send_response(500)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif mode == "garbage":
            body = b"\x00\x01<html>not what you wanted"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_response(r.status)
            self.send_header("Content-Length", str(len(data) + 100))
            self.end_headers()
            self.wfile.write(data[:len(data) // 2])
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = proxy


class ProxyServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


class BrokenAnswersTests(AgentTestCase):
    queue_args = ("--ack-window", "2s", "--heartbeat-interval", "1s")

    def test_broken_answers_no_job_runs_twice(self):
        srv = ProxyServer(("127.0.0.1", 0), Breaker)
        sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        sctx.load_cert_chain(self.pki.cert_file, self.pki.key_file)
        srv.socket = sctx.wrap_socket(srv.socket, server_side=True)
        srv.client_ctx = ssl.create_default_context(cafile=self.pki.ca_file)
        srv.upstream_port = self.q.port
        srv.lock, srv.count, srv.faults = threading.Lock(), {}, []
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        self.addCleanup(srv.server_close)
        self.addCleanup(srv.shutdown)

        class Front:
            url = "https://127.0.0.1:%d" % srv.server_address[1]
            ca_file = self.pki.ca_file
        a = self.agent(start=False)
        a.settings["QUEUE_URL"] = Front.url
        a.start()
        a.wait_registered(20)
        runs = os.path.join(self.tmp, "runs")
        jobs = [self.submit_job(self.steps_job(
            "echo run >> %s.%d; seq 1 3000; echo done" % (runs, i),
            {"name": "art", "script": "seq 1 50000 > a.txt",
             "artifacts": ["a.txt"]})) for i in range(3)]
        for i, j in enumerate(jobs):
            st = self.finished(j, timeout=240)
            self.assertEqual(st["state"], "succeeded", st)
            with open("%s.%d" % (runs, i)) as f:
                self.assertEqual(f.read(), "run\n")   # exactly once
            out = log_stream(self.log_of(j), "out").decode()
            self.assertEqual(out, "".join("%d\n" % k for k in
                                          range(1, 3001)) + "done\n")
        kinds = {k for k, _ in srv.faults}
        # The faults hit the lease, the heartbeats, the log, the uploads
        # and the completion.
        self.assertTrue({"/v1/agent/lease", "/v1/leases/heartbeat",
                         "/v1/leases/log", "/v1/leases/complete"} <= kinds,
                        srv.faults)
        self.assertTrue(a.running())


if __name__ == "__main__":
    harness.main()
