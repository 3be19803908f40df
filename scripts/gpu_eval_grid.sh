#!/usr/bin/env bash
# Run on the GPU machine after scripts/gpu_build.sh has built build-gpu: one `ltri eval report`
# grid split over JOBS processes running side by side (--part i/JOBS), then merged into one
# report (--import, --no-run): NAME.json, NAME.md and the pictures. The demo model is small, so
# one process is bound by its host-side work, not by the GPU; many processes share the GPU.
# Every part stops at DEADLINE_S seconds; a part's file keeps each finished sample (it is
# rewritten after every one), so the merge reports what got done and a rerun continues.
# Output: $OUT/NAME/ if OUT is set (the device tool brings it back), else out/gpu-eval/NAME/.
# Usage: bash scripts/gpu_eval_grid.sh NAME [flags of ltri eval report: --tasks --attn --lengths ...]
# Environment: JOBS (default 8), THREADS per process (default 2), DEADLINE_S (default 540),
# DEVICE (default cuda).
set -uo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: bash scripts/gpu_eval_grid.sh NAME [ltri eval report flags]" >&2; exit 2; }
name=$1
shift
out=${OUT:-out/gpu-eval}/$name
jobs=${JOBS:-8}
threads=${THREADS:-2}
deadline=${DEADLINE_S:-540}
device=${DEVICE:-cuda}
ltri=build-gpu/ltri
[ -x "$ltri" ] || { echo "error: $ltri missing: run scripts/gpu_build.sh first" >&2; exit 1; }
mkdir -p "$out/parts"

start=$(date +%s)
for i in $(seq 1 "$jobs"); do
  OMP_WAIT_POLICY=passive timeout "$deadline" "$ltri" eval report "$@" --device "$device" -t "$threads" \
    --no-pictures -q --part "$i/$jobs" -o "$out/parts/part$i.json" > /dev/null 2> "$out/parts/part$i.log" &
done
wait
echo "gpu_eval_grid $name: parts ran $(( $(date +%s) - start )) s" >&2

imports=$(ls "$out"/parts/part*.json | paste -sd, -)
"$ltri" eval report "$@" --device "$device" --no-run --import "$imports" -o "$out/$name.json" \
  > /dev/null 2> "$out/merge.log"
status=$?
tail -3 "$out/merge.log" >&2
# The parts are merged into NAME.json; their logs hold any error.
tar -czf "$out/parts.tar.gz" -C "$out" parts && rm -rf "$out/parts"
exit $status
