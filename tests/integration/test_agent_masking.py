"""The real agent against the real queue: a sealed secret, and a value a
step masks at run time with ##skiff[add-mask], printed in every encoding
the masker knows (base64 and base64url at each alignment, as HTTP Basic
auth does, hex, percent-encoding, JSON), whole, split across writes and
log chunks, on stdout and stderr, in later steps: the log the queue
keeps holds none of them."""
import base64
import hashlib
import json
import os
import re
import urllib.parse

import dockerenv
import harness
from agentfix import AgentTestCase, log_stream

SECRET = 'ci-T0k3n/with+special&chars="42" \\ \u00e9'

# Prints every encoding of the named variable's value, each on a line of
# its own inside some text (so the masker sees them embedded).
ENCODER = r'''
import base64, json, os, re, sys, urllib.parse
v = os.environb[sys.argv[1].encode()]
s = v.decode()
for pre in (b"", b"x", b"xy"):
    for post in (b"", b"!"):
        print("b64:", base64.b64encode(pre + v + post).decode(), "end")
        print("b64url:", base64.urlsafe_b64encode(pre + v + post).decode())
print("basic:", base64.b64encode(b"ci-bot:" + v).decode())
print("hex:", v.hex(), v.hex().upper())
q = urllib.parse.quote(s, safe="")
print("url:", q, "lower:", re.sub("%..", lambda m: m.group(0).lower(), q))
print("all:", "".join("%%%02X" % b for b in v), "".join("%%%02x" % b for b in v))
print("uri-component:", urllib.parse.quote(s, safe="!*'()~"))
print("form: pass=" + urllib.parse.quote_plus(s, safe="") + "&x=1")
print(json.dumps({"token": s}))
print(json.dumps({"token": s}, ensure_ascii=False))
'''


def trimmed_b64(pre, v, post, urlsafe):
    """The characters of base64(pre + v + post) that depend on v alone."""
    enc = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(
        pre + v + post).decode()
    lo = (8 * len(pre) + 5) // 6
    return enc[lo:8 * (len(pre) + len(v)) // 6]


def forms(value):
    """Every form of value the step prints: none may reach the log."""
    v, s = value.encode(), value
    out = {s}
    for pre in (b"", b"x", b"xy", b"ci-bot:"):
        for post in (b"", b"!"):
            for urlsafe in (False, True):
                out.add(trimmed_b64(pre, v, post, urlsafe))
    out |= {v.hex(), v.hex().upper()}
    q = urllib.parse.quote(s, safe="")
    out |= {q, re.sub("%..", lambda m: m.group(0).lower(), q),
            "".join("%%%02X" % b for b in v),
            "".join("%%%02x" % b for b in v),
            urllib.parse.quote(s, safe="!*'()~"),
            urllib.parse.quote_plus(s, safe=""),
            json.dumps(s)[1:-1], json.dumps(s, ensure_ascii=False)[1:-1]}
    return sorted(x for x in out if len(x) >= 6)


class MaskingCase(AgentTestCase):
    def setUp(self):
        super().setUp()
        self.pool_priv, self.pool_pub = harness.make_pool_key(self.tmp)
        self.encoder = os.path.join(self.tmp, "enc.py")
        with open(self.encoder, "w") as f:
            f.write(ENCODER)

    def seal(self, value):
        return harness.run([harness.SKIFFCTL, "seal", "--pool-key",
                            self.pool_pub], input=value.encode()
                           ).stdout.decode().strip()


class HostStepTests(MaskingCase):
    def test_every_encoding_of_sealed_and_added_values(self):
        enc = "/usr/bin/python3 %s" % self.encoder
        # The run-time value: derived from the secret, so the test knows
        # it; with a quote, escaped as |' in the service message.
        runtime = "rt/%s+&'x" % hashlib.sha256(
            SECRET.encode()).hexdigest()[:20]
        sealed_step = (
            'echo "raw: $TOKEN"\n'
            "printf 'ci-bot:%%s' \"$TOKEN\" | base64 -w0; echo\n"
            "%s TOKEN\n"
            # split across writes, with the log flushing the partial line
            # in between (a chunk boundary)
            'printf "split: %%s" "${TOKEN:0:9}"; sleep 1.5\n'
            'printf "%%s end\\n" "${TOKEN:9}"\n'
            "H=$(printf %%s \"$TOKEN\" | od -An -tx1 | tr -d ' \\n')\n"
            'printf "hex split: %%s" "${H:0:11}"; sleep 1.5\n'
            'printf "%%s end\\n" "${H:11}"\n'
            "B=$(printf 'ci-bot:%%s' \"$TOKEN\" | base64 -w0)\n"
            'printf "b64 split: %%s" "${B:0:17}"; sleep 1.5\n'
            'printf "%%s end\\n" "${B:17}"\n'
            'echo "err: $TOKEN" >&2\n'
            "%s TOKEN >&2\n") % (enc, enc)
        add_step = (
            "R=\"rt/$(printf %%s \"$TOKEN\" | sha256sum | cut -c1-20)+&'x\"\n"
            'echo "before: $R"\n'
            "V=${R//|/||}; V=${V//\\'/|\\'}\n"
            "echo \"##skiff[add-mask value='$V']\"\n"
            'echo "after: $R"\n'
            "export R; %s R\n"
            'printf "split: %%s" "${R:0:9}"; sleep 1.5\n'
            'printf "%%s end\\n" "${R:9}"\n'
            "echo \"##skiff[add-mask value='abc']\"\n"
            "echo '##skiff[add-mask value=unquoted]'\n") % enc
        later_step = (
            "R=\"rt/$(printf %%s \"$TOKEN\" | sha256sum | cut -c1-20)+&'x\"\n"
            'echo "later: $R"\n'
            'echo "later err: $R" >&2\n'
            "export R; %s R >&2\n") % enc
        self.agent(pool_key=self.pool_priv)
        bash = ["/bin/bash", "-e", "-c"]
        job = self.submit_job(self.steps_job(
            {"name": "sealed", "script": sealed_step, "shell": bash},
            {"name": "add-mask", "script": add_step, "shell": bash},
            {"name": "later", "script": later_step, "shell": bash},
            secrets={"TOKEN": self.seal(SECRET)}))
        st = self.finished(job, timeout=60 * harness.SLOW)
        log = self.log_of(job)
        self.assertEqual(st["state"], "succeeded", (st, log.decode()))
        out = log_stream(log, "out").decode()
        err = log_stream(log, "err").decode()
        skf = log_stream(log, "skf").decode()

        for form in forms(SECRET):
            self.assertNotIn(form.encode(), log, "sealed secret as %r" % form)
        # Before the message the value was plain text, as documented:
        # that line is the only place it shows.
        self.assertEqual(log.count(runtime.encode()), 1, out)
        self.assertIn("before: %s\n" % runtime, out)
        for form in forms(runtime):
            if form != runtime:
                self.assertNotIn(form.encode(), log, "added value as %r" % form)
        self.assertNotIn(b"add-mask value='rt/", log)

        self.assertIn("raw: ***\n", out)
        self.assertIn("split: *** end\n", out)
        self.assertIn("hex split: *** end\n", out)
        self.assertRegex(out, r"b64 split: Y2ktYm90O.\*\*\*=* end\n")
        self.assertIn("err: ***\n", err)
        self.assertEqual(out.count("##skiff[add-mask value='***']\n"), 3, out)
        self.assertIn("after: ***\n", out)
        self.assertIn("later: ***\n", out)
        self.assertIn("later err: ***\n", err)
        # The encoder's lines were there, masked.
        self.assertGreaterEqual(out.count("b64: "), 12)
        self.assertIn('{"token": "***"}', out)
        self.assertIn("form: pass=***&x=1", out)
        # Refusals are explained in skiff's own lines, without the value.
        # (add-mask is set-secret by its other name: the lines say both.)
        self.assertIn("refused a ##skiff[set-secret] (add-mask) value: it "
                      "must be 4", skf)
        self.assertEqual(skf.count("ignored a malformed ##skiff[set-secret] "
                                   "(add-mask) message"), 1, skf)
        self.assertNotIn("malformed or unknown", skf)
        self.assertNotIn("add-mask value='***'", skf)


class ContainerStepTests(MaskingCase):
    """The same path from an execution container (Docker's multiplexed
    attach stream rather than pipes)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.eng = dockerenv.Engine()
        cls.busybox = dockerenv.build_images(cls.eng)["busybox"]

    def test_container_step(self):
        secret = "ctr-S3cret/value+42"
        runtime = "ctr-rt-" + hashlib.sha256(secret.encode()).hexdigest()[:16]
        script = (
            'echo "raw: $TOKEN"\n'
            "printf 'ci-bot:%s' \"$TOKEN\" | base64\n"
            "printf %s \"$TOKEN\" | od -An -tx1 | tr -d ' \\n'; echo\n"
            'R="ctr-rt-$(printf %s "$TOKEN" | sha256sum | cut -c1-16)"\n'
            "echo \"##skiff[add-mask value='$R']\"\n"
            'echo "after: $R"\n'
            "printf %s \"$R\" | base64\n")
        # stderr is read apart from stdout: the next step is surely after.
        later = (
            'R="ctr-rt-$(printf %s "$TOKEN" | sha256sum | cut -c1-16)"\n'
            'echo "later err: $R" >&2\n'
            "printf %s \"$R\" | od -An -tx1 | tr -d ' \\n' >&2\n")
        self.agent(pool_key=self.pool_priv)
        job = self.submit_job(self.steps_job(
            {"name": "box", "image": self.busybox, "script": script},
            {"name": "later", "image": self.busybox, "script": later},
            secrets={"TOKEN": self.seal(secret)}))
        st = self.finished(job, timeout=60 * harness.SLOW)
        log = self.log_of(job)
        self.assertEqual(st["state"], "succeeded", (st, log.decode()))
        for form in forms(secret) + forms(runtime):
            self.assertNotIn(form.encode(), log, form)
        out = log_stream(log, "out").decode()
        self.assertIn("raw: ***\n", out)
        self.assertIn("##skiff[add-mask value='***']\n", out)
        self.assertIn("after: ***\n", out)
        self.assertIn("later err: ***\n", log_stream(log, "err").decode())


if __name__ == "__main__":
    harness.main()
