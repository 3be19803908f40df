#pragma once
// Rotary position embedding tables, Hugging Face "rotate_half" convention: dimension i of the
// first half pairs with i + head_dim/2, angle = position * inv_freq[i].
//
// Angles are computed in double and stored as f32 cos/sin per position, so positions in the
// millions stay exact to f32 precision (an f32 product position * inv_freq would not).
#include <cstdint>
#include <vector>

#include "io/model_config.hpp"

namespace ltri {

class RopeTable {
 public:
  RopeTable() = default;
  // inv_freq from rope_theta and rope_scaling (none, linear, llama3 as in transformers).
  RopeTable(const ModelConfig& config);

  // Makes positions [0, n) available; tables grow geometrically, so this rarely allocates.
  void ensure(int64_t n);

  int64_t head_dim() const { return head_dim_; }
  int64_t size() const { return n_positions_; }
  const std::vector<double>& inv_freq() const { return inv_freq_; }
  // (head_dim / 2) values for one position.
  const float* cos(int64_t position) const { return cos_.data() + position * half_; }
  const float* sin(int64_t position) const { return sin_.data() + position * half_; }

 private:
  int64_t head_dim_ = 0;
  int64_t half_ = 0;
  int64_t n_positions_ = 0;
  std::vector<double> inv_freq_;  // (head_dim / 2)
  std::vector<float> cos_;        // (n_positions, head_dim / 2)
  std::vector<float> sin_;        // (n_positions, head_dim / 2)
};

// inv_freq of transformers' rope types, exposed for tests.
std::vector<double> rope_inv_freq(const ModelConfig& config);

}  // namespace ltri
