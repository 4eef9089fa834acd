#!/usr/bin/python3
"""Benchmarks of skiff-agent against the real queue over TLS on loopback.

Prints its figures; never a pass/fail test. Run from the source tree after
building (build/ by default, or SKIFF_BUILD_DIR):

    /usr/bin/python3 bench/agent/agent_bench.py [idle] [startup] [pickup] [logs]

idle     RSS, anonymous RSS and PSS of an agent holding its lease
         long-poll, with a small CA file and with the full system CA
         bundle: each of its two processes (the runner, the network
         half) and both together.
startup  from exec to the first lease request on the wire (connection up,
         TLS done; from the agent's debug log), for a fresh agent
         (registers first) and a restarted one (stored token).
pickup   submit to step process started, over N jobs (default 500): the
         step is `bash -c 'echo $EPOCHREALTIME'`, compared with the wall
         clock just before the submit request is sent.
logs     a step writing 200 MB of 100-byte lines to stdout, with a secret
         to mask: MB/s from the step's start until the queue has the whole
         log and the job is complete, and the CPU seconds the agent spent.
         SKIFF_BENCH_SECRETS=N seals N secrets instead of one (each with
         its derived forms in the masker).
"""
import os
import re
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))
import harness  # noqa: E402
from harness import AGENT_BIN, SKIFFCTL, Queue, wait_until  # noqa: E402

CLK = os.sysconf("SC_CLK_TCK")


class Bench:
    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="skiff-bench-")
        self.pki = harness.PKI(os.path.join(self.tmp, "pki"))
        # SKIFF_BENCH_QUEUE_ARGS="--sync normal" and the like.
        qargs = os.environ.get("SKIFF_BENCH_QUEUE_ARGS", "").split()
        self.q = Queue(self.tmp, args=qargs, pki=self.pki).start()
        self.qargs = qargs
        self.key, self.jwks = harness.make_signing_key(self.tmp)
        self.reg = self.q.registration_token("bench")
        self.n = 0

    def close(self):
        harness.reap_all()

    def agent_conf(self, **over):
        self.n += 1
        d = os.path.join(self.tmp, "agent%d" % self.n)
        os.makedirs(d)
        s = {"QUEUE_URL": self.q.url, "POOL": "bench",
             "REGISTRATION_TOKEN": self.reg, "CA_FILE": self.pki.ca_file,
             "TRUSTED_KEYS": self.jwks, "STATE_DIR": d + "/state",
             "WORK_DIR": d + "/work", "IDLE_TIMEOUT": "0",
             "LOG_LEVEL": os.environ.get("SKIFF_BENCH_LOG_LEVEL", "warn")}
        s.update({k.upper(): str(v) for k, v in over.items()})
        path = os.path.join(d, "agent.conf")
        with open(path, "w") as f:
            for k, v in s.items():
                f.write("SKIFF_%s=%s\n" % (k, v))
        return path, d

    def start_agent(self, conf, d):
        return harness.start_process(
            [AGENT_BIN, "--config", conf],
            env={"PATH": "/usr/bin:/bin"}, log=os.path.join(d, "agent.log"))

    def waiters(self):
        m = self.q.metric("skiff_lease_waiters", pool="bench")
        return int(m or 0)

    def wait_waiting(self, n=1, timeout=10):
        wait_until(lambda: self.waiters() >= n, timeout, interval=0.0005,
                   what="lease long-poll")

    def stop(self, p):
        harness.stop_process(p)


def status_kib(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
                out[k] = int(v.split()[0])
    return out


def pss_kib(pid):
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def children(pid):
    with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
        return [int(x) for x in f.read().split()]


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def bench_idle(b):
    bundle = os.path.join(b.tmp, "system-plus-test-ca.pem")
    with open(bundle, "wb") as out:
        for p in ("/etc/ssl/certs/ca-certificates.crt", b.pki.ca_file):
            with open(p, "rb") as f:
                out.write(f.read())
    ncerts = open(bundle).read().count("BEGIN CERTIFICATE")
    for label, ca in (("CA file (1 cert)", b.pki.ca_file),
                      ("system bundle + CA (%d certs)" % ncerts, bundle)):
        conf, d = b.agent_conf(ca_file=ca)
        p = b.start_agent(conf, d)
        b.wait_waiting()
        time.sleep(2)
        net = [c for c in children(p.pid)
               if open("/proc/%d/cmdline" % c, "rb").read().endswith(
                   b"--net-half\0")]
        total = {"VmRSS": 0, "RssAnon": 0, "RssFile": 0, "Pss": 0}
        for who, pid in [("runner", p.pid)] + [("net half", c) for c in net]:
            s = status_kib(pid)
            s["Pss"] = pss_kib(pid)
            for k in total:
                total[k] += s[k]
            print("idle  %-32s %-9s RSS %6.2f MiB  anon %5.2f MiB  "
                  "PSS %5.2f MiB" % (label, who, s["VmRSS"] / 1024,
                                     s["RssAnon"] / 1024, s["Pss"] / 1024))
        print("idle  %-32s %-9s RSS %6.2f MiB  anon %5.2f MiB  PSS %5.2f MiB"
              % (label, "both", total["VmRSS"] / 1024,
                 total["RssAnon"] / 1024, total["Pss"] / 1024))
        b.stop(p)
        wait_until(lambda: b.waiters() == 0, 40, interval=0.05)


def log_ts(line):
    """Wall-clock seconds of a logfmt line's ts=... (millisecond precision)."""
    m = re.search(r"ts=(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{3})Z", line)
    return (time.mktime(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S"))
            - time.timezone + int(m.group(2)) / 1000)


def first_poll_ms(b, conf, d):
    """Exec to the agent's first lease request on the wire (connection up,
    TLS done, request going out), from its own debug log."""
    log = os.path.join(d, "agent.log")
    if os.path.exists(log):
        os.unlink(log)
    t0 = time.time()
    p = b.start_agent(conf, d)
    line = wait_until(lambda: next((l for l in open(log) if
                                    "lease request in flight" in l), None),
                      10, interval=0.005, what="first lease request")
    b.stop(p)
    wait_until(lambda: b.waiters() == 0, 40, interval=0.01)
    return (log_ts(line) - t0) * 1000


def bench_startup(b, runs=20):
    fresh, again = [], []
    for _ in range(runs):
        conf, d = b.agent_conf(log_level="debug")
        fresh.append(first_poll_ms(b, conf, d))
        again.append(first_poll_ms(b, conf, d))
    for label, s in (("fresh (register, then lease)", fresh),
                     ("restart (stored token)", again)):
        s.sort()
        print("startup %-30s median %6.1f ms  p90 %6.1f ms  (n=%d, 1 ms "
              "resolution)" % (label, statistics.median(s),
                               s[int(len(s) * 0.9)], len(s)))


def bench_pickup(b, n=500):
    conf, d = b.agent_conf()
    p = b.start_agent(conf, d)
    b.wait_waiting()
    job = {"name": "pickup", "steps": [{"name": "t", "shell": ["bash", "-c"],
                                        "script": "echo $EPOCHREALTIME"}]}
    jwss = [harness.sign_job(job, b.key, "bench") for _ in range(n)]
    cli = b.q.client()
    # One kept-alive connection for the submits, set up beforehand: the
    # clock measures the queue and the agent, not a TLS handshake.
    conn = cli.connect()
    lat = []
    for jws in jwss:
        jid = harness.job_id_of(jws)
        b.wait_waiting()
        cli.request("GET", "/v1/health", token=None, conn=conn)
        t0 = time.time()
        r = cli.request("POST", "/v1/jobs", jws,
                        {"Content-Type": "application/jose"}, conn=conn)
        assert r.status == 201, r
        st = b.q.wait_state(jid, ("succeeded", "failed"), 20)
        assert st["state"] == "succeeded", st
        log = cli.request("GET", "/v1/jobs/%s/log" % jid).body.decode()
        m = re.search(r" out (\d+\.\d+)\n", log)
        lat.append((float(m.group(1)) - t0) * 1000)
    conn.close()
    b.stop(p)
    lat.sort()
    print("pickup submit -> step started  p50 %.2f ms  p90 %.2f ms  "
          "p99 %.2f ms  max %.2f ms  (n=%d)" % (
              lat[len(lat) // 2], lat[int(len(lat) * 0.9)],
              lat[int(len(lat) * 0.99)], lat[-1], len(lat)))


def bench_logs(b, mb=200, runs=3):
    rates = [log_run(b, mb) for _ in range(runs)]
    print("logs  median of %d runs: %.0f MB/s" % (runs, statistics.median(rates)))


def log_run(b, mb):
    pool_priv, pool_pub = harness.make_pool_key(b.tmp, "pool%d" % b.n)
    nsecrets = int(os.environ.get("SKIFF_BENCH_SECRETS", "1"))
    secrets = {}
    for i in range(nsecrets):
        value = ("not-in-the-output-9f3a" if i == 0 else
                 "s%d-%s" % (i, os.urandom(12).hex()))
        secrets["TOKEN%d" % i if i else "TOKEN"] = harness.run(
            [SKIFFCTL, "seal", "--pool-key", pool_pub],
            input=value.encode()).stdout.decode().strip()
    conf, d = b.agent_conf(pool_key=pool_priv)
    p = b.start_agent(conf, d)
    b.wait_waiting()
    line = "the quick brown fox jumps over the lazy dog, " * 2
    line = line[:99]
    total = mb * 1000 * 1000
    job = {"name": "logs", "secrets": secrets,
           "steps": [{"name": "spew", "script":
                      "yes '%s' | head -c %d" % (line, total)}]}
    jws = harness.sign_job(job, b.key, "bench")
    jid = harness.job_id_of(jws)
    net = children(p.pid)
    cpu0 = cpu_seconds(p.pid) + sum(cpu_seconds(c) for c in net)
    qcpu0 = cpu_seconds(b.q.proc.pid)
    b.q.submit_ok(jws)
    t_start = None
    st = b.q.wait_state(jid, ("succeeded", "failed"), 600)
    t_done = time.time()
    cpu = cpu_seconds(p.pid) + sum(cpu_seconds(c) for c in net) - cpu0
    qcpu = cpu_seconds(b.q.proc.pid) - qcpu0
    head = b.q.request("GET", "/v1/jobs/%s/log" % jid).body[:2000].decode()
    m = re.search(r"^(\S+) skf step 1/1 'spew' started", head, re.M)
    t_start = time.mktime(time.strptime(m.group(1)[:19], "%Y-%m-%dT%H:%M:%S")
                          ) - time.timezone + float("0." + m.group(1)[20:23])
    secs = t_done - t_start
    print("logs  %d MB of step output, %d secret%s (%d log bytes on the "
          "queue) in %.2f s: %.0f MB/s; agent CPU (both halves) %.2f s, "
          "queue CPU %.2f s; "
          "result %s" % (mb, nsecrets, "" if nsecrets == 1 else "s",
                         st["log_length"], secs, mb / secs, cpu, qcpu,
                         st["state"]))
    b.stop(p)
    return mb / secs


def main():
    which = sys.argv[1:] or ["idle", "startup", "pickup", "logs"]
    b = Bench()
    try:
        print("skiff-agent %s, %d CPUs, kernel %s, queue args: %s" % (
            harness.run([AGENT_BIN, "--version"]).stdout.decode().split()[1],
            os.cpu_count(), os.uname().release, " ".join(b.qargs) or "-"))
        for w in which:
            {"idle": bench_idle, "startup": bench_startup,
             "pickup": bench_pickup, "logs": bench_logs}[w](b)
    finally:
        b.close()


if __name__ == "__main__":
    main()
