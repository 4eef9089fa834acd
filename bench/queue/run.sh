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
#
# The log path (bench_queue_logs) runs this build side by side with a
# baseline skiff-queue: SKIFF_BENCH_BASELINE_BIN=path, or else the commit
# SKIFF_BENCH_BASELINE (default 40a9a2d, the last one before the log
# path went off the loop) built once into /tmp/skiff-baseline-<commit>
# with git archive; SKIFF_BENCH_BASELINE=none skips it. It starts its own
# queues; SKIFF_BENCH_QUEUE_ARGS go to both (e.g. "--sync normal", or
# another store's options), SKIFF_BENCH_SECONDS is the window of each
# figure (10), SKIFF_BENCH_LOGS=abcd picks figures ("" skips them).
#
#   SKIFF_BENCH_JOBS=0 SKIFF_BENCH_IDLE= bash bench/queue/run.sh build  # logs only
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
jobs=${SKIFF_BENCH_JOBS:-1000}
idle=${SKIFF_BENCH_IDLE-1000 10000}
logs=${SKIFF_BENCH_LOGS-abcd}
baseline=${SKIFF_BENCH_BASELINE:-40a9a2d}
baseline_bin=${SKIFF_BENCH_BASELINE_BIN:-}
seconds=${SKIFF_BENCH_SECONDS:-10}
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
  [ "$jobs" -gt 0 ] || break
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

# A baseline skiff-queue from a commit, built once outside the checkout.
build_baseline() {
  local commit dir
  commit=$(git rev-parse --short "$baseline")
  dir=/tmp/skiff-baseline-$commit
  if [ ! -x "$dir/build/queue/skiff-queue" ]; then
    rm -rf "$dir"
    mkdir -p "$dir/src"
    git archive "$commit" | tar -x -C "$dir/src"
    cmake -S "$dir/src" -B "$dir/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      >"$dir/build.log" 2>&1
    cmake --build "$dir/build" -j "$(nproc)" --target skiff-queue \
      >>"$dir/build.log" 2>&1 || { tail -20 "$dir/build.log"; exit 1; }
  fi
  baseline_bin=$dir/build/queue/skiff-queue
}

if [ -n "$logs" ]; then
  if [ -z "$baseline_bin" ] && [ "$baseline" != none ]; then
    build_baseline
  fi
  # shellcheck disable=SC2086
  "$build/bench/queue/bench_queue_logs" --queue "$queue" \
    ${baseline_bin:+--baseline "$baseline_bin"} --seconds "$seconds" \
    --only "$logs" -- ${SKIFF_BENCH_QUEUE_ARGS:-}
fi
