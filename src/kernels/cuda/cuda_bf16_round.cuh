#pragma once
// f32 -> bf16 rounding on the device, the host's f32_to_bf16 (core/dtype.hpp) bit for bit:
// nearest even, NaN kept quiet. Shared by every kernel that writes bf16 activations.
#include <cstdint>

namespace ltri::cuda {

__device__ inline uint16_t round_to_bf16(float f) {
  uint32_t bits = __float_as_uint(f);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return uint16_t((bits >> 16) | 0x40);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return uint16_t(bits >> 16);
}

// A bf16 value (raw bits) widened to f32: exact.
__device__ inline float bf16_bits_to_f32(uint16_t bits) { return __uint_as_float(uint32_t(bits) << 16); }

}  // namespace ltri::cuda
