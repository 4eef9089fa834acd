#!/usr/bin/env python3
"""The whole life of a worker VM, booted: the qemu source of
packer/skiff-worker.pkr.hcl bakes the image (base disk by
packer/qemu/make-base.sh, the skiff-agent package, a pre-loaded execution
image, the clean-up), and QEMU boots it three times against the test's
own skiff-queue, three VMs (two of them at once):

1. cloud-init (NoCloud seed of provision/cloud-init/user-data-aws.yaml,
   rendered by render.sh) writes the agent's configuration, systemd starts
   skiff-agent, it registers and runs a signed job (a host step, a
   container step in the VM's dockerd from the pre-loaded image with
   pull "never", a log and artifacts), idles out, deregisters, exits 0, and
   skiff-exit-hook powers the VM off: QEMU exits by itself.
2. A spot notice from an AWS IMDSv2 stand-in: skiff-preempt-watch drains
   the agent, the running job finishes and succeeds, the agent exits 10
   (the VM stays, as the hook says), and at the notice's deadline the
   test does what EC2 does, the ACPI power button: QEMU exits.
3. The queue revokes the agent: it exits 77 and, with the templates'
   SKIFF_TERMINATE_ON_REVOKED=yes, the exit hook powers the VM off.

Everything runs in a network namespace with only loopback up; the guest
reaches the queue and the stand-in through QEMU guestfwd, nothing else
(restrict=on). KVM when a guest runs under it here, TCG (longer bounds)
otherwise; exit 77 (SKIPPED, with the reason) only when neither can run.
The serial console of each boot is printed when a test fails.

    SKIFF_BUILD_DIR=build /usr/bin/python3 tests/vm/test_vm_lifecycle.py

SKIFF_VM_CACHE moves the base cache (default BUILD/vm-cache);
SKIFF_VM_IMAGE boots an image baked before instead of baking one;
SKIFF_QEMU_ACCEL=kvm|tcg skips the accelerator probe.
"""
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vmfix  # noqa: E402
from vmfix import harness, log  # noqa: E402

PREP = os.path.join(vmfix.BUILD, "vm-test")
FIGURES = os.environ.get("SKIFF_VM_FIGURES",
                         os.path.join(PREP, "figures.json"))


def prepare():
    """Outside the namespace (the base needs the Debian mirror): base disk,
    package, execution image, the bake. Returns what the boots need."""
    os.makedirs(PREP, exist_ok=True)
    cache = os.environ.get("SKIFF_VM_CACHE", os.path.join(vmfix.BUILD,
                                                          "vm-cache"))
    base, base_secs = vmfix.make_base(cache)
    accel = vmfix.accelerator(os.path.join(base, "vmlinuz"))
    if accel is None:
        print("SKIPPED: neither KVM nor TCG can run a guest here "
              "(packer/qemu/accel.sh says why above)")
        sys.exit(77)
    image = os.environ.get("SKIFF_VM_IMAGE")
    bake_secs = 0.0
    if image:
        # a developer's shortcut: boot an image baked before
        log("SKIFF_VM_IMAGE=%s: not baking" % image)
    else:
        deb = vmfix.agent_package(os.path.join(PREP, "pkg"))
        archive = vmfix.step_image_archive(os.path.join(PREP, "images.tar"))
        image = os.path.join(PREP, "image")
        bake_secs = vmfix.bake(base, deb, archive, image)
    fig = {"accel": accel, "base_s": round(base_secs, 1),
           "bake_s": round(bake_secs, 1),
           "image_bytes": os.path.getsize(os.path.join(
               image, "skiff-worker.qcow2"))}
    return {"accel": accel, "image": image, "figures": fig}


def rfc3339_epoch(ts):
    """2026-12-01T14:00:00.123Z (log record time) -> seconds."""
    import calendar
    main, _, frac = ts.rstrip("Z").partition(".")
    return calendar.timegm(time.strptime(main, "%Y-%m-%dT%H:%M:%S")) + \
        float("0." + (frac or "0"))


class VMLifecycle(harness.SkiffTestCase):
    """One queue, three workers: vm-idle first, then vm-spot and
    vm-revoked at once while vm-idle idles out (together they take the
    time of about two boots)."""
    pool = "vm"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        with open(os.environ["SKIFF_VM_PREP"]) as f:
            cls.prep = json.load(f)
        # the queue's certificate is also for the address the guest uses
        cls.pki = harness.PKI(os.path.join(cls._class_tmp, "vm-pki"),
                              extra_ips=[vmfix.QUEUE_IP])
        kvm = cls.prep["accel"] == "kvm"
        # bounds: TCG emulates every instruction of three guests on the
        # machine's cores
        cls.boot_bound = 90 if kvm else 900
        cls.slack = 60 if kvm else 400

    def setUp(self):
        super().setUp()
        self.vms = []
        self.addCleanup(self._show_consoles)
        self.q = self.start_queue("--lease-wait", "3s",
                                  "--heartbeat-interval", "2s")
        self.key, self.jwks = self.signing_key()
        self.pool_key = harness.make_pool_key(self.tmp)[0]

    def _show_consoles(self):
        if self.failed() or os.environ.get("SKIFF_SHOW_LOGS"):
            for vm in self.vms:
                lines = vm.console_text().splitlines()
                sys.stderr.write("\n---- serial console of %s (last 200 of "
                                 "%d lines, all in %s)\n%s\n" % (
                                     vm.name, len(lines), vm.console,
                                     "\n".join(lines[-200:])))

    def boot(self, name, **opts):
        md = vmfix.Metadata(self)
        seed = vmfix.render_seed(self, name, self.q, self.pool,
                                 self.q.registration_token(self.pool),
                                 self.jwks, self.pool_key, **opts)
        vm = vmfix.VM(self, name, self.prep["image"], seed,
                      self.prep["accel"], self.q.port, md.port)
        vm.md = md
        self.vms.append(vm)
        return vm.start()

    def agents(self):
        r = self.q.request("GET", "/v1/agents")
        self.assertEqual(r.status, 200, r)
        return r.json()["agents"]

    def wait_registered(self, vm):
        def registered():
            vm._gone("the agent registered")
            return [a for a in self.agents() if a.get("name") == vm.name]
        a = harness.wait_until(registered, self.boot_bound, interval=0.5,
                               what="%s's agent to register" % vm.name)[0]
        return a, time.monotonic() - vm.started

    def submit(self, vm, *steps):
        job = {"name": "job on " + vm, "labels": [vm], "steps": list(steps)}
        jws = harness.sign_job(job, self.key, self.pool)
        self.q.submit_ok(jws)
        return harness.job_id_of(jws)

    def log_of(self, job_id):
        r = self.q.request("GET", "/v1/jobs/%s/log" % job_id)
        self.assertEqual(r.status, 200, r)
        return r.body

    def ended(self, job, bound):
        return self.q.wait_state(job, ("succeeded", "failed", "canceled",
                                       "rejected", "lost", "timed_out"),
                                 bound)

    def assert_succeeded(self, job, st):
        if st["state"] != "succeeded":
            self.fail("job %s ended %s: %r\n---- its log\n%s" % (
                job, st["state"], st,
                self.log_of(job)[-4000:].decode(errors="replace")))

    def figure(self, **kv):
        fig = {}
        if os.path.exists(FIGURES):
            with open(FIGURES) as f:
                fig = json.load(f)
        fig.update({k: round(v, 1) for k, v in kv.items()})
        with open(FIGURES, "w") as f:
            json.dump(fig, f, indent=1, sort_keys=True)
        for k, v in sorted(kv.items()):
            log("figure %s = %.1f s (%s)" % (k, v, self.prep["accel"]))

    def test_three_workers(self):
        idle = 20
        job = self.submit(
            "vm-idle",
            {"name": "host", "script":
             "mkdir -p out; echo host-step on $(uname -n) as $(id -un); "
             "uname -r > out/host.txt"},
            {"name": "box", "image": vmfix.STEP_IMAGE, "pull": "never",
             "script": "echo container-step $(busybox | head -n 1 | "
                       "cut -c1-16); echo from-the-box > out/box.txt",
             "artifacts": ["out/*"]})
        # vm-idle boots alone: under TCG a container's first start (dockerd
        # loads its AppArmor profile then) competes badly with other
        # guests' boots, and the agent gives a container 60 s to start
        wall0 = time.time()
        idle_vm = self.boot("vm-idle", idle_timeout="%ds" % idle)

        # 1. a signed job: host step, container step from the pre-loaded
        # image (pull never), log, artifacts; then idle -> deregister ->
        # exit 0 -> skiff-exit-hook -> poweroff
        _, t_reg = self.wait_registered(idle_vm)
        st = self.ended(job, self.boot_bound)
        self.assert_succeeded(job, st)
        t_done = time.monotonic()
        text = self.log_of(job)
        self.assertIn(b"host-step on vm-idle as", text)
        self.assertIn(b"container-step BusyBox", text)
        self.assertNotIn(b"pulling image", text)
        first = text.split(b"\n", 1)[0].split(b" ", 1)[0].decode()
        arts = sorted(a["name"] for a in self.q.request(
            "GET", "/v1/jobs/%s/artifacts" % job).json()["artifacts"])
        self.assertEqual(arts, ["out/box.txt", "out/host.txt"], arts)

        rc, t_off = idle_vm.wait_exit(idle + self.slack)
        self.assertEqual(rc, 0, "QEMU exit status (vm-idle)")
        con = idle_vm.console_text()
        self.assertIn("agent exited idle: terminating the VM (poweroff)", con)
        # the unit lets the agent read the kernel's log (OOM kills)
        self.assertIn("OOM kills of container steps read from the kernel "
                      "log", con)
        # deregistered before it went (docs/protocol.md: "gone")
        self.assertEqual([a.get("state") for a in self.agents()
                          if a.get("name") == idle_vm.name], ["gone"],
                         "vm-idle did not deregister: %r" % self.agents())

        # then the two others, at once
        spot = self.boot("vm-spot", idle_timeout="30m")
        revoked = self.boot("vm-revoked", idle_timeout="30m")

        # 3. the queue revokes an agent: exit 77, and the VM powers off
        agent, _ = self.wait_registered(revoked)
        r = self.q.request("DELETE", "/v1/agents/" + agent["id"])
        self.assertEqual(r.status, 204, r)

        # 2. a spot notice while a job runs: drained, the job finishes
        spot_job = self.submit("vm-spot", {"name": "long", "script":
                                           "echo started; sleep 15; "
                                           "echo finished"})
        self.wait_registered(spot)
        harness.wait_until(lambda: b"started" in self.log_of(spot_job),
                           self.boot_bound, interval=0.5,
                           what="the spot job's step to start")
        ahead = 60 if self.prep["accel"] == "kvm" else 300
        deadline = time.monotonic() + ahead
        spot.md.arm(ahead)

        rc, _ = revoked.wait_exit(self.slack)
        self.assertEqual(rc, 0, "QEMU exit status (vm-revoked)")
        con = revoked.console_text()
        self.assertIn("code=exited, status=77", con)
        self.assertIn("the queue revoked the agent (exit 77): terminating "
                      "the VM (poweroff)", con)

        st = self.ended(spot_job, ahead)
        # drained, not cancelled: the job had time to finish
        self.assert_succeeded(spot_job, st)
        self.assertIn(b"finished", self.log_of(spot_job))
        # exit 10 is the unit's SuccessExitStatus: systemd says only
        # "Deactivated successfully"; the hook names the status
        spot.wait_console("agent ended with exited/10", self.slack)
        con = spot.console_text()
        self.assertIn("spot interruption notice", con)
        self.assertIn("sent SIGTERM to the agent", con)
        self.assertIn("the VM stays", con)
        self.assertGreater(spot.md.polled(), 0)
        # the deadline: the cloud takes the VM back (the ACPI power button)
        time.sleep(max(0.0, min(deadline - time.monotonic(), 5.0)))
        spot.acpi_powerdown()
        rc, _ = spot.wait_exit(self.slack)
        self.assertEqual(rc, 0, "QEMU exit status (vm-spot)")

        self.figure(boot_to_registered_s=t_reg,
                    boot_to_first_step_s=rfc3339_epoch(first) - wall0,
                    idle_timeout_to_qemu_exit_s=t_off - t_done - idle)


def main():
    if os.environ.get("SKIFF_VM_NETNS") != "1":
        prep = prepare()
        path = os.path.join(PREP, "prep.json")
        with open(path, "w") as f:
            json.dump(prep, f)
        with open(FIGURES, "w") as f:
            json.dump(prep["figures"], f, indent=1, sort_keys=True)
        os.environ["SKIFF_VM_PREP"] = path
        vmfix.enter_netns()
    unittest.main(argv=[sys.argv[0]] + sys.argv[1:], verbosity=2)


if __name__ == "__main__":
    main()
