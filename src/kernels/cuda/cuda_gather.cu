// A retrieved-KV load in one launch (Backend::gather_rows_stable on CUDA): every run of the
// batch is one row of the grid (blockIdx.y); its blocks stride over the run's values and write
// them to the run's destination, read either from device memory (units the retrieved buffer
// already held) or from the staged host bytes (units uploaded now: bf16 bits widened exactly,
// or int8 times its row's scale with one rounding, __fmul_rn, as the host default and
// int8_dequantize_kernel do). The results equal the per-run copies and uploads bit for bit.
// (An f32 store's rows are copied per run, straight from its page-locked slabs.)
// Checked in tests/kernels/test_cuda_host_kv.cpp.
#include <algorithm>

#include "kernels/cuda/cuda_check.hpp"
#include "kernels/cuda/cuda_kernels.hpp"

namespace ltri::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxRunsPerLaunch = 65535;  // gridDim.y's limit

__global__ void gather_rows_kernel(const unsigned char* staged, const GatherEntry* table, GatherSource host_dtype,
                                   int64_t scale_width) {
  const GatherEntry e = table[blockIdx.y];
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
