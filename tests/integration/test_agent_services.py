"""Service containers (job.services): the real agent, the real queue over
TLS, the real dockerd. Service images are the local busybox test image
(dockerenv.py) and one made from it with a HEALTHCHECK; nothing comes from
a registry on the internet.

Each test checks that nothing of the job is left once it completed: no
container and no network carrying its job label."""
import json
import os
import re
import signal
import time
import unittest

import dockerenv
import harness
from agentfix import AgentTestCase, FileServer, log_stream
from harness import wait_until

HEALTH_REF = "skiff-test/health:1"
# Healthy once /tmp/healthy exists; unhealthy after two failed checks.
HEALTH_CHANGES = ['HEALTHCHECK --interval=1s --timeout=2s --retries=2 '
                  'CMD ["/bin/test", "-e", "/tmp/healthy"]']

# An image whose CMD is a web server on 8080.
CMD_REF = "skiff-test/svc-cmd:1"
CMD_CHANGES = ['CMD ["/bin/sh", "-c", "mkdir -p /www && echo from-image-cmd '
               '> /www/index.html && exec httpd -f -p 8080 -h /www"]']


def httpd(port, text, delay=0):
    """A service command: busybox httpd serving text at / on port, after
    delay seconds."""
    return ["/bin/sh", "-c",
            "sleep %d; mkdir -p /www && echo \"%s\" > /www/index.html && "
            "exec httpd -f -p %d -h /www" % (delay, text, port)]


class ServiceTests(AgentTestCase):
    queue_args = ("--heartbeat-interval", "1s")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.eng = dockerenv.Engine()
        cls.images = dockerenv.build_images(cls.eng)
        cls.busybox = cls.images["busybox"]
        cls.health = dockerenv.build_image(cls.eng, HEALTH_REF,
                                           HEALTH_CHANGES)
        cls.cmd_image = dockerenv.build_image(cls.eng, CMD_REF, CMD_CHANGES)

    def submit_job(self, job, **kw):
        job_id = super().submit_job(job, **kw)
        # A test that fails mid-job kills its agent: what the job left on
        # the engine goes with the test all the same.
        self.addCleanup(self.remove_job_leftovers, job_id)
        return job_id

    def remove_job_leftovers(self, job_id):
        label = "io.skiff.job=%s" % job_id
        dockerenv.remove_labelled(self.eng, label)
        for n in self.networks_with(label):
            try:
                self.eng.request("DELETE", "/networks/%s" % n["Id"])
            except dockerenv.EngineError as e:
                if e.status != 404:
                    raise

    def networks_with(self, label):
        return self.eng.json("GET", "/networks", query={
            "filters": json.dumps({"label": [label]})}) or []

    def assert_nothing_left(self, job):
        label = "io.skiff.job=%s" % job
        self.assertEqual(self.eng.containers_with_label(label), [])
        self.assertEqual(self.networks_with(label), [])

    def wait_out(self, job, marker, what, timeout=60):
        """Until a step wrote the line marker; the job's log if it ended
        before."""
        def seen():
            log = self.log_of(job)
            if (marker + "\n").encode() in log_stream(log, "out"):
                return True
            st = self.q.request("GET", "/v1/jobs/%s" % job).json()
            if st["state"] not in ("queued", "leased", "running"):
                raise AssertionError("job ended (%s) before %s:\n%s" % (
                    st["state"], what, log.decode(errors="replace")))
            return False
        wait_until(seen, timeout, interval=0.2, what=what)

    def run_job(self, steps, services, timeout=90, **extra):
        job = self.submit_job(self.steps_job(*steps, services=services,
                                             **extra))
        return job, self.finished(job, timeout=timeout)

    def test_reachable_by_name_and_by_published_port(self):
        a = self.agent()
        job = self.submit_job(self.steps_job(
            {"name": "in a container", "image": self.busybox,
             "script": "echo \"$SKIFF_SERVICE_WEB_HOST $SKIFF_SERVICE_WEB_PORT "
                       "$SKIFF_SERVICE_WEB_PORT_8080\"\n"
                       "wget -qO- http://web:8080/\n"
                       "wget -qO- http://$SKIFF_SERVICE_WEB_HOST:"
                       "$SKIFF_SERVICE_WEB_PORT/\n"
                       "nslookup plain >/dev/null && echo plain-resolves"},
            {"name": "on the host",
             "script": "echo \"host=$SKIFF_SERVICE_WEB_HOST\"\n"
                       "echo \"$SKIFF_SERVICE_WEB_PORT\" > port\n"
                       "[ \"$SKIFF_SERVICE_WEB_PORT\" = "
                       "\"$SKIFF_SERVICE_WEB_PORT_8080\" ]\n"
                       "busybox wget -qO- http://$SKIFF_SERVICE_WEB_HOST:"
                       "$SKIFF_SERVICE_WEB_PORT/\n"
                       "echo host-step-waiting\n"
                       "i=0; while [ ! -e go ] && [ $i -lt 600 ]; do "
                       "sleep 0.1; i=$((i+1)); done"},
            services=[{"name": "web", "image": self.busybox,
                       "env": {"GREETING": "from-the-service"},
                       "command": ["/bin/sh", "-c",
                                   "mkdir -p /www && echo \"svc says "
                                   "$GREETING\" > /www/index.html && "
                                   "exec httpd -f -p 8080 -h /www"],
                       "ports": [8080], "wait": {"tcp": 8080}},
                      {"name": "plain", "image": self.busybox,
                       "command": ["sleep", "600"]}]))
        self.wait_out(job, "host-step-waiting", "the host step to run")
        # While the job runs: the services on the job's network, under
        # their names, published on loopback only.
        web = self.eng.containers_with_label("io.skiff.service=web")
        web = [c for c in web if c["Labels"].get("io.skiff.job") == job]
        self.assertEqual(len(web), 1, web)
        info = self.eng.json("GET", "/containers/%s/json" % web[0]["Id"])
        net = "skiff-%s-1" % job
        self.assertEqual(info["HostConfig"]["NetworkMode"], net)
        self.assertEqual(list(info["NetworkSettings"]["Networks"]), [net])
        self.assertIn("web", info["NetworkSettings"]["Networks"][net]
                      ["Aliases"])
        binds = info["NetworkSettings"]["Ports"]["8080/tcp"]
        self.assertEqual({b["HostIp"] for b in binds}, {"127.0.0.1"}, binds)
        with open(os.path.join(a.state_dir, "instance")) as f:
            self.assertEqual(info["Config"]["Labels"]["io.skiff.instance"],
                             f.read())
        nets = self.networks_with("io.skiff.job=%s" % job)
        self.assertEqual([n["Name"] for n in nets], [net])
        ws = os.path.join(a.work_dir, "%s.1" % job, "workspace")
        with open(os.path.join(ws, "port")) as f:
            self.assertEqual(int(f.read()), int(binds[0]["HostPort"]))
        open(os.path.join(ws, "go"), "w").close()
        st = self.finished(job, timeout=60)
        self.assertEqual(st["state"], "succeeded", st)
        log = self.log_of(job)
        out = log_stream(log, "out").decode()
        self.assertIn("web 8080 8080\nsvc says from-the-service\n"
                      "svc says from-the-service\nplain-resolves\n", out)
        self.assertIn("host=127.0.0.1\nsvc says from-the-service\n"
                      "host-step-waiting\n", out)
        skf = log_stream(log, "skf").decode()
        self.assertIn("services: starting 2 on network %s" % net, skf)
        self.assertRegex(skf, r"service 'web' is ready after [0-9.]+s: "
                              r"web:8080, 127\.0\.0\.1:%s on the host"
                         % binds[0]["HostPort"])
        self.assertIn("service 'plain' is ready", skf)
        self.assertNotIn("exited", skf.split("step 1/2")[0])
        self.assert_nothing_left(job)

    def test_reachable_from_containers_made_ahead_and_shared(self):
        # The first container step runs as its container's own process
        # (other resources than the next: nothing to share); the next one
        # is an exec in a container made ahead of it, the two after it
        # share one: all of them are on the job's network.
        self.agent()
        fetch = "wget -qO- http://web:8080/"
        job, st = self.run_job(
            [{"name": "own", "image": self.busybox, "script": fetch,
              "resources": {"pids": 256}},
             {"name": "made ahead", "image": self.busybox, "script": fetch},
             {"name": "shared 1", "image": self.busybox, "script": fetch,
              "resources": {"pids": 512}},
             {"name": "shared 2", "image": self.busybox, "script": fetch,
              "resources": {"pids": 512}}],
            [{"name": "web", "image": self.busybox,
              "command": httpd(8080, "served"), "ports": [8080],
              "wait": {"tcp": 8080}}], container="shared")
        self.assertEqual(st["state"], "succeeded", st)
        self.assertEqual(log_stream(self.log_of(job), "out"),
                         b"served\n" * 4)
        self.assert_nothing_left(job)

    def test_examples_integration_json(self):
        """examples/integration.json (a service, a cache, outputs) runs on
        one agent, and again on another with an empty work dir, which
        restores the cache the first saved."""
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                            "..", "..", "examples", "integration.json")
        with open(path) as f:
            text = f.read().replace("skiff-demo/busybox:1", self.busybox)
        outs = []
        for name in ("first", "second"):
            a = self.agent(name=name)
            job = self.submit_job(json.loads(text))
            st = self.finished(job, timeout=90 * harness.SLOW)
            self.assertEqual(st["state"], "succeeded", st)
            self.assertEqual(st["outputs"], {"api_version": "api 1.0 ready",
                                             "tests": "3"}, st)
            outs.append(log_stream(self.log_of(job), "out").decode())
            self.assert_nothing_left(job)
            a.signal(signal.SIGTERM)
            a.wait_exit()
        self.assertIn("deps fetched", outs[0])
        self.assertIn("deps restored from the cache: 3 files", outs[1])
        for out in outs:
            self.assertIn("the api service answered: api 1.0 ready\n", out)
            self.assertIn("api: api 1.0 ready, tests run: 3\n", out)
            self.assertIn("the service is published on 127.0.0.1:", out)

    def test_wait_tcp_holds_until_the_service_listens(self):
        # The engine's port proxy accepts on the published port from the
        # start; the wait must not take that for the service. The service
        # listens only after 3 s, and the step tries once, without retry.
        self.agent()
        job, st = self.run_job(
            [{"name": "fetch once",
              "script": "busybox wget -qO- http://127.0.0.1:"
                        "$SKIFF_SERVICE_SLOW_PORT/"}],
            [{"name": "slow", "image": self.busybox,
              "command": httpd(9000, "late but up", delay=3),
              "ports": [9000], "wait": {"tcp": 9000, "timeout": 60}}])
        self.assertEqual(st["state"], "succeeded", st)
        log = self.log_of(job)
        self.assertEqual(log_stream(log, "out"), b"late but up\n")
        ready = re.search(rb"service 'slow' is ready after ([0-9.]+)s", log)
        self.assertIsNotNone(ready, log)
        # From the engine's answer to start: a little under the 3 s.
        self.assertGreaterEqual(float(ready.group(1)), 1.5)
        self.assert_nothing_left(job)

    def test_wait_health(self):
        self.agent()
        job, st = self.run_job(
            [{"name": "after healthy", "image": self.busybox,
              "script": "echo step-ran"}],
            [{"name": "hc", "image": self.health,
              "command": ["/bin/sh", "-c",
                          "sleep 2; touch /tmp/healthy; exec sleep 600"],
              "wait": {"health": True, "timeout": 60}}])
        self.assertEqual(st["state"], "succeeded", st)
        log = self.log_of(job)
        self.assertEqual(log_stream(log, "out"), b"step-ran\n")
        ready = re.search(rb"service 'hc' is ready after ([0-9.]+)s", log)
        self.assertIsNotNone(ready, log)
        self.assertGreaterEqual(float(ready.group(1)), 1.0)
        self.assert_nothing_left(job)

    def test_unhealthy_and_no_healthcheck_fail_the_job(self):
        self.agent()
        job, st = self.run_job(
            [{"name": "never", "script": "echo must-not-run"}],
            [{"name": "sick", "image": self.health,
              "command": ["/bin/sh", "-c", "echo feeling-sick; "
                          "exec sleep 600"],
              "wait": {"health": True, "timeout": 60}}])
        self.assertEqual(st["state"], "failed", st)
        self.assertEqual(st["reason_code"], "service_failed", st)
        self.assertIn("unhealthy", st["reason"])
        log = self.log_of(job)
        self.assertNotIn(b"must-not-run", log)
        self.assertIn(b"service 'sick' | feeling-sick", log)
        self.assert_nothing_left(job)
        job, st = self.run_job(
            [{"name": "never", "script": "echo must-not-run"}],
            [{"name": "nohc", "image": self.busybox,
              "command": ["sleep", "600"], "wait": {"health": True}}])
        self.assertEqual(st["reason_code"], "service_failed", st)
        self.assertIn("has no HEALTHCHECK", st["reason"])
        self.assertNotIn(b"must-not-run", self.log_of(job))
        self.assert_nothing_left(job)

    def test_never_ready_fails_the_job_with_its_log(self):
        self.agent()
        job, st = self.run_job(
            [{"name": "never", "script": "echo must-not-run"}],
            [{"name": "mute", "image": self.busybox,
              "env": {"WHO": "mute-service"},
              "command": ["/bin/sh", "-c",
                          "echo \"hello from $WHO\"; echo to-stderr >&2; "
                          "printf 'ctl\\033[31m\\n'; exec sleep 600"],
              "ports": [9000], "wait": {"tcp": 9000, "timeout": 3}}])
        self.assertEqual(st["state"], "failed", st)
        self.assertEqual(st["reason_code"], "service_failed", st)
        self.assertIn("service 'mute' was not ready within 3s", st["reason"])
        log = self.log_of(job)
        self.assertNotIn(b"must-not-run", log)
        skf = log_stream(log, "skf").decode()
        self.assertIn("service 'mute': its last log lines:", skf)
        self.assertIn("service 'mute' | hello from mute-service\n", skf)
        self.assertIn("service 'mute' | to-stderr\n", skf)
        # Control characters from the service are not passed on raw.
        self.assertIn("service 'mute' | ctl?[31m\n", skf)
        self.assert_nothing_left(job)

    def test_image_entrypoint_and_cmd(self):
        # Without command: the image's CMD runs.
        self.agent()
        job, st = self.run_job(
            [{"name": "fetch", "script": "busybox wget -qO- "
                                         "http://127.0.0.1:$SKIFF_SERVICE_"
                                         "FROM_IMAGE_PORT/"}],
            [{"name": "from-image", "image": self.cmd_image,
              "ports": [8080], "wait": {"tcp": 8080}}])
        self.assertEqual(st["state"], "succeeded", st)
        self.assertEqual(log_stream(self.log_of(job), "out"),
                         b"from-image-cmd\n")
        self.assert_nothing_left(job)
        # command replaces CMD only: ENTRYPOINT ["/bin/false"] still runs,
        # with the command as its arguments, and fails.
        job, st = self.run_job(
            [{"name": "never", "script": "echo must-not-run"}],
            [{"name": "ep", "image": self.images["entrypoint"],
              "command": ["/bin/sleep", "600"], "ports": [9000],
              "wait": {"tcp": 9000}}])
        self.assertEqual(st["reason_code"], "service_failed", st)
        self.assertIn("service 'ep' exited with code 1 before it was ready",
                      st["reason"])
        self.assert_nothing_left(job)

    def test_huge_log_lines(self):
        # Sixty lines of 100 kB: what reaches the job's log is bounded (at
        # most 50 lines, each cut to 1000 bytes), however the engine's log
        # driver cuts them (Docker's json-file keeps 16 KiB per entry, and
        # tail counts entries). Over the answer's cap, the agent asks for
        # the last three only.
        self.agent()
        job, st = self.run_job(
            [{"name": "never", "script": "echo must-not-run"}],
            [{"name": "loud", "image": self.busybox,
              "command": ["/bin/sh", "-c",
                          "i=0; while [ $i -lt 60 ]; do head -c 100000 "
                          "/dev/zero | tr '\\0' x; echo \" line$i\"; "
                          "i=$((i+1)); done; exec sleep 600"],
              "ports": [9000], "wait": {"tcp": 9000, "timeout": 4}}])
        self.assertEqual(st["reason_code"], "service_failed", st)
        log = self.log_of(job)
        self.assertLess(len(log), 100000)
        skf = log_stream(log, "skf").decode()
        prefix = "service 'loud' | "
        lines = [l for l in skf.splitlines() if l.startswith(prefix)]
        self.assertTrue(1 <= len(lines) <= 50, skf[-3000:])
        for l in lines:
            self.assertLessEqual(len(l), len(prefix) + 1003)
        self.assertTrue(any(len(l) == len(prefix) + 1003 and
                            l.endswith("x" * 100 + "...") for l in lines))
        self.assert_nothing_left(job)

    def test_service_that_exits(self):
        self.agent()
        # Before it is ready...
        job, st = self.run_job(
            [{"name": "never", "script": "echo must-not-run"}],
            [{"name": "quitter", "image": self.busybox,
              "command": ["/bin/sh", "-c", "echo bye-bye; sleep 1; exit 3"],
              "ports": [9000], "wait": {"tcp": 9000, "timeout": 60}}])
        self.assertEqual(st["reason_code"], "service_failed", st)
        self.assertIn("service 'quitter' exited with code 3 before it was "
                      "ready", st["reason"])
        log = self.log_of(job)
        self.assertIn(b"service 'quitter' | bye-bye", log)
        self.assertNotIn(b"must-not-run", log)
        self.assert_nothing_left(job)
        # ...and while the steps run: the running step is stopped, no later
        # step runs.
        job = self.submit_job(self.steps_job(
            {"name": "long", "image": self.busybox,
             "script": "echo long-started; sleep 120"},
            {"name": "later", "script": "echo must-not-run"},
            services=[{"name": "flaky", "image": self.busybox,
                       "command": ["/bin/sh", "-c",
                                   "echo up; while [ ! -e /tmp/x ]; do "
                                   "sleep 0.1; done; echo going-down; "
                                   "exit 4"]}]))
        # The service is told to exit by a file made through the engine.
        self.wait_out(job, "long-started", "the long step to run")
        flaky = [c for c in self.eng.containers_with_label(
            "io.skiff.job=%s" % job)
            if c["Labels"].get("io.skiff.service") == "flaky"]
        self.assertEqual(len(flaky), 1)
        self.exec_touch(flaky[0]["Id"], "/tmp/x")
        st = self.finished(job, timeout=60)
        self.assertEqual(st["state"], "failed", st)
        self.assertEqual(st["reason_code"], "service_failed", st)
        self.assertIn("service 'flaky' exited with code 4 while the steps "
                      "ran", st["reason"])
        log = self.log_of(job)
        self.assertIn(b"service 'flaky' | going-down", log)
        self.assertNotIn(b"must-not-run", log)
        self.assertEqual(len(st["exit_codes"]), 1, st)
        self.assert_nothing_left(job)

    def exec_touch(self, cid, path):
        body = json.dumps({"Cmd": ["touch", path], "AttachStdout": False,
                           "AttachStderr": False}).encode()
        ex = self.eng.json("POST", "/containers/%s/exec" % cid, body=body,
                           headers={"Content-Type": "application/json"})
        self.eng.request("POST", "/exec/%s/start" % ex["Id"],
                         body=json.dumps({"Detach": True}).encode(),
                         headers={"Content-Type": "application/json"})

    def test_image_pulled_once_for_service_and_step(self):
        with dockerenv.Registry() as reg:
            ref = reg.push_unique(self.eng, "skiff/svc")
            self.addCleanup(self.eng.remove_image, ref)
            self.agent()
            job, st = self.run_job(
                [{"name": "same image", "image": ref,
                  "script": "wget -qO- http://svc:8080/"}],
                [{"name": "svc", "image": ref,
                  "command": httpd(8080, "pulled-once"),
                  "ports": [8080], "wait": {"tcp": 8080}}])
            self.assertEqual(st["state"], "succeeded", st)
            log = self.log_of(job)
            self.assertEqual(log.count(b"pulling image %s" % ref.encode()), 1)
            self.assertEqual(log_stream(log, "out"), b"pulled-once\n")
            self.assert_nothing_left(job)
            # An image that is not there fails the job as a pull would.
            job, st = self.run_job(
                [{"name": "never", "script": "echo must-not-run"}],
                [{"name": "ghost", "image": reg.host + "/skiff/none:1"}])
            self.assertEqual(st["reason_code"], "pull_failed", st)
            self.assertIn("service 'ghost'", st["reason"])
            self.assert_nothing_left(job)

    def test_service_pull_policies(self):
        with dockerenv.Registry() as reg:
            ref = reg.push_unique(self.eng, "skiff/svcpull")
            self.addCleanup(self.eng.remove_image, ref)
            self.agent()
            svc = {"name": "svc", "image": ref,
                   "command": httpd(8080, "served"), "ports": [8080],
                   "wait": {"tcp": 8080}}
            # On this machine already, and pulled all the same.
            job, st = self.run_job(
                [{"name": "s", "script": "busybox wget -qO- "
                  "http://127.0.0.1:$SKIFF_SERVICE_SVC_PORT/"}],
                [dict(svc, pull="always")])
            self.assertEqual(st["state"], "succeeded", st)
            log = self.log_of(job)
            self.assertEqual(log.count(b"pulling image %s" % ref.encode()), 1)
            self.assertEqual(log_stream(log, "out"), b"served\n")
            # Gone from here, and never pulled.
            self.eng.remove_image(ref)
            job, st = self.run_job(
                [{"name": "never", "script": "echo must-not-run"}],
                [dict(svc, pull="never")])
            self.assertEqual(st["reason_code"], "pull_failed", st)
            self.assertIn("pull policy is never", st["reason"])
            log = self.log_of(job)
            self.assertNotIn(b"pulling image", log)
            self.assertNotIn(b"must-not-run", log)
            self.assert_nothing_left(job)

    def test_cancel_while_waiting(self):
        self.agent()
        job = self.submit_job(self.steps_job(
            {"name": "never", "script": "echo must-not-run"},
            services=[{"name": "mute", "image": self.busybox,
                       "command": ["sleep", "600"], "ports": [9000],
                       "wait": {"tcp": 9000, "timeout": 600}}]))
        wait_until(lambda: self.eng.containers_with_label(
            "io.skiff.job=%s" % job), 30, what="the service to exist")
        r = self.q.request("POST", "/v1/jobs/%s/cancel" % job, {})
        self.assertEqual(r.status, 202, r)
        st = self.finished(job, timeout=30)
        self.assertEqual(st["state"], "canceled", st)
        self.assertNotIn(b"must-not-run", self.log_of(job))
        self.assert_nothing_left(job)

    def test_failed_input_ends_the_wait(self):
        # An input fails while a service is waited for: the job ends then,
        # not at the service's deadline.
        files = FileServer(self)
        self.agent()
        t0 = time.monotonic()
        job, st = self.run_job(
            [{"name": "never", "script": "echo must-not-run"}],
            [{"name": "mute", "image": self.busybox,
              "command": ["sleep", "600"], "ports": [9000],
              "wait": {"tcp": 9000, "timeout": 600}}],
            inputs=[dict(files.serve("/in", b"data"), path="in",
                         url=files.base + "/not-there")])
        self.assertEqual(st["reason_code"], "input_failed", st)
        self.assertLess(time.monotonic() - t0, 60 * harness.SLOW)
        self.assertNotIn(b"must-not-run", self.log_of(job))
        self.assert_nothing_left(job)

    def test_no_engine(self):
        self.agent(docker_host="unix://%s/no-engine.sock" % self.tmp)
        job, st = self.run_job(
            [{"name": "never", "script": "echo must-not-run"}],
            [{"name": "db", "image": self.busybox}])
        self.assertEqual(st["state"], "failed", st)
        self.assertEqual(st["reason_code"], "service_failed", st)
        self.assertIn("no Docker engine", st["reason"])
        self.assertNotIn(b"must-not-run", self.log_of(job))

    def test_kill9_agent_then_sweep(self):
        a = self.agent()
        job = self.submit_job(self.steps_job(
            {"name": "long", "image": self.busybox,
             "script": "echo step-is-running; sleep 300"},
            services=[{"name": "db", "image": self.busybox,
                       "command": ["sleep", "600"]}]))
        self.wait_out(job, "step-is-running", "the container step to run")
        label = "io.skiff.job=%s" % job
        self.assertEqual(len(self.eng.containers_with_label(label)), 2)
        self.assertEqual(len(self.networks_with(label)), 1)
        a.kill9()
        # The service, the step and the network outlive the agent...
        self.assertEqual(len(self.eng.containers_with_label(label)), 2)
        self.assertEqual(len(self.networks_with(label)), 1)
        # ...until it comes back on the same state directory.
        a.start()
        wait_until(lambda: self.eng.containers_with_label(label) == [] and
                   self.networks_with(label) == [], 60,
                   what="the restarted agent to sweep the leftovers")
        self.assertIn("orphan sweep: removing a leftover network", a.log())
        wait_until(lambda: "orphan sweep: removed a leftover network" in
                   a.log(), 30, what="the network removal to be logged")


class PodmanServiceTests(ServiceTests):
    """The same against Podman's Docker-compatible API (its own service on
    its own socket, dockerenv.Podman), where Podman can run here."""

    @classmethod
    def setUpClass(cls):
        super(ServiceTests, cls).setUpClass()
        cls.pod, cls.eng, cls.images = dockerenv.podman_for_tests()
        cls.busybox = cls.images["busybox"]
        try:
            cls.cmd_image = dockerenv.build_image(cls.eng, CMD_REF,
                                                  CMD_CHANGES)
        except (RuntimeError, OSError, dockerenv.EngineError) as e:
            cls.pod.stop()
            raise unittest.SkipTest("Podman cannot run containers here: %s"
                                    % e)

    @classmethod
    def tearDownClass(cls):
        cls.pod.stop()
        super().tearDownClass()

    health = None

    # Podman's image import refuses HEALTHCHECK ("invalid instruction"),
    # and no image can be built here otherwise; a plain-HTTP registry must
    # be in Podman's configuration before its service starts; with the CNI
    # network backend and no dnsname plugin (Debian 12's podman without
    # netavark and aardvark-dns) names do not resolve on a network.
    SKIPS = {
        "test_wait_health": "no image with a HEALTHCHECK for Podman",
        "test_unhealthy_and_no_healthcheck_fail_the_job":
            "no image with a HEALTHCHECK for Podman",
        "test_image_pulled_once_for_service_and_step":
            "the test registry is not in this Podman's configuration",
        "test_service_pull_policies":
            "the test registry is not in this Podman's configuration",
        "test_no_engine": "no engine involved: run once, with Docker's",
    }

    def setUp(self):
        why = self.SKIPS.get(self._testMethodName)
        if why is None and self._testMethodName in (
                "test_reachable_by_name_and_by_published_port",
                "test_reachable_from_containers_made_ahead_and_shared",
                "test_examples_integration_json") and \
                self.pod_backend() == "cni":
            why = ("Podman's CNI network backend without the dnsname plugin "
                   "resolves no names (test_published_port_on_podman)")
        if why:
            self.skipTest(why)
        super().setUp()

    @classmethod
    def pod_backend(cls):
        libpod = dockerenv.Engine(cls.pod.host, api="4.0.0")
        return (libpod.json("GET", "/libpod/info").get("host") or
                {}).get("networkBackend", "")

    def test_published_port_on_podman(self):
        self.agent()
        job, st = self.run_job(
            [{"name": "on the host",
              "script": "busybox wget -qO- http://$SKIFF_SERVICE_WEB_HOST:"
                        "$SKIFF_SERVICE_WEB_PORT/"},
             {"name": "in a container", "image": self.busybox,
              "script": "echo \"$SKIFF_SERVICE_WEB_HOST "
                        "$SKIFF_SERVICE_WEB_PORT\""}],
            [{"name": "web", "image": self.busybox,
              "command": httpd(8080, "podman-served", delay=1),
              "ports": [8080], "wait": {"tcp": 8080}}])
        self.assertEqual(st["state"], "succeeded", st)
        self.assertEqual(log_stream(self.log_of(job), "out"),
                         b"podman-served\nweb 8080\n")
        self.assert_nothing_left(job)

    def agent(self, name="agent", start=True, **settings):
        settings.setdefault("docker_host", self.pod.host)
        return super().agent(name, start, **settings)


if __name__ == "__main__":
    harness.main()
