#pragma once
// A read-only tap on attention, for the analysis tools (ltri heads, calibrate, attn): after a
// policy has planned a layer's attention for a chunk, the session hands the observer the
// chunk's queries and the plan, so the tool can recompute whatever attention statistics it
// needs (top-1 positions, probability maps) without the hot path paying for them.
#include <cstdint>

#include "kv/kv_policy.hpp"

namespace ltri {

class RopeTable;

class AttentionObserver {
 public:
  virtual ~AttentionObserver() = default;
  // q: (n, n_heads, head_dim), pre-RoPE, for the chunk's queries at layer `layer`; `plan` is
  // what they attend to (keys pre-RoPE, positions as the plan assigns them); `rope` covers
  // every position of the plan. Called once per layer per chunk, in layer order.
  virtual void on_attention(int64_t layer, const float* q, int64_t n, int64_t n_heads,
                            const AttentionPlan& plan, const RopeTable& rope) = 0;
};

}  // namespace ltri
