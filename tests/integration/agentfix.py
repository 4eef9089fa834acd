"""Running the real skiff-agent in integration tests.

``Agent`` writes a configuration file (KEY=value lines, as an operator
would), starts build/agent/skiff-agent with a clean environment (nothing of
the test's environment leaks in except the sanitizer options), and offers
the few things tests need: its log, its exit code, signals, its state and
work directories. ``AgentTestCase`` adds a queue, a pool, keys and job
helpers on top of harness.SkiffTestCase.

``log_stream(log, "out")`` rebuilds what a step wrote to stdout from the
log records (docs/protocol.md section 10), independently of skiffctl.
"""
import hashlib
import http.server
import json
import os
import signal
import socketserver
import ssl
import subprocess
import threading
import time

import harness
from harness import AGENT_BIN, SLOW, wait_until


def log_stream(log, tag):
    """The bytes of one stream ('out', 'err', 'skf') from log records."""
    out = bytearray()
    for line in log.split(b"\n")[:-1]:
        ts, rest = line.split(b" ", 1)
        assert len(ts) == 24 and ts.endswith(b"Z"), line
        t, _, data = rest.partition(b" ")
        if t.rstrip(b"+") != tag.encode():
            continue
        out += data
        if not t.endswith(b"+"):
            out += b"\n"
    return bytes(out)


# The users an agent started as root runs its halves and host steps as
# (the package creates them; provision/skiff-setup).
SYSTEM_USERS = ("skiff-net", "skiff-step")


def ensure_system_users():
    if os.geteuid() != 0:
        return
    import pwd
    import subprocess
    for u in SYSTEM_USERS:
        try:
            pwd.getpwnam(u)
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home",
                            "--shell", "/usr/sbin/nologin", u], check=True)


class Agent:
    def __init__(self, tc, queue, pool, reg_token, trusted, name="agent",
                 **settings):
        ensure_system_users()
        self.tc = tc
        self.queue = queue
        self.dir = os.path.join(tc.tmp, name)
        os.makedirs(self.dir, exist_ok=True)
        self.conf_path = os.path.join(self.dir, "agent.conf")
        self.log_path = os.path.join(self.dir, "agent.log")
        self.state_dir = os.path.join(self.dir, "state")
        self.work_dir = os.path.join(self.dir, "work")
        self.settings = {
            "QUEUE_URL": queue.url,
            "POOL": pool,
            "REGISTRATION_TOKEN": reg_token,
            "TRUSTED_KEYS": trusted,
            "STATE_DIR": self.state_dir,
            "WORK_DIR": self.work_dir,
            "NAME": name,
            "IDLE_TIMEOUT": "0",
            "KILL_GRACE": "2s",
            "LOG_LEVEL": "debug",
        }
        if queue.ca_file:
            self.settings["CA_FILE"] = queue.ca_file
        for k, v in settings.items():
            self.settings[k.upper()] = str(v)
        self.proc = None

    def write_config(self):
        with open(self.conf_path, "w") as f:
            f.write("# written by agentfix.py\n")
            for k, v in self.settings.items():
                if v is not None:
                    f.write("SKIFF_%s=%s\n" % (k, v))

    def env(self):
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin",
               "SKIFF_MUST_NOT_LEAK": "agent-environment"}
        for k, v in os.environ.items():
            if k.startswith(("ASAN_", "UBSAN_", "LSAN_")):
                env[k] = v
        return env

    def start(self, *args):
        self.write_config()
        with open(self.log_path, "ab") as f:
            f.write(b"---- start\n")
        self.proc = harness.start_process(
            [AGENT_BIN, "--config", self.conf_path] + list(args),
            env=self.env(), log=self.log_path)
        self.tc.addCleanup(self._cleanup)
        return self

    def _cleanup(self):
        if self.proc and self.proc.poll() is None:
            harness.stop_process(self.proc, signal.SIGKILL)

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, text, timeout=10.0):
        return wait_until(lambda: text in self.log(), timeout,
                          what="agent log line %r" % text)

    def wait_registered(self, timeout=10.0):
        return self.wait_log('msg="registered"', timeout)

    def wait_exit(self, timeout=15.0):
        try:
            return self.proc.wait(timeout=timeout * SLOW)
        except subprocess.TimeoutExpired:
            raise AssertionError("agent still running after %.0fs:\n%s" %
                                 (timeout, self.log()[-3000:]))

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def kill9(self):
        return harness.stop_process(self.proc, signal.SIGKILL)


class _Files(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        body = self.server.files.get(self.path)
        with self.server.lock:
            self.server.hits[self.path] = self.server.hits.get(self.path, 0) + 1
        if self.path in self.server.hang:
            # Headers and part of the body, then nothing until the test
            # ends (bounded).
            self.send_response(200)
            self.send_header("Content-Length", "1000000")
            self.end_headers()
            self.wfile.write(b"x" * 1000)
            self.wfile.flush()
            self.server.release.wait(120)
            return
        if body is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


class FileServer:
    """Job inputs over HTTPS on loopback, with the test's certificate;
    counts the requests for each path. Stopped by the test's cleanup."""

    def __init__(self, tc):
        srv = _Server(("127.0.0.1", 0), _Files)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tc.pki.cert_file, tc.pki.key_file)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
        srv.files, srv.hits, srv.lock = {}, {}, threading.Lock()
        srv.hang, srv.release = set(), threading.Event()
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        tc.addCleanup(srv.server_close)
        tc.addCleanup(srv.shutdown)
        tc.addCleanup(srv.release.set)
        self.srv = srv
        self.hits = srv.hits
        self.base = "https://127.0.0.1:%d" % srv.server_address[1]

    def hang(self, url_path, **extra):
        """An inputs entry whose download starts and then stalls."""
        self.srv.hang.add(url_path)
        d = {"url": self.base + url_path, "sha256": "0" * 64}
        d.update(extra)
        return d

    def serve(self, url_path, data, **extra):
        """An inputs entry for data, served at url_path."""
        self.srv.files[url_path] = data
        d = {"url": self.base + url_path,
             "sha256": hashlib.sha256(data).hexdigest()}
        d.update(extra)
        return d


class AgentTestCase(harness.SkiffTestCase):
    """A queue per test, a pool, keys, and agents that are stopped and
    whose logs are shown when the test fails."""

    pool = "test"
    queue_args = ()

    def setUp(self):
        super().setUp()
        self.q = self.start_queue(*self.queue_args)
        self.key, self.jwks = self.signing_key()
        self.reg = self.q.registration_token(self.pool)
        self.agents = []
        self.addCleanup(self._show_agent_logs)

    def _show_agent_logs(self):
        result = getattr(getattr(self, "_outcome", None), "result", None)
        failed = result is not None and any(
            t is self for t, _ in result.errors + result.failures)
        if failed or os.environ.get("SKIFF_SHOW_LOGS"):
            for a in self.agents:
                import sys
                sys.stderr.write("\n---- %s log\n%s\n" % (
                    a.settings["NAME"], a.log()[-6000:]))

    def agent(self, name="agent", start=True, **settings):
        a = Agent(self, self.q, self.pool, self.reg, self.jwks, name,
                  **settings)
        self.agents.append(a)
        if start:
            a.start()
            a.wait_registered()
        return a

    def submit_job(self, job, aud=None, ttl="1h"):
        jws = harness.sign_job(job, self.key, aud or self.pool, ttl)
        self.q.submit_ok(jws)
        return harness.job_id_of(jws)

    def steps_job(self, *scripts, name="job", **extra):
        job = {"name": name, "steps": [
            s if isinstance(s, dict) else {"name": "step%d" % i, "script": s}
            for i, s in enumerate(scripts)]}
        job.update(extra)
        return job

    def log_of(self, job_id):
        r = self.q.request("GET", "/v1/jobs/%s/log" % job_id)
        self.assertEqual(r.status, 200, r)
        data = r.body
        # Follow to the end when the log is over one answer (1 MiB).
        while len(r.body) and r.header("Skiff-Log-Complete") != "1":
            r = self.q.request("GET", "/v1/jobs/%s/log?offset=%d" %
                               (job_id, len(data)))
            self.assertEqual(r.status, 200, r)
            data += r.body
            if not r.body:
                break
        return data

    def finished(self, job_id, timeout=20.0):
        return self.q.wait_state(job_id, ("succeeded", "failed", "canceled",
                                          "timed_out", "rejected", "lost",
                                          "expired"), timeout)

    def cancel_and_finish(self, job_id, within):
        """Cancels the job; its status once it has ended, which must be
        within the given seconds."""
        t0 = time.monotonic()
        r = self.q.request("POST", "/v1/jobs/%s/cancel" % job_id, {})
        self.assertEqual(r.status, 202, r)
        st = self.finished(job_id, timeout=within)
        self.assertLess(time.monotonic() - t0, within)
        return st


# ---- TCP forwarders: two "replicas" in front of one queue ------------------

class Forwarder:
    """A TCP relay to a queue on loopback, in a process of its own, so
    that the agent can be given several URLs for one real skiff-queue (the
    queue's SQLite state cannot be shared between queue processes). TLS
    passes through unchanged: the queue's certificate (127.0.0.1, ::1,
    localhost) is as valid on the relay's port as on the queue's.

    kill() is SIGKILL: every socket of the relay was set to linger 0, so
    the kernel resets its connections, and its port refuses from then on.
    start() again listens on the same port.

    mode="503" is no relay but a TLS stand-in (the test's PKI) that
    answers every request 503 unavailable. rate (bytes/s, 0: none) slows
    what goes to the queue, so that an upload is still under way when a
    test needs it to be; with mode="slow-down", what comes from the queue
    (a download) instead. Its log counts connections ("conn N"), bytes
    relayed to the queue ("up N", at each MiB) and answers ("503 ...")."""

    def __init__(self, tc, target_port, name="fwd", mode="relay", rate=0):
        self.tc = tc
        self.target_port = target_port
        self.name = name
        self.mode = mode
        self.rate = rate
        self.port = 0
        self.log_path = os.path.join(tc.tmp, name + ".log")
        self.port_file = os.path.join(tc.tmp, name + ".port")
        self.proc = None

    @property
    def url(self):
        return "https://127.0.0.1:%d" % self.port

    def start(self):
        if os.path.exists(self.port_file):
            os.unlink(self.port_file)
        with open(self.log_path, "ab") as f:
            f.write(b"---- start\n")
        self.proc = harness.start_process(
            ["/usr/bin/python3", os.path.abspath(__file__), "forward",
             self.port_file, str(self.port), str(self.target_port), self.mode,
             str(self.rate), self.tc.pki.cert_file, self.tc.pki.key_file],
            log=self.log_path)
        self.tc.addCleanup(self.kill)

        def listening():
            if self.proc.poll() is not None:
                raise AssertionError("%s exited %d:\n%s" % (
                    self.name, self.proc.returncode, self.log()))
            try:
                with open(self.port_file) as f:
                    return int(f.read())
            except (FileNotFoundError, ValueError):
                return None
        self.port = wait_until(listening, 10, what="%s to listen" % self.name)
        return self

    def kill(self):
        if self.proc and self.proc.poll() is None:
            harness.stop_process(self.proc, signal.SIGKILL)

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def connections(self):
        return sum(1 for l in self.log().splitlines() if l.startswith("conn "))

    def answered(self):
        return [l for l in self.log().splitlines() if l.startswith("503 ")]

    def upstream_bytes(self):
        """Bytes relayed to the queue by the running process, to the MiB."""
        ups = [l for l in self.log().split("---- start\n")[-1].splitlines()
               if l.startswith("up ")]
        return int(ups[-1].split()[1]) if ups else 0


def _forward_main(argv):
    import socket
    import struct
    import sys
    port_file, port, target, mode, rate, cert, key = argv
    port, target, rate = int(port), int(target), float(rate)
    out_lock = threading.Lock()
    counts = {"conn": 0, "up": 0}
    linger0 = struct.pack("ii", 1, 0)

    def say(line):
        with out_lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    def pump(src, dst, up, pair):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
                if up:
                    with out_lock:
                        before = counts["up"]
                        counts["up"] += len(data)
                        after = counts["up"]
                    if before >> 20 != after >> 20:
                        say("up %d" % after)
                if rate and up == (mode == "relay"):
                    time.sleep(len(data) / rate)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        with out_lock:
            pair["open"] -= 1
            last = pair["open"] == 0
        if last:
            for s in (src, dst):
                s.close()

    def relay(c):
        u = socket.create_connection(("127.0.0.1", target))
        u.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger0)
        pair = {"open": 2}
        threading.Thread(target=pump, args=(c, u, True, pair),
                         daemon=True).start()
        threading.Thread(target=pump, args=(u, c, False, pair),
                         daemon=True).start()

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)

    def unavailable(c):
        try:
            t = ctx.wrap_socket(c, server_side=True)
            f = t.makefile("rb")
            while True:     # keep-alive: one answer per request
                head = f.readline(65536)
                if not head:
                    break
                n = 0
                while True:
                    h = f.readline(65536)
                    if h in (b"\r\n", b"\n", b""):
                        break
                    k, _, v = h.partition(b":")
                    if k.strip().lower() == b"content-length":
                        n = int(v)
                f.read(n)
                say("503 " + head.decode(errors="replace").strip())
                body = (b'{"error":"unavailable","message":"stand-in ' +
                        b'replica"}')
                t.sendall(b"HTTP/1.1 503 Service Unavailable\r\n"
                          b"Content-Type: application/json\r\n"
                          b"Content-Length: %d\r\n\r\n" % len(body) + body)
        except (OSError, ValueError):
            pass
        c.close()

    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(128)
    tmp = port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(ls.getsockname()[1]))
    os.replace(tmp, port_file)
    while True:
        c, _ = ls.accept()
        counts["conn"] += 1
        say("conn %d" % counts["conn"])
        if mode == "503":
            threading.Thread(target=unavailable, args=(c,),
                             daemon=True).start()
            continue
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger0)
        try:
            relay(c)
        except OSError as e:
            say("upstream: %s" % e)
            c.close()


if __name__ == "__main__":
    import sys
    if sys.argv[1:2] == ["forward"]:    # Forwarder's process
        _forward_main(sys.argv[2:])
