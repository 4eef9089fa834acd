"""A real PostgreSQL 15 for the tests that run the queue on it.

One cluster per test process, made on first use: ``initdb`` into a
temporary directory as the unprivileged ``postgres`` system user (Debian's
postgresql-15 package creates it; PostgreSQL refuses to run as root),
listening on 127.0.0.1 on a free port and on a unix socket in that
directory, trust authentication for the test's own user ``skiff``.
Every queue gets its own database (``new_database``), so that queues of
one test process never see each other's state unless they are meant to
(replicas share one). The cluster is stopped and removed at exit, also
when the test fails or is killed by CTest.

fsync is off: a test restarts PostgreSQL with ``pg_ctl restart -m
immediate`` (a crash of the server process, not of the machine), after
which everything committed is still there; the benchmarks in bench/queue
run with PostgreSQL's defaults.

    SKIFF_TEST_STORE=postgres /usr/bin/python3 tests/integration/test_queue_lease.py
"""
import atexit
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time

PG_USER = "postgres"        # the system user the server runs as
DB_USER = "skiff"           # the database role the queues connect as


def pg_bindir():
    """Debian's PostgreSQL 15 server binaries (SKIFF_PG_BINDIR to
    override)."""
    d = os.environ.get("SKIFF_PG_BINDIR")
    if d:
        return d
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError("PostgreSQL server binaries not found: "
                           "apt-get install postgresql-15")
    return os.path.dirname(found[-1])


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Postgres:
    def __init__(self):
        self.bindir = pg_bindir()
        self.dir = tempfile.mkdtemp(prefix="skiff-pg-")
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "server.log")
        self.port = _free_port()
        pw = pwd.getpwnam(PG_USER)
        os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self._as_pg([os.path.join(self.bindir, "initdb"), "-D", self.data,
                     "-U", DB_USER, "-A", "trust", "--no-sync",
                     "-E", "UTF8", "--locale=C"])
        self._ndb = 0
        self.start()

    def _as_pg(self, argv, check=True, timeout=120):
        res = subprocess.run(["runuser", "-u", PG_USER, "--"] + argv,
                             capture_output=True, timeout=timeout)
        if check and res.returncode != 0:
            raise AssertionError("%s exited %d:\n%s%s\n%s" % (
                " ".join(argv), res.returncode,
                res.stdout.decode(errors="replace"),
                res.stderr.decode(errors="replace"), self.log_tail()))
        return res

    def _ctl(self, *args):
        opts = ("-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=off "
                "-c max_connections=300 -c shared_buffers=64MB"
                % (self.port, self.dir))
        return self._as_pg([os.path.join(self.bindir, "pg_ctl"), "-D",
                            self.data, "-l", self.log, "-w", "-t", "60",
                            "-o", opts] + list(args))

    def start(self):
        self._ctl("start")

    def stop(self, mode="fast"):
        self._ctl("stop", "-m", mode)

    def restart(self, mode="immediate"):
        """A restart; immediate is what a crash of the server is."""
        self._ctl("restart", "-m", mode)

    def conninfo(self, db):
        return "host=127.0.0.1 port=%d user=%s dbname=%s connect_timeout=5" % (
            self.port, DB_USER, db)

    def psql(self, db, sql):
        """Runs sql in db as the test role; returns stdout (unaligned)."""
        res = subprocess.run(
            [os.path.join(self.bindir, "psql"), "-X", "-q", "-A", "-t",
             "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(self.port),
             "-U", DB_USER, "-d", db, "-c", sql],
            capture_output=True, timeout=60)
        if res.returncode != 0:
            raise AssertionError("psql: %s" % res.stderr.decode(
                errors="replace"))
        return res.stdout.decode()

    def new_database(self, prefix="q"):
        self._ndb += 1
        name = "%s%d_%d" % (prefix, os.getpid(), self._ndb)
        self.psql("postgres", "CREATE DATABASE %s" % name)
        return name

    def log_tail(self, n=30):
        try:
            with open(self.log, "rb") as f:
                return "\n".join(f.read().decode(errors="replace")
                                 .splitlines()[-n:])
        except OSError:
            return ""

    def destroy(self):
        if os.path.isdir(self.data):
            self._as_pg([os.path.join(self.bindir, "pg_ctl"), "-D",
                         self.data, "stop", "-m", "immediate", "-w"],
                        check=False, timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)


_shared = None


def shared():
    """The cluster of this test process, started on first use."""
    global _shared
    if _shared is None:
        _shared = Postgres()
        atexit.register(destroy_shared)
    return _shared


def destroy_shared():
    global _shared
    if _shared is not None:
        _shared.destroy()
        _shared = None
