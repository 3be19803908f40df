#!/usr/bin/env bash
# Run on the GPU machine (carry .gpu-deps): builds build-gpu with the CUDA backend
# (scripts/gpu_build.sh, only the ltri and ltri_test_cuda targets), runs the CUDA test binary
# (every CUDA op against its CPU op, the demo model on both devices, the policies evicting) with
# a GPU required, then checks the CLI end to end: the same greedy text on --device cuda and cpu,
# and a cuda bench. Logs go to $OUT if set (the device tool brings them back), else
# out/gpu-test/; the last line says pass or fail.
# Usage: bash scripts/gpu_test.sh [extra gtest args, e.g. --gtest_filter=CudaAttention.*]
set -uo pipefail
cd "$(dirname "$0")/.."
logs=${OUT:-out/gpu-test}
mkdir -p "$logs"
summary=$logs/gpu_test.log
: > "$summary"
say() { echo "$*" | tee -a "$summary" >&2; }
status=0

{ nvidia-smi; nvcc --version || /usr/local/cuda/bin/nvcc --version; } >> "$summary" 2>&1

start=$(date +%s)
if ! LTRI_BUILD_TARGETS="ltri ltri_test_cuda" bash scripts/gpu_build.sh > "$logs/build.log" 2>&1; then
  tail -40 "$logs/build.log" >&2
  say "gpu_test: FAIL: build (see build.log)"
  exit 1
fi
say "gpu_test: build $(( $(date +%s) - start )) s"

start=$(date +%s)
LTRI_REQUIRE_CUDA=1 build-gpu/tests/ltri_test_cuda --gtest_output="xml:$logs/ltri_test_cuda.xml" "$@" \
  > "$logs/ltri_test_cuda.log" 2>&1 || status=1
tail -25 "$logs/ltri_test_cuda.log" | tee -a "$summary" >&2
say "gpu_test: ltri_test_cuda $(( $(date +%s) - start )) s, exit $([ $status = 0 ] && echo 0 || echo 1)"

# The CLI: greedy text from the bundled model on both devices, full and ltri attention.
cli=$logs/cli.log
: > "$cli"
prompt="The pass key is 71942. Remember it. What is the pass key? The pass key is"
for attn in full ltri; do
  for device in cpu cuda; do
    echo "== $attn $device" >> "$cli"
    build-gpu/ltri run --device "$device" --attn "$attn" -p "$prompt" -n 24 --temp 0 --ignore-eos \
      > "$logs/text_$device.txt" 2>> "$cli" || { status=1; say "gpu_test: ltri run --device $device --attn $attn failed"; }
    cat "$logs/text_$device.txt" >> "$cli"
    echo >> "$cli"
  done
  if cmp -s "$logs/text_cpu.txt" "$logs/text_cuda.txt"; then
    say "gpu_test: ltri run --attn $attn: same text on cpu and cuda"
  else
    say "gpu_test: FAIL: ltri run --attn $attn: cpu and cuda texts differ (cli.log)"
    status=1
  fi
done
rm -f "$logs/text_cpu.txt" "$logs/text_cuda.txt"
echo "== bench cuda" >> "$cli"
build-gpu/ltri bench --device cuda -p 4096 -n 128 -r 2 >> "$cli" 2>&1 || { status=1; say "gpu_test: bench failed"; }
tail -8 "$cli" | tee -a "$summary" >&2

if [ $status = 0 ]; then say "gpu_test: PASS"; else say "gpu_test: FAIL"; fi
exit $status
