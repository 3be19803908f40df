#include "ops/rope_table.hpp"

#include <algorithm>
#include <cmath>

namespace ltri {

std::vector<double> rope_inv_freq(const ModelConfig& c) {
  const int64_t half = c.head_dim / 2;
  std::vector<double> inv(size_t(half), 0.0);
  for (int64_t i = 0; i < half; ++i) {
    inv[size_t(i)] = 1.0 / std::pow(c.rope_theta, double(2 * i) / double(c.head_dim));
  }
  const RopeScaling& s = c.rope_scaling;
  if (s.type == RopeScalingType::Linear) {
    for (double& f : inv) f /= s.factor;  // same as dividing positions by the factor
  } else if (s.type == RopeScalingType::Llama3) {
    // Llama 3.1: long wavelengths are slowed by `factor`, short ones kept, and the band in
    // between interpolated smoothly (transformers' _compute_llama3_parameters).
    const double old_len = double(s.original_max_position_embeddings);
    const double low_freq_wavelen = old_len / s.low_freq_factor;
    const double high_freq_wavelen = old_len / s.high_freq_factor;
    for (double& f : inv) {
      const double wavelen = 2.0 * M_PI / f;
      if (wavelen > low_freq_wavelen) {
        f = f / s.factor;
      } else if (wavelen >= high_freq_wavelen) {
        const double smooth =
            (old_len / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
        f = (1.0 - smooth) * f / s.factor + smooth * f;
      }
    }
  }
  return inv;
}

RopeTable::RopeTable(const ModelConfig& config)
    : head_dim_(config.head_dim), half_(config.head_dim / 2), inv_freq_(rope_inv_freq(config)) {}

void RopeTable::ensure(int64_t n) {
  if (n <= n_positions_) return;
  const int64_t target = std::max<int64_t>(n, std::max<int64_t>(1024, 2 * n_positions_));
  cos_.resize(size_t(target * half_));
  sin_.resize(size_t(target * half_));
  for (int64_t p = n_positions_; p < target; ++p) {
    for (int64_t i = 0; i < half_; ++i) {
      const double angle = double(p) * inv_freq_[size_t(i)];
      cos_[size_t(p * half_ + i)] = float(std::cos(angle));
      sin_[size_t(p * half_ + i)] = float(std::sin(angle));
    }
  }
  n_positions_ = target;
}

}  // namespace ltri
