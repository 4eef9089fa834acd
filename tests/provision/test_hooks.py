#!/usr/bin/env python3
"""Lifecycle hooks of provision/hooks against a loopback stand-in of each
cloud's metadata service and API.

The clouds cannot run here, so a small HTTP server on 127.0.0.1 plays
IMDS/metadata server and the cloud API, and checks every request the way
the cloud would: the IMDSv2 session token, the Metadata-Flavor/Metadata
headers, the bearer tokens, the paths and bodies, and (for AWS) the SigV4
signature, recomputed here independently of the shell implementation.

Cases:
  sigv4        the shell SigV4 against AWS's published example
  aws          terminate-aws: TerminateInstanceInAutoScalingGroup, signed
  aws-denied   terminate-aws exits 1 when the API refuses
  gcp          terminate-gcp: MIG deleteInstances; and instances.delete
               for an instance no group created
  azure        terminate-azure: DELETE of the scale set VM
  exit-hook    skiff-exit-hook terminates after exit 0 only; fallback
  preempt-*    skiff-preempt-watch: SIGTERM on notice, second SIGTERM
               before the deadline, nothing without a notice
"""
import datetime
import email.utils
import hashlib
import hmac
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SRC = os.environ.get("SKIFF_SOURCE_DIR",
                     os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
HOOKS = os.path.join(SRC, "provision", "hooks")

AKID = "ASIATESTKEY0000000001"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYTESTKEY000"
SESSION = "IQoJb3JpZ2luX2VjEJr//////////session+token/with=chars"
REGION = "eu-west-1"
INSTANCE = "i-0123456789abcdef0"


def sigv4_expected(method, host, path, query, headers, body, region, service):
    """Independent SigV4: the signature AWS would compute for this request."""
    signed = sorted(h.lower() for h in headers)
    canon_headers = "".join("%s:%s\n" % (h, " ".join(headers_lower(headers)[h].split()))
                            for h in signed)
    creq = "\n".join([method, path, query, canon_headers, ";".join(signed),
                      hashlib.sha256(body).hexdigest()])
    amzdate = headers_lower(headers)["x-amz-date"]
    day = amzdate[:8]
    scope = "%s/%s/%s/aws4_request" % (day, region, service)
    sts = "\n".join(["AWS4-HMAC-SHA256", amzdate, scope,
                     hashlib.sha256(creq.encode()).hexdigest()])

    def h(k, m):
        return hmac.new(k, m.encode(), hashlib.sha256).digest()
    k = h(h(h(h(("AWS4" + SECRET).encode(), day), region), service), "aws4_request")
    return scope, ";".join(signed), hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()


def headers_lower(headers):
    return {k.lower(): v for k, v in headers.items()}


class Cloud:
    """State of the stand-in: what it answers and what it saw."""

    def __init__(self):
        self.lock = threading.Lock()
        self.calls = []          # (method, path) of API calls that were accepted
        self.errors = []         # requests the real service would refuse
        self.api_status = 200
        self.notice_after = None  # polls of the notice endpoint before a notice
        self.notice_polls = 0
        self.notice_lead = 8      # seconds from a notice to its deadline (AWS, Azure)
        self.gcp_created_by = "projects/123456/zones/europe-west1-b/instanceGroupManagers/skiff-mig"
        self.imds_token = "AQAEAtestimdstoken=="

    def error(self, msg):
        with self.lock:
            self.errors.append(msg)

    def notice_due(self):
        with self.lock:
            self.notice_polls += 1
            return self.notice_after is not None and self.notice_polls > self.notice_after


def make_handler(cloud):
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def send(self, code, body=b"", ctype="text/plain"):
            if isinstance(body, str):
                body = body.encode()
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def body(self):
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n else b""

        # ---------------- AWS ----------------
        def aws_md(self, path):
            if self.headers.get("X-aws-ec2-metadata-token") != cloud.imds_token:
                cloud.error("IMDS read without the IMDSv2 token: " + path)
                return self.send(401)
            rest = path[len("/latest/meta-data/"):]
            if rest == "instance-id":
                return self.send(200, INSTANCE)
            if rest == "placement/region":
                return self.send(200, REGION)
            if rest == "iam/security-credentials/":
                return self.send(200, "skiff-worker-role")
            if rest == "iam/security-credentials/skiff-worker-role":
                return self.send(200, json.dumps({
                    "Code": "Success", "Type": "AWS-HMAC", "AccessKeyId": AKID,
                    "SecretAccessKey": SECRET, "Token": SESSION,
                    "Expiration": "2099-01-01T00:00:00Z"}, indent=2), "application/json")
            if rest == "spot/instance-action":
                if cloud.notice_due():
                    deadline = datetime.datetime.fromtimestamp(
                        time.time() + cloud.notice_lead, datetime.timezone.utc)
                    return self.send(200, json.dumps({"action": "terminate",
                                                      "time": deadline.strftime("%Y-%m-%dT%H:%M:%SZ")}))
                return self.send(404)
            if rest == "autoscaling/target-lifecycle-state":
                return self.send(200, "InService")
            return self.send(404)

        def aws_api(self):
            body = self.body()
            hdr = {k: v for k, v in self.headers.items()}
            low = headers_lower(hdr)
            auth = low.get("authorization", "")
            try:
                parts = dict(p.strip().split("=", 1) for p in auth[len("AWS4-HMAC-SHA256 "):].split(","))
                signed_names = parts["SignedHeaders"].split(";")
                signed = {n: low[n] for n in signed_names}
            except (KeyError, ValueError):
                cloud.error("malformed Authorization: " + auth)
                return self.send(403, "<Error><Code>IncompleteSignature</Code></Error>")
            for need in ("host", "x-amz-date", "x-amz-security-token"):
                if need not in signed_names:
                    cloud.error("header not signed: " + need)
            scope, sh, sig = sigv4_expected("POST", low["host"], "/", "", signed, body,
                                            REGION, "autoscaling")
            if parts.get("Credential") != AKID + "/" + scope or parts.get("Signature") != sig \
                    or sh != parts["SignedHeaders"]:
                cloud.error("bad signature: got %s, want %s/%s %s" % (auth, AKID, scope, sig))
                return self.send(403, "<Error><Code>SignatureDoesNotMatch</Code></Error>")
            if low.get("x-amz-security-token") != SESSION:
                cloud.error("session token missing")
            params = dict(urllib.parse.parse_qsl(body.decode()))
            want = {"Action": "TerminateInstanceInAutoScalingGroup", "InstanceId": INSTANCE,
                    "ShouldDecrementDesiredCapacity": "true", "Version": "2011-01-01"}
            if params != want:
                cloud.error("unexpected parameters %r" % params)
                return self.send(400, "<Error><Code>ValidationError</Code></Error>")
            if not low.get("content-type", "").startswith("application/x-www-form-urlencoded"):
                cloud.error("content type " + low.get("content-type", ""))
            with cloud.lock:
                cloud.calls.append(("POST", "TerminateInstanceInAutoScalingGroup"))
            if cloud.api_status != 200:
                return self.send(cloud.api_status, "<Error><Code>AccessDenied</Code></Error>")
            return self.send(200, "<TerminateInstanceInAutoScalingGroupResponse><TerminateInstanceInAutoScalingGroupResult><Activity><Description>Terminating EC2 instance: %s</Description></Activity></TerminateInstanceInAutoScalingGroupResult></TerminateInstanceInAutoScalingGroupResponse>" % INSTANCE, "text/xml")

        # ---------------- GCP ----------------
        def gcp_md(self, path):
            if self.headers.get("Metadata-Flavor") != "Google":
                cloud.error("metadata read without Metadata-Flavor: " + path)
                return self.send(403)
            rest = path[len("/computeMetadata/v1/"):]
            answers = {
                "instance/service-accounts/default/token":
                    json.dumps({"access_token": "ya29.gcp-token", "expires_in": 3599,
                                "token_type": "Bearer"}),
                "instance/name": "skiff-mig-x7k2",
                "instance/zone": "projects/123456/zones/europe-west1-b",
                "project/project-id": "my-proj",
            }
            if rest in answers:
                return self.send(200, answers[rest])
            if rest == "instance/attributes/created-by" and cloud.gcp_created_by:
                return self.send(200, cloud.gcp_created_by)
            if rest == "instance/preempted":
                return self.send(200, "TRUE" if cloud.notice_due() else "FALSE")
            return self.send(404)

        def gcp_api(self, method, path):
            if self.headers.get("Authorization") != "Bearer ya29.gcp-token":
                cloud.error("GCP API call without the token")
                return self.send(401)
            body = self.body()
            if method == "POST" and path == "/compute/v1/projects/my-proj/zones/europe-west1-b/instanceGroupManagers/skiff-mig/deleteInstances":
                try:
                    doc = json.loads(body)
                except ValueError:
                    doc = None
                if doc != {"instances": ["zones/europe-west1-b/instances/skiff-mig-x7k2"]}:
                    cloud.error("deleteInstances body %r" % body)
                    return self.send(400)
            elif method == "DELETE" and path == "/compute/v1/projects/my-proj/zones/europe-west1-b/instances/skiff-mig-x7k2":
                pass
            else:
                cloud.error("unexpected GCP call %s %s" % (method, path))
                return self.send(404)
            with cloud.lock:
                cloud.calls.append((method, path))
            return self.send(cloud.api_status, json.dumps({"kind": "compute#operation", "name": "operation-1"}),
                             "application/json")

        # ---------------- Azure ----------------
        AZ_ID = "/subscriptions/0000-1111/resourceGroups/skiff-rg/providers/Microsoft.Compute/virtualMachineScaleSets/skiff-vmss/virtualMachines/3"

        def azure_md(self, path, query):
            if self.headers.get("Metadata") != "true":
                cloud.error("IMDS read without Metadata: true: " + path)
                return self.send(400)
            q = urllib.parse.parse_qs(query)
            if path == "/metadata/identity/oauth2/token":
                if q.get("resource") != ["https://management.azure.com/"] or "api-version" not in q:
                    cloud.error("token request %r" % q)
                    return self.send(400)
                return self.send(200, json.dumps({"access_token": "eyJ.azure-token", "token_type": "Bearer"}),
                                 "application/json")
            if path == "/metadata/instance/compute":
                return self.send(200, json.dumps({"name": "skiff-vmss_3", "resourceId": self.AZ_ID,
                                                  "vmScaleSetName": "skiff-vmss"}), "application/json")
            if path == "/metadata/instance/compute/name":
                return self.send(200, "skiff-vmss_3")
            if path == "/metadata/scheduledevents":
                events = []
                if cloud.notice_due():
                    events = [
                        {"EventId": "A", "EventType": "Freeze", "Resources": ["skiff-vmss_3"],
                         "NotBefore": "Mon, 01 Jan 2024 00:00:00 GMT"},
                        {"EventId": "B", "EventType": "Preempt", "Resources": ["skiff-vmss_9"],
                         "NotBefore": "Mon, 01 Jan 2024 00:00:00 GMT"},
                        {"EventId": "C", "EventType": "Preempt", "Resources": ["skiff-vmss_3"],
                         "EventStatus": "Scheduled",
                         "NotBefore": email.utils.formatdate(time.time() + cloud.notice_lead, usegmt=True)},
                    ]
                return self.send(200, json.dumps({"DocumentIncarnation": 2, "Events": events}),
                                 "application/json")
            return self.send(404)

        def azure_api(self, method, path, query):
            if self.headers.get("Authorization") != "Bearer eyJ.azure-token":
                cloud.error("ARM call without the token")
                return self.send(401)
            q = urllib.parse.parse_qs(query)
            if method != "DELETE" or path != "/arm" + self.AZ_ID or "api-version" not in q:
                cloud.error("unexpected ARM call %s %s?%s" % (method, path, query))
                return self.send(404)
            with cloud.lock:
                cloud.calls.append((method, path))
            return self.send(202 if cloud.api_status == 200 else cloud.api_status, "")

        # ---------------- dispatch ----------------
        def route(self, method):
            u = urllib.parse.urlsplit(self.path)
            path, query = u.path, u.query
            if path == "/latest/api/token":
                if method != "PUT" or not self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
                    cloud.error("IMDSv2 token request without PUT and TTL")
                    return self.send(400)
                return self.send(200, cloud.imds_token)
            if path.startswith("/latest/meta-data/"):
                return self.aws_md(path)
            if path == "/aws/":
                return self.aws_api()
            if path.startswith("/computeMetadata/v1/"):
                return self.gcp_md(path)
            if path.startswith("/compute/v1/"):
                return self.gcp_api(method, path)
            if path.startswith("/metadata/"):
                return self.azure_md(path, query)
            if path.startswith("/arm/"):
                return self.azure_api(method, path, query)
            cloud.error("unexpected %s %s" % (method, self.path))
            return self.send(404)

        def do_GET(self):
            self.route("GET")

        def do_PUT(self):
            self.route("PUT")

        def do_POST(self):
            self.route("POST")

        def do_DELETE(self):
            self.route("DELETE")

    return H


class Env:
    def __init__(self):
        self.cloud = Cloud()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(self.cloud))
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.tmp = tempfile.mkdtemp(prefix="skiff-hooks.")
        conf = os.path.join(self.tmp, "lifecycle.conf")
        with open(conf, "w") as f:
            f.write("SKIFF_TERMINATE=none\n")
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "SKIFF_LIFECYCLE_CONF": conf,
            "SKIFF_AWS_IMDS_URL": self.url,
            "SKIFF_AWS_AUTOSCALING_URL": self.url + "/aws",
            "SKIFF_GCP_METADATA_URL": self.url,
            "SKIFF_GCP_COMPUTE_URL": self.url + "/compute/v1",
            "SKIFF_AZURE_IMDS_URL": self.url,
            "SKIFF_AZURE_ARM_URL": self.url + "/arm",
        }

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def run(self, prog, extra=None, timeout=60, hooks=HOOKS, args=()):
        env = dict(self.env)
        env.update(extra or {})
        return subprocess.run([os.path.join(hooks, prog)] + list(args), env=env, timeout=timeout,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


failures = []


def check(name, cond, detail=""):
    print("%s %s%s" % ("ok  " if cond else "FAIL", name, (": " + detail) if detail and not cond else ""))
    if not cond:
        failures.append(name)


def case_sigv4():
    env = dict(os.environ, AWS_ACCESS_KEY_ID="AKIDEXAMPLE",
               AWS_SECRET_ACCESS_KEY="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    env.pop("AWS_SESSION_TOKEN", None)
    out = subprocess.run(["bash", "-c", '. "$1"; sigv4_authorization GET iam.amazonaws.com / '
                          '"Action=ListUsers&Version=2010-05-08" "" us-east-1 iam 20150830T123600Z '
                          '"application/x-www-form-urlencoded; charset=utf-8"', "sh",
                          os.path.join(HOOKS, "aws-sigv4.sh")],
                         env=env, stdout=subprocess.PIPE, text=True, timeout=30).stdout
    want = ("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, "
            "SignedHeaders=content-type;host;x-amz-date, "
            "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7")
    check("sigv4: AWS's published example", out == want, out)


def case_aws():
    e = Env()
    try:
        r = e.run("terminate-aws")
        check("aws: terminate-aws exits 0", r.returncode == 0, r.stdout)
        check("aws: one signed TerminateInstanceInAutoScalingGroup",
              e.cloud.calls == [("POST", "TerminateInstanceInAutoScalingGroup")], repr(e.cloud.calls))
        check("aws: every request as AWS wants it", not e.cloud.errors, repr(e.cloud.errors))
        check("aws: no secret in the hook's output", SECRET not in r.stdout and SESSION not in r.stdout)
    finally:
        e.close()
    e = Env()
    try:
        e.cloud.api_status = 403
        r = e.run("terminate-aws")
        check("aws-denied: terminate-aws exits 1 when the API refuses", r.returncode == 1, r.stdout)
        check("aws-denied: the API's answer is logged", "AccessDenied" in r.stdout, r.stdout)
    finally:
        e.close()


def case_gcp():
    e = Env()
    try:
        r = e.run("terminate-gcp")
        check("gcp: terminate-gcp exits 0", r.returncode == 0, r.stdout)
        check("gcp: deleteInstances on the group, by project id", e.cloud.calls == [
            ("POST", "/compute/v1/projects/my-proj/zones/europe-west1-b/instanceGroupManagers/skiff-mig/deleteInstances")],
            repr(e.cloud.calls))
        check("gcp: every request as GCP wants it", not e.cloud.errors, repr(e.cloud.errors))
    finally:
        e.close()
    e = Env()
    try:
        e.cloud.gcp_created_by = None
        r = e.run("terminate-gcp")
        check("gcp: an instance outside a group is deleted", r.returncode == 0 and e.cloud.calls == [
            ("DELETE", "/compute/v1/projects/my-proj/zones/europe-west1-b/instances/skiff-mig-x7k2")],
            r.stdout + repr(e.cloud.calls))
        check("gcp: no unexpected request", not e.cloud.errors, repr(e.cloud.errors))
    finally:
        e.close()


def case_azure():
    e = Env()
    try:
        r = e.run("terminate-azure")
        check("azure: terminate-azure exits 0", r.returncode == 0, r.stdout)
        check("azure: DELETE of the scale set VM", e.cloud.calls == [
            ("DELETE", "/arm/subscriptions/0000-1111/resourceGroups/skiff-rg/providers/Microsoft.Compute/virtualMachineScaleSets/skiff-vmss/virtualMachines/3")],
            repr(e.cloud.calls))
        check("azure: every request as Azure wants it", not e.cloud.errors, repr(e.cloud.errors))
    finally:
        e.close()


def case_exit_hook():
    """The decision table of skiff-exit-hook, with the terminate-* programs
    replaced by recorders in a copy of the hooks directory."""
    e = Env()
    d = os.path.join(e.tmp, "hooks")
    shutil.copytree(HOOKS, d)
    log = os.path.join(e.tmp, "ran")
    for name in ("aws", "gcp", "azure", "poweroff"):
        p = os.path.join(d, "terminate-" + name)
        with open(p, "w") as f:
            f.write("#!/bin/sh\necho %s >> %s\nexit ${FAKE_RC_%s:-0}\n" % (name, log, name.upper()))
        os.chmod(p, 0o755)

    def ran(extra, conf, args=()):
        with open(e.env["SKIFF_LIFECYCLE_CONF"], "w") as f:
            f.write(conf)
        if os.path.exists(log):
            os.unlink(log)
        r = e.run("skiff-exit-hook", extra, hooks=d, args=args)
        out = open(log).read().split() if os.path.exists(log) else []
        return r.returncode, out

    try:
        idle = {"EXIT_CODE": "exited", "EXIT_STATUS": "0", "SERVICE_RESULT": "success"}
        check("exit-hook: exit 0 with aws terminates through aws",
              ran(idle, "SKIFF_TERMINATE=aws\n") == (0, ["aws"]))
        check("exit-hook: exit 0 with none keeps the VM", ran(idle, "SKIFF_TERMINATE=none\n") == (0, []))
        check("exit-hook: the default (no setting) keeps the VM", ran(idle, "# empty\n") == (0, []))
        for status in ("10", "78", "1"):
            check("exit-hook: exit %s keeps the VM" % status,
                  ran({"EXIT_CODE": "exited", "EXIT_STATUS": status, "SERVICE_RESULT": "exit-code"},
                      "SKIFF_TERMINATE=gcp\n") == (0, []))
        revoked = {"EXIT_CODE": "exited", "EXIT_STATUS": "77", "SERVICE_RESULT": "exit-code"}
        check("exit-hook: exit 77 (revoked) terminates by default",
              ran(revoked, "SKIFF_TERMINATE=gcp\n") == (0, ["gcp"]))
        check("exit-hook: exit 77 with SKIFF_TERMINATE_ON_REVOKED=no keeps the VM",
              ran(revoked, "SKIFF_TERMINATE=gcp\nSKIFF_TERMINATE_ON_REVOKED=no\n") == (0, []))
        check("exit-hook: exit 77 with none keeps the VM", ran(revoked, "SKIFF_TERMINATE=none\n") == (0, []))
        check("exit-hook: killed by a signal keeps the VM",
              ran({"EXIT_CODE": "killed", "EXIT_STATUS": "TERM", "SERVICE_RESULT": "signal"},
                  "SKIFF_TERMINATE=gcp\n") == (0, []))
        check("exit-hook: no systemd variables keeps the VM", ran({}, "SKIFF_TERMINATE=gcp\n") == (0, []))
        check("exit-hook: --idle (the agent's own on-exit hook) terminates",
              ran({}, "SKIFF_TERMINATE=aws\n", args=["--idle"]) == (0, ["aws"]))
        rc, out = ran(dict(idle, FAKE_RC_AZURE="1"), "SKIFF_TERMINATE=azure\n")
        check("exit-hook: a failed cloud call falls back to poweroff", (rc, out) == (0, ["azure", "poweroff"]),
              repr((rc, out)))
        rc, out = ran(dict(idle, FAKE_RC_AZURE="1"), "SKIFF_TERMINATE=azure\nSKIFF_TERMINATE_FALLBACK=none\n")
        check("exit-hook: fallback none keeps the VM and fails", (rc, out) == (1, ["azure"]), repr((rc, out)))
        check("exit-hook: the environment wins over the file",
              ran(dict(idle, SKIFF_TERMINATE="gcp"), "SKIFF_TERMINATE=aws\n") == (0, ["gcp"]))
    finally:
        e.close()


def agent_stub(tmp):
    """A process standing in for the agent: records each SIGTERM it gets."""
    rec = os.path.join(tmp, "signals")
    code = ("import signal,sys,time\n"
            "f=open(sys.argv[1],'a',buffering=1)\n"
            "def h(s,fr): f.write('%.2f\\n' % time.time())\n"
            "signal.signal(signal.SIGTERM,h)\n"
            "f.write('ready\\n')\n"
            "end=time.time()+120\n"
            "while time.time()<end: time.sleep(0.1)\n")
    p = subprocess.Popen([sys.executable, "-c", code, rec])
    for _ in range(100):
        if os.path.exists(rec) and "ready" in open(rec).read():
            break
        time.sleep(0.05)
    return p, rec


def recorded(rec, want, timeout=10.0):
    """The SIGTERM times the stub wrote, once it has written want of them
    (or the timeout passed)."""
    end = time.time() + timeout
    while True:
        sigs = [float(x) for x in open(rec).read().split()[1:]]
        if len(sigs) >= want or time.time() > end:
            return sigs
        time.sleep(0.05)


def case_preempt(cloud_name):
    e = Env()
    p, rec = agent_stub(e.tmp)
    try:
        e.cloud.notice_after = 2
        # the cancel SIGTERM is due about 3 s after the notice:
        # AWS, Azure: deadline 8 s ahead; GCP: 30 s from the notice
        margin = "27" if cloud_name == "gcp" else "5"
        t0 = time.time()
        r = e.run("skiff-preempt-watch", {
            "SKIFF_PREEMPT": cloud_name, "SKIFF_PREEMPT_INTERVAL": "1",
            "SKIFF_PREEMPT_CANCEL_MARGIN": margin, "SKIFF_PREEMPT_MAX_POLLS": "30",
            "SKIFF_AGENT_PID": str(p.pid)}, timeout=60)
        elapsed = time.time() - t0
        # The stub writes down a signal when its handler runs, which can
        # be after the watcher has sent it and exited: wait for it.
        sigs = recorded(rec, 2)
        check("preempt-%s: the watcher exits 0 after the notice" % cloud_name, r.returncode == 0, r.stdout)
        check("preempt-%s: two SIGTERMs (drain, then cancel)" % cloud_name, len(sigs) == 2,
              "%r\n%s" % (sigs, r.stdout))
        if len(sigs) == 2:
            check("preempt-%s: the drain SIGTERM comes within 2 polls of the notice" % cloud_name,
                  sigs[0] - t0 < 5, "%.1f s" % (sigs[0] - t0))
            check("preempt-%s: the cancel SIGTERM comes before the deadline" % cloud_name,
                  0.5 <= sigs[1] - sigs[0] <= 5, "%.1f s apart" % (sigs[1] - sigs[0]))
        check("preempt-%s: done in bounded time" % cloud_name, elapsed < 20, "%.1f s" % elapsed)
        check("preempt-%s: every request as the cloud wants it" % cloud_name, not e.cloud.errors,
              repr(e.cloud.errors))
    finally:
        p.kill()
        p.wait()
        e.close()


def case_preempt_quiet():
    e = Env()
    p, rec = agent_stub(e.tmp)
    try:
        r = e.run("skiff-preempt-watch", {
            "SKIFF_PREEMPT": "aws", "SKIFF_PREEMPT_INTERVAL": "1", "SKIFF_PREEMPT_MAX_POLLS": "3",
            "SKIFF_AGENT_PID": str(p.pid)}, timeout=30)
        sigs = open(rec).read().split()[1:]
        check("preempt-quiet: no notice, no signal", r.returncode == 0 and sigs == [], r.stdout + repr(sigs))
        check("preempt-quiet: polled with the IMDSv2 token", not e.cloud.errors and e.cloud.notice_polls == 3,
              repr((e.cloud.errors, e.cloud.notice_polls)))
    finally:
        p.kill()
        p.wait()
        e.close()


def main():
    for tool in ("curl", "jq", "openssl", "bash"):
        if not shutil.which(tool):
            print("test_hooks: %s is not installed" % tool)
            return 1
    case_sigv4()
    case_aws()
    case_gcp()
    case_azure()
    case_exit_hook()
    case_preempt("aws")
    case_preempt("gcp")
    case_preempt("azure")
    case_preempt_quiet()
    print("test_hooks: %d failed" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
