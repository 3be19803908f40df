#include "core/dtype.hpp"

#include <cmath>

#include "core/error.hpp"

namespace ltri {

namespace {

uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

}  // namespace

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::BF16: return "BF16";
    case DType::F16: return "F16";
    case DType::I8: return "I8";
  }
  return "?";
}

bool dtype_from_name(std::string_view name, DType* out) {
  if (name == "F32") { *out = DType::F32; return true; }
  if (name == "BF16") { *out = DType::BF16; return true; }
  if (name == "F16") { *out = DType::F16; return true; }
  return false;
}

float f16_to_f32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000) << 16;
  const uint32_t exponent = (h >> 10) & 0x1f;
  const uint32_t mantissa = h & 0x3ff;
  uint32_t bits;
  if (exponent == 0) {
    if (mantissa == 0) {
      bits = sign;
    } else {  // subnormal half: value = mantissa * 2^-24, exact in f32
      float f = std::ldexp(float(mantissa), -24);
      std::memcpy(&bits, &f, 4);
      bits |= sign;
    }
  } else if (exponent == 31) {
    bits = sign | 0x7f800000u | (mantissa << 13);
  } else {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t f32_to_f16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  const uint16_t sign = uint16_t((bits >> 16) & 0x8000);
  const float a = std::fabs(f);
  if (std::isnan(f)) return sign | 0x7e00;
  if (a >= 65520.0f) return sign | 0x7c00;  // rounds to infinity
  if (a < 6.103515625e-05f) {               // subnormal or zero: multiples of 2^-24
    return sign | uint16_t(std::nearbyint(a * 16777216.0f));
  }
  uint32_t abits = bits & 0x7fffffffu;
  // Re-bias the exponent and round the mantissa to 10 bits, nearest even.
  uint32_t rounded = abits + 0xfffu + ((abits >> 13) & 1u);
  return sign | uint16_t(((rounded >> 13) - (112u << 10)) & 0x7fff);
}

void convert_to_f32(const void* src, DType from, float* dst, size_t n) {
  if (n == 0) return;  // zero-size tensors: dst may be null, and memcpy(null, ..) is undefined
  switch (from) {
    case DType::F32:
      std::memcpy(dst, src, n * 4);
      return;
    // src may be unaligned (safetensors does not align its data section): each element is
    // copied out with memcpy, which compiles to a plain load where that is allowed.
    case DType::BF16: {
      const uint8_t* s = static_cast<const uint8_t*>(src);
#pragma omp parallel for schedule(static) if (n > (1u << 16))
      for (size_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(load_u16(s + 2 * i));
      return;
    }
    case DType::F16: {
      const uint8_t* s = static_cast<const uint8_t*>(src);
#pragma omp parallel for schedule(static) if (n > (1u << 16))
      for (size_t i = 0; i < n; ++i) dst[i] = f16_to_f32(load_u16(s + 2 * i));
      return;
    }
    case DType::I8:
      fail("convert_to_f32: I8 values need their scales (the context store dequantises them itself)");
  }
}

}  // namespace ltri
