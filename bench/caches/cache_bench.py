#!/usr/bin/python3
"""A 200 MB cache (a mixed tree) saved and restored by skiff-agent
through a real queue, against `tar czf` and `tar xzf` of the same tree on
the same disk, alternating, in one run.

    /usr/bin/python3 bench/caches/cache_bench.py [MB] [rounds]

The tree: a third random bytes in files of 1-8 MiB (incompressible, as
built objects are), the rest text in files of 1-64 KiB across nested
directories (source, lock files, node_modules-like), so that both the
packer's per-file cost and its compression count.

Save: from the agent's "cache K: saving" log record to "cache K: saved"
(pack into a gzip tar in a child, upload with its SHA-256, the queue's
commit). Restore: from "cache K: looking for it" to "cache K: restored"
(lookup, download, SHA-256 check, skiff-unpack into a staging directory,
move into the workspace), in a second job whose workspace starts empty.
`tar czf` and `tar xzf` (gzip's default level 6; the agent packs at
level 1) of the same tree to and from the same disk are timed around the
command. Prints each and the ratios (agent / tar). Never a pass/fail test.
"""
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))
sys.path.insert(0, os.path.join(HERE, "..", "agent"))
import harness  # noqa: E402
from agent_bench import Bench, log_ts  # noqa: E402

WORDS = (b"import export function return const let var if else for while "
         b"module require package version dependency lockfile resolved "
         b"integrity sha512 node_modules build target release debug").split()


def make_tree(root, mb):
    rnd = random.Random(13)
    total, want = 0, mb * 1000 * 1000
    files = 0
    blob = os.urandom(8 << 20)
    os.makedirs(root)
    while total < want / 3:
        n = rnd.randint(1 << 20, 8 << 20)
        d = os.path.join(root, "objects", "o%02d" % (files % 10))
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "obj%d.bin" % files), "wb") as f:
            off = rnd.randint(0, len(blob) - n)
            f.write(blob[off:off + n])
        total += n
        files += 1
    while total < want:
        n = rnd.randint(1 << 10, 64 << 10)
        d = os.path.join(root, "pkgs", "p%03d" % (files % 300),
                         "lib", "d%d" % (files % 7))
        os.makedirs(d, exist_ok=True)
        words = [rnd.choice(WORDS) for _ in range(n // 6 + 1)]
        text = b" ".join(words)[:n]
        with open(os.path.join(d, "f%d.js" % files), "wb") as f:
            f.write(text)
        total += n
        files += 1
    return total, files


def joblog(b, jid):
    return b.q.request("GET", "/v1/jobs/%s/log" % jid).body.decode(
        errors="replace")


def span(log, start, end):
    t = []
    for text in (start, end):
        m = re.search(r"^(\S+) skf " + re.escape(text), log, re.M)
        assert m, (text, log[-2000:])
        t.append(log_ts("ts=" + m.group(1)))
    return t[1] - t[0]


def agent_round(b, tree, key):
    job = {"name": "save", "caches": [{"key": key, "paths": ["cache"]}],
           "steps": [{"name": "fill", "script": "cp -a %s cache" % tree}]}
    jws = harness.sign_job(job, b.key, "bench")
    jid = harness.job_id_of(jws)
    b.q.submit_ok(jws)
    st = b.q.wait_state(jid, ("succeeded", "failed"), 900)
    log = joblog(b, jid)
    assert st["state"] == "succeeded", (st, log[-2000:])
    assert "cache %s: saved" % key in log, log[-2000:]
    save = span(log, "cache %s: saving" % key, "cache %s: saved" % key)
    job = {"name": "restore", "caches": [{"key": key, "paths": ["cache"]}],
           "steps": [{"name": "check", "script": "du -s cache"}]}
    jws = harness.sign_job(job, b.key, "bench")
    jid = harness.job_id_of(jws)
    b.q.submit_ok(jws)
    st = b.q.wait_state(jid, ("succeeded", "failed"), 900)
    assert st["state"] == "succeeded", st
    log = joblog(b, jid)
    restore = span(log, "cache %s: looking for it" % key,
                   "cache %s: restored" % key)
    m = re.search(r"cache %s: found '[^']*', (\d+) bytes" % re.escape(key),
                  log)
    return save, restore, int(m.group(1))


def tar_round(tmp, tree):
    out = os.path.join(tmp, "tar.tar.gz")
    dest = os.path.join(tmp, "untar")
    parent, name = os.path.split(tree)
    t0 = time.monotonic()
    subprocess.run(["tar", "czf", out, "-C", parent, name], check=True)
    c = time.monotonic() - t0
    os.makedirs(dest)
    t0 = time.monotonic()
    subprocess.run(["tar", "xzf", out, "-C", dest], check=True)
    x = time.monotonic() - t0
    size = os.path.getsize(out)
    os.unlink(out)
    shutil.rmtree(dest)
    # The same at the agent's gzip level, for a like-for-like figure.
    t0 = time.monotonic()
    subprocess.run(["tar", "-I", "gzip -1", "-cf", out, "-C", parent, name],
                   check=True)
    c1 = time.monotonic() - t0
    os.unlink(out)
    return c, x, size, c1


def main():
    mb = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    b = Bench()
    tree = os.path.join(b.tmp, "tree")
    # Host steps may run as SKIFF_STEP_USER: the tree is world-readable.
    os.chmod(b.tmp, 0o755)
    try:
        total, files = make_tree(tree, mb)
        print("tree: %d files, %.0f MB" % (files, total / 1e6))
        conf, d = b.agent_conf(log_level="info")
        p = b.start_agent(conf, d)
        b.wait_waiting()
        saves, restores, czf, xzf, cz1 = [], [], [], [], []
        for i in range(rounds):
            s, r, asize = agent_round(b, tree, "bench-%d" % i)
            saves.append(s)
            restores.append(r)
            c, x, tsize, c1 = tar_round(b.tmp, tree)
            czf.append(c)
            xzf.append(x)
            cz1.append(c1)
            print("round %d: agent save %.2fs restore %.2fs (archive %.0f "
                  "MB); tar czf %.2fs xzf %.2fs (archive %.0f MB); tar "
                  "with gzip -1 %.2fs" % (i + 1, s, r, asize / 1e6, c, x,
                                          tsize / 1e6, c1))
        b.stop(p)
        ms, mr = statistics.median(saves), statistics.median(restores)
        mc, mx = statistics.median(czf), statistics.median(xzf)
        m1 = statistics.median(cz1)
        print("%d MB tree, %d files, %d rounds (medians): save %.2fs vs tar "
              "czf %.2fs, ratio %.2f (vs tar with gzip -1 %.2fs, ratio %.2f); "
              "restore %.2fs vs tar xzf %.2fs, ratio %.2f" % (
                  mb, files, rounds, ms, mc, ms / mc, m1, ms / m1, mr, mx,
                  mr / mx))
    finally:
        b.close()
        shutil.rmtree(b.tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
