#pragma once
// The measurements of `ltri bench`: for each KV policy and prompt length, a prefill of that many
// random token ids (chunked by -b) and then -n decode steps at that context, each fed the
// argmax of the previous logits, as generation would. Each (policy, length) pair yields a pp
// test (prefill tokens/s and time to first token) and a tg test (decode tokens/s at depth
// n_prompt), with the memory and transfers of each phase.
#include <cstdint>
#include <string>
#include <vector>

#include "bench_options.hpp"
#include "model/model.hpp"

namespace ltri::cli {

// One phase's footprint (the prefill, or the decode run after it), the largest over the runs.
struct PhaseMemory {
  uint64_t h2d_bytes = 0;          // host -> backend bytes copied during the phase
  uint64_t d2h_bytes = 0;          // backend -> host bytes (logits, span downloads)
  size_t peak_device_bytes = 0;    // most backend memory held (weights included)
  size_t peak_host_bytes = 0;      // process peak RSS during the phase
  bool host_peak_is_per_phase = true;  // false where the kernel cannot reset the peak (then: since start)
  size_t kv_bytes = 0;             // the policy's backend KV at the end of the phase
  size_t kv_host_bytes = 0;        // the policy's host store at the end of the phase
};

struct BenchTest {
  std::string policy;
  std::string kind;        // "pp" (prefill) or "tg" (decode)
  int64_t n_prompt = 0;    // pp: prompt tokens; tg: 0 (llama-bench's convention)
  int64_t n_gen = 0;       // tg: decode tokens; pp: 0
  int64_t n_depth = 0;     // tg: tokens already in the context when decode starts
  std::vector<double> samples_ms;       // per run: the timed phase
  std::vector<double> samples_ts;       // per run: tokens per second
  std::vector<double> samples_ttft_ms;  // pp: prefill + sampling the first token
  double avg_ts = 0.0, stddev_ts = 0.0;
  double avg_ttft_ms = 0.0;
  PhaseMemory memory;

  // "pp131072", "tg128 @ d131072" (llama-bench's names; "tg128" from an empty context).
  std::string name() const;
};

// Checks what can be checked before any timed work: duplicate policies, an empty test list,
// and (CPU) whether full attention's KV cache at the longest prompt fits in host memory.
// Throws ltri::Error with one line naming the flag.
void check_bench_request(const BenchOptions& options, const ModelConfig& config, Device device);

// Builds each policy's session once with the longest context, so a bad --attn-* value or a
// window the model cannot position fails before the first test runs.
void check_policies_build(const Model& model, const BenchOptions& options);

// Runs every (policy, prompt length) pair; progress and per-run timings go to the log.
std::vector<BenchTest> run_benchmarks(const Model& model, const BenchOptions& options);

}  // namespace ltri::cli
