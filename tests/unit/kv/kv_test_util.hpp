#pragma once
// Helpers shared by the KV-policy tests: the tiny reference checkpoints, logits of a whole
// sequence under a policy, and a synthetic stream of keys that identify their token.
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "io/model_config.hpp"
#include "kv/attention_options.hpp"
#include "kv/kv_policy.hpp"
#include "kv/policy_factory.hpp"
#include "model/model.hpp"
#include "ops/backend.hpp"

namespace ltri::test {

inline std::string tiny_model_dir(const std::string& name) {
  return std::string(LTRI_FIXTURES_DIR) + "/tiny/" + name;
}

inline std::unique_ptr<Model> load_tiny(const std::string& name) {
  ModelLoadOptions o;
  o.threads = 2;
  return Model::load(tiny_model_dir(name), o);
}

inline std::vector<int32_t> random_ids(size_t n, int64_t vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> ids(n);
  for (int32_t& id : ids) id = int32_t(rng() % uint32_t(vocab));
  return ids;
}

// Logits (n, vocab) of every token: the first `prefill` tokens in one forward call (in chunks
// of `chunk`), the rest one token per call, as decoding does.
inline std::vector<float> run_logits(const Model& model, const std::vector<int32_t>& ids,
                                     const AttentionOptions& attention, int64_t chunk,
                                     size_t prefill) {
  SessionOptions so;
  so.chunk = chunk;
  so.attention = attention;
  auto session = model.new_session(so);
  const size_t vocab = size_t(model.config().vocab_size);
  std::vector<float> all(ids.size() * vocab);
  std::vector<float> last(vocab);
  session->forward(std::span<const int32_t>(ids.data(), prefill), last.data(), all.data());
  for (size_t t = prefill; t < ids.size(); ++t) {
    session->forward(std::span<const int32_t>(&ids[t], 1), all.data() + t * vocab);
  }
  return all;
}

inline float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  float worst = 0.0f;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  return worst;
}

// A model shape for driving policies directly (no weights needed).
inline ModelConfig policy_test_config(int64_t n_layers = 2, int64_t n_heads = 4, int64_t n_kv_heads = 2,
                                      int64_t head_dim = 8, int64_t max_positions = 4096) {
  ModelConfig c;
  c.num_hidden_layers = n_layers;
  c.num_attention_heads = n_heads;
  c.num_key_value_heads = n_kv_heads;
  c.head_dim = head_dim;
  c.hidden_size = n_heads * head_dim;
  c.max_position_embeddings = max_positions;
  return c;
}

// Drives a policy directly with synthetic q/k/v (CPU backend: backend memory is host memory).
// Value rows of token t carry t in their first float, so a plan can be read back as the list
// of tokens it shows; keys and queries are random unless fill_key / fill_query set them.
class StreamDriver {
 public:
  using RowFn = std::function<void(int64_t token, int64_t layer, float* row)>;

  // backend: the policy's backend (a CPU backend, or one derived from it); null = a new one.
  StreamDriver(const ModelConfig& config, const AttentionOptions& options, int64_t max_chunk,
               const std::string& model_dir = "", std::unique_ptr<Backend> backend = nullptr)
      : config_(config), backend_(backend ? std::move(backend) : make_cpu_backend(1)), rng_(7) {
    policy_ = make_kv_policy(options, {*backend_, config_, 1 << 20, max_chunk, model_dir});
    q_row_ = config.num_attention_heads * config.head_dim;
    kv_row_ = config.num_key_value_heads * config.head_dim;
  }

  KvPolicy& policy() { return *policy_; }
  int64_t kv_row() const { return kv_row_; }
  RowFn fill_key;    // overrides the random part of key rows
  RowFn fill_query;  // overrides random query rows
  // Plans in two steps, as a model does on a backend with two-pass attention: plan_early(),
  // whose result inspect_early sees, then plan().
  bool two_step = false;
  std::function<void(int64_t layer, const AttentionPlan* early)> inspect_early;

  // Feeds the next n tokens through every layer; inspect(layer, plan) sees each plan.
  void feed(int64_t n, const std::function<void(int64_t, const AttentionPlan&)>& inspect = {}) {
    std::normal_distribution<float> normal(0.0f, 1.0f);
    q_.resize(size_t(n * q_row_));
    k_.resize(size_t(n * kv_row_));
    v_.resize(size_t(n * kv_row_));
    policy_->begin_chunk(n);
    const int64_t first = policy_->n_past();
    for (int64_t l = 0; l < config_.num_hidden_layers; ++l) {
      for (int64_t i = 0; i < n; ++i) {
        float* q = q_.data() + i * q_row_;
        float* k = k_.data() + i * kv_row_;
        float* v = v_.data() + i * kv_row_;
        for (int64_t c = 0; c < q_row_; ++c) q[c] = normal(rng_);
        for (int64_t c = 0; c < kv_row_; ++c) k[c] = normal(rng_), v[c] = normal(rng_);
        if (fill_query) fill_query(first + i, l, q);
        if (fill_key) fill_key(first + i, l, k);
        v[0] = float(first + i);
      }
      if (two_step) {
        const AttentionPlan* early = policy_->plan_early(l, q_.data(), k_.data(), v_.data(), n);
        if (inspect_early) inspect_early(l, early);
      }
      const AttentionPlan& plan = policy_->plan(l, q_.data(), k_.data(), v_.data(), n);
      if (inspect) inspect(l, plan);
    }
    policy_->end_chunk(n);
  }

 private:
  ModelConfig config_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<KvPolicy> policy_;
  std::mt19937 rng_;
  int64_t q_row_ = 0, kv_row_ = 0;
  std::vector<float> q_, k_, v_;
};

// A visible key: which token it is and the position the plan gives it.
struct VisibleKey {
  int64_t token;
  int64_t position;
  int64_t query_position;  // -1: the query's own position
  bool causal;
};

inline std::vector<VisibleKey> visible_keys(const AttentionPlan& plan, int64_t kv_row) {
  std::vector<VisibleKey> out;
  for (const KvSegment& s : plan.segments) {
    for (int64_t t = 0; t < s.n; ++t) {
      out.push_back({int64_t(s.v[t * kv_row]), s.first_position + t * s.position_stride, s.query_position, s.causal});
    }
  }
  return out;
}

}  // namespace ltri::test
