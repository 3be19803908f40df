#pragma once
// `full` attention: every token sees every earlier token at its true position. The accuracy
// reference for the streaming policies, and what Hugging Face transformers computes.
#include <memory>
#include <vector>

#include "kv/kv_policy.hpp"

namespace ltri {

class Backend;

class FullPolicy : public KvPolicy {
 public:
  // Capacity grows geometrically up to max_context tokens.
  FullPolicy(Backend& backend, int64_t n_layers, int64_t n_kv_heads, int64_t head_dim,
             int64_t max_context);
  ~FullPolicy() override;

  const char* name() const override { return "full"; }
  void begin_chunk(int64_t n) override;
  const AttentionPlan& plan(int64_t layer, const float* q, const float* k, const float* v,
                            int64_t n) override;
  void end_chunk(int64_t n) override;
  int64_t n_past() const override { return n_past_; }
  int64_t positions_needed(int64_t n) const override { return n_past_ + n; }
  size_t kv_bytes() const override;
  void reset() override { n_past_ = 0; }

 private:
  void grow(int64_t capacity);

  Backend& backend_;
  int64_t n_layers_, row_;  // row_ = n_kv_heads * head_dim floats per token
  int64_t max_context_;
  int64_t capacity_ = 0;
  int64_t n_past_ = 0;
  std::vector<float*> k_;  // per layer: (capacity, n_kv_heads, head_dim), pre-RoPE
  std::vector<float*> v_;  // per layer: (capacity, n_kv_heads, head_dim)
  AttentionPlan plan_;
};

}  // namespace ltri
