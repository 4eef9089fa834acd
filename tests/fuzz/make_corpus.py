#!/usr/bin/python3
"""Writes the seed corpora of tests/fuzz/corpus/jws_job and .../jwks.

The seeds are meaningful inputs: jobs signed with the fixed fuzz key of
fuzz_jws_job.c (so the fuzzer starts from inputs that pass the signature
and reach the payload parser), each rejection path of docs/protocol.md
section 11 at least once, and the bare payloads for the job_parse path.
Signatures are deterministic (Ed25519); sealed secrets are not, so a
re-run rewrites those files with new bytes.

    /usr/bin/python3 tests/fuzz/make_corpus.py

Uses Debian's python3-nacl only. Files already in the corpus that this
script does not write (crashers the fuzzer found, say) are left alone.
"""
import base64
import json
import os
import sys

import nacl.public
import nacl.signing

SIGN_SEED = b"skiff-fuzz-signing-key-seed-0001"
POOL_SCALAR = b"skiff-fuzz-pool-key-scalar-00001"
KID = "fuzz-key"
POOL = "fuzz-pool"
NOW = 1764043200

HERE = os.path.dirname(os.path.abspath(__file__))


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


signer = nacl.signing.SigningKey(SIGN_SEED)
other_signer = nacl.signing.SigningKey(b"x" * 32)
pool = nacl.public.PrivateKey(POOL_SCALAR)
other_pool = nacl.public.PrivateKey(b"y" * 32)


def seal(value, to=pool):
    return b64(nacl.public.SealedBox(to.public_key).encrypt(value))


def compact(header, payload, key=signer):
    if not isinstance(header, bytes):
        header = json.dumps(header, separators=(",", ":")).encode()
    if not isinstance(payload, bytes):
        payload = json.dumps(payload, separators=(",", ":")).encode()
    signing_input = b64(header) + "." + b64(payload)
    sig = key.sign(signing_input.encode()).signature
    return signing_input + "." + b64(sig)


HDR = {"alg": "EdDSA", "kid": KID, "typ": "JWT"}


def claims(job, **over):
    c = {"iss": "fuzz@skiff", "aud": POOL, "jti": "fuzzjob-0001",
         "iat": NOW - 10, "exp": NOW + 3600, "job": job}
    c.update(over)
    return {k: v for k, v in c.items() if v is not None}


MIN_JOB = {"name": "min", "steps": [{"name": "s", "script": "true"}]}
FULL_JOB = {
    "name": "build and test", "labels": ["docker", "os=linux"],
    "timeout": 1800, "env": {"CI": "true", "_X1": ""},
    "secrets": {"DEPLOY_TOKEN": seal(b"s3cr3t"),
                "REGISTRY_PASSWORD": seal(b"pw")},
    "registries": [{"server": "registry.example.org:5000", "username": "ci",
                    "password": "REGISTRY_PASSWORD"}],
    "inputs": [{"url": "https://pkgs.example.org/app-1.2.tar.gz",
                "sha256": "9f86d081884c7d659a2feaa0c55ad015"
                          "a3bf4f1b2b0b822cd15d6c15b0f00a08",
                "path": "app.tar.gz", "extract": True}],
    "steps": [
        {"name": "prepare", "script": "git --version"},
        {"name": "compile",
         "image": "registry.example.org:5000/tools:1.4.2-bookworm",
         "pull": "if-not-present", "shell": ["/bin/sh", "-e", "-c"],
         "script": "make -j\nmake check", "env": {"CC": "gcc"},
         "workdir": "src", "user": "1000:1000", "timeout": 900,
         "continue_on_error": False, "artifacts": ["dist/**", "build/*.log"],
         "resources": {"memory_mb": 2048, "cpus": 2, "pids": 512}},
        {"name": "publish", "image": "alpine:3", "pull": "always",
         "script": "true", "continue_on_error": True,
         "resources": {"cpus": 0.5}},
        {"name": "offline", "image": "alpine:3", "pull": "never",
         "script": "true"},
    ]}


SERVICES = [
    {"name": "db", "image": "postgres:16",
     "env": {"POSTGRES_PASSWORD": "pw"},
     "command": ["postgres", "-c", "fsync=off"], "ports": [5432, 9187],
     "wait": {"tcp": 5432, "timeout": 120}},
    {"name": "cache-1", "image": "redis:7", "wait": {"health": True},
     "pull": "always"},
    {"name": "plain", "image": "busybox", "command": ["sleep", "600"]},
]


def step_job(**step):
    s = {"name": "s", "script": "true"}
    s.update(step)
    return {"name": "j", "steps": [s]}


def job_with(**fields):
    j = dict(MIN_JOB)
    j.update(fields)
    return j


def jws_job_seeds():
    seeds = {}
    # Valid, signed with the fuzz key.
    seeds["valid-min.jws"] = compact(HDR, claims(MIN_JOB))
    seeds["valid-full.jws"] = compact(HDR, claims(FULL_JOB,
                                                  aud=["other", POOL],
                                                  nbf=NOW - 60))
    seeds["valid-no-typ.jws"] = compact({"kid": KID, "alg": "EdDSA"},
                                        claims(MIN_JOB, jti="fuzzjob-0002"))
    # Claims that fail after a good signature.
    seeds["expired.jws"] = compact(HDR, claims(MIN_JOB, iat=NOW - 7200,
                                               exp=NOW - 3600))
    seeds["not-yet-valid.jws"] = compact(HDR, claims(MIN_JOB, nbf=NOW + 900))
    seeds["iat-future.jws"] = compact(HDR, claims(MIN_JOB, iat=NOW + 900,
                                                  exp=NOW + 1800))
    seeds["lifetime-31d.jws"] = compact(HDR, claims(MIN_JOB,
                                                    exp=NOW + 31 * 86400))
    seeds["wrong-aud.jws"] = compact(HDR, claims(MIN_JOB, aud="elsewhere"))
    seeds["wrong-aud-array.jws"] = compact(HDR, claims(MIN_JOB,
                                                       aud=["a", "b"]))
    seeds["bad-claims-jti.jws"] = compact(HDR, claims(MIN_JOB, jti="a.b"))
    seeds["bad-claims-exp-string.jws"] = compact(HDR, claims(MIN_JOB,
                                                             exp="soon"))
    # Schema and limits after a good signature.
    seeds["schema-env-equals.jws"] = compact(HDR, claims(job_with(
        env={"A=B": "1"})))
    seeds["schema-workdir-dotdot.jws"] = compact(HDR, claims(step_job(
        workdir="../etc")))
    seeds["schema-pull.jws"] = compact(HDR, claims(step_job(
        image="alpine", pull="sometimes")))
    seeds["schema-types.jws"] = compact(HDR, claims(
        {"name": 7, "timeout": "60", "steps": {"name": "s"}}))
    seeds["schema-dup-key.jws"] = compact(
        HDR, b'{"iss":"i","aud":"fuzz-pool","jti":"fuzzjob-0001","iat":1,'
             b'"exp":2,"job":{"name":"a","name":"b","steps":[]}}')
    seeds["limits-65-steps.jws"] = compact(HDR, claims(
        {"name": "many", "steps": [{"name": "s%d" % i, "script": "true"}
                                   for i in range(65)]}))
    seeds["too-deep.jws"] = compact(HDR, claims(MIN_JOB, x=json.loads(
        "[" * 20 + "]" * 20)))
    seeds["bad-json.jws"] = compact(HDR, b"{not json")
    seeds["secret-wrong-pool.jws"] = compact(HDR, claims(job_with(
        secrets={"T": seal(b"v", other_pool)})))
    seeds["secret-nul.jws"] = compact(HDR, claims(job_with(
        secrets={"T": seal(b"a\0b")})))
    # The JWS layer.
    good = seeds["valid-min.jws"]
    h, p, s = good.split(".")
    seeds["alg-none.jws"] = compact({"alg": "none", "kid": KID},
                                    claims(MIN_JOB))
    seeds["alg-none-empty-sig.jws"] = (b64(b'{"alg":"none"}') + "." + p +
                                       ".")
    seeds["alg-hs256.jws"] = compact({"alg": "HS256", "kid": KID},
                                     claims(MIN_JOB))
    seeds["no-kid.jws"] = compact({"alg": "EdDSA"}, claims(MIN_JOB))
    seeds["unknown-kid.jws"] = compact({"alg": "EdDSA", "kid": "other"},
                                       claims(MIN_JOB), other_signer)
    seeds["wrong-key.jws"] = compact(HDR, claims(MIN_JOB), other_signer)
    seeds["crit.jws"] = compact({"alg": "EdDSA", "kid": KID,
                                 "crit": ["exp"], "exp": 1}, claims(MIN_JOB))
    seeds["header-not-json.jws"] = compact(b"EdDSA", claims(MIN_JOB))
    sig = bytearray(base64.urlsafe_b64decode(s + "=="))
    sig[5] ^= 0x10
    seeds["sig-flipped.jws"] = h + "." + p + "." + b64(bytes(sig))
    seeds["sig-short.jws"] = h + "." + p + "." + b64(bytes(sig[:63]))
    seeds["sig-long.jws"] = h + "." + p + "." + b64(bytes(sig) + b"\0")
    body = bytearray(base64.urlsafe_b64decode(p + "=="))
    body[3] ^= 0x01
    seeds["payload-flipped.jws"] = h + "." + b64(bytes(body)) + "." + s
    seeds["two-segments.jws"] = h + "." + p
    seeds["four-segments.jws"] = good + "." + s
    seeds["empty-segment.jws"] = h + ".." + s
    seeds["padded.jws"] = h + "." + p + "." + s + "=="
    seeds["bad-chars.jws"] = h + "." + p.replace("e", "+", 1) + "." + s
    seeds["trailing-newline.jws"] = good + "\n"
    seeds["header-huge.jws"] = compact({"alg": "EdDSA", "kid": KID,
                                        "pad": "p" * 1100}, claims(MIN_JOB))
    # job.services
    seeds["valid-services.jws"] = compact(HDR, claims(job_with(
        services=SERVICES, steps=[
            {"name": "use", "image": "busybox", "script": "nc -z db 5432"}]),
        jti="fuzzjob-0003"))
    seeds["schema-service-name.jws"] = compact(HDR, claims(job_with(
        services=[{"name": "DB_main", "image": "postgres"}])))
    seeds["schema-service-wait-port.jws"] = compact(HDR, claims(job_with(
        services=[{"name": "db", "image": "postgres", "ports": [5432],
                   "wait": {"tcp": 5433}}])))
    seeds["limits-9-services.jws"] = compact(HDR, claims(job_with(
        services=[{"name": "s%d" % i, "image": "i"} for i in range(9)])))
    # Bare payloads, for job_parse on raw input.
    raw = {
        "raw-min.json": claims(MIN_JOB),
        "raw-full.json": claims(FULL_JOB, aud=["x", POOL], nbf=NOW),
        "raw-secret.json": claims(job_with(secrets={"T": seal(b"t")})),
        "raw-registry-no-secret.json": claims(job_with(registries=[{
            "server": "r", "username": "u", "password": "NOPE"}])),
        "raw-inputs-bad.json": claims(job_with(inputs=[{
            "url": "ftp://x", "sha256": "AB", "path": "/abs"}])),
        "raw-resources-no-image.json": claims(step_job(
            resources={"memory_mb": 64})),
        "raw-labels.json": claims(job_with(labels=["a b", "ok"])),
        "raw-container-shared.json": claims(job_with(container="shared")),
        "raw-container-bad.json": claims(job_with(container=["shared"])),
        "raw-services.json": claims(job_with(services=SERVICES)),
        "raw-services-bad.json": claims(job_with(services=[
            {"name": "a", "image": "i", "ports": [80, 80]},
            {"name": "a", "image": "", "command": [], "pull": "sometimes",
             "wait": {"health": False, "tcp": 0, "timeout": 601}}])),
    }
    for name, c in raw.items():
        seeds[name] = json.dumps(c, indent=1)
    seeds["raw-nul-escape.json"] = ('{"iss":"a\\u0000b","aud":"fuzz-pool",'
                                    '"jti":"fuzzjob-0001","iat":1,"exp":2,'
                                    '"job":{}}')
    seeds["raw-trailing.json"] = json.dumps(claims(MIN_JOB)) + " x"
    seeds.update(cache_seeds())
    return seeds


def cache_seeds():
    """job.caches (issue 13): one valid, and each rule broken once."""
    ok = {"key": "npm-linux-0123abcd", "paths": ["node_modules", "a/b"],
          "restore_keys": ["npm-linux-", "npm-"]}
    bad = {
        "raw-caches-bad-key.json": dict(ok, key="a b"),
        "raw-caches-dotdot.json": dict(ok, paths=["../x"]),
        "raw-caches-no-paths.json": dict(ok, paths=[]),
        "raw-caches-bad-restore.json": dict(ok, restore_keys=["ok", "no\n"]),
        "raw-caches-many-restore.json": dict(ok, restore_keys=["k"] * 9),
    }
    seeds = {"valid-caches.jws": compact(HDR, claims(job_with(
        caches=[ok, {"key": "other", "paths": ["x"]}])))}
    for name, c in bad.items():
        seeds[name] = json.dumps(claims(job_with(caches=[c])), indent=1)
    seeds["raw-caches-dup-key.json"] = json.dumps(claims(job_with(
        caches=[ok, ok])), indent=1)
    seeds["raw-caches-too-many.json"] = json.dumps(claims(job_with(
        caches=[dict(ok, key="k%d" % i) for i in range(5)])), indent=1)
    return seeds


def jwks_seeds():
    vk = signer.verify_key.encode()
    d = SIGN_SEED
    x25519 = bytes(pool.public_key)
    ed = {"kty": "OKP", "crv": "Ed25519", "kid": KID, "use": "sig",
          "alg": "EdDSA", "x": b64(vk)}
    rfc8037 = {"kty": "OKP", "crv": "Ed25519", "kid": "rfc8037",
               "d": "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",
               "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
    pool_pub = {"kty": "OKP", "crv": "X25519", "kid": "pool", "use": "enc",
                "x": b64(x25519)}
    seeds = {
        "set-one.jwks": {"keys": [ed]},
        "set-mixed.jwks": {"keys": [
            ed, pool_pub,
            {"kty": "RSA", "kid": "rsa", "n": "AQAB", "e": "AQAB"},
            {"kty": "OKP", "crv": "Ed448", "kid": "ed448", "x": "AAAA"},
            dict(ed, kid="enc-use", use="enc"),
            dict(ed, kid="other-alg", alg="ES256"),
            {k: v for k, v in rfc8037.items() if k != "d"}]},
        "set-private.jwks": {"keys": [rfc8037]},
        "set-dup-kid.jwks": {"keys": [ed, ed]},
        "set-only-pool.jwks": {"keys": [pool_pub]},
        "set-bad-x.jwks": {"keys": [dict(ed, x="AAAA")]},
        "set-empty.jwks": {"keys": []},
        "key-ed25519-private.jwk": dict(ed, d=b64(d)),
        "key-rfc8037.jwk": rfc8037,
        "key-x25519-private.jwk": dict(pool_pub, d=b64(POOL_SCALAR)),
        "key-mismatch.jwk": dict(ed, d=b64(b"z" * 32)),
        "key-public.jwk": ed,
    }
    out = {name: json.dumps(v, indent=1) for name, v in seeds.items()}
    out["not-json.jwks"] = '{"keys": ['
    return out


def write(dirname, seeds):
    path = os.path.join(HERE, "corpus", dirname)
    os.makedirs(path, exist_ok=True)
    for name, text in sorted(seeds.items()):
        with open(os.path.join(path, name), "w") as f:
            f.write(text)
    print("%s: %d seeds" % (path, len(seeds)))


def main():
    write("jws_job", jws_job_seeds())
    write("jwks", jwks_seeds())
    return 0


if __name__ == "__main__":
    sys.exit(main())
