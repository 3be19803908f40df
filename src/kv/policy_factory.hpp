#pragma once
// Builds the KV policy a session asked for (SessionOptions::attention, the --attn flags),
// after checking every parameter that applies to it against the model: each bad value is a
// one-line ltri::Error naming the flag.
#include <cstdint>
#include <memory>
#include <string>

#include "io/model_config.hpp"
#include "kv/attention_options.hpp"
#include "kv/kv_policy.hpp"

namespace ltri {

class Backend;

struct PolicyShape {
  Backend& backend;
  const ModelConfig& config;
  int64_t max_context = 0;  // `full`: the most tokens it may hold
  int64_t max_chunk = 512;  // the largest chunk the session passes (-b)
  std::string model_dir;    // where ltri_heads.json / ltri_calibration.json are looked for
};

// streaming, infllm and ltri: the context is bounded by nothing but the host store.
bool is_streaming_policy(const std::string& policy);

// ltri's retrieved-KV capacity per layer (tokens): the budget, and with persistence and
// per-step decode retrieval room for the pinned spans plus a step's additions,
// max(budget, min(span_cache, 2 budget)).
int64_t decode_capacity(const AttentionOptions& options);

std::unique_ptr<KvPolicy> make_kv_policy(const AttentionOptions& options, const PolicyShape& shape);

}  // namespace ltri
