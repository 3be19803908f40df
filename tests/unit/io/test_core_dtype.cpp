// bf16 / f16 <-> f32 conversions, checked exhaustively over all 16-bit patterns against
// references written independently here (value formulas, midpoints between neighbours) and, where
// the compiler has it, against the hardware/libgcc _Float16 conversion.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "core/dtype.hpp"

namespace ltri {
namespace {

uint32_t bits_of(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}
float from_bits(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}

// IEEE binary16 value of a bit pattern by its definition (finite patterns only).
double f16_reference(uint16_t h) {
  const int sign = (h & 0x8000) ? -1 : 1;
  const int exponent = (h >> 10) & 0x1f;
  const int mantissa = h & 0x3ff;
  if (exponent == 0) return sign * std::ldexp(double(mantissa), -24);
  return sign * std::ldexp(double(1024 + mantissa), exponent - 25);
}

bool f16_is_nan(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0; }
bool bf16_is_nan(uint16_t h) { return (h & 0x7f80) == 0x7f80 && (h & 0x7f) != 0; }

TEST(CoreDtype, NamesSizesAndParsing) {
  for (DType t : {DType::F32, DType::BF16, DType::F16}) {
    DType back;
    ASSERT_TRUE(dtype_from_name(dtype_name(t), &back));
    EXPECT_EQ(back, t);
  }
  EXPECT_EQ(dtype_size(DType::F32), 4u);
  EXPECT_EQ(dtype_size(DType::BF16), 2u);
  EXPECT_EQ(dtype_size(DType::F16), 2u);
  DType unused;
  for (const char* other : {"I8", "F64", "f32", "", "BF16 "}) EXPECT_FALSE(dtype_from_name(other, &unused)) << other;
}

TEST(CoreDtype, Bf16SpecialValuesDecodeExactly) {
  EXPECT_EQ(bits_of(bf16_to_f32(0x0000)), 0x00000000u);
  EXPECT_EQ(bits_of(bf16_to_f32(0x8000)), 0x80000000u);  // -0 keeps its sign
  EXPECT_EQ(bf16_to_f32(0x0001), std::ldexp(1.0f, -133));  // smallest subnormal
  EXPECT_EQ(bf16_to_f32(0x007f), std::ldexp(127.0f, -133));  // largest subnormal
  EXPECT_EQ(bf16_to_f32(0x7f7f), 0x1.FEp127f);  // max finite
  EXPECT_EQ(bf16_to_f32(0x7f80), std::numeric_limits<float>::infinity());
  EXPECT_EQ(bf16_to_f32(0xff80), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(bf16_to_f32(0x7fc0)));
  EXPECT_EQ(bf16_to_f32(0x3f80), 1.0f);
  EXPECT_EQ(bf16_to_f32(0xc040), -3.0f);
}

TEST(CoreDtype, EveryBf16PatternRoundTripsThroughF32) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = bf16_to_f32(uint16_t(h));
    if (bf16_is_nan(uint16_t(h))) {
      EXPECT_TRUE(bf16_is_nan(f32_to_bf16(f))) << std::hex << h;
    } else {
      ASSERT_EQ(f32_to_bf16(f), h) << std::hex << h;
    }
  }
}

// Midpoints between neighbouring bf16 values are exact in f32 (9 significant bits); at a
// midpoint the even neighbour wins, one f32 ulp either side the nearer one does.
TEST(CoreDtype, F32ToBf16RoundsToNearestEvenAtEveryMidpoint) {
  for (uint32_t h = 0; h < 0x7f7f; ++h) {  // positive finite, h + 1 finite too
    for (uint32_t sign : {0u, 0x8000u}) {
      const uint16_t lo = uint16_t(h | sign), hi = uint16_t((h + 1) | sign);
      const uint32_t mid_bits = (uint32_t(h) << 16 | 0x8000u) | (sign << 16);
      const float mid = from_bits(mid_bits);
      ASSERT_EQ(double(mid), (double(bf16_to_f32(lo)) + double(bf16_to_f32(hi))) / 2) << std::hex << h;
      ASSERT_EQ(f32_to_bf16(mid), (h & 1) ? hi : lo) << std::hex << h;
      ASSERT_EQ(f32_to_bf16(from_bits(mid_bits - 1)), lo) << std::hex << h;
      ASSERT_EQ(f32_to_bf16(from_bits(mid_bits + 1)), hi) << std::hex << h;
    }
  }
}

TEST(CoreDtype, F32ToBf16SpecialValues) {
  EXPECT_EQ(f32_to_bf16(0.0f), 0x0000);
  EXPECT_EQ(f32_to_bf16(-0.0f), 0x8000);
  EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::infinity()), 0x7f80);
  EXPECT_EQ(f32_to_bf16(-std::numeric_limits<float>::infinity()), 0xff80);
  // FLT_MAX is past the midpoint above the largest bf16, so it rounds to infinity.
  EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::max()), 0x7f80);
  EXPECT_EQ(f32_to_bf16(from_bits(0x7f7f7fff)), 0x7f7f);  // just below that midpoint
  EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::denorm_min()), 0x0000);  // far below half a bf16 ulp
  EXPECT_EQ(f32_to_bf16(from_bits(0x00018000)), 0x0002);  // subnormal midpoint, odd below: up
  // NaNs stay NaN, including payloads whose top bits are clear (truncation would give inf).
  EXPECT_TRUE(bf16_is_nan(f32_to_bf16(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_TRUE(bf16_is_nan(f32_to_bf16(from_bits(0x7f800001))));
  EXPECT_TRUE(bf16_is_nan(f32_to_bf16(from_bits(0xff800001))));
  EXPECT_EQ(f32_to_bf16(from_bits(0xff800001)) & 0x8000, 0x8000);
}

TEST(CoreDtype, EveryF16PatternDecodesToItsDefinedValue) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = f16_to_f32(uint16_t(h));
    const int exponent = (h >> 10) & 0x1f;
    if (exponent == 31) {
      if (h & 0x3ff) {
        EXPECT_TRUE(std::isnan(f)) << std::hex << h;
      } else {
        EXPECT_EQ(f, (h & 0x8000) ? -INFINITY : INFINITY) << std::hex << h;
      }
    } else {
      ASSERT_EQ(double(f), f16_reference(uint16_t(h))) << std::hex << h;
      ASSERT_EQ(std::signbit(f), (h & 0x8000) != 0) << std::hex << h;  // -0 keeps its sign
    }
  }
}

TEST(CoreDtype, EveryF16PatternRoundTripsThroughF32) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const uint16_t back = f32_to_f16(f16_to_f32(uint16_t(h)));
    if (f16_is_nan(uint16_t(h))) {
      EXPECT_TRUE(f16_is_nan(back)) << std::hex << h;
    } else {
      ASSERT_EQ(back, h) << std::hex << h;
    }
  }
}

// Midpoints between neighbouring f16 values (12 significant bits) are exact in f32. Covers the
// subnormal range, the subnormal/normal boundary and the carry into the next exponent.
TEST(CoreDtype, F32ToF16RoundsToNearestEvenAtEveryMidpoint) {
  for (uint32_t h = 0; h < 0x7bff; ++h) {
    for (uint16_t sign : {uint16_t(0), uint16_t(0x8000)}) {
      const uint16_t lo = uint16_t(h | sign), hi = uint16_t((h + 1) | sign);
      const double mid_exact = (f16_reference(lo) + f16_reference(hi)) / 2;
      const float mid = float(mid_exact);
      ASSERT_EQ(double(mid), mid_exact) << std::hex << h;
      ASSERT_EQ(f32_to_f16(mid), (h & 1) ? hi : lo) << std::hex << h;
      ASSERT_EQ(f32_to_f16(std::nextafter(mid, 0.0f)), lo) << std::hex << h;
      ASSERT_EQ(f32_to_f16(std::nextafter(mid, sign ? -INFINITY : INFINITY)), hi) << std::hex << h;
    }
  }
}

TEST(CoreDtype, F32ToF16SpecialValues) {
  EXPECT_EQ(f32_to_f16(0.0f), 0x0000);
  EXPECT_EQ(f32_to_f16(-0.0f), 0x8000);
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7bff);
  EXPECT_EQ(f32_to_f16(std::nextafter(65520.0f, 0.0f)), 0x7bff);
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00);  // midpoint to the next (infinite) step: ties to even
  EXPECT_EQ(f32_to_f16(-1e9f), 0xfc00);
  EXPECT_EQ(f32_to_f16(std::numeric_limits<float>::infinity()), 0x7c00);
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -24)), 0x0001);   // smallest subnormal
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -25)), 0x0000);   // half of it: ties to even (0)
  EXPECT_EQ(f32_to_f16(std::ldexp(1.5f, -25)), 0x0001);   // above half: up
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -26)), 0x0000);
  EXPECT_EQ(f32_to_f16(-std::ldexp(1.0f, -30)), 0x8000);  // underflow keeps the sign
  EXPECT_EQ(f32_to_f16(std::numeric_limits<float>::denorm_min()), 0x0000);
  EXPECT_TRUE(f16_is_nan(f32_to_f16(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_TRUE(f16_is_nan(f32_to_f16(from_bits(0x7f800001))));  // payload below f16's mantissa bits
}

#if defined(__FLT16_MANT_DIG__)
// GCC provides _Float16 with correctly rounded conversions: an outside reference for random
// inputs across the whole f32 range.
TEST(CoreDtype, F32ToF16MatchesCompilerFloat16OnRandomInputs) {
  std::mt19937 rng(1234);
  for (int i = 0; i < 2000000; ++i) {
    uint32_t b = rng();
    if (i % 2) b = (b & 0x80000000u) | (0x33000000u + b % 0x15000000u);  // 2^-25 .. 2^17: f16's range
    const float f = from_bits(b);
    if (std::isnan(f)) continue;
    const _Float16 h = static_cast<_Float16>(f);
    uint16_t want;
    std::memcpy(&want, &h, 2);
    ASSERT_EQ(f32_to_f16(f), want) << std::hex << b;
  }
}
#endif

TEST(CoreDtype, ConvertToF32ReadsUnalignedSourcesOfEveryType) {
  const std::vector<float> values = {0.0f, -1.5f, 3.25f, 65504.0f, -0.0f, 1e-3f, 7.0f};
  for (DType t : {DType::F32, DType::BF16, DType::F16}) {
    std::vector<uint8_t> encoded(values.size() * dtype_size(t));
    for (size_t i = 0; i < values.size(); ++i) {
      if (t == DType::F32) {
        std::memcpy(&encoded[4 * i], &values[i], 4);
      } else {
        const uint16_t h = t == DType::BF16 ? f32_to_bf16(values[i]) : f32_to_f16(values[i]);
        std::memcpy(&encoded[2 * i], &h, 2);
      }
    }
    for (size_t offset = 0; offset < 4; ++offset) {
      std::vector<uint8_t> buffer(offset + encoded.size() + 1);
      std::memcpy(buffer.data() + offset, encoded.data(), encoded.size());
      std::vector<float> out(values.size());
      convert_to_f32(buffer.data() + offset, t, out.data(), out.size());
      for (size_t i = 0; i < values.size(); ++i) {
        uint16_t h;
        std::memcpy(&h, &encoded[2 * i], 2);
        const float want = t == DType::F32 ? values[i] : t == DType::BF16 ? bf16_to_f32(h) : f16_to_f32(h);
        EXPECT_EQ(bits_of(out[i]), bits_of(want)) << dtype_name(t) << " offset " << offset << " i " << i;
      }
    }
    convert_to_f32(encoded.data(), t, nullptr, 0);  // zero elements: nothing touched
  }
}

TEST(CoreDtype, ConvertToF32LargeBuffersMatchScalarConversion) {
  // Above the size where the conversion is split across threads.
  const size_t n = (1u << 17) + 3;
  std::vector<uint16_t> raw(n);
  for (size_t i = 0; i < n; ++i) raw[i] = uint16_t(i * 2654435761u >> 7);
  std::vector<float> out(n);
  convert_to_f32(raw.data(), DType::F16, out.data(), n);
  for (size_t i = 0; i < n; ++i) {
    if (f16_is_nan(raw[i])) continue;
    ASSERT_EQ(bits_of(out[i]), bits_of(f16_to_f32(raw[i]))) << i;
  }
  convert_to_f32(raw.data(), DType::BF16, out.data(), n);
  for (size_t i = 0; i < n; ++i) ASSERT_EQ(bits_of(out[i]), bits_of(bf16_to_f32(raw[i]))) << i;
}

}  // namespace
}  // namespace ltri
