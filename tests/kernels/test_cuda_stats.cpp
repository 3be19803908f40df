// CudaBackend::stats(): every upload and download counted in bytes, alloc/free moving
// device_bytes by exactly the bytes asked for, and the peak kept until reset_peak().
// Skips when no GPU is present.
#include <gtest/gtest.h>

#include <vector>

#include "cuda_test_util.hpp"
#include "kernels/cuda/cuda_backend.hpp"

namespace ltri {
namespace {

TEST(CudaStats, upload_download_and_alloc_free_are_counted) {
  LTRI_SKIP_WITHOUT_CUDA();
  CudaBackend gpu(0);
  const BackendStats before = gpu.stats();
  EXPECT_EQ(before.h2d_bytes, 0u);
  EXPECT_EQ(before.d2h_bytes, 0u);

  constexpr size_t n = 12345;
  float* buf = gpu.alloc(n);
  EXPECT_EQ(gpu.stats().device_bytes, before.device_bytes + 4 * n);
  std::vector<float> host(n, 1.5f);
  gpu.upload(buf, host.data(), n);
  EXPECT_EQ(gpu.stats().h2d_bytes, 4 * n);
  gpu.upload(buf, host.data(), 100);
  EXPECT_EQ(gpu.stats().h2d_bytes, 4 * n + 400);
  gpu.download(host.data(), buf, 7);
  EXPECT_EQ(gpu.stats().d2h_bytes, 28u);

  float* more = gpu.alloc(1000);
  const size_t peak = before.device_bytes + 4 * n + 4000;
  EXPECT_EQ(gpu.stats().device_bytes, peak);
  EXPECT_EQ(gpu.stats().device_peak_bytes, peak);
  gpu.free(buf);
  EXPECT_EQ(gpu.stats().device_bytes, before.device_bytes + 4000);
  EXPECT_EQ(gpu.stats().device_peak_bytes, peak);
  gpu.reset_peak();
  EXPECT_EQ(gpu.stats().device_peak_bytes, before.device_bytes + 4000);
  gpu.free(more);
  EXPECT_EQ(gpu.stats().device_bytes, before.device_bytes);
}

}  // namespace
}  // namespace ltri
