// The decode GEMV of the CUDA backend: one token's activations times a bf16 weight matrix.
// cuBLAS needs both inputs in bf16, so a GEMM with n = 1 costs a rounding kernel plus the GEMM
// launch; decode runs seven of them per layer, and every launch is time when a token's whole
// layer takes ~0.3 ms. Here the rounding happens in registers as the weights stream past:
// x is rounded to bf16 exactly as launch_f32_to_bf16 rounds it, the products are exact in f32,
// so the result differs from the cuBLAS path only in the order of the f32 sums.
// Bound by memory bandwidth: each weight byte is read once, x (k floats) stays in L1. Measured on
// the H200 over the 8B decode (LTRI_PROFILE=gpu): 24.4 us per GEMV on average, ~57% of the
// memory bandwidth; one row per warp in blocks of 4 warps with 8 loads in flight measured slower
// (26.4 us), so two rows per warp stay.
// Checked against the CPU in tests/kernels/test_cuda_bf16.cpp.
#include <algorithm>

#include "kernels/cuda/cuda_check.hpp"
#include "kernels/cuda/cuda_kernels.hpp"

namespace ltri::cuda {

namespace {

constexpr int kWarpsPerBlock = 8;
constexpr int kRowsPerWarp = 2;  // two rows per warp: each x load serves two weight rows

__device__ inline float bf16_bits_to_f32(uint32_t bits) { return __uint_as_float(bits << 16); }

// x rounded to bf16 (nearest even, NaN kept quiet: as core/dtype.hpp's f32_to_bf16) and
// widened back, so the product with a bf16 weight is exact in f32.
__device__ inline float round_bf16(float f) {
  uint32_t bits = __float_as_uint(f);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return __uint_as_float(((bits >> 16) | 0x40) << 16);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return __uint_as_float(bits & 0xffff0000u);
}

// Eight bf16 weights (one 16-byte load) times eight rounded x values.
__device__ inline float dot8(uint4 w, float4 a, float4 b) {
  float s = bf16_bits_to_f32(w.x & 0xffffu) * a.x;
  s = fmaf(bf16_bits_to_f32(w.x >> 16), a.y, s);
  s = fmaf(bf16_bits_to_f32(w.y & 0xffffu), a.z, s);
  s = fmaf(bf16_bits_to_f32(w.y >> 16), a.w, s);
  s = fmaf(bf16_bits_to_f32(w.z & 0xffffu), b.x, s);
  s = fmaf(bf16_bits_to_f32(w.z >> 16), b.y, s);
  s = fmaf(bf16_bits_to_f32(w.w & 0xffffu), b.z, s);
  s = fmaf(bf16_bits_to_f32(w.w >> 16), b.w, s);
  return s;
}

__device__ inline float4 round4(float4 v) { return {round_bf16(v.x), round_bf16(v.y), round_bf16(v.z), round_bf16(v.w)}; }

__device__ inline float warp_sum(float v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// w (m, k) bf16 bits, row-major; x (k) f32; out (m) f32. Vec: k % 8 == 0 and w, x 16-byte
// aligned, so every lane reads whole 16-byte pieces of a row; else one element at a time.
template <bool Vec>
__global__ void gemv_bf16_kernel(const uint16_t* __restrict__ w, const float* __restrict__ x, int64_t k, int64_t m,
                                 float* __restrict__ out) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int64_t row0 = (int64_t(blockIdx.x) * kWarpsPerBlock + warp) * kRowsPerWarp;
  if (row0 >= m) return;
  const bool two = row0 + 1 < m;
  const uint16_t* w0 = w + row0 * k;
  const uint16_t* w1 = two ? w0 + k : w0;
  float s0 = 0.0f, s1 = 0.0f;
  if constexpr (Vec) {
    const uint4* w0v = reinterpret_cast<const uint4*>(w0);
    const uint4* w1v = reinterpret_cast<const uint4*>(w1);
    const float4* xv = reinterpret_cast<const float4*>(x);
    const int64_t pieces = k / 8;
#pragma unroll 4
    for (int64_t i = lane; i < pieces; i += 32) {
      const uint4 a = __ldg(w0v + i), b = __ldg(w1v + i);
      const float4 x0 = round4(__ldg(xv + 2 * i)), x1 = round4(__ldg(xv + 2 * i + 1));
      s0 += dot8(a, x0, x1);
      s1 += dot8(b, x0, x1);
    }
  } else {
    for (int64_t i = lane; i < k; i += 32) {
      const float xi = round_bf16(x[i]);
      s0 = fmaf(bf16_bits_to_f32(w0[i]), xi, s0);
      s1 = fmaf(bf16_bits_to_f32(w1[i]), xi, s1);
    }
  }
  s0 = warp_sum(s0);
  s1 = warp_sum(s1);
  if (lane == 0) {
    out[row0] = s0;
    if (two) out[row0 + 1] = s1;
  }
}

}  // namespace

void launch_gemv_bf16(const uint16_t* w, const float* x, int64_t k, int64_t m, float* out, cudaStream_t stream) {
  if (m <= 0) return;
  const int64_t rows_per_block = int64_t(kWarpsPerBlock) * kRowsPerWarp;
  const int64_t blocks = (m + rows_per_block - 1) / rows_per_block;
  if (blocks > 0x7fffffff) fail("gemv: ", m, " rows are more than one launch takes");
  const bool vec = k % 8 == 0 && reinterpret_cast<uintptr_t>(w) % 16 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0;
  if (vec) {
    gemv_bf16_kernel<true><<<unsigned(blocks), kWarpsPerBlock * 32, 0, stream>>>(w, x, k, m, out);
  } else {
    gemv_bf16_kernel<false><<<unsigned(blocks), kWarpsPerBlock * 32, 0, stream>>>(w, x, k, m, out);
  }
  LTRI_CUDA_CHECK_LAUNCH("gemv_bf16_kernel");
}

}  // namespace ltri::cuda
