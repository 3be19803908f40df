// row_block_means: means of blocks of rows of x (n, row), blocks counted back from the last row,
// for the KV policies' query means (LTRI_SPEC.md "Retrieval": the chunk's mean query, or the
// means of blocks of query_block queries). Computed where the queries are, so only the
// (n_blocks, row) means cross to the host, not the chunk's n rows (8 MB per layer and chunk
// at Llama-3-8B shape).
//
// One thread per (block, column): it adds its column's rows in row order in double and divides
// once, which is the host op's arithmetic (Backend::row_block_means in ops/backend.cpp) step
// for step, so CPU and CUDA means agree bit for bit and retrieval decisions do not depend on
// the device. A warp reads 32 consecutive floats of one row (coalesced). Geometry: grid.x over
// columns (kThreads per block), grid.y over row blocks. Bound by reading x once (n x row x 4 B)
// when the blocks give enough threads (query_block 32: 16 x 4096 threads for a 512-token chunk
// of an 8B model); the mean of all rows has only `row` threads, each walking n rows, so it is
// bound by load latency instead (tens of microseconds for 512 rows).
// Checked against the CPU op in tests/kernels/test_cuda_row_means.cpp.
#include <algorithm>

#include "kernels/cuda/cuda_check.hpp"
#include "kernels/cuda/cuda_kernels.hpp"

namespace ltri::cuda {

namespace {

constexpr int kThreads = 128;
constexpr int64_t kMaxGridY = 65535;

__global__ void row_block_means_kernel(const float* x, int64_t n, int64_t row, int64_t block, int64_t n_blocks,
                                       float* out) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= row) return;
  for (int64_t b = blockIdx.y; b < n_blocks; b += gridDim.y) {
    const int64_t last = n - b * block;
    const int64_t first = last > block ? last - block : 0;
    const float* column = x + c;
    double sum = 0.0;
#pragma unroll 8
    for (int64_t i = first; i < last; ++i) sum += double(column[i * row]);
    out[b * row + c] = float(sum / double(last - first));
  }
}

}  // namespace

void launch_row_block_means(const float* x, int64_t n, int64_t row, int64_t block, float* out, cudaStream_t stream) {
  if (n <= 0 || row <= 0 || block <= 0) return;
  const int64_t n_blocks = (n + block - 1) / block;
  const dim3 grid(unsigned((row + kThreads - 1) / kThreads), unsigned(std::min(n_blocks, kMaxGridY)));
  row_block_means_kernel<<<grid, kThreads, 0, stream>>>(x, n, row, block, n_blocks, out);
  LTRI_CUDA_CHECK_LAUNCH("row_block_means_kernel");
}

}  // namespace ltri::cuda
