#pragma once
// `infllm` (InfLLM, arXiv 2402.04617): init + local window + the top fixed-size blocks of
// evicted KV. Each block is represented by one vector per KV head: the mean of its
// `block_repr` keys that received the most attention (votes) while in the local window.
// Blocks are scored against the chunk's mean query, averaged over all query heads, and taken
// by score until `budget` tokens. Retrieval runs every chunk and every decode step.
#include <vector>

#include "kv/streaming_base.hpp"

namespace ltri {

struct InfllmParams {
  int64_t block_size = 128;
  int64_t block_repr = 4;
  int64_t budget = 2048;
};

class InfllmPolicy : public StreamingPolicyBase {
 public:
  // shape: max_lag block_size - 1, keeps_store, retrieved_capacity budget, band_width
  // block_size (votes only).
  InfllmPolicy(Backend& backend, const ModelConfig& config, const StreamingShape& shape,
               const InfllmParams& params);
  const char* name() const override { return "infllm"; }
  size_t kv_bytes() const override;  // with the choice's buffers in backend memory

 protected:
  void evict(int64_t layer) override;
  void choose(int64_t layer, const float* q, int64_t n, std::vector<int64_t>& units) override;
  // One averaged vector per block: the floor is the density.
  double index_vectors_per_token_floor() const override { return 1.0 / double(params_.block_size); }
  const char* index_name() const override { return "block index"; }

 private:
  InfllmParams params_;
  std::vector<float> head_weights_;  // (n_heads), uniform: blocks are scored by the mean of heads
  // Scratch, reused.
  std::vector<float> scores_;
  std::vector<int64_t> order_;
  // The choice in backend memory (device_choice()): the scores, the picked unit list; one pair
  // for all layers (the widest layer's units: a layer's worth, left out of device_growth).
  BackendBuffer scores_dev_, picked_dev_;
};

}  // namespace ltri
