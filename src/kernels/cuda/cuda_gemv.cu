// The decode GEMV of the CUDA backend: one token's activations times a bf16 weight matrix.
// cuBLAS needs both inputs in bf16, so a GEMM with n = 1 costs a rounding kernel plus the GEMM
// launch; decode runs four of them per layer, and every launch is time when a token's whole
// layer takes ~0.2 ms. Here the rounding happens in registers as the weights stream past:
// x is rounded to bf16 exactly as launch_f32_to_bf16 rounds it, the products are exact in f32,
// so the result differs from the cuBLAS path only in the order of the f32 sums.
// Bound by memory bandwidth: each weight byte is read once, x (k floats) comes from L1/L2.
// A block of 256 threads takes 4 rows and its threads share each row's k, so the grid has m / 4
// short blocks. The kernel before it gave each warp two whole rows: at m = 4096 (o_proj,
// down_proj) its 256 blocks filled under a quarter of the H200's warp slots, and Nsight Compute
// measured 50-64% of the DRAM bandwidth on those GEMVs (gate_up, m = 28672: 80%). 8B decode
// at 16K, tg128 on the H200: 142.68 and 143.58 tok/s before, 152.28 and 153.06 with 4 rows a
// block (2 rows: 153.26, 8 rows: 150.29; docs/performance.md, tenth run).
// Checked against the CPU in tests/kernels/test_cuda_bf16.cpp.
#include <algorithm>

#include "kernels/cuda/cuda_check.hpp"
#include "kernels/cuda/cuda_kernels.hpp"

namespace ltri::cuda {

namespace {

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

// w (m, k) bf16 bits, row-major; x (k) f32; out (m) f32. A block of kSplitThreads threads
// takes Rows rows and its threads share each row's k (thread t reads 16-byte pieces t, t +
// kSplitThreads, ...); each x piece is loaded once for the Rows rows. Sums: per thread, then per
// warp, then over the warps through shared memory. Vec: k % 8 == 0 and w, x 16-byte aligned,
// so every thread reads whole 16-byte pieces of a row; else one element at a time.
constexpr int kSplitThreads = 256;
constexpr int kRowsPerBlock = 4;

template <int Rows, bool Vec>
__global__ void __launch_bounds__(kSplitThreads) gemv_bf16_split_kernel(const uint16_t* __restrict__ w,
                                                                          const float* __restrict__ x, int64_t k,
                                                                          int64_t m, float* __restrict__ out) {
  const int64_t row0 = int64_t(blockIdx.x) * Rows;
  const int rows = int(min(int64_t(Rows), m - row0));
  // Rows past m read the last row again (their sums are not written).
  const uint16_t* wr[Rows];
#pragma unroll
  for (int r = 0; r < Rows; ++r) wr[r] = w + (row0 + min(r, rows - 1)) * k;
  float s[Rows];
#pragma unroll
  for (int r = 0; r < Rows; ++r) s[r] = 0.0f;
  if constexpr (Vec) {
    const float4* xv = reinterpret_cast<const float4*>(x);
    const int64_t pieces = k / 8;
#pragma unroll 2
    for (int64_t i = threadIdx.x; i < pieces; i += kSplitThreads) {
      uint4 a[Rows];
#pragma unroll
      for (int r = 0; r < Rows; ++r) a[r] = __ldg(reinterpret_cast<const uint4*>(wr[r]) + i);
      const float4 x0 = round4(__ldg(xv + 2 * i)), x1 = round4(__ldg(xv + 2 * i + 1));
#pragma unroll
      for (int r = 0; r < Rows; ++r) s[r] += dot8(a[r], x0, x1);
    }
  } else {
    for (int64_t i = threadIdx.x; i < k; i += kSplitThreads) {
      const float xi = round_bf16(x[i]);
#pragma unroll
      for (int r = 0; r < Rows; ++r) s[r] = fmaf(bf16_bits_to_f32(wr[r][i]), xi, s[r]);
    }
  }
  __shared__ float partial[kSplitThreads / 32][Rows];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
#pragma unroll
  for (int r = 0; r < Rows; ++r) {
    const float v = warp_sum(s[r]);
    if (lane == 0) partial[warp][r] = v;
  }
  __syncthreads();
  if (threadIdx.x < rows) {
    float t = 0.0f;
#pragma unroll
    for (int j = 0; j < kSplitThreads / 32; ++j) t += partial[j][threadIdx.x];
    out[row0 + threadIdx.x] = t;
  }
}

}  // namespace

void launch_gemv_bf16(const uint16_t* w, const float* x, int64_t k, int64_t m, float* out, cudaStream_t stream) {
  if (m <= 0) return;
  const int64_t blocks = (m + kRowsPerBlock - 1) / kRowsPerBlock;
  if (blocks > 0x7fffffff) fail("gemv: ", m, " rows are more than one launch takes");
  const bool vec = k % 8 == 0 && reinterpret_cast<uintptr_t>(w) % 16 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0;
  if (vec) {
    gemv_bf16_split_kernel<kRowsPerBlock, true><<<unsigned(blocks), kSplitThreads, 0, stream>>>(w, x, k, m, out);
  } else {
    gemv_bf16_split_kernel<kRowsPerBlock, false><<<unsigned(blocks), kSplitThreads, 0, stream>>>(w, x, k, m, out);
  }
  LTRI_CUDA_CHECK_LAUNCH("gemv_bf16_split_kernel");
}

}  // namespace ltri::cuda
