#!/usr/bin/python3
"""A 1 GiB artifact uploaded by skiff-agent, against curl uploading the
same file to the same queue, alternating, in one run. (`curl
--data-binary @file` refuses a 1 GiB file in curl 7.88, "out of memory":
it reads the file into memory; `curl -T file` sends the same PUT with the
same Content-Length, streamed.)

Prints each upload's throughput, the ratio of medians (agent / curl;
target >= 0.8) and the agent's peak RSS growth during its uploads (target
<= 2 MiB). Never a pass/fail test.

    /usr/bin/python3 bench/artifacts/upload_bench.py [MiB] [rounds]

The file is random (incompressible), so the agent sends it as is after
sampling it; its time runs from the "uploading" record the runner writes
to the agent's "artifact uploaded" line (create, PUT, commit, with the
SHA-256 computed on the way). curl's runs from its start to its exit for
the PUT alone; create and commit are done around it, untimed.
"""
import hashlib
import os
import re
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))
sys.path.insert(0, os.path.join(HERE, "..", "agent"))
import harness  # noqa: E402
from agent_bench import Bench, log_ts, status_kib  # noqa: E402


def make_file(path, mib):
    with open(path, "wb") as f:
        chunk = os.urandom(1 << 20)
        for i in range(mib):
            # Vary each MiB a little so nothing compresses or dedups.
            f.write(i.to_bytes(8, "little") + chunk[8:])
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def agent_upload(b, p, d, path, size):
    job = {"name": "upload", "steps": [{"name": "link", "script":
           "ln %s big.bin" % path, "artifacts": ["big.bin"]}]}
    jws = harness.sign_job(job, b.key, "bench")
    jid = harness.job_id_of(jws)
    base = status_kib(p.pid)["VmRSS"]
    peak = [base]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], status_kib(p.pid)["VmRSS"])
            time.sleep(0.02)
    t = threading.Thread(target=sample)
    t.start()
    log_path = os.path.join(d, "agent.log")
    start = os.path.getsize(log_path)
    b.q.submit_ok(jws)
    st = b.q.wait_state(jid, ("succeeded", "failed"), 600)
    done.set()
    t.join()
    assert st["state"] == "succeeded", st
    joblog = b.q.request("GET", "/v1/jobs/%s/log" % jid).body.decode()
    m = re.search(r"^(\S+) skf artifact 'big.bin' \(\d+ bytes\) uploading",
                  joblog, re.M)
    t0 = log_ts("ts=" + m.group(1))
    with open(log_path) as f:
        f.seek(start)
        line = next(l for l in f if 'msg="artifact uploaded"' in l)
    secs = log_ts(line) - t0
    return size / secs / (1 << 20), (peak[0] - base) / 1024


def curl_upload(b, s, path, size, digest):
    # Another pool: the agent, long-polling in "bench", must not take it.
    jws = harness.sign_job(harness.simple_job(), b.key, "bench-curl")
    b.q.submit_ok(jws)
    lease = s.lease_ok(wait=5)
    s.heartbeat(lease["lease"])
    r = s.artifact_create(lease["lease"], "big.bin", size)
    assert r.status == 201, r
    up = r.json()["upload"]
    t0 = time.monotonic()
    subprocess.run(["curl", "-sS", "-o", "/dev/null", "--fail",
                    "--cacert", b.pki.ca_file, "-X", "PUT",
                    "-H", "Authorization: Bearer " + s.token,
                    "-H", "Content-Type: application/octet-stream",
                    # --data-binary reads the file into memory, and curl
                    # 7.88 refuses one of 1 GiB ("out of memory"): -T sends
                    # the same PUT with the same Content-Length, streamed.
                    "-T", path,
                    "%s/v1/uploads/%s?offset=0" % (b.q.url, up)], check=True)
    secs = time.monotonic() - t0
    r = s.upload_commit(up, digest)
    assert r.status == 200, r
    s.complete(lease["lease"], log_length=0)
    return size / secs / (1 << 20)


def main():
    mib = int(sys.argv[1]) if len(sys.argv) > 1 else 1024
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    b = Bench()
    path = os.path.join(b.tmp, "big.bin")
    try:
        digest = make_file(path, mib)
        size = os.path.getsize(path)
        conf, d = b.agent_conf(log_level="info")
        p = b.start_agent(conf, d)
        b.wait_waiting()
        s = b.q.register(pool="bench-curl", name="curl-side")
        agent_rates, curl_rates, growth = [], [], []
        for _ in range(rounds):
            rate, g = agent_upload(b, p, d, path, size)
            agent_rates.append(rate)
            growth.append(g)
            print("agent  %.0f MiB/s  (RSS growth %.2f MiB)" % (rate, g))
            rate = curl_upload(b, s, path, size, digest)
            curl_rates.append(rate)
            print("curl   %.0f MiB/s" % rate)
        b.stop(p)
        am, cm = statistics.median(agent_rates), statistics.median(curl_rates)
        print("%d MiB artifact, %d rounds: agent median %.0f MiB/s, curl "
              "median %.0f MiB/s, ratio %.2f; agent peak RSS growth %.2f MiB"
              % (mib, rounds, am, cm, am / cm, max(growth)))
    finally:
        b.close()
        if os.path.exists(path):
            os.unlink(path)


if __name__ == "__main__":
    main()
