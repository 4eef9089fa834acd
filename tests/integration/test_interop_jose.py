#!/usr/bin/python3
"""Interoperability of skiff's keys, jobs and sealed secrets with JOSE and
NaCl implementations that no one here wrote: Debian's python3-jwcrypto and
python3-nacl, against the real skiffctl.

- a job signed by jwcrypto (OKP Ed25519 key made by jwcrypto, exported as a
  JWKS) verifies with `skiffctl verify`;
- a job signed by `skiffctl sign` verifies in jwcrypto, and skiffctl's key
  files load in jwcrypto;
- a value sealed by nacl.public.SealedBox to the pool key that
  `skiffctl keygen --pool` wrote opens in skiff (`skiffctl verify
  --pool-key`), and one sealed by `skiffctl seal` opens in nacl;
- keygen writes private keys 0600;
- `skiffctl sign | skiffctl verify` round-trips;
- rejection reasons surface as `rejected: <code>` (docs/protocol.md
  section 11).

Self-contained: needs only skiffctl from the build directory (env
SKIFF_BUILD_DIR, set by CTest; default ./build) and the two Debian modules.

    SKIFF_BUILD_DIR=build-found /usr/bin/python3 tests/integration/test_interop_jose.py
"""
import base64
import json
import os
import stat
import subprocess
import sys
import tempfile
import time
import unittest

import nacl.public
import nacl.signing
from jwcrypto import jwk, jws, jwt
from jwcrypto.common import json_encode

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get("SKIFF_SOURCE_DIR", os.path.dirname(os.path.dirname(HERE)))
BUILD = os.path.abspath(os.environ.get("SKIFF_BUILD_DIR",
                                      os.path.join(SOURCE, "build")))
SKIFFCTL = os.path.join(BUILD, "ctl", "skiffctl")
POOL = "interop-pool"


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def unb64(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def job_claims(job=None, **over):
    now = int(time.time())
    c = {"iss": "interop@test", "aud": POOL,
         "jti": b64(os.urandom(12)), "iat": now, "exp": now + 600,
         "job": job or {"name": "interop",
                        "steps": [{"name": "hello", "script": "echo hi"}]}}
    c.update(over)
    return {k: v for k, v in c.items() if v is not None}


def jwcrypto_ed25519_key():
    """An OKP Ed25519 key made by jwcrypto, with its thumbprint as kid."""
    k = jwk.JWK.generate(kty="OKP", crv="Ed25519")
    d = json.loads(k.export_private())
    d["kid"] = k.thumbprint()
    return jwk.JWK(**d)


def kid_of(key):
    return json.loads(key.export_public())["kid"]


def jwcrypto_sign(key, claims, header=None):
    h = header or {"alg": "EdDSA", "kid": kid_of(key), "typ": "JWT"}
    s = jws.JWS(json.dumps(claims).encode())
    s.add_signature(key, None, json_encode(h))
    return s.serialize(compact=True)


def manual_compact(header, payload, sign=None):
    """A compact JWS built by hand; sign(bytes) -> signature bytes."""
    if not isinstance(header, bytes):
        header = json.dumps(header).encode()
    if not isinstance(payload, bytes):
        payload = json.dumps(payload).encode()
    signing_input = b64(header) + "." + b64(payload)
    sig = sign(signing_input.encode()) if sign else b"\0" * 64
    return signing_input + "." + b64(sig)


class Skiff:
    """skiffctl in a scratch directory."""

    def __init__(self, tmp):
        self.tmp = tmp

    def path(self, name):
        return os.path.join(self.tmp, name)

    def run(self, *args, stdin=None, umask=None, check=False):
        def preexec():
            if umask is not None:
                os.umask(umask)
        p = subprocess.run([SKIFFCTL] + list(args), input=stdin,
                           capture_output=True, cwd=self.tmp, timeout=60,
                           preexec_fn=preexec)
        if check and p.returncode != 0:
            raise AssertionError("skiffctl %s: exit %d\n%s%s" % (
                " ".join(args), p.returncode, p.stdout.decode(),
                p.stderr.decode()))
        return p

    def write(self, name, text):
        with open(self.path(name), "w") as f:
            f.write(text)
        return self.path(name)

    def read_json(self, name):
        with open(self.path(name)) as f:
            return json.load(f)

    def keygen(self, name, pool=False, umask=None):
        args = ["keygen", "--out", self.path(name)]
        if pool:
            args.insert(1, "--pool")
        self.run(*args, umask=umask, check=True)

    def sign(self, job_file, key, aud=POOL, *extra):
        p = self.run("sign", job_file, "--key", key, "--aud", aud, *extra,
                     check=True)
        return p.stdout.decode().strip()

    def verify(self, token, keys, *extra):
        """(exit code, stdout, stderr) of skiffctl verify on token."""
        f = self.write("token.jws", token + "\n")
        p = self.run("verify", f, "--keys", keys, "--aud", POOL, *extra)
        return p.returncode, p.stdout.decode(), p.stderr.decode()


class InteropTest(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="skiff-interop-")
        self.s = Skiff(self._tmp.name)

    def tearDown(self):
        self._tmp.cleanup()

    def assertValid(self, token, keys, *extra):
        rc, out, err = self.s.verify(token, keys, *extra)
        self.assertEqual(rc, 0, "skiffctl verify refused: %s%s" % (out, err))
        return json.loads(out)

    def assertRejected(self, token, keys, code, *extra):
        rc, out, err = self.s.verify(token, keys, *extra)
        self.assertEqual(rc, 1, "expected rejection %s, got exit %d: %s%s"
                         % (code, rc, out, err))
        self.assertTrue(out.startswith("rejected: %s: " % code),
                        "expected 'rejected: %s: ...', got %r" % (code, out))

    # -- jwcrypto -> skiff ------------------------------------------------

    def test_jwcrypto_signed_job_verifies_in_skiff(self):
        key = jwcrypto_ed25519_key()
        ks = jwk.JWKSet()
        ks.add(key)
        keys = self.s.write("jwcrypto.jwks", ks.export(private_keys=False))
        claims = job_claims()
        got = self.assertValid(jwcrypto_sign(key, claims), keys)
        self.assertEqual(got, claims)
        # And through jwcrypto's JWT API, as a JOSE user would do it.
        claims2 = job_claims()
        t = jwt.JWT(header={"alg": "EdDSA", "kid": kid_of(key)},
                    claims=claims2)
        t.make_signed_token(key)
        self.assertEqual(self.assertValid(t.serialize(), keys)["jti"],
                         claims2["jti"])

    def test_jwcrypto_job_with_nacl_sealed_secret(self):
        key = jwcrypto_ed25519_key()
        ks = jwk.JWKSet()
        ks.add(key)
        keys = self.s.write("jwcrypto.jwks", ks.export(private_keys=False))
        self.s.keygen("pool", pool=True)
        pub = unb64(self.s.read_json("pool.pub.jwk")["x"])
        sealed = b64(nacl.public.SealedBox(nacl.public.PublicKey(pub))
                     .encrypt(b"hunter2 from nacl"))
        claims = job_claims({"name": "with secret",
                             "secrets": {"TOKEN": sealed},
                             "steps": [{"name": "s", "script": "true"}]})
        token = jwcrypto_sign(key, claims)
        self.assertValid(token, keys, "--pool-key", self.s.path("pool.jwk"))
        # The same box does not open with another pool's key.
        self.s.keygen("other", pool=True)
        self.assertRejected(token, keys, "secret", "--pool-key",
                            self.s.path("other.jwk"))

    # -- skiff -> jwcrypto ------------------------------------------------

    def test_skiffctl_signed_job_verifies_in_jwcrypto(self):
        self.s.keygen("signer")
        job = self.s.write("job.json", json.dumps(
            {"name": "from skiffctl",
             "steps": [{"name": "s", "script": "true"}]}))
        token = self.s.sign(job, self.s.path("signer.jwk"), POOL, "--ttl",
                            "10m")
        with open(self.s.path("signer.jwks")) as f:
            ks = jwk.JWKSet.from_json(f.read())
        header = json.loads(unb64(token.split(".")[0]))
        self.assertEqual(header["alg"], "EdDSA")
        key = ks.get_key(header["kid"])
        self.assertIsNotNone(key, "kid %s not in the JWKS" % header["kid"])
        # The kid is the RFC 7638 thumbprint, as jwcrypto computes it.
        self.assertEqual(header["kid"], key.thumbprint())
        # Plain JWS verification...
        s = jws.JWS()
        s.deserialize(token)
        s.verify(key)
        claims = json.loads(s.payload)
        self.assertEqual(claims["aud"], POOL)
        self.assertEqual(claims["job"]["name"], "from skiffctl")
        self.assertEqual(claims["exp"] - claims["iat"], 600)
        # ...and as a JWT with claim checks, the key picked from the set.
        t = jwt.JWT(jwt=token, key=ks, check_claims={"aud": POOL})
        self.assertEqual(json.loads(t.claims)["jti"], claims["jti"])
        # A flipped bit in the signature fails in jwcrypto too.
        h, p, sig = token.split(".")
        bad = bytearray(unb64(sig))
        bad[0] ^= 1
        s = jws.JWS()
        s.deserialize(h + "." + p + "." + b64(bytes(bad)))
        with self.assertRaises(jws.InvalidJWSSignature):
            s.verify(key)

    def test_skiffctl_private_key_loads_in_jwcrypto(self):
        self.s.keygen("signer")
        with open(self.s.path("signer.jwk")) as f:
            priv = jwk.JWK.from_json(f.read())
        self.assertTrue(priv.has_private)
        # jwcrypto signs with skiffctl's private key; skiff verifies.
        token = jwcrypto_sign(priv, job_claims())
        self.assertValid(token, self.s.path("signer.jwks"))
        # jwcrypto's idea of the public half is skiffctl's JWKS entry.
        pub = json.loads(priv.export_public())
        entry = self.s.read_json("signer.jwks")["keys"][0]
        self.assertEqual(pub["x"], entry["x"])
        self.assertEqual(pub["kid"], entry["kid"])

    def test_skiffctl_seal_opens_in_nacl(self):
        self.s.keygen("pool", pool=True)
        priv = self.s.read_json("pool.jwk")
        p = self.s.run("seal", "--pool-key", self.s.path("pool.pub.jwk"),
                       stdin=b"sealed by skiff\n", check=True)
        sealed = p.stdout.decode().strip()
        box = nacl.public.SealedBox(nacl.public.PrivateKey(unb64(priv["d"])))
        self.assertEqual(box.decrypt(unb64(sealed)), b"sealed by skiff")
        # The private JWK's x is the public key of its d, for nacl too.
        self.assertEqual(
            bytes(nacl.public.PrivateKey(unb64(priv["d"])).public_key),
            unb64(priv["x"]))

    # -- skiffctl alone ---------------------------------------------------

    def test_keygen_modes(self):
        for umask in (0o000, 0o022, 0o077):
            self.s.keygen("sig%o" % umask, umask=umask)
            self.s.keygen("pool%o" % umask, pool=True, umask=umask)
            for name in ("sig%o.jwk" % umask, "pool%o.jwk" % umask):
                mode = stat.S_IMODE(os.stat(self.s.path(name)).st_mode)
                self.assertEqual(mode, 0o600, "%s is %o" % (name, mode))
                self.assertIn("d", self.s.read_json(name))
            for name in ("sig%o.jwks" % umask, "pool%o.pub.jwk" % umask):
                mode = stat.S_IMODE(os.stat(self.s.path(name)).st_mode)
                self.assertEqual(mode, 0o644, "%s is %o" % (name, mode))
                with open(self.s.path(name)) as f:
                    self.assertNotIn('"d"', f.read())
        # Existing files are not replaced without --force.
        p = self.s.run("keygen", "--out", self.s.path("sig0"))
        self.assertEqual(p.returncode, 1)

    def test_sign_pipe_verify_round_trip(self):
        self.s.keygen("k")
        job = self.s.write("job.json", json.dumps(
            {"name": "pipe", "steps": [{"name": "s", "script": "true"}]}))
        sign = subprocess.Popen(
            [SKIFFCTL, "sign", job, "--key", self.s.path("k.jwk"), "--aud",
             POOL, "--jti", "pipe-job-0001"], stdout=subprocess.PIPE,
            cwd=self.s.tmp)
        verify = subprocess.run(
            [SKIFFCTL, "verify", "--keys", self.s.path("k.jwks"), "--aud",
             POOL], stdin=sign.stdout, capture_output=True, timeout=60)
        sign.stdout.close()
        self.assertEqual(sign.wait(timeout=60), 0)
        self.assertEqual(verify.returncode, 0, verify.stdout + verify.stderr)
        claims = json.loads(verify.stdout)
        self.assertEqual(claims["jti"], "pipe-job-0001")
        self.assertEqual(claims["job"]["name"], "pipe")

    # -- rejection reasons ------------------------------------------------

    def test_rejection_reasons(self):
        key = jwcrypto_ed25519_key()
        kid = kid_of(key)
        ks = jwk.JWKSet()
        ks.add(key)
        keys = self.s.write("trusted.jwks", ks.export(private_keys=False))
        seed = unb64(json.loads(key.export_private())["d"])
        nacl_key = nacl.signing.SigningKey(seed)

        def ed(data):
            return nacl_key.sign(data).signature

        good = jwcrypto_sign(key, job_claims())
        h, p, sig = good.split(".")
        flipped = bytearray(unb64(sig))
        flipped[17] ^= 0x40
        stranger = jwcrypto_ed25519_key()
        hs_key = jwk.JWK.generate(kty="oct", size=256)
        hs = jws.JWS(json.dumps(job_claims()).encode())
        hs.add_signature(hs_key, None, json_encode({"alg": "HS256",
                                                    "kid": kid}))
        now = int(time.time())
        step = {"name": "s", "script": "true"}
        cases = {
            "malformed": h + "." + p,
            "bad_base64": h + "." + p + "." + sig + "==",
            "alg_not_allowed": manual_compact({"alg": "none", "kid": kid},
                                              job_claims()),
            "unknown_kid": jwcrypto_sign(stranger, job_claims()),
            "bad_signature": h + "." + p + "." + b64(bytes(flipped)),
            "bad_header": manual_compact({"alg": "EdDSA", "kid": kid,
                                          "crit": ["exp"]},
                                         job_claims(), ed),
            "expired": jwcrypto_sign(key, job_claims(iat=now - 7200,
                                                     exp=now - 3600)),
            "not_yet_valid": jwcrypto_sign(key, job_claims(nbf=now + 3600,
                                                           exp=now + 7200)),
            "bad_iat": jwcrypto_sign(key, job_claims(iat=now + 3600,
                                                     exp=now + 7200)),
            "wrong_audience": jwcrypto_sign(key, job_claims(
                aud=["some-other-pool"])),
            "bad_claims": jwcrypto_sign(key, job_claims(jti="no")),
            "bad_json": manual_compact(
                {"alg": "EdDSA", "kid": kid}, b"[1, 2]", ed),
            "too_deep": jwcrypto_sign(key, job_claims(
                x=json.loads("[" * 20 + "]" * 20))),
            "schema": jwcrypto_sign(key, job_claims(
                {"name": "n", "env": {"A=B": "x"}, "steps": [step]})),
            "limits": jwcrypto_sign(key, job_claims(
                {"name": "n", "steps": [step] * 65})),
        }
        for code, token in sorted(cases.items()):
            with self.subTest(code=code):
                self.assertRejected(token, keys, code)
        with self.subTest(code="alg_not_allowed (HS256)"):
            self.assertRejected(hs.serialize(compact=True), keys,
                                "alg_not_allowed")
        with self.subTest(code="too_large"):
            # Just over the 256 KiB cap of the compact form (skiffctl reads
            # at most 64 bytes more than that, so aim between the two).
            cap, claims = 256 * 1024, job_claims()
            lo, hi = 0, cap
            while lo < hi:
                mid = (lo + hi) // 2
                claims["pad"] = "x" * mid
                if len(manual_compact({"alg": "EdDSA", "kid": kid},
                                      claims)) > cap:
                    hi = mid
                else:
                    lo = mid + 1
            claims["pad"] = "x" * lo
            big = manual_compact({"alg": "EdDSA", "kid": kid}, claims, ed)
            self.assertTrue(cap < len(big) <= cap + 60, len(big))
            self.assertRejected(big, keys, "too_large")
            claims["pad"] = "x" * (lo - 8)
            self.assertValid(manual_compact({"alg": "EdDSA", "kid": kid},
                                            claims, ed), keys)
        # The good token itself passes, so the cases fail for their reason.
        self.assertValid(good, keys)


def main():
    if not os.access(SKIFFCTL, os.X_OK):
        print("test_interop_jose: no skiffctl at %s (set SKIFF_BUILD_DIR)"
              % SKIFFCTL, file=sys.stderr)
        return 1
    prog = unittest.main(exit=False, verbosity=2)
    return 0 if prog.result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
