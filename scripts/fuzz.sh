#!/usr/bin/env bash
# Builds every libFuzzer target (tests/fuzz/fuzz_*.cpp) with clang, ASan and UBSan into
# build-fuzz/, then runs each for SECONDS (default 60) on a scratch copy of its seed corpus
# (tests/fuzz/corpus/<target>/), so the committed corpus is never modified, with the dictionary
# tests/fuzz/<target>.dict when there is one.
# Exits non-zero if any target fails to build or finds a crash, leak, sanitizer report or
# timeout; the reproducer is kept in build-fuzz/findings/<target>/.
#
# Usage: scripts/fuzz.sh [SECONDS]     env: LTRI_JOBS (build jobs, default 2),
#                                           LTRI_FUZZ_TARGETS (space-separated subset)
# Needs clang and its libFuzzer runtime (Debian: clang, which pulls in libclang-rt-14-dev).
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
jobs=${LTRI_JOBS:-2}
build=build-fuzz

if ! command -v clang++ >/dev/null 2>&1; then
  echo "fuzz: clang++ not found (install the Debian package clang)" >&2
  exit 1
fi

targets=${LTRI_FUZZ_TARGETS:-}
if [ -z "$targets" ]; then
  for src in tests/fuzz/fuzz_*.cpp; do
    [ -e "$src" ] && targets+=" $(basename "$src" .cpp)"
  done
fi
if [ -z "${targets// /}" ]; then
  echo "fuzz: no tests/fuzz/fuzz_*.cpp targets" >&2
  exit 1
fi

cmake -S . -B "$build" -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DLTRI_FUZZ=ON -DLTRI_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null || exit 1
# shellcheck disable=SC2086  # targets is a word list
cmake --build "$build" -j "$jobs" --target $targets || { echo "fuzz: build failed" >&2; exit 1; }

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
for target in $targets; do
  scratch=$(mktemp -d)
  findings="$build/findings/$target"
  mkdir -p "$findings"
  if [ -d "tests/fuzz/corpus/$target" ]; then cp -R "tests/fuzz/corpus/$target/." "$scratch/"; fi
  log="$build/findings/$target.log"
  dict=()
  if [ -f "tests/fuzz/$target.dict" ]; then dict=(-dict="tests/fuzz/$target.dict"); fi
  echo "fuzz: $target for ${seconds}s" >&2
  # -rss_limit_mb: the parsers must stay far below it on any input; -timeout catches hangs.
  "$build/tests/$target" "$scratch" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$findings/" "${dict[@]}" >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  if [ $rc -ne 0 ]; then
    echo "fuzz: $target FAILED (exit $rc); log $log, reproducer in $findings/" >&2
    grep -E "ERROR|SUMMARY|runtime error|deadly signal|Test unit written" "$log" | head -20 >&2
    status=1
  else
    echo "fuzz: $target ok: ${execs:-?} executions, ${speed:-?} exec/s" >&2
  fi
  rm -rf "$scratch"
done
exit $status
