#pragma once
// Element types of weights and activations, and scalar conversions between them. I8 is the
// context store's int8 K/V (--attn-host-kv int8, with an f32 scale per row kept apart), never a
// weight: dtype_from_name does not parse it.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace ltri {

enum class DType { F32, BF16, F16, I8 };

inline size_t dtype_size(DType t) { return t == DType::F32 ? 4 : t == DType::I8 ? 1 : 2; }
const char* dtype_name(DType t);  // "F32", "BF16", "F16", "I8" (safetensors spelling)
// Parses the safetensors spelling; returns false for anything else (I8, F64, ...).
bool dtype_from_name(std::string_view name, DType* out);

inline float bf16_to_f32(uint16_t h) {
  uint32_t bits = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Round to nearest even, NaN kept NaN (quiet).
inline uint16_t f32_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return uint16_t((bits >> 16) | 0x40);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return uint16_t(bits >> 16);
}

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

// Converts n elements of type `from` at src into f32 at dst.
void convert_to_f32(const void* src, DType from, float* dst, size_t n);

}  // namespace ltri
