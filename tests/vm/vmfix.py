"""What the booted-VM tests need besides tests/integration/harness.py: the
base disk and the baked image (made once per test run by the real scripts
of packer/qemu/), a NoCloud seed rendered from provision/cloud-init, a
QEMU VM with its serial console in a file, and an AWS-style metadata
stand-in for the preemption watcher.

Networking: the test runs in a network namespace of its own with only
loopback up (enter_netns re-executes the test there). The guest gets
QEMU's user-mode network with restrict=on, so it reaches nothing but two
guestfwd addresses: QUEUE_IP:443 is the test's queue on loopback, META_IP:80
the VM's metadata stand-in. guestfwd runs socat per connection ("cmd:"):
a "tcp:" target would be one connection opened when QEMU starts, shared
by every connection of the guest.
"""
import http.server
import json
import os
import socketserver
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
import dockerenv  # noqa: E402
import harness  # noqa: E402

SOURCE = harness.SOURCE
BUILD = harness.BUILD
QEMU_DIR = os.path.join(SOURCE, "packer", "qemu")
QUEUE_IP = "10.0.2.100"
META_IP = "10.0.2.101"
STEP_IMAGE = "skiff-vm/busybox:1"


def log(msg):
    sys.stderr.write("vm: %s\n" % msg)
    sys.stderr.flush()


def sh(argv, timeout, env=None):
    """Runs a preparation step, its output to stderr; fails the test with
    the step's exit status."""
    t = time.monotonic()
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=sys.stderr,
                       timeout=timeout, env=env, check=False)
    if r.returncode != 0:
        raise AssertionError("%s exited %d" % (argv[:2], r.returncode))
    return r.stdout.decode().strip(), time.monotonic() - t


def accelerator(kernel):
    """kvm, tcg, or None (then the reason is on stderr)."""
    r = subprocess.run(["bash", os.path.join(QEMU_DIR, "accel.sh"), kernel],
                       stdout=subprocess.PIPE, timeout=300, check=False)
    return r.stdout.decode().strip() if r.returncode == 0 else None


def make_base(cache):
    out, secs = sh(["bash", os.path.join(QEMU_DIR, "make-base.sh"), cache],
                   timeout=1500)
    return out.splitlines()[-1], secs


def agent_package(out):
    """The skiff-agent .deb, built from this build directory by CPack."""
    os.makedirs(out, exist_ok=True)
    sh(["cpack", "-G", "DEB", "-B", out, "--config",
        os.path.join(BUILD, "CPackConfig.cmake")], timeout=300)
    debs = [f for f in os.listdir(out) if f.startswith("skiff-agent_")
            and f.endswith(".deb")]
    if not debs:
        raise AssertionError("cpack made no skiff-agent .deb in " + out)
    return os.path.join(out, debs[0])


def step_image_archive(path):
    """The execution image the bake pre-loads: busybox-static imported into
    the host's engine (no registry here), saved as an archive."""
    eng = dockerenv.Engine()
    dockerenv.build_image(eng, STEP_IMAGE, [], dockerenv.busybox_rootfs())
    _, data = eng.request("GET", "/images/%s/get" % STEP_IMAGE, timeout=120)
    with open(path, "wb") as f:
        f.write(data)
    return path


def bake(base, deb, archive, out):
    _, secs = sh(["bash", os.path.join(QEMU_DIR, "build.sh"), base, deb, out,
                  "-var", "image_archive=" + archive,
                  "-var", 'prepull_images=["%s"]' % STEP_IMAGE],
                 timeout=2400)
    return secs


def enter_netns():
    """Re-executes this test in a network namespace with only loopback up
    (once: SKIFF_VM_NETNS marks the child)."""
    if os.environ.get("SKIFF_VM_NETNS") == "1":
        return
    env = dict(os.environ, SKIFF_VM_NETNS="1")
    argv = ["unshare", "--net", "--", "sh", "-c",
            'ip link set lo up && exec "$@"', "netns",
            sys.executable] + sys.argv
    os.execvpe("unshare", argv, env)


def render_seed(tc, name, queue, pool, token, trusted, pool_key, **opts):
    """A NoCloud seed (cloud-localds) of the AWS user-data template,
    rendered by provision/cloud-init/render.sh for the test's queue."""
    d = os.path.join(tc.tmp, name)
    os.makedirs(d, exist_ok=True)
    tok = os.path.join(d, "registration-token")
    with open(tok, "w") as f:
        f.write(token + "\n")
    lifecycle = ["SKIFF_TERMINATE=poweroff",
                 "SKIFF_PREEMPT=aws",
                 "SKIFF_PREEMPT_INTERVAL=1",
                 "SKIFF_PREEMPT_CANCEL_MARGIN=5",
                 "SKIFF_AWS_IMDS_URL=http://%s" % META_IP]
    argv = ["bash", os.path.join(SOURCE, "provision", "cloud-init",
                                 "render.sh"),
            "--cloud", "aws", "--queue-url", "https://%s" % QUEUE_IP,
            "--pool", pool, "--token-file", tok, "--trusted-keys", trusted,
            "--pool-key", pool_key, "--ca-file", queue.ca_file,
            "--idle-timeout", opts.get("idle_timeout", "15s"),
            "--labels", "docker,linux," + name]
    for kv in lifecycle:
        argv += ["--lifecycle", kv]
    ud = harness.run(argv).stdout
    with open(os.path.join(d, "user-data"), "wb") as f:
        f.write(ud)
    with open(os.path.join(d, "meta-data"), "w") as f:
        f.write("instance-id: %s\nlocal-hostname: %s\n" % (name, name))
    seed = os.path.join(d, "seed.img")
    harness.run(["cloud-localds", seed, os.path.join(d, "user-data"),
                 os.path.join(d, "meta-data")])
    return seed


class VM:
    """One boot of the baked image: a qcow2 overlay on it (the image stays
    as baked), the seed, the image's kernel and initrd; the serial console
    in console.log; QMP on a unix socket for the cloud's ACPI power-off."""

    def __init__(self, tc, name, image_dir, seed, accel, queue_port,
                 meta_port):
        self.tc = tc
        self.name = name
        self.dir = os.path.join(tc.tmp, name)
        os.makedirs(self.dir, exist_ok=True)
        self.console = os.path.join(self.dir, "console.log")
        self.qmp = os.path.join(self.dir, "qmp.sock")
        self.disk = os.path.join(self.dir, "disk.qcow2")
        harness.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2",
                     "-b", os.path.join(image_dir, "skiff-worker.qcow2"),
                     self.disk])
        net = ("user,id=n0,restrict=on,"
               "guestfwd=tcp:%s:443-cmd:socat - TCP:127.0.0.1:%d,"
               "guestfwd=tcp:%s:80-cmd:socat - TCP:127.0.0.1:%d"
               % (QUEUE_IP, queue_port, META_IP, meta_port))
        # TCG: one vCPU per VM, as the test boots several at once
        accel_args = ["-accel", "kvm", "-cpu", "host", "-smp", "2"] \
            if accel == "kvm" else ["-accel", "tcg", "-smp", "1"]
        self.argv = ["qemu-system-x86_64"] + accel_args + [
            "-m", "1024", "-no-reboot",
            "-kernel", os.path.join(image_dir, "vmlinuz"),
            "-initrd", os.path.join(image_dir, "initrd.img"),
            "-append", "root=/dev/vda rw console=ttyS0 net.ifnames=0 "
                       "systemd.journald.forward_to_console=1",
            "-drive", "file=%s,if=virtio,format=qcow2" % self.disk,
            "-drive", "file=%s,if=virtio,format=raw,readonly=on" % seed,
            "-netdev", net, "-device", "virtio-net-pci,netdev=n0",
            "-serial", "file:" + self.console,
            "-qmp", "unix:%s,server=on,wait=off" % self.qmp,
            "-display", "none", "-monitor", "none"]
        self.proc = None
        self.started = None

    def start(self):
        self.started = time.monotonic()
        self.proc = harness.start_process(
            self.argv, log=os.path.join(self.dir, "qemu.log"))
        self.tc.addCleanup(self._cleanup)
        return self

    def _cleanup(self):
        if self.proc and self.proc.poll() is None:
            harness.stop_process(self.proc, timeout=5)

    def console_text(self):
        try:
            with open(self.console, "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_console(self, text, timeout):
        return harness.wait_until(
            lambda: text in self.console_text() or self._gone(text),
            timeout, interval=0.2, what="%r on %s's console" % (text,
                                                                 self.name))

    def _gone(self, what):
        if self.proc.poll() is not None:
            raise AssertionError("QEMU (%s) exited %d before %r" % (
                self.name, self.proc.returncode, what))
        return False

    def wait_exit(self, timeout):
        """QEMU's exit status once the guest powered off, and when."""
        harness.wait_until(lambda: self.proc.poll() is not None, timeout,
                           interval=0.2, what="%s to power off" % self.name)
        return self.proc.returncode, time.monotonic()

    def acpi_powerdown(self):
        """What a cloud does to a VM it takes back: the power button."""
        import socket
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        try:
            s.connect(self.qmp)
            f = s.makefile("rwb")
            f.readline()
            for cmd in ("qmp_capabilities", "system_powerdown"):
                f.write(json.dumps({"execute": cmd}).encode() + b"\n")
                f.flush()
                f.readline()
        finally:
            s.close()


class _MetaHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def _send(self, code, body=b"", ctype="text/plain"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_PUT(self):
        md = self.server.md
        if self.path == "/latest/api/token" and self.headers.get(
                "X-aws-ec2-metadata-token-ttl-seconds"):
            self._send(200, md.token.encode())
        else:
            self._send(400)

    def do_GET(self):
        md = self.server.md
        with md.lock:
            md.requests.append(self.path)
            notice = md.notice
        if self.headers.get("X-aws-ec2-metadata-token") != md.token:
            self._send(401)
        elif self.path == "/latest/meta-data/spot/instance-action" and notice:
            self._send(200, json.dumps(notice).encode(), "application/json")
        else:
            self._send(404)


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


class Metadata:
    """An AWS IMDSv2 stand-in on loopback: a token for a PUT, 404 on
    spot/instance-action until notice() arms it, then the notice as EC2
    gives it."""

    def __init__(self, tc):
        self.token = "imds-token-" + os.urandom(6).hex()
        self.notice = None
        self.requests = []
        self.lock = threading.Lock()
        self.srv = _Server(("127.0.0.1", 0), _MetaHandler)
        self.srv.md = self
        self.port = self.srv.server_address[1]
        t = threading.Thread(target=self.srv.serve_forever, daemon=True)
        t.start()
        tc.addCleanup(self.close)

    def arm(self, seconds_ahead):
        t = time.gmtime(time.time() + seconds_ahead)
        with self.lock:
            self.notice = {"action": "terminate",
                           "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", t)}

    def disarm(self):
        with self.lock:
            self.notice = None

    def polled(self):
        with self.lock:
            return sum(1 for p in self.requests if "instance-action" in p)

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()
