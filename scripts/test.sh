#!/usr/bin/env bash
# The test command. Builds what is missing and runs, in order:
#   1. the whole suite (unit, HF parity, tokenizer goldens, CLI, bad input) on the Release build;
#   2. the same suite again under AddressSanitizer + UndefinedBehaviorSanitizer (without the
#      CUDA backend: nvcc code is not instrumented, and ASan's shadow memory clashes with the
#      CUDA driver's mappings on a GPU machine);
#   3. each libFuzzer target for LTRI_FUZZ_SECONDS (default 60) seconds.
# Ends with one line "tests: N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/.."
jobs=${LTRI_JOBS:-2}
passed=0
failed=0

run_suite() {  # build-dir cmake-args...
  local dir=$1
  shift
  cmake -S . -B "$dir" -G Ninja "$@" >/dev/null || return 1
  cmake --build "$dir" -j "$jobs" || return 1
  local log
  log=$(mktemp)
  ctest --test-dir "$dir" --output-on-failure -j "$jobs" 2>&1 | tee "$log"
  local status=${PIPESTATUS[0]}
  # "100% tests passed, 0 tests failed out of 123"
  local total fails
  total=$(sed -n 's/.*tests failed out of \([0-9]*\).*/\1/p' "$log" | tail -1)
  fails=$(sed -n 's/.* \([0-9]*\) tests failed out of.*/\1/p' "$log" | tail -1)
  rm -f "$log"
  passed=$((passed + ${total:-0} - ${fails:-0}))
  failed=$((failed + ${fails:-0}))
  [ -n "$total" ] || failed=$((failed + 1))
  return "$status"
}

status=0
echo "== Release build: all tests" >&2
run_suite build -DCMAKE_BUILD_TYPE=Release || status=1

echo "== AddressSanitizer + UBSan build: all tests" >&2
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run_suite build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLTRI_SANITIZE=ON -DLTRI_CUDA=OFF || status=1

echo "== Fuzzing (${LTRI_FUZZ_SECONDS:-60} s per target)" >&2
if bash scripts/fuzz.sh "${LTRI_FUZZ_SECONDS:-60}"; then
  passed=$((passed + 1))
else
  failed=$((failed + 1))
  status=1
fi

echo "tests: $passed passed, $failed failed"
exit $status
