#!/usr/bin/python3
"""A one-step job `true` in a local image run by skiff-agent, against
`docker run --rm IMAGE true` on the same image, alternating, in one run.

Prints the medians, their ratio (agent / docker run; target <= 1.0) and the
Engine API calls the agent makes per step. Never a pass/fail test.

    /usr/bin/python3 bench/docker/docker_bench.py [N]      (default N=30)

The agent's figure is the step's own duration as it logs it (from the
step's start to its end: create, attach, start, wait, inspect, remove);
docker run's is the wall time of the CLI process (create, attach, start,
wait for removal). Queue and network time are not in either.
"""
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
from agent_bench import Bench  # noqa: E402


def docker_run(image):
    t0 = time.monotonic()
    subprocess.run(["docker", "run", "--rm", image, "true"], check=True,
                   stdout=subprocess.DEVNULL)
    return (time.monotonic() - t0) * 1000


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    eng = dockerenv.Engine()
    image = dockerenv.build_images(eng)["busybox"]
    b = Bench()
    try:
        conf, d = b.agent_conf(log_level="debug")
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
    finally:
        b.close()


if __name__ == "__main__":
    main()
