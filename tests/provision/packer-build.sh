#!/usr/bin/env bash
# A real "packer build" of the docker source (packer/skiff-worker.pkr.hcl)
# against the local debootstrap base, followed by a smoke test of the baked
# image:
#   - the agent runs and reports its version; the packaged default
#     configuration is refused (exit 78), so a VM without user-data never
#     registers
#   - units, hooks and configuration are in place with their owners and
#     modes, and the units are not enabled
#   - no token, key, agent state, machine-id or cloud-init state is baked in
#   - the pre-pull step ran "skiff-agent prepull" against a Docker engine
#     (the host's, through the mounted socket) and pulled the listed image
#     from a local registry on 127.0.0.1 (the registry's log shows the pull)
# Skips (exit 77) while the agent is not in the package, or has no prepull
# command yet.
#
#   packer-build.sh SOURCE_DIR BUILD_DIR VERSION
set -euo pipefail
src=${1:?usage: packer-build.sh SOURCE_DIR BUILD_DIR VERSION}
build=${2:?usage: packer-build.sh SOURCE_DIR BUILD_DIR VERSION}
version=${3:?usage: packer-build.sh SOURCE_DIR BUILD_DIR VERSION}
skip() { echo "SKIPPED: $*"; exit 77; }

deb=$(find "$build/provision-pkg" -maxdepth 1 -name 'skiff-agent_*.deb' 2>/dev/null | head -n 1)
[ -n "$deb" ] || { echo "no .deb in $build/provision-pkg (the provision.package test makes it)"; exit 1; }
tmp=$(mktemp -d /var/tmp/skiff-packer.XXXXXX)
reg_pid="" baked="skiff-test/worker$$:smoke" pulled=""
cleanup() {
  if [ -n "$reg_pid" ]; then kill "$reg_pid" 2>/dev/null || true; wait "$reg_pid" 2>/dev/null || true; fi
  docker ps -aq --filter label=dev.skiff.test=packer-build | xargs -r docker rm -f >/dev/null 2>&1 || true
  docker rmi -f "$baked" >/dev/null 2>&1 || true
  if [ -n "$pulled" ]; then docker rmi -f "$pulled" >/dev/null 2>&1 || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

dpkg-deb -x "$deb" "$tmp/pkg"
agent=$tmp/pkg/usr/bin/skiff-agent
[ -x "$agent" ] || skip "the package has no skiff-agent yet (the agent target does not exist); the packer build runs once it does"
probe=$(env -i PATH="$PATH" "$agent" --config /dev/null --docker-host unix:///nonexistent \
  prepull example.invalid/x:1 2>&1 || true)
if grep -q "unknown command" <<<"$probe"; then
  skip "skiff-agent has no 'prepull' command yet; the packer build runs once it does"
fi
command -v packer >/dev/null || { echo "packer is not installed (apt-get install packer)"; exit 1; }
command -v docker-registry >/dev/null || { echo "docker-registry is not installed"; exit 1; }

base=$(bash "$src/tests/provision/make-base.sh" "$build/provision-cache")

# --- a local registry on 127.0.0.1 holding the image to pre-pull ---
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
mkdir -p "$tmp/registry"
cat >"$tmp/registry.yml" <<YAML
version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $tmp/registry
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
YAML
docker-registry serve "$tmp/registry.yml" >"$tmp/registry.log" 2>&1 &
reg_pid=$!
for _ in $(seq 1 50); do
  curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null || { echo "the registry did not start"; cat "$tmp/registry.log"; exit 1; }

repo="127.0.0.1:$port/skiff"
mapfile -t tags < <(bash "$src/images/build.sh" --base "$base" --repo "$repo" --push minimal 2>"$tmp/build.log" | tail -n 4)
pulled=${tags[0]}
# the engine must not have it: only the pre-pull can bring it back
docker rmi -f "${tags[@]}" >/dev/null
if docker image inspect "$pulled" >/dev/null 2>&1; then echo "$pulled is still in the engine"; exit 1; fi
pushed_lines=$(wc -l <"$tmp/registry.log")

# --- the packer build ---
export HOME=$tmp/home PACKER_CACHE_DIR=$tmp/cache CHECKPOINT_DISABLE=1 PACKER_NO_COLOR=1
mkdir -p "$HOME"
echo "packer build -only=docker.worker (base $base, pre-pull $pulled)"
start=$(date +%s)
if ! timeout 900 packer build -color=false -only=docker.worker \
    -var "agent_package=$deb" -var "docker_base_image=$base" -var docker_pull=false \
    -var "prepull_images=[\"$pulled\"]" \
    -var "docker_repository=${baked%:*}" -var "docker_tag=${baked##*:}" \
    "$src/packer" >"$tmp/packer.log" 2>&1; then
  tail -n 60 "$tmp/packer.log"
  exit 1
fi
echo "packer build: $(( $(date +%s) - start )) s"
grep -E '==> docker.worker: (prepull|cleanup-image|install-agent)' "$tmp/packer.log" || true

# --- smoke test of the baked image ---
docker image inspect "$baked" >/dev/null
# shellcheck disable=SC2016 # runs in the container
smoke='
set -eu
fail() { echo "FAIL: $*"; exit 1; }
st() { stat -c "%U:%G %a" "$1"; }
want() { [ "$(st "$1")" = "$2" ] || fail "$1 is $(st "$1"), want $2"; }

v=$(skiff-agent --version) || fail "skiff-agent --version failed"
case $v in *"$VERSION"*) echo "agent: $v" ;; *) fail "version \"$v\", want $VERSION" ;; esac
set +e; skiff-agent --check-config >/dev/null 2>&1; rc=$?; set -e
[ "$rc" = 78 ] || fail "the default configuration was not refused with 78 (got $rc)"

want /etc/skiff root:skiff\ 750
want /etc/skiff/agent.conf root:skiff\ 640
want /etc/skiff/lifecycle.conf root:root\ 644
want /etc/skiff/image.conf root:root\ 644
want /var/lib/skiff skiff:skiff\ 750
want /var/lib/skiff/work skiff:skiff\ 750
want /lib/systemd/system/skiff-agent.service root:root\ 644
want /lib/systemd/system/skiff-preempt.service root:root\ 644
for h in skiff-exit-hook skiff-preempt-watch terminate-aws terminate-gcp terminate-azure terminate-poweroff; do
  want /usr/lib/skiff/$h root:root\ 755
done
id -nG skiff | tr " " "\n" | grep -qx docker || fail "skiff is not in group docker"
grep -qx "SKIFF_PREPULL_KEEP=$PULLED" /etc/skiff/image.conf || fail "image.conf: $(cat /etc/skiff/image.conf)"
grep -q "^SKIFF_TERMINATE=none$" /etc/skiff/lifecycle.conf || fail "the image would terminate itself without user-data"
! ls /etc/systemd/system/*.wants/skiff-* >/dev/null 2>&1 || fail "units enabled in the image"

for f in /etc/skiff/registration-token /etc/skiff/pool.jwk; do [ ! -e "$f" ] || fail "$f baked in"; done
left=$(find /var/lib/skiff -mindepth 1 ! -path /var/lib/skiff/work)
[ -z "$left" ] || fail "agent state baked in: $left"
[ -z "$(ls -A /var/lib/skiff/work)" ] || fail "workspaces baked in"
if grep -rIlE "(srt|sat)_[A-Za-z0-9_.-]{8,}" /etc /var/lib /root 2>/dev/null; then fail "a token is baked in"; fi
if grep -rIlE "\"d\" *: *\"" /etc/skiff 2>/dev/null; then fail "a private key is baked in"; fi
grep -q "^SKIFF_REGISTRATION_TOKEN=." /etc/skiff/agent.conf && fail "a registration token in agent.conf"
[ ! -s /etc/machine-id ] || fail "machine-id baked in"
[ ! -d /var/lib/cloud ] || [ -z "$(ls -A /var/lib/cloud)" ] || fail "cloud-init state baked in"
[ ! -e /tmp/skiff-provision ] || fail "the provisioning files were left in /tmp"
echo "smoke: layout, owners, modes, nothing secret baked in"
'
docker run --rm --label dev.skiff.test=packer-build --network none \
  --entrypoint /bin/bash -e "VERSION=$version" -e "PULLED=$pulled" "$baked" -c "$smoke"

# the pre-pull went through an engine to the registry
docker image inspect "$pulled" >/dev/null 2>&1 || { echo "FAIL: the engine does not have $pulled after the build"; exit 1; }
# (the engine resolves the tag with HEAD or GET on the manifest, then
# fetches what it lacks)
manifest_path="/v2/skiff/skiff-minimal/manifests/${pulled##*:}"
during=$(tail -n "+$((pushed_lines + 1))" "$tmp/registry.log" | grep -E '^127\.0\.0\.1 - - ' || true)
if ! grep -qE "\"(GET|HEAD) $manifest_path HTTP" <<<"$during"; then
  echo "FAIL: the registry saw no pull of $manifest_path during the build:"
  echo "$during" | tail -n 10
  exit 1
fi
echo "pre-pull: $pulled pulled from the local registry by the engine"
echo "packer-build: ok"
