#include "kv/policy_factory.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <mutex>
#include <set>

#include "core/error.hpp"
#include "core/log.hpp"
#include "kv/full_policy.hpp"
#include "kv/infllm_policy.hpp"
#include "kv/streaming_policy.hpp"

namespace ltri {

namespace {

// Warnings about the model directory are printed once per process, not once per session
// (eval runs hundreds of sessions on one model).
void warn_once(const std::string& message) {
  static std::mutex mutex;
  static std::set<std::string> printed;
  std::lock_guard<std::mutex> lock(mutex);
  if (printed.insert(message).second) log_warn(message);
}

Placement parse_placement(const std::string& p) {
  if (p == "fixed") return Placement::Fixed;
  if (p == "ordered") return Placement::Ordered;
  fail("--attn-placement ", p, ": expected fixed or ordered");
}

void check_at_least(const char* flag, int64_t value, int64_t least) {
  if (value < least) fail(flag, " must be >= ", least, ", got ", value);
}

void check_unit_interval(const char* flag, double value) {
  if (!(value >= 0.0 && value <= 1.0)) fail(flag, " must be in [0, 1], got ", value);
}

// The window's shape common to the streaming policies; the caller sets lag, store, band.
StreamingShape common_shape(const AttentionOptions& o, const PolicyShape& p) {
  check_at_least("--attn-init", o.n_init, 0);
  check_at_least("--attn-local", o.n_local, 1);
  check_at_least("--attn-budget", o.budget, 0);
  check_at_least("chunk size (-b)", p.max_chunk, 1);
  const ModelConfig& c = p.config;
  StreamingShape s;
  s.n_layers = c.num_hidden_layers;
  s.n_heads = c.num_attention_heads;
  s.n_kv_heads = c.num_key_value_heads;
  s.head_dim = c.head_dim;
  s.n_init = o.n_init;
  s.n_local = o.n_local;
  s.max_chunk = p.max_chunk;
  s.placement = parse_placement(o.placement);
  return s;
}

// The model was trained on positions below max_position_embeddings; a plan must stay inside.
void check_positions(const AttentionOptions& o, const PolicyShape& p, const StreamingShape& s) {
  const int64_t needed = s.positions_needed(s.max_chunk);
  const int64_t supported = p.config.max_position_embeddings;
  if (needed <= supported) return;
  std::string parts = cat("init ", s.n_init, " + ");
  if (s.placement == Placement::Ordered && s.retrieved_capacity > 0) {
    parts += cat("retrieved ", s.retrieved_capacity, " + ");
  }
  parts += cat("window ", s.n_local);
  if (s.max_lag > 0) parts += cat(" + eviction lag ", s.max_lag);
  parts += cat(" + chunk ", s.max_chunk);
  fail("--attn-local ", o.n_local, ": the policy needs ", needed, " positions (", parts,
       ") but the model supports ", supported, " (max_position_embeddings); lower --attn-local",
       s.placement == Placement::Ordered ? ", --attn-budget" : "", " or -b");
}

std::unique_ptr<KvPolicy> make_streaming(const AttentionOptions& o, const PolicyShape& p) {
  StreamingShape s = common_shape(o, p);
  check_positions(o, p, s);
  return std::make_unique<StreamingPolicy>(p.backend, p.config, s);
}

std::unique_ptr<KvPolicy> make_infllm(const AttentionOptions& o, const PolicyShape& p) {
  StreamingShape s = common_shape(o, p);
  check_at_least("--attn-block", o.block_size, 1);
  check_at_least("--attn-block-repr", o.block_repr, 1);
  if (o.block_repr > o.block_size) {
    fail("--attn-block-repr ", o.block_repr, " exceeds the block size ", o.block_size, " (--attn-block)");
  }
  s.max_lag = o.block_size - 1;  // a partial block waits in the window
  s.keeps_store = true;
  s.retrieved_capacity = o.budget;
  s.band_width = o.block_size;  // votes come from the queries of the next block_size tokens
  check_positions(o, p, s);
  return std::make_unique<InfllmPolicy>(p.backend, p.config, s, InfllmParams{o.block_size, o.block_repr, o.budget});
}

}  // namespace

bool is_streaming_policy(const std::string& policy) {
  return policy == "streaming" || policy == "infllm" || policy == "ltri";
}

std::unique_ptr<KvPolicy> make_kv_policy(const AttentionOptions& o, const PolicyShape& p) {
  const ModelConfig& c = p.config;
  if (o.policy == "full") {
    return std::make_unique<FullPolicy>(p.backend, c.num_hidden_layers, c.num_key_value_heads, c.head_dim,
                                        p.max_context);
  }
  if (o.policy == "streaming") return make_streaming(o, p);
  if (o.policy == "infllm") return make_infllm(o, p);
  fail("--attn ", o.policy, ": unknown KV policy (expected full, streaming, infllm or ltri)");
}

}  // namespace ltri
