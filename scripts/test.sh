#!/usr/bin/env bash
# The test command: sets up a fresh Debian 12 machine (packages, dockerd),
# builds with -Wall -Wextra -Werror, runs the whole suite, then builds again
# with AddressSanitizer and UndefinedBehaviorSanitizer and runs the whole
# suite under them.
#
#   bash scripts/test.sh           # everything
#   SKIFF_TEST_FAST=1 bash scripts/test.sh   # skip the sanitizer pass
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

jobs=$(nproc)
echo "== test suite (-Werror build)"
ctest --test-dir build --output-on-failure -j "$jobs"

if [ "${SKIFF_TEST_FAST:-0}" = 1 ]; then
  exit 0
fi

echo "== test suite under ASan + UBSan"
cmake -S . -B build-asan -DSKIFF_WERROR=ON -DSKIFF_SANITIZE=ON \
  -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-asan -j "$jobs"
# Instrumented programs run a few times slower: the integration tests'
# bounded waits stretch by SKIFF_TEST_SLOW.
SKIFF_TEST_SLOW=3 \
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j "$jobs"
