#!/usr/bin/env bash
# Runs the queue benchmarks against a skiff-queue it starts in --dev mode
# (HTTPS with the generated CA, a temporary data directory), and prints
# their figures. Everything on loopback.
#
#   bash bench/queue/run.sh [BUILD_DIR]        # default: build
#   SKIFF_BENCH_JOBS=1000 SKIFF_BENCH_IDLE="1000 10000" bash bench/queue/run.sh
#
# Pickup latency runs twice, with --sync full (the default: fsync before
# acknowledging) and --sync normal.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
jobs=${SKIFF_BENCH_JOBS:-1000}
idle=${SKIFF_BENCH_IDLE:-1000 10000}
queue=$build/queue/skiff-queue
work=$(mktemp -d /tmp/skiff-bench.XXXXXX)
pid=

stop() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    wait "$pid" 2>/dev/null || true
  fi
  pid=
}
trap 'stop; rm -rf "$work"' EXIT

start() { # name, extra flags...
  local name=$1
  shift
  rm -f "$work/port"
  "$queue" --dev --data-dir "$work/$name" --listen 127.0.0.1:0 \
    --port-file "$work/port" --max-lease-wait 60 --log-level warn "$@" \
    >"$work/$name.out" 2>"$work/$name.log" &
  pid=$!
  for _ in $(seq 100); do
    [ -s "$work/port" ] && break
    sleep 0.1
  done
  [ -s "$work/port" ] || { cat "$work/$name.log"; exit 1; }
  set -a
  # shellcheck disable=SC1090,SC1091
  . "$work/$name/dev.env"
  set +a
}

echo "== machine: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
for sync in full normal; do
  start "pickup-$sync" --sync "$sync"
  echo "== pickup latency, $jobs jobs, --sync $sync"
  "$build/bench/queue/bench_queue_pickup" "$jobs"
  stop
done
for n in $idle; do
  start "idle-$n"
  echo "== $n idle long-polls"
  "$build/bench/queue/bench_queue_idle" --pid "$pid" "$n" 10
  stop
done
