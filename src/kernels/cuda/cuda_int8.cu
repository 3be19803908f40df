// The int8 host store's K/V dequantised on the GPU: Backend::upload_int8_stable uploads the
// int8 values and one f32 scale per (token, KV head) row, about a quarter of the f32 bytes over
// the link, and this kernel widens them into the retrieved f32 buffer. One multiply per value,
// rounded to nearest (__fmul_rn: never contracted), so the result equals the host default's
// bit for bit. Bound by memory bandwidth (5 bytes per value). Checked in
// tests/kernels/test_cuda_host_kv.cpp.
#include <algorithm>

#include "kernels/cuda/cuda_check.hpp"
#include "kernels/cuda/cuda_kernels.hpp"

namespace ltri::cuda {

namespace {

constexpr int kThreads = 256;

__global__ void int8_dequantize_kernel(const int8_t* values, const float* scales, int64_t width, int64_t n,
                                       float* out) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    out[i] = __fmul_rn(float(values[i]), scales[i / width]);
  }
}

}  // namespace

void launch_int8_dequantize(const int8_t* values, const float* scales, int64_t n_rows, int64_t width, float* out,
                            cudaStream_t stream) {
  const int64_t n = n_rows * width;
  if (n <= 0) return;
  const int64_t blocks = std::min<int64_t>((n + kThreads - 1) / kThreads, 65535);
  int8_dequantize_kernel<<<unsigned(blocks), kThreads, 0, stream>>>(values, scales, width, n, out);
  LTRI_CUDA_CHECK_LAUNCH("int8_dequantize_kernel");
}

}  // namespace ltri::cuda
