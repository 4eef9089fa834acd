#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for
# a while. For people and CI.
#
#   bash scripts/fuzz.sh                 # every target, 60 s each
#   bash scripts/fuzz.sh 600             # every target, 10 minutes each
#   bash scripts/fuzz.sh 300 jws_job     # one target
#
# Targets are the tests/fuzz/fuzz_<name>.c registered with skiff_fuzz() in
# tests/fuzz/CMakeLists.txt. Each run starts from the seed corpus in
# tests/fuzz/corpus/<name>/ (read only) plus what earlier runs found, kept
# in $SKIFF_FUZZ_BUILD_DIR/corpus/<name>/. A crash, leak, timeout or UBSan
# report stops that target and is saved as
# $SKIFF_FUZZ_BUILD_DIR/artifacts/<name>/crash-*; the script then exits 1.
# To keep a crasher as a regression test, fix the bug and copy the file
# into tests/fuzz/corpus/<name>/: the fuzz.<name> ctest test replays it.
#
# Environment: SKIFF_FUZZ_BUILD_DIR (default build-fuzz), SKIFF_FUZZ_JOBS
# (parallel workers per target, default 1), SKIFF_FUZZ_MAX_LEN (longest
# input tried, default 65536), CC (default clang).
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-60}
shift || true
build=${SKIFF_FUZZ_BUILD_DIR:-build-fuzz}
jobs=${SKIFF_FUZZ_JOBS:-1}
max_len=${SKIFF_FUZZ_MAX_LEN:-65536}

if ! [[ "$secs" =~ ^[0-9]+$ ]] || [ "$secs" -lt 1 ]; then
  echo "fuzz: seconds must be a positive integer, not '$secs'" >&2
  exit 2
fi

if [ $# -gt 0 ]; then
  targets=("$@")
else
  targets=()
  while IFS= read -r name; do
    targets+=("$name")
  done < <(sed -n 's/^[[:space:]]*skiff_fuzz(\([A-Za-z0-9_]*\)[[:space:]].*/\1/p' tests/fuzz/CMakeLists.txt)
fi
if [ ${#targets[@]} -eq 0 ]; then
  echo "fuzz: no targets" >&2
  exit 2
fi

cmake -S . -B "$build" -DCMAKE_C_COMPILER="${CC:-clang}" -DSKIFF_FUZZ=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "$(nproc)" --target "${targets[@]/#/fuzz_}"

# UBSan in a fuzz build recovers by default; a report must stop the run.
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}

failed=()
for name in "${targets[@]}"; do
  bin="$build/tests/fuzz/fuzz_$name"
  seeds="tests/fuzz/corpus/$name"
  work="$build/corpus/$name"
  arts="$build/artifacts/$name"
  mkdir -p "$work" "$arts"
  echo "== fuzz_$name for ${secs}s (seeds: $seeds, found inputs: $work)"
  par=()
  if [ "$jobs" -gt 1 ]; then
    par=(-jobs="$jobs" -workers="$jobs")
  fi
  if ! "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
      -max_len="$max_len" -print_final_stats=1 "${par[@]}" \
      -artifact_prefix="$arts/" "$work" "$seeds"; then
    failed+=("$name")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]} (inputs in $build/artifacts/)" >&2
  exit 1
fi
echo "fuzz: ${targets[*]}: no crash in ${secs}s each"
