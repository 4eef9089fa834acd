#!/usr/bin/env bash
# The main job, on embedded defaults, on a fresh Debian 12 machine:
#
#   1. set up the machine and build (scripts/setup.sh);
#   2. build the execution image skiff-demo/busybox:1 locally (no registry
#      is reachable: busybox-static imported through the Engine API), and
#      start skiff-queue --dev (self-signed TLS, tokens for pool "dev");
#   3. make a signing key; the agent trusts it;
#   4. start skiff-agent (idle timeout 10 s);
#   5. sign examples/hello.json (a host step, a step in the container, a
#      host step that reports) and submit it;
#   6. follow the log as it streams, then fetch the artifacts;
#   7. watch the agent idle out, deregister and exit 0.
#
# Everything lives in a temporary directory, removed at the end
# (SKIFF_DEMO_KEEP=1 keeps it).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${SKIFF_DEMO_SKIP_SETUP:-0}" != 1 ]; then
  bash scripts/setup.sh
fi

build=${SKIFF_BUILD_DIR:-build}
queue_bin=$build/queue/skiff-queue
agent_bin=$build/agent/skiff-agent
ctl=$build/ctl/skiffctl
work=$(mktemp -d /tmp/skiff-demo.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "${SKIFF_DEMO_KEEP:-0}" = 1 ]; then
    echo "demo: kept $work"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "building the execution image skiff-demo/busybox:1 locally"
/usr/bin/python3 - <<'PY'
import sys
sys.path.insert(0, "tests/integration")
import dockerenv
eng = dockerenv.Engine()
dockerenv.build_image(eng, "skiff-demo/busybox:1", [], dockerenv.busybox_rootfs())
print("skiff-demo/busybox:1 ready")
PY

say "starting skiff-queue --dev"
"$queue_bin" --dev --data-dir "$work/queue" --listen 127.0.0.1:0 \
  --port-file "$work/queue.port" >"$work/queue.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  [ -s "$work/queue/dev.env" ] && [ -s "$work/queue.port" ] && break
  sleep 0.1
done
[ -s "$work/queue/dev.env" ] || { cat "$work/queue.log"; exit 1; }
cat "$work/queue/dev.env"
set -a
# shellcheck disable=SC1091
. "$work/queue/dev.env"
set +a

say "making a signing key"
"$ctl" keygen --out "$work/signer"

say "starting skiff-agent (pool $SKIFF_POOL, idle timeout 10s)"
cat >"$work/agent.conf" <<CONF
SKIFF_QUEUE_URL=$SKIFF_QUEUE_URL
SKIFF_POOL=$SKIFF_POOL
SKIFF_REGISTRATION_TOKEN=$SKIFF_REGISTRATION_TOKEN
SKIFF_CA_FILE=$SKIFF_CA_FILE
SKIFF_TRUSTED_KEYS=$work/signer.jwks
SKIFF_STATE_DIR=$work/agent-state
SKIFF_WORK_DIR=$work/agent-work
SKIFF_IDLE_TIMEOUT=10s
SKIFF_NAME=demo-agent
CONF
env -i PATH="$PATH" "$agent_bin" --config "$work/agent.conf" \
  2>"$work/agent.log" &
agent_pid=$!
pids+=("$agent_pid")

say "signing and submitting examples/hello.json"
"$ctl" sign examples/hello.json --key "$work/signer.jwk" --aud "$SKIFF_POOL" \
  --ttl 1h --out "$work/job.jws"
job=$("$ctl" submit "$work/job.jws" | cut -d' ' -f1)
echo "job $job submitted"

say "the job's log, as it streams"
"$ctl" logs --follow "$job"

say "the job"
"$ctl" status "$job"

say "its artifacts"
"$ctl" artifacts get "$job" --out "$work/artifacts"
(cd "$work/artifacts" && find . -type f | sort | while read -r f; do
  printf '%s:\n' "${f#./}"; sed 's/^/    /' "$f"
done)

say "waiting for the agent to idle out (10 s)"
status=0
wait "$agent_pid" || status=$?
echo "skiff-agent exited with $status"
echo "--- agent log"
cat "$work/agent.log"
[ "$status" = 0 ]
state=$("$ctl" status "$job" --json |
  sed -n 's/.*"state":[[:space:]]*"\([^"]*\)".*/\1/p')
[ "$state" = succeeded ]
# The container step's outputs reached the last step and the queue.
"$ctl" status "$job" --json | grep -q '"built_at"'
say "done: job $job $state, agent idled out and exited 0"
