#pragma once
// RoPE on host vectors, for the policies' own host-side arithmetic (retrieval scores, the
// segmentation band). Same rotate_half convention as the attention op, from the same table.
#include <cstdint>

#include "ops/rope_table.hpp"

namespace ltri {

// Rotates `heads` consecutive vectors of head_dim floats in place to `position`.
inline void rope_rotate_host(float* x, int64_t heads, int64_t head_dim, int64_t position,
                             const RopeTable& table) {
  const int64_t half = head_dim / 2;
  const float* c = table.cos(position);
  const float* s = table.sin(position);
  for (int64_t h = 0; h < heads; ++h) {
    float* v = x + h * head_dim;
    for (int64_t i = 0; i < half; ++i) {
      const float a = v[i], b = v[i + half];
      v[i] = a * c[i] - b * s[i];
      v[i + half] = b * c[i] + a * s[i];
    }
  }
}

}  // namespace ltri
