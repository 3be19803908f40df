// CudaBackend::row_block_means (cuda_row_means.cu) against the CPU backend's op (the default
// Backend::row_block_means, itself checked against the definition in
// tests/unit/kernels/test_row_block_means.cpp). Both add each column's rows in row order in
// double and divide once, so the means must agree bit for bit; and only the means may cross
// to the host. Every test skips when no GPU is present.
#include <gtest/gtest.h>

#include "cuda_test_util.hpp"
#include "kernels/cpu/cpu_backend.hpp"
#include "kernels/cuda/cuda_backend.hpp"

namespace ltri {
namespace {

using test::randn;
using test::to_device;

TEST(CudaRowMeans, matches_cpu_bit_for_bit_and_downloads_only_the_means) {
  LTRI_SKIP_WITHOUT_CUDA();
  CudaBackend gpu(0);
  CpuBackend cpu(1);
  // (n, row, block): an 8B model's chunk in blocks of 32 and its mean query, a decode step,
  // odd n with a short last block, block > n, block 1, a row that is not a multiple of the
  // kernel's thread block, and more row blocks than one grid dimension holds (65535).
  const int64_t cases[][3] = {{512, 4096, 32}, {512, 4096, 512}, {1, 4096, 32}, {37, 384, 8}, {37, 384, 1000},
                              {101, 130, 1},   {5, 3, 2},        {513, 257, 32}, {70001, 3, 1}};
  uint32_t seed = 1;
  for (const auto& s : cases) {
    const int64_t n = s[0], row = s[1], block = s[2];
    const int64_t n_blocks = (n + block - 1) / block;
    const auto x = randn(size_t(n * row), seed++);
    std::vector<float> want(size_t(n_blocks * row)), got(want.size(), -1.0f);
    cpu.row_block_means(x.data(), n, row, block, want.data());
    BackendBuffer dx = to_device(gpu, x);
    const uint64_t downloaded_before = gpu.stats().d2h_bytes;
    gpu.row_block_means(dx.data(), n, row, block, got.data());
    EXPECT_EQ(gpu.stats().d2h_bytes - downloaded_before, uint64_t(n_blocks * row) * sizeof(float))
        << "n " << n << " row " << row << " block " << block;
    size_t mismatches = 0, first = 0;
    for (size_t i = got.size(); i-- > 0;) {
      if (got[i] != want[i]) ++mismatches, first = i;
    }
    EXPECT_EQ(mismatches, 0u) << "n " << n << " row " << row << " block " << block << ": first at " << first << " got "
                              << got[first] << " want " << want[first] << ", scaled max error "
                              << test::scaled_max_error(got, want);
  }
}

}  // namespace
}  // namespace ltri
