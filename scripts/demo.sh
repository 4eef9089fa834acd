#!/usr/bin/env bash
# The main job, on embedded defaults: set up the machine, make a signing
# key, sign the sample job, and check it as an agent would.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
work=$(mktemp -d /tmp/skiff-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
ctl=build/ctl/skiffctl
$ctl keygen --out "$work/signer"
$ctl sign examples/hello.json --key "$work/signer.jwk" --aud demo --ttl 1h --out "$work/job.jws"
echo "signed job: $(cut -c1-60 "$work/job.jws")..."
$ctl verify "$work/job.jws" --keys "$work/signer.jwks" --aud demo
