#pragma once
// Runs one evaluation sample through the model: a fresh session, greedy decoding of a few
// tokens after the prompt, the output scored, the time and memory it took recorded.
#include <cstdint>

#include "eval_report.hpp"
#include "model/model.hpp"
#include "prompt_fit.hpp"
#include "runtime/engine.hpp"

namespace ltri::eval {

struct RunSettings {
  int64_t chunk = 512;          // prefill chunk (-b)
  AttentionOptions attention;   // the KV policy and its parameters
  int64_t max_new_tokens = 0;   // 0: each sample's own (its task's; see TaskInstance::max_new_tokens)
  int64_t context = 0;          // 0: the sample's requested length (or prompt, if longer) + new tokens
};

// Throws ltri::Error if the session cannot be made (an unknown policy, a context the prompt
// does not fit in).
SampleResult run_sample(const Engine& engine, const EvalSample& sample, const RunSettings& settings, int64_t index);

// Starts a new peak-RSS measurement for this process (Linux: /proc/self/clear_refs), so the
// peak read after a sample is that sample's; false where the kernel does not allow it (the
// peak is then the process's).
bool reset_peak_rss();

}  // namespace ltri::eval
