"""The shared toolkit of skiff's integration tests.

Every integration test starts the real programs from the build directory
on random loopback ports with a per-run PKI, and uses this module for it:

- ``PKI``: a CA and a server certificate for 127.0.0.1, ::1 and localhost,
  made with the openssl CLI, with the SPKI pin (``sha256//...``) that
  curl's ``--pinnedpubkey`` and the agent's pin setting take.
- ``Queue``: build/queue/skiff-queue on a free loopback port in its own
  data directory; knows its URL, admin token and CA; can be stopped,
  killed with SIGKILL and restarted on the same port and data directory;
  has helpers for the admin API (submit, status, wait for a state,
  registration tokens, metrics); runs SQL on its store (``sql``), dumps
  it (``store_dump``) and damages a stored artifact, on either store.
- ``AgentSession``: a thin client of the agent half of docs/protocol.md
  (register, lease, heartbeat, log, artifacts, complete) for tests that
  drive the queue directly. Tests of the real agent start
  build/agent/skiff-agent with ``start_process``.
- ``make_signing_key``, ``make_pool_key``, ``sign_job``: keys and signed
  jobs through build/ctl/skiffctl.
- ``wait_until``: the one way to wait; bounded in time and in count.
- ``start_process`` and ``SkiffTestCase``: every process a test starts is
  killed (its whole process group) when the test ends, also when it
  fails, and at interpreter exit as a last resort.

Only the standard library and Debian's python3 modules. All traffic goes
to loopback.

    SKIFF_BUILD_DIR=build /usr/bin/python3 tests/integration/test_queue_lease.py
"""
import atexit
import base64
import gzip
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.abspath(os.environ.get(
    "SKIFF_SOURCE_DIR", os.path.dirname(os.path.dirname(HERE))))
BUILD = os.path.abspath(os.environ.get(
    "SKIFF_BUILD_DIR", os.path.join(SOURCE, "build")))
QUEUE_BIN = os.path.join(BUILD, "queue", "skiff-queue")
SKIFFCTL = os.path.join(BUILD, "ctl", "skiffctl")
AGENT_BIN = os.path.join(BUILD, "agent", "skiff-agent")

# Under ASan and UBSan (scripts/test.sh) everything runs a few times
# slower; timeouts in tests are multiplied by this.
SLOW = float(os.environ.get("SKIFF_TEST_SLOW", "1"))

# The queue's store for every Queue of the run: sqlite (a data
# directory) or postgres (a database in the cluster of pgfix.py). CTest
# runs the queue and agent integration tests once with each.
STORE = os.environ.get("SKIFF_TEST_STORE", "sqlite")
if STORE not in ("sqlite", "postgres"):
    raise SystemExit("SKIFF_TEST_STORE must be sqlite or postgres")


def on_postgres():
    return STORE == "postgres"


def sqlite_only(why):
    """For a test of what only the SQLite store has (its data directory,
    its files)."""
    return unittest.skipIf(on_postgres(), "SQLite store only: " + why)


class Timeout(AssertionError):
    """A bounded wait ran out."""


def wait_until(pred, timeout=10.0, interval=0.02, what=None, max_tries=None):
    """Calls pred() until it returns something truthy and returns that.

    Bounded twice: by timeout seconds (times SKIFF_TEST_SLOW) and by a
    number of tries (by default what the timeout allows at the interval,
    plus slack). Raises Timeout naming what was awaited."""
    timeout *= SLOW
    deadline = time.monotonic() + timeout
    tries = max_tries or int(timeout / max(interval, 0.001)) + 10
    last = None
    for _ in range(tries):
        last = pred()
        if last:
            return last
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    raise Timeout("timed out after %.1fs waiting for %s (last: %r)" %
                  (timeout, what or getattr(pred, "__name__", "condition"),
                   last))


# ---- processes -----------------------------------------------------------

_live = []


def _kill_group(proc, sig=signal.SIGKILL):
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def reap_all():
    """Kills every process started through this module that still runs."""
    while _live:
        proc = _live.pop()
        if proc.poll() is None:
            _kill_group(proc)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass


atexit.register(reap_all)


def _on_term(signum, frame):
    reap_all()
    sys.exit(128 + signum)


# CTest kills a test that runs over its TIMEOUT with SIGTERM: take the
# processes we started down with us.
signal.signal(signal.SIGTERM, _on_term)


def start_process(argv, env=None, log=None, stdin=subprocess.DEVNULL,
                  cwd=None):
    """Starts argv in its own process group (so that killing the group
    takes its children too), output to the file log (or discarded).
    The process is killed at the latest at interpreter exit."""
    out = open(log, "ab") if log else subprocess.DEVNULL
    try:
        proc = subprocess.Popen(argv, env=env, stdin=stdin, stdout=out,
                                stderr=subprocess.STDOUT if log else out,
                                cwd=cwd, start_new_session=True,
                                close_fds=True)
    finally:
        if log:
            out.close()
    _live.append(proc)
    return proc


def stop_process(proc, sig=signal.SIGTERM, timeout=10.0):
    """Signals proc and waits for it; SIGKILLs the group when it does not
    exit in time. Returns the exit status (negative: killed by signal)."""
    if proc.poll() is None:
        _kill_group(proc, sig)
        try:
            proc.wait(timeout=timeout * SLOW)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            proc.wait(timeout=10)
    if proc in _live:
        _live.remove(proc)
    return proc.returncode


def run(argv, input=None, check=True, timeout=60, env=None):
    """Runs a short command; returns the CompletedProcess (bytes)."""
    res = subprocess.run(argv, input=input, capture_output=True,
                         timeout=timeout * SLOW, env=env)
    if check and res.returncode != 0:
        raise AssertionError("%s exited %d:\n%s%s" % (
            " ".join(argv), res.returncode, res.stdout.decode(errors="replace"),
            res.stderr.decode(errors="replace")))
    return res


def free_port(host="127.0.0.1"):
    """A port that was free a moment ago (prefer --listen ...:0 with a
    port file where the program supports it)."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


# ---- PKI -----------------------------------------------------------------

class PKI:
    """A per-run CA and a server certificate for 127.0.0.1, ::1 and
    localhost (ECDSA P-256), made with the openssl CLI in dir. extra_ips:
    more addresses the certificate is for (a VM's view of the queue)."""

    def __init__(self, dir, extra_ips=()):
        self.dir = dir
        self.extra_ips = tuple(extra_ips)
        os.makedirs(dir, exist_ok=True)
        self.ca_key = os.path.join(dir, "ca-key.pem")
        self.ca_file = os.path.join(dir, "ca.pem")
        self.key_file = os.path.join(dir, "server-key.pem")
        self.cert_file = os.path.join(dir, "server.pem")
        self._make()
        self.pin = self._pin()

    def _openssl(self, *args, input=None):
        return run(["openssl"] + list(args), input=input)

    def _make(self):
        ext = os.path.join(self.dir, "server.ext")
        csr = os.path.join(self.dir, "server.csr")
        with open(ext, "w") as f:
            f.write("basicConstraints=CA:FALSE\n"
                    "keyUsage=digitalSignature\n"
                    "extendedKeyUsage=serverAuth\n"
                    "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost%s\n"
                    % "".join(",IP:" + ip for ip in self.extra_ips))
        self._openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout",
                      "-out", self.ca_key)
        self._openssl("req", "-x509", "-new", "-key", self.ca_key, "-sha256",
                      "-days", "2", "-subj", "/CN=skiff test CA",
                      "-addext", "basicConstraints=critical,CA:TRUE",
                      "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                      "-out", self.ca_file)
        self._openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout",
                      "-out", self.key_file)
        self._openssl("req", "-new", "-key", self.key_file, "-subj",
                      "/CN=localhost", "-out", csr)
        self._openssl("x509", "-req", "-in", csr, "-CA", self.ca_file,
                      "-CAkey", self.ca_key, "-CAcreateserial", "-days", "2",
                      "-sha256", "-extfile", ext, "-out", self.cert_file)
        os.chmod(self.key_file, 0o600)

    def _pin(self):
        pub = self._openssl("x509", "-in", self.cert_file, "-pubkey",
                            "-noout").stdout
        der = self._openssl("pkey", "-pubin", "-outform", "DER",
                            input=pub).stdout
        return "sha256//" + base64.b64encode(
            hashlib.sha256(der).digest()).decode()

    def ssl_context(self):
        return ssl.create_default_context(cafile=self.ca_file)


# ---- HTTP ----------------------------------------------------------------

class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers}
        self.body = body

    def json(self):
        return json.loads(self.body.decode())

    def header(self, name, default=None):
        return self.headers.get(name.lower(), default)

    def __repr__(self):
        return "<Response %d %r>" % (self.status, self.body[:200])


class Client:
    """HTTP(S) to one base URL with a default bearer token. One connection
    per request unless a connection is passed in (for keep-alive)."""

    def __init__(self, url, ca_file=None, token=None, timeout=30.0):
        u = urllib.parse.urlsplit(url)
        self.url = url.rstrip("/")
        self.scheme = u.scheme
        self.host = u.hostname
        self.port = u.port
        self.ca_file = ca_file
        self.token = token
        self.timeout = timeout
        self._ctx = (ssl.create_default_context(cafile=ca_file)
                     if u.scheme == "https" else None)

    def connect(self, timeout=None):
        t = (timeout or self.timeout) * SLOW
        if self.scheme == "https":
            return http.client.HTTPSConnection(self.host, self.port,
                                               context=self._ctx, timeout=t)
        return http.client.HTTPConnection(self.host, self.port, timeout=t)

    def request(self, method, path, body=None, headers=None, token=...,
                timeout=None, conn=None):
        """body: bytes, str, or an object sent as JSON."""
        h = dict(headers or {})
        tok = self.token if token is ... else token
        if tok is not None:
            h.setdefault("Authorization", "Bearer " + tok)
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            h.setdefault("Content-Type", "application/json")
        if isinstance(body, str):
            body = body.encode()
        own = conn is None
        c = conn or self.connect(timeout)
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            return Response(r.status, r.getheaders(), r.read())
        finally:
            if own:
                c.close()


def gz(data):
    """One gzip member, as the agent sends log chunks."""
    return gzip.compress(data)


# ---- keys and jobs ---------------------------------------------------------

def make_signing_key(dir, name="signer"):
    """An Ed25519 signing key: returns (private .jwk path, .jwks path)."""
    prefix = os.path.join(dir, name)
    run([SKIFFCTL, "keygen", "--out", prefix])
    return prefix + ".jwk", prefix + ".jwks"


def make_pool_key(dir, name="pool"):
    """An X25519 pool key: returns (private .jwk path, public .pub.jwk)."""
    prefix = os.path.join(dir, name)
    run([SKIFFCTL, "keygen", "--pool", "--out", prefix])
    return prefix + ".jwk", prefix + ".pub.jwk"


def simple_job(name="test job", script="echo hello", labels=None, **extra):
    job = {"name": name, "steps": [{"name": "step", "script": script}]}
    if labels:
        job["labels"] = labels
    job.update(extra)
    return job


def sign_job(job, key, aud, ttl="1h", jti=None, iss=None):
    """Signs job (a dict: the job object or full claims) with skiffctl
    sign; returns the compact JWS."""
    argv = [SKIFFCTL, "sign", "-", "--key", key, "--aud", aud, "--ttl", ttl]
    if jti:
        argv += ["--jti", jti]
    if iss:
        argv += ["--iss", iss]
    return run(argv, input=json.dumps(job).encode()).stdout.decode().strip()


def _b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def sign_claims(claims, key, header=None):
    """Signs the claims object exactly as given (no iat/exp/jti filled in,
    unlike skiffctl sign): for expired, not-yet-valid or otherwise odd jobs
    with a valid signature. key is a private Ed25519 JWK file; header
    overrides the protected header (default alg EdDSA, the key's kid)."""
    import nacl.signing  # Debian's python3-nacl
    with open(key) as f:
        jwk = json.load(f)
    d = base64.urlsafe_b64decode(jwk["d"] + "=" * (-len(jwk["d"]) % 4))
    hdr = header or {"alg": "EdDSA", "kid": jwk["kid"], "typ": "JWT"}
    signing_input = (_b64u(json.dumps(hdr, separators=(",", ":")).encode())
                     + "." + _b64u(json.dumps(claims).encode()))
    sig = nacl.signing.SigningKey(d).sign(signing_input.encode()).signature
    return signing_input + "." + _b64u(sig)


def random_jti():
    """A job id as skiffctl sign makes them: 127 random bits in base64url
    whose first character is never '-' (1 draw in 64 of plain base64url
    is, and skiffctl then reads the id as an option). A test that wants
    such an id passes one on purpose (DASH_JTI)."""
    b = bytearray(os.urandom(16))
    b[0] &= 0x7f
    return _b64u(bytes(b))


# A job id another JOSE tool may well choose; skiffctl takes it after "--".
DASH_JTI = "-2v-JOqKa5UHitzcHdYVvg"


def claims_for(job, aud, ttl=3600, **over):
    """Full claims around a job object: iss, aud, a random jti, iat, exp;
    keyword arguments replace any of them."""
    now = int(time.time())
    c = {"iss": "test", "aud": aud, "jti": random_jti(),
         "iat": now, "exp": now + ttl, "job": job}
    c.update(over)
    return c


def job_id_of(jws):
    """The jti of a compact JWS (read without verifying)."""
    payload = jws.split(".")[1]
    payload += "=" * (-len(payload) % 4)
    return json.loads(base64.urlsafe_b64decode(payload))["jti"]


# ---- the queue -------------------------------------------------------------

_PG_NULL = "\x1eNULL\x1e"


def _pg_literal(v):
    """v as a PostgreSQL literal: NULL, a number, bytes as bytea, else a
    string with quotes doubled (standard_conforming_strings is on)."""
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, bytes):
        return "'\\x%s'::bytea" % v.hex()
    return "'%s'" % str(v).replace("'", "''")


class Queue:
    """skiff-queue on a free loopback port, in its own data directory (on
    PostgreSQL: its own database, or the one of the replica it joins).

    args are extra command-line arguments (timing flags and such). With
    insecure=True it serves plain HTTP (--insecure-http); otherwise HTTPS
    with the given PKI (one is made in workdir when none is given)."""

    def __init__(self, workdir, args=(), pki=None, insecure=False,
                 admin_token=None, host="127.0.0.1", name="queue", env=None,
                 store=None, database=None):
        self.workdir = workdir
        self.store = store or STORE
        self.database = None
        if self.store == "postgres":
            import pgfix
            self.pg = pgfix.shared()
            # Replicas pass the database of the first one.
            self.database = database or self.pg.new_database()
        self.name = name
        self.args = list(args)
        self.insecure = insecure
        self.pki = None if insecure else (
            pki or PKI(os.path.join(workdir, name + "-pki")))
        self.host = host
        self.data_dir = os.path.join(workdir, name + "-data")
        self.log_path = os.path.join(workdir, name + ".log")
        self.port_file = os.path.join(workdir, name + ".port")
        self.admin_token = admin_token or "sadm_" + base64.urlsafe_b64encode(
            os.urandom(24)).decode().rstrip("=")
        self.token_file = os.path.join(workdir, name + ".admin-token")
        with open(self.token_file, "w") as f:
            f.write(self.admin_token + "\n")
        os.chmod(self.token_file, 0o600)
        self.env = env
        self.port = 0
        self.proc = None

    # -- life cycle --

    @property
    def url(self):
        h = "[%s]" % self.host if ":" in self.host else self.host
        return "%s://%s:%d" % ("http" if self.insecure else "https", h,
                               self.port)

    @property
    def ca_file(self):
        return None if self.insecure else self.pki.ca_file

    def argv(self, extra=()):
        if self.store == "postgres":
            where = ["--postgres", self.pg.conninfo(self.database)]
        else:
            where = ["--data-dir", self.data_dir]
        a = [QUEUE_BIN] + where + [
             "--listen", "%s:%d" % ("[%s]" % self.host if ":" in self.host
                                    else self.host, self.port),
             "--port-file", self.port_file,
             "--admin-token-file", self.token_file]
        if self.insecure:
            a.append("--insecure-http")
        else:
            a += ["--tls-cert", self.pki.cert_file,
                  "--tls-key", self.pki.key_file]
        return a + self.args + list(extra)

    def start(self, extra=(), timeout=10.0):
        """Starts the queue and waits until it listens (port file
        written). On a restart the port stays the same."""
        if os.path.exists(self.port_file):
            os.unlink(self.port_file)
        with open(self.log_path, "ab") as f:
            f.write(b"---- start %s\n" % " ".join(self.argv(extra)).encode())
        self.proc = start_process(self.argv(extra), env=self.env,
                                  log=self.log_path)

        def listening():
            if self.proc.poll() is not None:
                raise AssertionError("skiff-queue exited %d while starting:\n%s"
                                     % (self.proc.returncode, self.log_tail()))
            try:
                with open(self.port_file) as f:
                    text = f.read().strip()
                return int(text) if text else None
            except FileNotFoundError:
                return None
        self.port = wait_until(listening, timeout, what="skiff-queue to listen")
        return self

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """SIGTERM (by default) and wait; returns the exit status."""
        return stop_process(self.proc, sig, timeout) if self.proc else None

    def kill9(self):
        """SIGKILL: what a crash or the OOM killer does."""
        return self.stop(signal.SIGKILL)

    def restart(self, extra=()):
        """Stops (if running) and starts again: same port, same data."""
        if self.proc and self.proc.poll() is None:
            self.stop()
        return self.start(extra)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n=40):
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode(errors="replace").splitlines()
        except FileNotFoundError:
            return ""
        return "\n".join(lines[-n:])

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    # -- the store, for tests that look at or edit what the queue keeps --

    def sql(self, stmt, params=()):
        """Runs one SQL statement on the queue's store and returns its rows
        as lists of strings (None for NULL). Table names are unqualified
        and parameters are '?' placeholders on both stores: SQLite runs it
        on DATA_DIR/queue.db, PostgreSQL in the queue's database with
        search_path skiff (the parameters quoted as SQL literals). Column
        types differ between the stores (queue/store.c, queue/pgschema.sql);
        a statement that changes rows and needs their number says
        RETURNING. Every '?' is a placeholder, also inside quotes."""
        if self.store == "postgres":
            parts = stmt.split("?")
            if len(parts) != len(params) + 1:
                raise ValueError("%d placeholders, %d parameters" %
                                 (len(parts) - 1, len(params)))
            text = parts[0]
            for p, rest in zip(params, parts[1:]):
                text += _pg_literal(p) + rest
            import pgfix
            res = run([os.path.join(pgfix.pg_bindir(), "psql"), "-X", "-q",
                       "-A", "-t", "-v", "ON_ERROR_STOP=1", "-F", "\x1f",
                       "-P", "null=" + _PG_NULL, "-h", "127.0.0.1",
                       "-p", str(self.pg.port), "-U", pgfix.DB_USER,
                       "-d", self.database,
                       "-c", "SET search_path TO skiff; " + text])
            out = res.stdout.decode()
            rows = []
            for line in out.split("\n"):
                if line:
                    rows.append([None if f == _PG_NULL else f
                                 for f in line.split("\x1f")])
            return rows
        import sqlite3
        db = sqlite3.connect(os.path.join(self.data_dir, "queue.db"),
                             timeout=10)
        try:
            with db:
                cur = db.execute(stmt, tuple(params))
                rows = cur.fetchall()
        finally:
            db.close()
        return [[None if v is None else
                 v.hex() if isinstance(v, bytes) else str(v) for v in r]
                for r in rows]

    def store_dump(self):
        """Everything the queue keeps, as text: on SQLite the database's
        iterdump and the bytes of every file of the data directory, on
        PostgreSQL a pg_dump of its database. For checks that a secret is
        nowhere in the store."""
        if self.store == "postgres":
            import pgfix
            res = run([os.path.join(pgfix.pg_bindir(), "pg_dump"),
                       "-h", "127.0.0.1", "-p", str(self.pg.port),
                       "-U", pgfix.DB_USER, "--no-owner", self.database])
            return res.stdout.decode(errors="replace")
        import sqlite3
        db = sqlite3.connect(os.path.join(self.data_dir, "queue.db"))
        try:
            parts = list(db.iterdump())
        finally:
            db.close()
        for d, _, files in os.walk(self.data_dir):
            for n in files:
                with open(os.path.join(d, n), "rb") as f:
                    parts.append(f.read().decode("latin-1"))
        return "\n".join(parts)

    def damage_artifact(self, job):
        """Flips the first byte of the stored bytes of the job's (one)
        committed artifact, as a failing disk or an attacker with the
        store would."""
        if self.store == "postgres":
            rows = self.sql(
                "UPDATE upload_chunks SET data = set_byte(data, 0, "
                "get_byte(data, 0) # 255) WHERE off = 0 AND upload IN "
                "(SELECT id FROM uploads WHERE job = ? AND state = "
                "'committed') RETURNING upload", (job,))
            assert len(rows) == 1, rows
            return
        root = os.path.join(self.data_dir, "artifacts", job)
        files = [os.path.join(d, n) for d, _, ns in os.walk(root) for n in ns]
        assert len(files) == 1, files
        with open(files[0], "r+b") as f:
            b = f.read(1)
            f.seek(0)
            f.write(bytes([b[0] ^ 0xff]))

    def damage_cache(self, cache_id, truncate=False):
        """Flips the first byte of a cache's stored bytes, or cuts them to
        half (docs/protocol.md 4.9), as a failing disk would."""
        if self.store == "postgres":
            if truncate:
                rows = self.sql(
                    "UPDATE upload_chunks SET data = substring(data from 1 "
                    "for length(data) / 2) WHERE upload = ? AND off = "
                    "(SELECT max(off) FROM upload_chunks WHERE upload = ?) "
                    "RETURNING upload", (cache_id, cache_id))
            else:
                rows = self.sql(
                    "UPDATE upload_chunks SET data = set_byte(data, 0, "
                    "get_byte(data, 0) # 255) WHERE off = 0 AND upload = ? "
                    "RETURNING upload", (cache_id,))
            assert len(rows) == 1, rows
            return
        path = os.path.join(self.data_dir, "caches", cache_id)
        with open(path, "r+b") as f:
            if truncate:
                f.truncate(os.path.getsize(path) // 2)
                return
            b = f.read(1)
            f.seek(0)
            f.write(bytes([b[0] ^ 0xff]))

    # -- HTTP --

    def client(self, token=...):
        return Client(self.url, self.ca_file,
                      self.admin_token if token is ... else token)

    def request(self, method, path, body=None, headers=None, token=...,
                timeout=None):
        """An admin request by default; token=None sends none."""
        return self.client(token).request(method, path, body, headers,
                                          timeout=timeout)

    def curl(self, *args, token=..., check=False):
        """curl against the queue with its CA; token defaults to admin.
        args go last, paths are relative to the queue URL when they
        start with '/'."""
        argv = ["curl", "-sS", "--max-time", str(int(30 * SLOW))]
        if not self.insecure:
            argv += ["--cacert", self.ca_file]
        tok = self.admin_token if token is ... else token
        if tok:
            argv += ["-H", "Authorization: Bearer " + tok]
        argv += [self.url + a if a.startswith("/") else a for a in args]
        return run(argv, check=check)

    def ctl(self, *args, check=True, input=None):
        """skiffctl with SKIFF_QUEUE_URL, SKIFF_ADMIN_TOKEN, SKIFF_CA_FILE."""
        env = dict(os.environ, SKIFF_QUEUE_URL=self.url,
                   SKIFF_ADMIN_TOKEN=self.admin_token)
        if self.ca_file:
            env["SKIFF_CA_FILE"] = self.ca_file
        return run([SKIFFCTL] + list(args), check=check, env=env, input=input)

    # -- admin API --

    def submit(self, jws):
        """POST /v1/jobs; returns the Response."""
        return self.request("POST", "/v1/jobs", jws,
                            {"Content-Type": "application/jose"})

    def submit_ok(self, jws):
        r = self.submit(jws)
        assert r.status == 201, r
        return r.json()

    def status(self, job_id):
        r = self.request("GET", "/v1/jobs/" + job_id)
        assert r.status == 200, r
        return r.json()

    def wait_state(self, job_id, states, timeout=10.0):
        """Waits (bounded) for the job to reach one of states; returns its
        status."""
        if isinstance(states, str):
            states = (states,)

        def reached():
            st = self.status(job_id)
            return st if st["state"] in states else None
        return wait_until(reached, timeout, interval=0.05,
                          what="job %s to be %s" % (job_id, "|".join(states)))

    def registration_token(self, pool, description="test"):
        r = self.request("POST", "/v1/pools/%s/tokens" % pool,
                         {"description": description})
        assert r.status == 201, r
        return r.json()["token"]

    def register(self, pool="test", name="agent", labels=(), capacity=1,
                 token=None):
        """Registers an AgentSession (making a registration token for the
        pool unless one is given)."""
        a = AgentSession(self, token or self.registration_token(pool))
        a.register(name, labels, capacity)
        return a

    def metrics(self):
        r = self.request("GET", "/metrics", token=None)
        assert r.status == 200, r
        return r.body.decode()

    def metric(self, name, **labels):
        """The value of one sample of /metrics, or None."""
        want = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
        for line in self.metrics().splitlines():
            if line.startswith("#") or " " not in line:
                continue
            series, value = line.rsplit(" ", 1)
            n, _, rest = series.partition("{")
            got = ",".join(sorted(rest.rstrip("}").split(","))) if rest else ""
            if n == name and got == want:
                return float(value)
        return None


class AgentSession:
    """The agent half of the protocol against a Queue, for tests that drive
    the queue directly. Methods return Responses; nothing is retried."""

    def __init__(self, queue, registration_token):
        self.queue = queue
        self.registration_token = registration_token
        self.id = None
        self.token = None
        self.info = None

    def _req(self, method, path, body=None, headers=None, timeout=None,
             token=...):
        return self.queue.request(method, path, body, headers,
                                  token=self.token if token is ... else token,
                                  timeout=timeout)

    def register(self, name="agent", labels=(), capacity=1):
        r = self._req("POST", "/v1/agents/register",
                      {"name": name, "labels": list(labels),
                       "capacity": capacity, "version": "test"},
                      token=self.registration_token)
        assert r.status == 201, r
        self.info = r.json()
        self.id = self.info["agent_id"]
        self.token = self.info["agent_token"]
        return self.info

    def lease(self, wait=0, timeout=None):
        """POST /v1/agent/lease; the client timeout is wait + 15 s."""
        return self._req("POST", "/v1/agent/lease", {"wait": wait, "free": 1},
                         timeout=timeout or wait + 15)

    def lease_ok(self, wait=0):
        r = self.lease(wait)
        assert r.status == 200, r
        return r.json()

    def heartbeat(self, lease, **fields):
        return self._req("POST", "/v1/leases/%s/heartbeat" % lease,
                         fields or {"state": "running"})

    def log(self, lease, offset, data, gzip_body=True):
        body = gz(data) if gzip_body else data
        h = {"Content-Type": "application/octet-stream"}
        if gzip_body:
            h["Content-Encoding"] = "gzip"
        return self._req("PUT", "/v1/leases/%s/log?offset=%d" % (lease, offset),
                         body, h)

    def complete(self, lease, result="succeeded", exit_codes=(0,),
                 log_length=0, **extra):
        body = {"result": result, "exit_codes": list(exit_codes),
                "log_length": log_length}
        body.update(extra)
        return self._req("POST", "/v1/leases/%s/complete" % lease, body)

    def artifact_create(self, lease, name, size):
        return self._req("POST", "/v1/leases/%s/artifacts" % lease,
                         {"name": name, "size": size})

    def upload_put(self, upload, offset, data, gzip_body=False):
        h = {"Content-Type": "application/octet-stream"}
        if gzip_body:
            h["Content-Encoding"] = "gzip"
            data = gz(data)
        return self._req("PUT", "/v1/uploads/%s?offset=%d" % (upload, offset),
                         data, h)

    def upload_status(self, upload):
        return self._req("GET", "/v1/uploads/%s" % upload)

    def upload_commit(self, upload, sha256):
        return self._req("POST", "/v1/uploads/%s/commit" % upload,
                         {"sha256": sha256})

    def upload_file(self, lease, name, data):
        """The three steps for data (bytes); returns the commit Response."""
        r = self.artifact_create(lease, name, len(data))
        assert r.status in (200, 201), r
        up = r.json()["upload"]
        r = self.upload_put(up, 0, data)
        assert r.status == 200, r
        return self.upload_commit(up, hashlib.sha256(data).hexdigest())

    def deregister(self):
        return self._req("POST", "/v1/agent/deregister", {"reason": "test"})


# ---- test cases ------------------------------------------------------------

class SkiffTestCase(unittest.TestCase):
    """A temporary directory per test (removed afterwards unless
    SKIFF_KEEP_TMP is set), one PKI per test class, and cleanup of every
    queue and process the test started, pass or fail."""

    pki = None
    _class_tmp = None

    @classmethod
    def setUpClass(cls):
        cls._class_tmp = tempfile.mkdtemp(prefix="skiff-it-")
        # Host steps run as skiff-step when the agent is root: what a test
        # gives a step (scripts, a place to leave a marker) must be theirs
        # to reach, as in /tmp.
        os.chmod(cls._class_tmp, 0o755)
        cls.pki = PKI(os.path.join(cls._class_tmp, "pki"))

    @classmethod
    def tearDownClass(cls):
        reap_all()
        if cls._class_tmp and not os.environ.get("SKIFF_KEEP_TMP"):
            shutil.rmtree(cls._class_tmp, ignore_errors=True)

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="t-", dir=self._class_tmp)
        os.chmod(self.tmp, 0o1777)
        self._queues = []
        self.addCleanup(self._cleanup)

    def failed(self):
        """Inside a cleanup: whether the test failed. The result object is
        the one place that knows."""
        result = getattr(getattr(self, "_outcome", None), "result", None)
        return result is not None and any(
            t is self for t, _ in result.errors + result.failures)

    def _cleanup(self):
        failed = self.failed()
        bad = []
        for q in self._queues:
            # A clean stop, so that a crash at exit or a leak found by
            # LeakSanitizer (under scripts/test.sh) fails the test.
            if q.running() and q.stop(signal.SIGTERM, timeout=15) != 0:
                bad.append("%s exited %d on SIGTERM" % (q.name,
                                                        q.proc.returncode))
            if failed or bad or os.environ.get("SKIFF_SHOW_LOGS"):
                sys.stderr.write("\n---- %s log\n%s\n" % (q.name, q.log_tail(60)))
        reap_all()
        if not os.environ.get("SKIFF_KEEP_TMP"):
            shutil.rmtree(self.tmp, ignore_errors=True)
        if bad:
            raise AssertionError("; ".join(bad))

    def start_queue(self, *args, name="queue", insecure=False, **kw):
        q = Queue(self.tmp, args, pki=None if insecure else self.pki,
                  insecure=insecure, name=name, **kw)
        self._queues.append(q)
        return q.start()

    def signing_key(self):
        if not hasattr(self, "_signer"):
            self._signer = make_signing_key(self.tmp)
        return self._signer

    def job(self, aud="test", ttl="1h", **kw):
        """A signed simple_job(**kw) for pool aud: (jws, job id)."""
        jws = sign_job(simple_job(**kw), self.signing_key()[0], aud, ttl)
        return jws, job_id_of(jws)


def main():
    unittest.main(verbosity=2)
