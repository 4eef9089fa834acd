"""A real browser for the web view's tests: Debian's chromium, headless,
driven through playwright-core (tests/browser/driver.mjs, installed by
scripts/setup.sh with ``npm ci``).

``Browser(tc)`` starts the driver in its own process group (killed with
its chromium when the test ends, pass or fail) and sends it one command
at a time; every answer is awaited for a bounded time. ``shot(name)``
saves a PNG of the page in the screenshot directory: SKIFF_UI_SHOTS when
set (docs/ui is how docs/queue.md's pictures were made), else
<build>/ui-screenshots/<store>/.
"""
import json
import os
import selectors
import shutil
import subprocess
import time

import harness
from harness import BUILD, SLOW, SOURCE, STORE

BROWSER_DIR = os.path.join(SOURCE, "tests", "browser")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
NODE = shutil.which("node") or "/usr/bin/node"


def missing():
    """Why the browser tests cannot run here, or None."""
    if not os.path.exists(CHROMIUM):
        return "%s is not installed (apt-get install chromium)" % CHROMIUM
    if not os.path.isdir(os.path.join(BROWSER_DIR, "node_modules",
                                      "playwright-core")):
        return ("playwright-core is not installed: npm ci --prefix %s"
                % BROWSER_DIR)
    if not os.path.exists(NODE):
        return "node is not installed"
    return None


class BrowserError(AssertionError):
    pass


class Browser:
    def __init__(self, tc):
        why = missing()
        if why:
            raise AssertionError("browser tests need chromium and "
                                 "playwright-core: " + why)
        self.tc = tc
        self.log_path = os.path.join(tc.tmp, "browser.log")
        self.shots = os.environ.get("SKIFF_UI_SHOTS") or os.path.join(
            BUILD, "ui-screenshots", STORE)
        os.makedirs(self.shots, exist_ok=True)
        log = open(self.log_path, "ab")
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": tc.tmp,
               "CHROMIUM": CHROMIUM}
        try:
            self.proc = subprocess.Popen(
                [NODE, os.path.join(BROWSER_DIR, "driver.mjs")],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                cwd=BROWSER_DIR, env=env, start_new_session=True,
                close_fds=True)
        finally:
            log.close()
        harness._live.append(self.proc)
        tc.addCleanup(self.close)
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.proc.stdout, selectors.EVENT_READ)
        self.buf = b""

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(b'{"op":"quit"}\n')
                self.proc.stdin.flush()
            except OSError:
                pass
            harness.stop_process(self.proc, timeout=10)
        self.sel.close()
        self.proc.stdout.close()
        try:
            self.proc.stdin.close()
        except OSError:
            pass

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")[-4000:]

    def _line(self, timeout):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                raise BrowserError("browser driver gave no answer in %.0fs "
                                   "(exit %s):\n%s" % (timeout,
                                   self.proc.poll(), self.log()))
            if self.sel.select(min(left, 1.0)):
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    continue
                self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def do(self, op, timeout=40.0, **args):
        args["op"] = op
        self.proc.stdin.write(json.dumps(args).encode() + b"\n")
        self.proc.stdin.flush()
        ans = self._line(timeout * SLOW)
        if not ans["ok"]:
            raise BrowserError("%s %r: %s" % (op, args, ans["error"]))
        return ans["value"]

    def wait(self, selector, text=None, timeout=15.0):
        return self.do("wait", timeout=timeout + 10, selector=selector,
                       text=text, timeout_ms=int(timeout * SLOW * 1000))

    def shot(self, name):
        return self.do("screenshot", path=os.path.join(self.shots,
                                                       name + ".png"))
