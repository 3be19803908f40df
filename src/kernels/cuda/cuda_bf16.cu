// bf16 kernels of the CUDA backend: activations rounded to bf16 for the bf16 GEMM, the
// embedding lookup from a bf16 table, and bf16 K/V from the host store widened to f32. The rounding is the host's f32_to_bf16 (core/dtype.hpp)
// bit for bit (nearest even, NaN kept quiet), so a test can predict every rounded value. Both are
// bound by memory bandwidth (6 or 8 bytes per element) and small next to the GEMMs they feed.
// Checked in tests/kernels/test_cuda_bf16.cpp.
#include <algorithm>

#include "kernels/cuda/cuda_check.hpp"
#include "kernels/cuda/cuda_kernels.hpp"

namespace ltri::cuda {

namespace {

constexpr int kThreads = 256;

unsigned grid_for(int64_t count) {
  const int64_t blocks = (count + kThreads - 1) / kThreads;
  return unsigned(std::max<int64_t>(1, std::min<int64_t>(blocks, 65535)));
}

__device__ inline uint16_t round_to_bf16(float f) {
  uint32_t bits = __float_as_uint(f);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return uint16_t((bits >> 16) | 0x40);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return uint16_t(bits >> 16);
}

__global__ void f32_to_bf16_kernel(const float* x, uint16_t* out, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    out[i] = round_to_bf16(x[i]);
  }
}

__global__ void bf16_to_f32_kernel(const uint16_t* x, float* out, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    out[i] = __uint_as_float(uint32_t(x[i]) << 16);
  }
}

__global__ void embed_bf16_kernel(const uint16_t* table, const int32_t* ids, int64_t n, int64_t dim, float* out) {
  for (int64_t row = blockIdx.x; row < n; row += gridDim.x) {
    const uint16_t* src = table + int64_t(ids[row]) * dim;
    float* dst = out + row * dim;
    for (int64_t d = threadIdx.x; d < dim; d += blockDim.x) dst[d] = __uint_as_float(uint32_t(src[d]) << 16);
  }
}

}  // namespace

void launch_f32_to_bf16(const float* x, uint16_t* out, int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  f32_to_bf16_kernel<<<grid_for(n), kThreads, 0, stream>>>(x, out, n);
  LTRI_CUDA_CHECK_LAUNCH("f32_to_bf16_kernel");
}

void launch_bf16_to_f32(const uint16_t* x, float* out, int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  bf16_to_f32_kernel<<<grid_for(n), kThreads, 0, stream>>>(x, out, n);
  LTRI_CUDA_CHECK_LAUNCH("bf16_to_f32_kernel");
}

void launch_embed_bf16(const uint16_t* table, const int32_t* ids, int64_t n, int64_t dim, float* out,
                       cudaStream_t stream) {
  if (n <= 0) return;
  embed_bf16_kernel<<<unsigned(std::min<int64_t>(n, 65535)), kThreads, 0, stream>>>(table, ids, n, dim, out);
  LTRI_CUDA_CHECK_LAUNCH("embed_bf16_kernel");
}

}  // namespace ltri::cuda
