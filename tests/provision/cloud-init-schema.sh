#!/usr/bin/env bash
# cloud-init schema on every user-data template, as written (placeholders
# in place) and as rendered by render.sh, and a broken one must be refused.
# Only "cloud-init schema" runs: it reads the file and nothing of the
# machine. (Installing Debian's cloud-init enables its units for the next
# boot; on a machine that is no cloud VM its generator finds no datasource
# and keeps it disabled. See docs/deployment.md.)
set -euo pipefail
src=${1:?usage: cloud-init-schema.sh SOURCE_DIR [BUILD_DIR]}
command -v cloud-init >/dev/null || { echo "cloud-init is not installed (apt-get install cloud-init)"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

mapfile -t tpls < <(find "$src/provision/cloud-init" -name 'user-data-*.yaml' | sort)
[ ${#tpls[@]} -ge 3 ] || { echo "expected user-data templates for aws, gcp, azure"; exit 1; }
for t in "${tpls[@]}"; do
  cloud-init schema --config-file "$t"
done

printf 'srt_test0123456789\n' >"$tmp/token"
printf '{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}\n' >"$tmp/keys.jwks"
printf '{"kty":"OKP","crv":"X25519","kid":"p1","x":"hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo","d":"dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo"}\n' >"$tmp/pool.jwk"
for cloud in aws gcp azure; do
  bash "$src/provision/cloud-init/render.sh" --cloud "$cloud" --queue-url https://queue.example.org:8443 \
    --pool linux-x64 --token-file "$tmp/token" --trusted-keys "$tmp/keys.jwks" --pool-key "$tmp/pool.jwk" \
    --labels docker,linux,x64 --idle-timeout 15m --max-jobs 1 >"$tmp/$cloud.yaml"
  cloud-init schema --config-file "$tmp/$cloud.yaml"
  # what the VM will get, decoded back
  python3 - "$tmp/$cloud.yaml" "$tmp" "$cloud" <<'PY'
import base64, sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
tmp, cloud = sys.argv[2], sys.argv[3]
files = {f["path"]: f for f in doc["write_files"]}
def content(p):
    f = files[p]
    return base64.b64decode(f["content"]) if f.get("encoding") == "b64" else f["content"].encode()
assert content("/etc/skiff/registration-token") == open(tmp + "/token", "rb").read()
assert content("/etc/skiff/trusted.jwks") == open(tmp + "/keys.jwks", "rb").read()
assert content("/etc/skiff/pool.jwk") == open(tmp + "/pool.jwk", "rb").read()
conf = content("/etc/skiff/agent.conf").decode()
assert "SKIFF_QUEUE_URL=https://queue.example.org:8443\n" in conf, conf
assert "SKIFF_MAX_JOBS=1\n" in conf and "SKIFF_IDLE_TIMEOUT=15m\n" in conf, conf
assert ("SKIFF_TERMINATE=%s\n" % cloud) in content("/etc/skiff/lifecycle.conf").decode()
for p in ("/etc/skiff/agent.conf", "/etc/skiff/registration-token", "/etc/skiff/pool.jwk"):
    assert files[p]["permissions"] == "0640" and files[p]["owner"] == "root:skiff", p
assert ["systemctl", "enable", "--now", "--no-block", "skiff-agent.service",
        "skiff-preempt.service"] in doc["runcmd"]
print("rendered %s user-data: contents and modes as intended" % cloud)
PY
done
if bash "$src/provision/cloud-init/render.sh" --cloud aws --queue-url 'https://x/
evil: 1' --pool p --token-file "$tmp/token" --trusted-keys "$tmp/keys.jwks" --pool-key "$tmp/pool.jwk" >/dev/null 2>&1; then
  echo "render.sh accepted a value that breaks the YAML"; exit 1
fi

# The agent accepts the configuration the user-data writes: every key
# known, every value valid (with the agent and skiffctl built; paths moved
# to scratch files).
bin=${2:-}
if [ -n "$bin" ] && [ -x "$bin/agent/skiff-agent" ] && [ -x "$bin/ctl/skiffctl" ]; then
  mkdir -p "$tmp/k"
  "$bin/ctl/skiffctl" keygen --out "$tmp/k/signer" >/dev/null
  "$bin/ctl/skiffctl" keygen --pool --out "$tmp/k/pool" >/dev/null
  mkdir -p "$tmp/state/work"
  python3 - "$tmp/aws.yaml" "$tmp" >"$tmp/agent.conf" <<'PY'
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
tmp = sys.argv[2]
conf = [f for f in doc["write_files"] if f["path"] == "/etc/skiff/agent.conf"][0]["content"]
moves = {"/etc/skiff/trusted.jwks": tmp + "/k/signer.jwks", "/etc/skiff/pool.jwk": tmp + "/k/pool.jwk",
         "/etc/skiff/registration-token": tmp + "/token", "/var/lib/skiff/work": tmp + "/state/work",
         "/var/lib/skiff": tmp + "/state"}
for a, b in moves.items():
    conf = conf.replace("=" + a + "\n", "=" + b + "\n")
sys.stdout.write(conf)
PY
  env -i PATH="$PATH" "$bin/agent/skiff-agent" --check-config --config "$tmp/agent.conf" >/dev/null ||
    { echo "skiff-agent refuses the user-data's agent.conf:"; cat "$tmp/agent.conf"; exit 1; }
  echo "skiff-agent --check-config accepts the user-data's agent.conf"
  set +e
  env -i PATH="$PATH" "$bin/agent/skiff-agent" --check-config --config "$src/provision/agent.conf" >/dev/null 2>&1
  rc=$?
  set -e
  [ "$rc" = 78 ] || { echo "the packaged default agent.conf must be refused with 78, got $rc"; exit 1; }
  echo "skiff-agent --check-config refuses the packaged default (78): no user-data, no agent"
else
  echo "skiff-agent or skiffctl not built: agent.conf not checked against the agent"
fi

# the check can fail
sed 's/^    permissions: "0640"/    permissions: "0640"\n    no_such_key: 1/' "${tpls[0]}" >"$tmp/broken.yaml"
if cloud-init schema --config-file "$tmp/broken.yaml" >/dev/null 2>&1; then
  echo "cloud-init schema accepted a broken user-data"; exit 1
fi
echo "cloud-init schema: all user-data valid"
