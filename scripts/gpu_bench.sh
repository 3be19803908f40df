#!/usr/bin/env bash
# Run on the GPU machine: ltri bench at Llama-3-8B shape (random weights) for each policy, then
# PyTorch SDPA full attention at the same shape and lengths in the same call, joined into one
# table with the ratio measured (bench/compare_sdpa.py). Builds build-gpu first if it has no
# ltri (scripts/gpu_build.sh; carry .gpu-deps then). Every step runs under `timeout`, each
# within what is left of LTRI_BENCH_BUDGET, so one slow step cannot take the whole call.
#
# Writes to $OUT if set (the device tool brings it back), else out/gpu-bench/:
#   bench.md   the joined table and the issue-5 targets it speaks to
#   ltri.json  ltri bench -o json, every policy
#   sdpa.json  bench/sdpa_reference.py
#   bench.log  GPU, commands, progress and errors of every step
#
# Environment (defaults in brackets):
#   LTRI_BENCH_LENGTHS [32k,128k]    prompt lengths (-p of both)
#   LTRI_BENCH_POLICIES [full,ltri]  ltri policies, one ltri bench run each
#   LTRI_BENCH_N_GEN [128]           decode tokens after each prefill
#   LTRI_BENCH_CONFIG [bench/configs/llama-3-8b.json]
#   LTRI_BENCH_ARGS [--attn-init 128 --attn-local 4096]  more ltri bench flags (default: the
#                                    spec's 8B window, docs/kv-policies.md; e.g. add "-b 2048")
#   LTRI_BENCH_SDPA [1]              0 skips the SDPA steps
#   LTRI_BENCH_BUDGET [560]          seconds for the whole script
#   LTRI_BENCH_STEP_TIMEOUT [240]    seconds at most per step
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
out=${OUT:-out/gpu-bench}
mkdir -p "$out"
lengths=${LTRI_BENCH_LENGTHS:-32k,128k}
policies=${LTRI_BENCH_POLICIES:-full,ltri}
n_gen=${LTRI_BENCH_N_GEN:-128}
config=${LTRI_BENCH_CONFIG:-bench/configs/llama-3-8b.json}
extra=${LTRI_BENCH_ARGS---attn-init 128 --attn-local 4096}
run_sdpa=${LTRI_BENCH_SDPA:-1}
deadline=$(( $(date +%s) + ${LTRI_BENCH_BUDGET:-560} ))
step_max=${LTRI_BENCH_STEP_TIMEOUT:-240}
log=$out/bench.log
: > "$log"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
say() { echo "$*" | tee -a "$log" >&2; }
status=0

# Seconds the next step may take: the per-step cap, within what is left (10 s kept for the join).
step_limit() {
  local left=$(( deadline - $(date +%s) - 10 ))
  (( left < step_max )) && echo "$left" || echo "$step_max"
}
# run_step NAME CMD...: runs CMD under timeout, stderr to the log; says how it ended.
run_step() {
  local name=$1; shift
  local limit; limit=$(step_limit)
  if (( limit < 20 )); then
    say "gpu_bench: $name: skipped, the budget is spent"
    status=1
    return 1
  fi
  echo "== $name (timeout ${limit}s): $*" >> "$log"
  local start rc
  start=$(date +%s)
  timeout -k 10 "$limit" "$@" 2>> "$log"
  rc=$?
  if (( rc == 124 || rc == 137 )); then
    say "gpu_bench: $name: TIMED OUT after ${limit}s"
  elif (( rc != 0 )); then
    say "gpu_bench: $name: FAILED (exit $rc, see bench.log)"
  else
    say "gpu_bench: $name: $(( $(date +%s) - start )) s"
  fi
  (( rc == 0 )) || status=1
  return $rc
}

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; python3 -c 'import torch; print("torch", torch.__version__)'; } >> "$log" 2>&1

if [ ! -x build-gpu/ltri ]; then
  run_step build env LTRI_BUILD_TARGETS=ltri bash scripts/gpu_build.sh > /dev/null || { say "gpu_bench: FAIL: no build-gpu/ltri"; exit 1; }
fi

# ltri: one run per policy, so a policy that times out does not lose the others' results.
ltri_files=()
IFS=',' read -r -a policy_list <<< "$policies"
for policy in "${policy_list[@]}"; do
  # shellcheck disable=SC2086  # $extra is a list of flags
  if run_step "ltri bench --attn $policy" build-gpu/ltri bench --device cuda --random-weights --config "$config" \
      --attn "$policy" -p "$lengths" -n "$n_gen" -o json $extra > "$tmp/ltri-$policy.json"; then
    ltri_files+=("$tmp/ltri-$policy.json")
  fi
done

sdpa_args=()
if [ "$run_sdpa" = 1 ]; then
  # The model check first (seconds): a wrong reference model would make the ratio meaningless.
  run_step "sdpa_reference --tiny" python3 bench/sdpa_reference.py --tiny > "$tmp/tiny.txt" || true
  if [ -s "$tmp/tiny.txt" ]; then
    cat "$tmp/tiny.txt" >> "$log"
    say "gpu_bench: $(tail -1 "$tmp/tiny.txt")"
  fi
  if run_step "sdpa_reference" python3 bench/sdpa_reference.py --config "$config" -p "$lengths" -n "$n_gen" \
      -o "$tmp/sdpa.json"; then
    cp "$tmp/sdpa.json" "$out/sdpa.json"
    sdpa_args=(--sdpa "$out/sdpa.json")
  fi
fi

if (( ${#ltri_files[@]} == 0 )); then
  say "gpu_bench: FAIL: no ltri bench finished"
  exit 1
fi
python3 bench/compare_sdpa.py --ltri "${ltri_files[@]}" "${sdpa_args[@]}" --write-ltri "$out/ltri.json" \
  > "$out/bench.md" 2>> "$log" || { say "gpu_bench: FAIL: compare_sdpa.py"; exit 1; }
cat "$out/bench.md"
if [ $status = 0 ]; then say "gpu_bench: PASS"; else say "gpu_bench: FAIL (see bench.log)"; fi
exit $status
