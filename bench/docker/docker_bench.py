#!/usr/bin/python3
"""Container steps of skiff-agent against what a user would use instead,
side by side in one run (ratios: the machine is shared). Never a
pass/fail test.

    /usr/bin/python3 bench/docker/docker_bench.py [what...] [--runs N]

what (default all):
  one    a one-step job `true`: the step as the agent logs it, against
         `docker run --rm IMAGE true` (the first round's figure).
  ten    a job of ten steps that each run `true` in one local image,
         total time: skiff-agent with a container created per step
         (SKIFF_WARM_CONTAINERS=false), with containers made ahead (fresh
         per step), with "container": "shared"; 10 x `docker run --rm`;
         `docker run -d` + 10 x `docker exec` + `docker rm -f`; and the
         Engine API floor (create and start once, exec per step, remove,
         straight on the socket). Targets: shared <= 1.0x the floor.
  first  submit -> the first container step's first instruction (it
         creates a file in the workspace, which this polls), against
         `docker run --rm` launched -> the same instruction.
The agent's ten-step figure is the queue's own, from its log: the lease
handed out -> the job ended, which the agent reports once the job's
containers are removed; the others are the wall time of the CLI commands
or API calls (all of them include removing the containers).
"""
import datetime
import json
import os
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))
sys.path.insert(0, os.path.join(HERE, "..", "agent"))
import dockerenv  # noqa: E402
import harness  # noqa: E402
from harness import wait_until  # noqa: E402
from agent_bench import Bench  # noqa: E402


def docker_run(image):
    t0 = time.monotonic()
    subprocess.run(["docker", "run", "--rm", image, "true"], check=True,
                   stdout=subprocess.DEVNULL)
    return (time.monotonic() - t0) * 1000


def bench_one(b, image, n):
    if True:
        # the first round's way, to compare with its figure
        conf, d = b.agent_conf(log_level="debug", warm_containers="false")
        p = b.start_agent(conf, d)
        b.wait_waiting()
        log_path = os.path.join(d, "agent.log")
        job = {"name": "true", "steps": [{"name": "t", "image": image,
                                          "script": "true"}]}
        jwss = [harness.sign_job(job, b.key, "bench") for _ in range(n + 1)]
        agent_ms, cli_ms, calls = [], [], []
        docker_run(image)                      # warm both paths
        for i, jws in enumerate(jwss):
            jid = harness.job_id_of(jws)
            start = os.path.getsize(log_path)
            b.q.submit_ok(jws)
            st = b.q.wait_state(jid, ("succeeded", "failed"), 60)
            assert st["state"] == "succeeded", st
            log = b.q.request("GET", "/v1/jobs/%s/log" % jid).body.decode()
            m = re.search(r"exited with 0 after (\d+\.\d+)s", log)
            with open(log_path) as f:
                f.seek(start)
                text = f.read()
            if i == 0:
                continue                       # the first includes the sweep
            agent_ms.append(float(m.group(1)) * 1000)
            # The step's own calls: create and those naming its container
            # (the sweep's list after the job is per job, not per step).
            calls.append(len(re.findall(
                r'msg="docker call" method=\S+ path="?/containers/(?!json)',
                text)))
            cli_ms.append(docker_run(image))
        b.stop(p)
        am, cm = statistics.median(agent_ms), statistics.median(cli_ms)
        print("docker step `true` in %s, %d runs each, alternating" % (image, n))
        print("  skiff-agent step   median %7.1f ms  min %7.1f  max %7.1f"
              % (am, min(agent_ms), max(agent_ms)))
        print("  docker run --rm    median %7.1f ms  min %7.1f  max %7.1f"
              % (cm, min(cli_ms), max(cli_ms)))
        print("  ratio agent/docker run: %.2f" % (am / cm))
        print("  Engine API calls per step (containers): %s" %
              sorted(set(calls)))


# ---- ten steps ----

def queue_ms(line):
    m = re.match(r"ts=(\S+)Z ", line)
    return datetime.datetime.fromisoformat(m.group(1)).timestamp()


def job_secs(b, jws):
    """The queue's own times, from its log: the lease handed out -> the
    job ended (the agent completes it once its containers are removed).
    No polling, so nothing of the bench's own in the figure."""
    jid = harness.job_id_of(jws)
    b.q.submit_ok(jws)
    st = b.q.wait_state(jid, ("succeeded", "failed"), 120)
    assert st["state"] == "succeeded", st
    with open(b.q.log_path) as f:
        lines = [ln for ln in f if "job=%s" % jid in ln]
    t0 = [queue_ms(ln) for ln in lines if 'msg="lease handed out"' in ln][0]
    t1 = [queue_ms(ln) for ln in lines if 'msg="job ended"' in ln][0]
    return t1 - t0


def ten_job(image, shared):
    job = {"name": "ten", "steps": [
        {"name": "s%d" % i, "image": image, "script": "true"}
        for i in range(10)]}
    if shared:
        job["container"] = "shared"
    return job


def cli_run10(image):
    t0 = time.monotonic()
    for _ in range(10):
        subprocess.run(["docker", "run", "--rm", image, "true"], check=True,
                       stdout=subprocess.DEVNULL)
    return time.monotonic() - t0


def cli_exec10(image):
    t0 = time.monotonic()
    cid = subprocess.run(["docker", "run", "-d", "-i", "--init", image, "sh"],
                         check=True, capture_output=True).stdout.decode().strip()
    for _ in range(10):
        subprocess.run(["docker", "exec", cid, "sh", "-c", "true"], check=True)
    subprocess.run(["docker", "rm", "-f", cid], check=True,
                   stdout=subprocess.DEVNULL)
    return time.monotonic() - t0


JSON = {"Content-Type": "application/json"}


def api_exec10(eng, image):
    def body(o):
        return json.dumps(o).encode()
    t0 = time.monotonic()
    cid = eng.json("POST", "/containers/create", headers=JSON, body=body({
        "Image": image, "Entrypoint": ["sh"], "Cmd": [], "OpenStdin": True,
        "HostConfig": {"Init": True}}))["Id"]
    eng.request("POST", "/containers/%s/start" % cid)
    for _ in range(10):
        ex = eng.json("POST", "/containers/%s/exec" % cid, headers=JSON,
                      body=body({"Cmd": ["sh", "-c", "true"],
                                 "AttachStdout": True,
                                 "AttachStderr": True}))["Id"]
        eng.request("POST", "/exec/%s/start" % ex, headers=JSON,
                    body=body({"Detach": False, "Tty": False}))
        code = eng.json("GET", "/exec/%s/json" % ex)["ExitCode"]
        assert code == 0, code
    eng.request("DELETE", "/containers/%s" % cid, query={"force": "1"})
    return time.monotonic() - t0


def bench_ten(b, eng, image, n):
    agents = {}
    for mode, warm in (("per-step", "false"), ("made-ahead", "true")):
        conf, d = b.agent_conf(warm_containers=warm)
        agents[mode] = (conf, d)
    rows = {k: [] for k in ("per-step", "made-ahead", "shared", "run",
                            "exec", "api")}
    for i in range(n + 1):
        for mode in ("per-step", "made-ahead"):
            conf, d = agents[mode]
            p = b.start_agent(conf, d)
            b.wait_waiting()
            jobs = [ten_job(image, False)]
            if mode == "made-ahead":
                jobs.append(ten_job(image, True))
            secs = [job_secs(b, harness.sign_job(j, b.key, "bench"))
                    for j in jobs]
            b.stop(p)
            if i == 0:
                continue
            rows[mode].append(secs[0])
            if mode == "made-ahead":
                rows["shared"].append(secs[1])
        r, e, a = cli_run10(image), cli_exec10(image), api_exec10(eng, image)
        if i:
            rows["run"].append(r)
            rows["exec"].append(e)
            rows["api"].append(a)
    med = {k: statistics.median(v) for k, v in rows.items()}
    print("ten steps `true` in %s, %d runs each, interleaved" % (image, n))
    names = {
        "per-step": "skiff-agent, a container per step (create/attach/start)",
        "made-ahead": "skiff-agent, fresh containers made ahead, exec",
        "shared": "skiff-agent, \"container\": \"shared\"",
        "run": "10 x docker run --rm",
        "exec": "docker run -d, 10 x docker exec, docker rm -f",
        "api": "Engine API floor: one container, exec per step",
    }
    for k, label in names.items():
        print("  %-58s total %6.3f s  per step %5.0f ms  x floor %.2f" % (
            label, med[k], med[k] * 100, med[k] / med["api"]))


# ---- submit -> first instruction ----

def poll_file(path, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if os.path.exists(path):
            return time.monotonic()
        time.sleep(0.0005)
    raise AssertionError("%s never appeared" % path)


def bench_first(b, image, n):
    conf, d = b.agent_conf()
    p = b.start_agent(conf, d)
    work = os.path.join(d, "work")
    scratch = os.path.join(b.tmp, "first")
    os.makedirs(scratch)
    agent_ms, cli_ms = [], []
    try:
        for i in range(n + 1):
            b.wait_waiting()
            job = {"name": "first", "steps": [
                {"name": "s", "image": image, "script": ": > started"}]}
            jws = harness.sign_job(job, b.key, "bench")
            jid = harness.job_id_of(jws)
            target = os.path.join(work, "%s.1" % jid, "workspace", "started")
            t0 = time.monotonic()
            b.q.submit_ok(jws)
            t1 = poll_file(target, 60)
            b.q.wait_state(jid, ("succeeded",), 60)
            mark = os.path.join(scratch, "started%d" % i)
            t2 = time.monotonic()
            c = subprocess.Popen(["docker", "run", "--rm", "-v",
                                  "%s:%s" % (scratch, scratch), image, "sh",
                                  "-c", ": > %s" % mark])
            t3 = poll_file(mark, 60)
            c.wait()
            if i:
                agent_ms.append((t1 - t0) * 1000)
                cli_ms.append((t3 - t2) * 1000)
    finally:
        b.stop(p)
    am, cm = statistics.median(agent_ms), statistics.median(cli_ms)
    print("first instruction of a container step, %d runs each" % n)
    print("  skiff-agent: submit -> first instruction   median %6.1f ms" % am)
    print("  docker run --rm: launch -> first instruction median %6.1f ms" % cm)
    print("  ratio agent/docker run: %.2f" % (am / cm))


def main():
    args = sys.argv[1:]
    n = None
    if "--runs" in args:
        i = args.index("--runs")
        n = int(args[i + 1])
        del args[i:i + 2]
    what = args or ["one", "ten", "first"]
    eng = dockerenv.Engine()
    image = dockerenv.build_images(eng)["busybox"]
    b = Bench()
    try:
        if "one" in what:
            bench_one(b, image, n or 30)
        if "ten" in what:
            bench_ten(b, eng, image, n or 5)
        if "first" in what:
            bench_first(b, image, n or 20)
    finally:
        b.close()


if __name__ == "__main__":
    main()
