"""The agent when the queue fails: killed and restarted mid-job (no log
byte lost), and an endpoint answering 5xx, garbage or truncated bodies
(backoff, no crash, no busy loop)."""
import http.server
import json
import os
import signal
import socketserver
import ssl
import threading
import time

import harness
from agentfix import Agent, AgentTestCase, log_stream
from harness import wait_until


class QueueRestartTests(AgentTestCase):
    def test_queue_killed_mid_job_loses_no_log_byte(self):
        self.agent()
        lines = 3000
        job = self.submit_job(self.steps_job(
            "i=0; while [ $i -lt %d ]; do echo \"line $i of the log\"; "
            "i=$((i+1)); [ $((i %% 100)) -eq 0 ] && sleep 0.2; done; "
            "printf 'tail without newline'" % lines))
        self.q.wait_state(job, "running")
        time.sleep(1.5)
        self.q.kill9()
        time.sleep(2)
        self.q.start()
        st = self.finished(job, timeout=60)
        self.assertEqual(st["state"], "succeeded", st)
        expected = "".join("line %d of the log\n" % i for i in range(lines))
        expected += "tail without newline"
        log = self.log_of(job)
        self.assertEqual(log_stream(log, "out").decode(), expected)
        self.assertEqual(st["log_length"], len(log))


class Misbehaving(http.server.BaseHTTPRequestHandler):
    """A queue that registers agents and then answers every lease badly,
    in the way the test chooses; it counts the lease requests."""
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n)

    def _send(self, status, body, ctype="application/json", extra=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        self._body()
        srv = self.server
        if self.path == "/v1/agents/register":
            self._send(201, json.dumps({
                "agent_id": "agt_test", "agent_token": "sat_test",
                "pool": "test", "lease_wait": 30}).encode())
            return
        if self.path == "/v1/agent/lease":
            with srv.lock:
                srv.leases.append(time.monotonic())
            mode = srv.mode
            if mode == "500":
                self._send(500, b'{"error":"internal","message":"boom"}')
            elif mode == "garbage":
                self._send(200, b"\x00\xffnot json at all{{{")
            elif mode == "truncated":
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "500")
                self.end_headers()
                self.wfile.write(b'{"lease":"lse_x","jo')
                self.wfile.flush()
                self.close_connection = True
            elif mode == "retry-after":
                self._send(503, b'{"error":"unavailable"}',
                           extra=[("Retry-After", "3")])
            return
        if self.path == "/v1/agent/deregister":
            self._send(204, b"")
            return
        self._send(404, b'{"error":"not_found"}')


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


class MisbehavingQueueTests(harness.SkiffTestCase):
    def start_server(self, mode):
        srv = Server(("127.0.0.1", 0), Misbehaving)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.pki.cert_file, self.pki.key_file)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
        srv.mode = mode
        srv.leases = []
        srv.lock = threading.Lock()
        t = threading.Thread(target=srv.serve_forever, daemon=True)
        t.start()
        self.addCleanup(srv.server_close)
        self.addCleanup(srv.shutdown)
        return srv

    def run_agent_against(self, mode, seconds=8):
        srv = self.start_server(mode)

        class FakeQueue:
            url = "https://127.0.0.1:%d" % srv.server_address[1]
            ca_file = self.pki.ca_file
        key, jwks = harness.make_signing_key(self.tmp)
        a = Agent(self, FakeQueue, "test", "srt_x", jwks)
        a.start()
        time.sleep(seconds * harness.SLOW)
        self.assertTrue(a.running(), a.log()[-2000:])
        with open("/proc/%d/stat" % a.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        a.signal(signal.SIGTERM)
        self.assertEqual(a.wait_exit(15), 10)
        return srv.leases, cpu, a

    def check_backoff(self, mode):
        leases, cpu, a = self.run_agent_against(mode)
        # Backoff from 1 s doubling, jittered in [d/2, d]: a handful of
        # tries in 8 s, not hundreds; and the agent sleeps in between.
        self.assertGreaterEqual(len(leases), 2, a.log()[-2000:])
        self.assertLessEqual(len(leases), 8, a.log()[-2000:])
        gaps = [b - a_ for a_, b in zip(leases, leases[1:])]
        self.assertTrue(all(g >= 0.4 for g in gaps), gaps)
        self.assertLess(cpu, 1.0 * harness.SLOW)
        self.assertIn("lease request", a.log())

    def test_500s(self):
        self.check_backoff("500")

    def test_garbage(self):
        self.check_backoff("garbage")

    def test_truncated_bodies(self):
        self.check_backoff("truncated")

    def test_retry_after_is_honoured(self):
        leases, cpu, a = self.run_agent_against("retry-after", seconds=8)
        gaps = [b - a_ for a_, b in zip(leases, leases[1:])]
        self.assertTrue(gaps, a.log()[-2000:])
        self.assertTrue(all(g >= 2.9 for g in gaps), gaps)


if __name__ == "__main__":
    harness.main()
