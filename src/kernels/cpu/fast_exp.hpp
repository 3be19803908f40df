#pragma once
// exp for the attention softmax, written so that GCC vectorises a loop over a row (no calls,
// no branches, integer tricks through std::bit_cast): std::exp is a scalar libm call, and at
// long contexts the softmax evaluates it (queries x visible keys x heads) times per layer.
//
// exp(x) = 2^k * e^r with k = round(x / ln 2) and r = x - k ln 2 in [-ln2/2, ln2/2]; ln 2 is
// split in two (Cody-Waite) so that k * ln2_hi is exact; e^r is its degree-7 Taylor
// polynomial (truncation < 6e-9 relative, below half an ulp), and 2^k is added straight into
// the exponent bits. Accurate to a few ulp on [-87.3, 88] (checked against std::exp in
// tests/unit/kernels/test_fast_exp.cpp). Inputs are clamped to [-87.3, 88]: below, the result
// is exp(-87.3) ~ 1.2e-38 (the true value is smaller still: irrelevant next to a softmax
// row's max term, 1); above, exp(88).
#include <bit>
#include <cstdint>

// Marks a hot CPU loop to be compiled once per instruction set (AVX-512, AVX2+FMA, baseline
// x86-64), the best one chosen when the program loads (GCC/Clang target_clones, an ifunc): the
// build targets baseline x86-64, whose 4-wide SSE2 code runs these loops 4-5x slower.
#if defined(__x86_64__) && defined(__GNUC__)
#define LTRI_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define LTRI_VECTOR_CLONES
#endif

namespace ltri {

inline float fast_exp(float x) {
  constexpr float kMin = -87.3f, kMax = 88.0f;
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kLn2Hi = 0.693359375f;      // 355/512: k * kLn2Hi is exact for |k| <= 128
  constexpr float kLn2Lo = -2.12194440e-4f;   // ln 2 - kLn2Hi
  constexpr float kRound = 12582912.0f;       // 1.5 * 2^23: adding it rounds to an integer
  // Clamp to [kMin, kMax] on the bit patterns: read as unsigned, every float below kMin
  // (negative, larger magnitude, -inf) has larger bits than kMin; read as signed, every float
  // above kMax (+inf, NaN) has larger bits than kMax. (With float selects GCC threads the
  // constant path through the polynomial and then, under its default -ftrapping-math, refuses
  // to vectorise the loop.)
  const uint32_t ux = std::bit_cast<uint32_t>(x);
  const uint32_t ux_low = ux > std::bit_cast<uint32_t>(kMin) ? std::bit_cast<uint32_t>(kMin) : ux;
  const int32_t sx = std::bit_cast<int32_t>(ux_low);
  const float xc = std::bit_cast<float>(sx > std::bit_cast<int32_t>(kMax) ? std::bit_cast<int32_t>(kMax) : sx);
  const float shifted = xc * kLog2e + kRound;  // k sits in the low mantissa bits
  const int32_t k = std::bit_cast<int32_t>(shifted) - std::bit_cast<int32_t>(kRound);
  const float kf = shifted - kRound;
  const float r = (xc - kf * kLn2Hi) - kf * kLn2Lo;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  // 2^k * p: k added to the exponent field (p in [0.7, 1.42] keeps it in range for k >= -126).
  return std::bit_cast<float>(std::bit_cast<int32_t>(p) + int32_t(uint32_t(k) << 23));
}

// Row kernels of the softmax (fast_exp.cpp, LTRI_VECTOR_CLONES).

// row[c] = exp(row[c] - shift) for c in [0, n); returns their sum (accumulated in f32 lanes:
// the terms are in [0, 1] for shift = the row max, so the relative error stays ~1e-7 * log n).
float exp_shifted_sum(float* row, int64_t n, float shift);

// max(init, row[0], ..., row[n-1]).
float row_max(const float* row, int64_t n, float init);

}  // namespace ltri
