// A retrieved-KV load in one launch (Backend::gather_rows_stable on CUDA): every run of the
// batch is one row of the grid (blockIdx.y); its blocks stride over the run's values and write
// them to the run's destination, read either from device memory (units the retrieved buffer
// already held), from the staged host bytes (units uploaded now: bf16 bits widened exactly,
// or int8 times its row's scale with one rounding, __fmul_rn, as the host default and
// int8_dequantize_kernel do), or straight from page-locked host memory mapped into the
// device's address space (the context store's slabs: no packing on the host, no staging copy).
// The results equal the per-run copies and uploads bit for bit.
// (An f32 store's rows are copied per run, straight from its page-locked slabs.)
// Checked in tests/kernels/test_cuda_host_kv.cpp.
#include <algorithm>

#include "kernels/cuda/cuda_check.hpp"
#include "kernels/cuda/cuda_kernels.hpp"

namespace ltri::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxRunsPerLaunch = 65535;  // gridDim.y's limit

// A run read straight from mapped host memory, 16 bytes a thread (one link transaction of a
// warp covers 512 contiguous bytes): the same values as the staged path, element for element.
__device__ void gather_mapped(const GatherEntry& e, const unsigned char* staged, GatherSource host_dtype,
                              int64_t scale_width) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  const uint4* src = static_cast<const uint4*>(e.mapped_values);
  float4* dst = reinterpret_cast<float4*>(e.dst);
  if (host_dtype == GatherSource::I8) {
    const float* scales = reinterpret_cast<const float*>(staged + e.scales_offset);
    const int64_t vectors = e.n_values / 16;
    for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < vectors; k += stride) {
      const uint4 raw = src[k];
      const float scale = scales[k * 16 / scale_width];
      const uint32_t words[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
      for (int w = 0; w < 4; ++w) {
        const uint32_t b = words[w];  // little endian: value 4w + j in byte j
        dst[k * 4 + w] = make_float4(__fmul_rn(float(int8_t(b & 0xff)), scale), __fmul_rn(float(int8_t((b >> 8) & 0xff)), scale),
                                     __fmul_rn(float(int8_t((b >> 16) & 0xff)), scale), __fmul_rn(float(int8_t(b >> 24)), scale));
      }
    }
  } else {
    const int64_t vectors = e.n_values / 8;
    for (int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; k < vectors; k += stride) {
      const uint4 raw = src[k];  // eight bf16, the first in the low half of raw.x
      dst[k * 2] = make_float4(__uint_as_float(raw.x << 16), __uint_as_float(raw.x & 0xffff0000u),
                               __uint_as_float(raw.y << 16), __uint_as_float(raw.y & 0xffff0000u));
      dst[k * 2 + 1] = make_float4(__uint_as_float(raw.z << 16), __uint_as_float(raw.z & 0xffff0000u),
                                   __uint_as_float(raw.w << 16), __uint_as_float(raw.w & 0xffff0000u));
    }
  }
}

__global__ void gather_rows_kernel(const unsigned char* staged, const GatherEntry* table, GatherSource host_dtype,
                                   int64_t scale_width) {
  const GatherEntry e = table[blockIdx.y];
  if (e.mapped_values) {
    gather_mapped(e, staged, host_dtype, scale_width);
    return;
  }
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < e.n_values; i += stride) {
    float x;
    if (e.device_src) {
      x = e.device_src[i];
    } else if (host_dtype == GatherSource::BF16) {
      x = __uint_as_float(uint32_t(reinterpret_cast<const uint16_t*>(staged + e.values_offset)[i]) << 16);
    } else {
      const float scale = reinterpret_cast<const float*>(staged + e.scales_offset)[i / scale_width];
      x = __fmul_rn(float(reinterpret_cast<const int8_t*>(staged + e.values_offset)[i]), scale);
    }
    e.dst[i] = x;
  }
}

}  // namespace

void launch_gather_rows(const unsigned char* staged, const GatherEntry* table, int64_t n_runs, int64_t max_values,
                        GatherSource host_dtype, int64_t scale_width, cudaStream_t stream) {
  if (n_runs <= 0 || max_values <= 0) return;
  // Enough blocks per run that its values take a few strides: runs are a few thousand to a few
  // hundred thousand values (units of a few tokens x KV heads x head_dim).
  const int64_t blocks_x = std::clamp<int64_t>((max_values + 4 * kThreads - 1) / (4 * kThreads), 1, 64);
  for (int64_t first = 0; first < n_runs; first += kMaxRunsPerLaunch) {
    const int64_t runs = std::min(kMaxRunsPerLaunch, n_runs - first);
    const dim3 grid{unsigned(blocks_x), unsigned(runs)};
    gather_rows_kernel<<<grid, kThreads, 0, stream>>>(staged, table + first, host_dtype, scale_width);
    LTRI_CUDA_CHECK_LAUNCH("gather_rows_kernel");
  }
}

}  // namespace ltri::cuda
