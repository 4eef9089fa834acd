"""Docker test environment for skiff's tests: local images, local registries,
a Podman service. Standard library only (/usr/bin/python3 on Debian 12).

No image registry on the internet is reachable from the test machines, so
everything is made here:

  * test images, built idempotently from busybox-static by `docker import`
    through the Engine API (no Dockerfile, no base image, no CLI):
      skiff-test/busybox:1     just /bin/busybox, its applets, /tmp
      skiff-test/entrypoint:1  the same with ENTRYPOINT ["/bin/false"] and
                               CMD ["nope"] (a step must still run its argv)
      skiff-test/nonroot:1     the same with USER 1000:1000 (no passwd entry)
  * Debian's docker-registry on 127.0.0.1 with a random port, its own config
    and storage, optionally with htpasswd (bcrypt) authentication;
  * a Podman API service (`podman system service`) on its own unix socket.

Used as a module by integration tests:

    import dockerenv
    eng = dockerenv.Engine()                  # SKIFF_DOCKER_HOST or default
    refs = dockerenv.build_images(eng)        # {"busybox": "skiff-test/...", ...}
    with dockerenv.Registry(user="u", password="p") as reg:
        ref = reg.push_unique(eng, "skiff/pullme")   # a never-pulled layer
        ...

and as a program by the C unit tests (tests/unit/agent/test_docker.c):

    dockerenv.py fixture [--podman]

builds the images, starts an open and an authenticated registry with an
image in each, optionally a Podman service trusting them, prints one JSON
line describing it all, and tears everything down when its standard input
closes (so a test that crashes still leaves nothing behind).

Every wait is bounded; whatever was started is stopped on failure.
"""

import base64
import hashlib
import http.client
import io
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import unittest
import urllib.parse

DEFAULT_HOST = "unix:///var/run/docker.sock"
BUSYBOX = "/bin/busybox"
REGISTRY_BIN = "/usr/bin/docker-registry"
HTPASSWD_BIN = "/usr/bin/htpasswd"
RECIPE_LABEL = "dev.skiff.test.recipe"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

IMAGES = {
    "busybox": ("skiff-test/busybox:1", []),
    "entrypoint": ("skiff-test/entrypoint:1",
                   ['ENTRYPOINT ["/bin/false"]', 'CMD ["nope"]']),
    "nonroot": ("skiff-test/nonroot:1", ["USER 1000:1000"]),
}


class EngineError(Exception):
    def __init__(self, status, message):
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self._path)
        self.sock = s


def registry_auth(user, password, server):
    """X-Registry-Auth: padded base64url of the JSON credentials."""
    doc = json.dumps({"username": user or "", "password": password or "",
                      "serveraddress": server or ""})
    return base64.urlsafe_b64encode(doc.encode()).decode()


class Engine:
    """A Docker Engine API client over a unix socket (Docker or Podman)."""

    def __init__(self, host=None, api="1.41"):
        host = host or os.environ.get("SKIFF_DOCKER_HOST") or DEFAULT_HOST
        if not host.startswith("unix://"):
            raise ValueError(f"only unix:// hosts: {host}")
        self.host = host
        self.path = host[len("unix://"):]
        self.api = api

    def request(self, method, path, body=None, headers=None, timeout=60,
                query=None):
        url = f"/v{self.api}{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query, doseq=True)
        conn = _UnixConnection(self.path, timeout)
        try:
            conn.request(method, url, body=body, headers=headers or {})
            resp = conn.getresponse()
            data = resp.read()
        finally:
            conn.close()
        if resp.status >= 400:
            raise EngineError(resp.status, _message(data))
        return resp.status, data

    def json(self, method, path, **kw):
        _, data = self.request(method, path, **kw)
        return json.loads(data) if data.strip() else None

    def stream(self, method, path, body=None, headers=None, timeout=300,
               query=None):
        """For the progress streams of import, push and pull: raises on an
        error message inside the 200 answer."""
        _, data = self.request(method, path, body=body, headers=headers,
                               timeout=timeout, query=query)
        msgs = []
        for line in data.splitlines():
            if line.strip():
                m = json.loads(line)
                if m.get("error") or m.get("errorDetail"):
                    raise EngineError(200, m.get("error") or
                                      m["errorDetail"].get("message"))
                msgs.append(m)
        return msgs

    def ping(self, timeout=5):
        conn = _UnixConnection(self.path, timeout)
        try:
            conn.request("GET", "/_ping")
            return conn.getresponse().status == 200
        except OSError:
            return False
        finally:
            conn.close()

    def image_labels(self, ref):
        try:
            info = self.json("GET", f"/images/{ref}/json")
        except EngineError as e:
            if e.status == 404:
                return None
            raise
        return (info.get("Config") or {}).get("Labels") or {}

    def remove_image(self, ref):
        try:
            self.request("DELETE", f"/images/{ref}", query={"force": "1"})
        except EngineError as e:
            if e.status != 404:
                raise

    def import_rootfs(self, ref, tar_bytes, changes):
        # The tag goes in "repo": Podman 4.3 ignores "tag" on an import.
        self.stream("POST", "/images/create", body=tar_bytes,
                    headers={"Content-Type": "application/x-tar"},
                    query={"fromSrc": "-", "repo": ref, "changes": changes})

    def push(self, ref, auth=None):
        name, tag = ref.rsplit(":", 1)
        hdr = {"X-Registry-Auth": auth or registry_auth("", "", "")}
        self.stream("POST", f"/images/{name}/push", headers=hdr,
                    query={"tag": tag}, timeout=300)

    def tag(self, src, ref):
        repo, tag = ref.rsplit(":", 1)
        self.request("POST", f"/images/{src}/tag",
                     query={"repo": repo, "tag": tag})

    def containers_with_label(self, label):
        return self.json("GET", "/containers/json", query={
            "all": "1", "filters": json.dumps({"label": [label]})})

    def insecure_cidrs(self):
        info = self.json("GET", "/info")
        reg = info.get("RegistryConfig") or {}
        return reg.get("InsecureRegistryCIDRs") or []


def _message(data):
    try:
        return json.loads(data).get("message", "")
    except (ValueError, AttributeError):
        return data.decode(errors="replace").strip()


# ---- images ----

def busybox_rootfs(extra=None):
    """A tar of busybox-static and a symlink per applet; deterministic, so
    the same recipe gives the same layer. extra: {path: bytes}."""
    if not os.path.exists(BUSYBOX):
        raise RuntimeError("busybox-static is not installed "
                           "(apt-get install busybox-static)")
    applets = subprocess.run([BUSYBOX, "--list"], check=True, timeout=30,
                             capture_output=True, text=True).stdout.split()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as t:
        def add(name, kind, mode, data=b"", link=""):
            ti = tarfile.TarInfo(name)
            ti.type, ti.mode, ti.mtime = kind, mode, 0
            ti.linkname = link
            ti.size = len(data) if kind == tarfile.REGTYPE else 0
            t.addfile(ti, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
        for d in ("bin", "etc", "root", "usr", "usr/bin", "var"):
            add(d, tarfile.DIRTYPE, 0o755)
        add("tmp", tarfile.DIRTYPE, 0o1777)
        with open(BUSYBOX, "rb") as f:
            add("bin/busybox", tarfile.REGTYPE, 0o755, f.read())
        for a in sorted(set(applets)):
            if a != "busybox":
                add(f"bin/{a}", tarfile.SYMTYPE, 0o777, link="busybox")
        add("etc/passwd", tarfile.REGTYPE, 0o644,
            b"root:x:0:0:root:/root:/bin/sh\n"
            b"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
        add("etc/group", tarfile.REGTYPE, 0o644,
            b"root:x:0:\nnogroup:x:65534:\n")
        for path, data in sorted((extra or {}).items()):
            add(path, tarfile.REGTYPE, 0o644, data)
    return out.getvalue()


def _recipe(changes, rootfs):
    h = hashlib.sha256(rootfs)
    for c in changes:
        h.update(c.encode() + b"\0")
    return h.hexdigest()[:16]


def build_image(engine, ref, changes, rootfs=None):
    """Imports ref unless the engine has it from the same recipe."""
    rootfs = rootfs if rootfs is not None else busybox_rootfs()
    changes = ["ENV " + PATH_ENV] + list(changes)
    recipe = _recipe(changes, rootfs)
    if (engine.image_labels(ref) or {}).get(RECIPE_LABEL) == recipe:
        return ref
    engine.import_rootfs(ref, rootfs,
                         changes + [f"LABEL {RECIPE_LABEL}={recipe}"])
    if (engine.image_labels(ref) or {}).get(RECIPE_LABEL) != recipe:
        raise RuntimeError(f"{ref}: the engine dropped the import's changes")
    return ref


def build_images(engine):
    rootfs = busybox_rootfs()
    return {key: build_image(engine, ref, changes, rootfs)
            for key, (ref, changes) in IMAGES.items()}


# ---- registries ----

class SlowAnswers:
    """A relay on a unix socket in front of the real dockerd that holds the
    answer to every request whose request line contains `marker` for
    `delay` seconds, and relays everything else as it comes. It lets a test
    order two answers of the real engine that normally race (a stop's
    answer after the container's wait has come back). Threads of the test
    process; close() ends them all and removes the socket."""

    def __init__(self, directory, marker, delay, upstream=None):
        self.path = os.path.join(directory, "slow-docker.sock")
        self.marker = marker.encode()
        self.delay = delay
        self.upstream = (upstream or os.environ.get(
            "SKIFF_DOCKER_HOST", DEFAULT_HOST))[len("unix://"):]
        self.held = 0
        self.socks = []
        self.lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.lsock.bind(self.path)
        self.lsock.listen(64)
        import threading
        self.threading = threading
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def host(self):
        return "unix://" + self.path

    def _accept(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                u.connect(self.upstream)
            except OSError:
                c.close()
                continue
            self.socks += [c, u]
            state = {"hold": False}
            self.threading.Thread(target=self._up, args=(c, u, state),
                                  daemon=True).start()
            self.threading.Thread(target=self._down, args=(u, c, state),
                                  daemon=True).start()

    def _up(self, c, u, state):
        try:
            while True:
                b = c.recv(65536)
                if not b:
                    break
                if self.marker in b.split(b"\r\n", 1)[0]:
                    state["hold"] = True
                u.sendall(b)
        except OSError:
            pass
        try:
            u.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def _down(self, u, c, state):
        try:
            while True:
                b = u.recv(65536)
                if not b:
                    break
                if state["hold"]:
                    state["hold"] = False
                    self.held += 1
                    time.sleep(self.delay)
                c.sendall(b)
        except OSError:
            pass
        try:
            c.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self):
        self.lsock.close()
        for s in self.socks:
            try:
                s.close()
            except OSError:
                pass
        try:
            os.unlink(self.path)
        except OSError:
            pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listens(pid, port):
    """Does process pid hold the listening socket of 127.0.0.1:port? An
    answer on the port is not enough: another test's registry may have
    taken it between free_port() and our bind."""
    want = "0100007F:%04X" % port
    inodes = set()
    try:
        with open("/proc/net/tcp") as f:
            for line in f.readlines()[1:]:
                p = line.split()
                if p[1] == want and p[3] == "0A":    # TCP_LISTEN
                    inodes.add("socket:[%s]" % p[9])
        fds = os.listdir("/proc/%d/fd" % pid)
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink("/proc/%d/fd/%s" % (pid, fd)) in inodes:
                return True
        except OSError:
            pass
    return False


def _wait_http(port, deadline, proc):
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if not _listens(proc.pid, port):
            time.sleep(0.1)
            continue
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/v2/")
            status = c.getresponse().status
            c.close()
            if status in (200, 401):
                return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def check_insecure_allowed(engine, host):
    """dockerd talks plain HTTP only to registries it calls insecure; it
    counts 127.0.0.0/8 as such unless configured otherwise. Checked, so a
    changed daemon.json fails here with a clear message."""
    cidrs = engine.insecure_cidrs()
    if host.startswith("127.") and not any(
            c in ("127.0.0.0/8", "127.0.0.1/32") for c in cidrs):
        raise RuntimeError(f"dockerd does not allow plain HTTP to {host}: "
                           f"insecure registries are {cidrs}")


class Registry:
    """Debian's docker-registry on 127.0.0.1:random, with htpasswd auth when
    user is given. A context manager; stop() is idempotent."""

    def __init__(self, user=None, password=None, start_timeout=20):
        self.user, self.password = user, password
        self.start_timeout = start_timeout
        self.proc = None
        self.dir = None
        self.port = None

    @property
    def host(self):
        return f"127.0.0.1:{self.port}"

    def auth(self, user=None, password=None):
        return registry_auth(user if user is not None else self.user,
                             password if password is not None else self.password,
                             self.host)

    def _config(self):
        cfg = ["version: 0.1", "log:", "  level: error", "storage:",
               "  filesystem:", f"    rootdirectory: {self.dir}/data",
               "  delete:", "    enabled: true", "http:",
               f"  addr: 127.0.0.1:{self.port}", "  secret: skiff-test-only"]
        if self.user:
            cfg += ["auth:", "  htpasswd:", "    realm: skiff-test",
                    f"    path: {self.dir}/htpasswd"]
        with open(f"{self.dir}/config.yml", "w") as f:
            f.write("\n".join(cfg) + "\n")

    def _htpasswd(self):
        # the registry reads only bcrypt entries
        out = subprocess.run([HTPASSWD_BIN, "-Bbn", self.user, self.password],
                             check=True, timeout=30, capture_output=True)
        with open(f"{self.dir}/htpasswd", "wb") as f:
            f.write(out.stdout)

    def start(self):
        if not os.path.exists(REGISTRY_BIN):
            raise RuntimeError("docker-registry is not installed")
        self.dir = tempfile.mkdtemp(prefix="skiff-registry.")
        try:
            for attempt in range(5):    # a port taken meanwhile: another
                self.port = free_port()
                self._config()
                if self.user:
                    self._htpasswd()
                log = open(f"{self.dir}/registry.log", "ab")
                self.proc = subprocess.Popen(
                    [REGISTRY_BIN, "serve", f"{self.dir}/config.yml"],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                    start_new_session=True)
                log.close()
                if _wait_http(self.port,
                              time.monotonic() + self.start_timeout, self.proc):
                    return self
                self._kill()
            raise RuntimeError("docker-registry did not come up; log: " +
                               self.log_tail())
        except BaseException:
            self.stop()
            raise

    def log_tail(self):
        try:
            with open(f"{self.dir}/registry.log", "rb") as f:
                return f.read()[-2000:].decode(errors="replace")
        except OSError:
            return ""

    def _kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def stop(self):
        self._kill()
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def push(self, engine, local_ref, name):
        """Tags local_ref as HOST/name and pushes it; the local tag is then
        removed so that a pull really pulls. Returns HOST/name."""
        check_insecure_allowed(engine, self.host)
        ref = f"{self.host}/{name}"
        engine.tag(local_ref, ref)
        try:
            engine.push(ref, self.auth() if self.user else None)
        finally:
            engine.remove_image(ref)
        return ref

    def push_unique(self, engine, repo):
        """Pushes an image whose layer no engine here has (a random file on
        busybox), so a pull downloads and shows layer progress. The local
        copy is removed. Returns HOST/repo:TAG."""
        token = secrets.token_hex(6)
        local = f"skiff-test/unique-{token}:1"
        build_image(engine, local, [], busybox_rootfs(
            {"etc/skiff-unique": token.encode() + os.urandom(4096)}))
        try:
            return self.push(engine, local, f"{repo}:{token}")
        finally:
            engine.remove_image(local)

    def break_layer(self, ref):
        """Deletes the first layer's blob from storage: the manifest still
        answers, so a pull starts (200) and fails inside its stream."""
        name, tag = ref[len(self.host) + 1:].rsplit(":", 1)
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        hdr = {"Accept":
               "application/vnd.docker.distribution.manifest.v2+json"}
        if self.user:
            hdr["Authorization"] = "Basic " + base64.b64encode(
                f"{self.user}:{self.password}".encode()).decode()
        try:
            c.request("GET", f"/v2/{name}/manifests/{tag}", headers=hdr)
            manifest = json.loads(c.getresponse().read())
        finally:
            c.close()
        digest = manifest["layers"][0]["digest"].split(":", 1)[1]
        os.unlink(f"{self.dir}/data/docker/registry/v2/blobs/sha256/"
                  f"{digest[:2]}/{digest}/data")
        return ref

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


# ---- Podman ----

class Podman:
    """`podman system service` on its own socket, with the settings this
    machine needs, trusting the given plain-HTTP registries."""

    def __init__(self, insecure=(), start_timeout=30):
        self.insecure = list(insecure)
        self.start_timeout = start_timeout
        self.proc = None
        self.dir = None

    @property
    def host(self):
        return f"unix://{self.dir}/podman.sock"

    def _write_conf(self):
        # Podman raises RLIMIT_NOFILE and RLIMIT_NPROC of every container
        # to 1048576 and 4194304 by default; where the service's own hard
        # limits are lower (containers, CI sandboxes) runc fails with
        # "error setting rlimits". Docker leaves the limits as they are.
        with open(f"{self.dir}/containers.conf", "w") as f:
            f.write("[containers]\n"
                    'default_ulimits = ["nofile=1024:1024", '
                    '"nproc=4096:4096"]\n')
        with open(f"{self.dir}/registries.conf", "w") as f:
            f.write('unqualified-search-registries = []\n')
            for h in self.insecure:
                f.write(f'[[registry]]\nlocation = "{h}"\ninsecure = true\n')

    def start(self):
        exe = shutil.which("podman")
        if exe is None:
            raise RuntimeError("podman is not installed")
        self.dir = tempfile.mkdtemp(prefix="skiff-podman.")
        try:
            self._write_conf()
            env = dict(os.environ,
                       CONTAINERS_CONF=f"{self.dir}/containers.conf",
                       CONTAINERS_REGISTRIES_CONF=f"{self.dir}/registries.conf")
            log = open(f"{self.dir}/podman.log", "ab")
            # In its own directory: conmon leaves a file "oom" in its
            # working directory when a container is OOM-killed.
            self.proc = subprocess.Popen(
                [exe, "system", "service", "--time=0", self.host],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
                cwd=self.dir, start_new_session=True)
            log.close()
            eng = Engine(self.host)
            deadline = time.monotonic() + self.start_timeout
            while time.monotonic() < deadline and self.proc.poll() is None:
                if eng.ping(timeout=2):
                    return self
                time.sleep(0.1)
            raise RuntimeError("podman system service did not answer")
        except BaseException:
            self.stop()
            raise

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def smoke_test(engine, image):
    """Runs `true` in a container as the agent would (Init, no TTY): an
    engine that is installed but cannot run containers here fails now,
    with its own words, not in the middle of a test."""
    body = json.dumps({"Image": image, "Entrypoint": ["/bin/true"], "Cmd": [],
                       "HostConfig": {"Init": True}}).encode()
    cid = engine.json("POST", "/containers/create", body=body,
                      headers={"Content-Type": "application/json"})["Id"]
    try:
        engine.request("POST", f"/containers/{cid}/start")
        res = engine.json("POST", f"/containers/{cid}/wait", timeout=60)
        if res.get("StatusCode") != 0:
            raise RuntimeError(f"smoke test container exited {res}")
    finally:
        engine.request("DELETE", f"/containers/{cid}",
                       query={"force": "1", "v": "1"})


def podman_for_tests():
    """A Podman service with the test images, for a test class's setup:
    (podman, engine, images); the caller stops podman. Raises
    unittest.SkipTest, with Podman's own words, when Podman cannot run or
    cannot run containers here."""
    try:
        pod = Podman().start()
    except (RuntimeError, OSError) as e:
        raise unittest.SkipTest("Podman cannot run here: %s" % e)
    eng = Engine(pod.host)
    try:
        images = build_images(eng)
        smoke_test(eng, images["busybox"])
    except (RuntimeError, OSError, EngineError) as e:
        pod.stop()
        raise unittest.SkipTest("Podman cannot run containers here: %s" % e)
    return pod, eng, images


def remove_labelled(engine, label):
    """Removes every container carrying label (k=v); returns how many."""
    n = 0
    for c in engine.containers_with_label(label) or []:
        try:
            engine.request("DELETE", f"/containers/{c['Id']}",
                           query={"force": "1", "v": "1"})
            n += 1
        except EngineError as e:
            if e.status != 404:
                raise
    return n


# ---- the fixture program for the C tests ----

def _fixture(args):
    want_podman = "--podman" in args
    docker = Engine()
    images = build_images(docker)
    user, password = "skiff", secrets.token_hex(8)
    started = []
    try:
        open_reg = Registry().start()
        started.append(open_reg)
        auth_reg = Registry(user=user, password=password).start()
        started.append(auth_reg)
        desc = {
            "docker": docker.host,
            "images": images,
            "open_registry": open_reg.host,
            "open_image": open_reg.push_unique(docker, "skiff/open"),
            "broken_image": open_reg.break_layer(
                open_reg.push_unique(docker, "skiff/broken")),
            "auth_registry": auth_reg.host,
            "auth_image": auth_reg.push_unique(docker, "skiff/private"),
            "user": user,
            "password": password,
            "podman": None,
            "podman_why": "not asked for" if not want_podman else "",
        }
        if want_podman:
            try:
                pod = Podman(insecure=[open_reg.host, auth_reg.host]).start()
                started.append(pod)
                pimages = build_images(Engine(pod.host))
                smoke_test(Engine(pod.host), pimages["busybox"])
                desc["podman"] = pod.host
            except (RuntimeError, OSError, EngineError) as e:
                desc["podman_why"] = str(e)
        print(json.dumps(desc), flush=True)
        # Lives until the test closes our stdin (or dies): then cleans up.
        while sys.stdin.buffer.read(4096):
            pass
    finally:
        for s in reversed(started):
            s.stop()
    return 0


def main(argv):
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    if len(argv) >= 2 and argv[1] == "fixture":
        return _fixture(argv[2:])
    if len(argv) >= 2 and argv[1] == "images":
        print(json.dumps(build_images(Engine())))
        return 0
    print("usage: dockerenv.py fixture [--podman] | images", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
