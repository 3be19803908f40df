// CudaBackend::download_async and download_fence: the copy runs on a second stream but after
// the ops queued before it, its values are the CPU backend's once the fence has passed (waited
// for from another thread, as the policies' eviction jobs do), and its bytes are counted.
// Skips when no GPU is present.
#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "cuda_test_util.hpp"
#include "kernels/cpu/cpu_backend.hpp"
#include "kv/streaming_base.hpp"

namespace ltri {
namespace {

using test::randn;
using test::to_device;

TEST(CudaDownloadAsync, copies_after_the_queued_ops_and_lands_by_the_fence_on_another_thread) {
  LTRI_SKIP_WITHOUT_CUDA();
  CudaBackend gpu(0);
  CpuBackend cpu(1);
  for (size_t n : {size_t(1), size_t(4099), size_t(1) << 20}) {
    const std::vector<float> a = randn(n, 11), b = randn(n, 12);
    BackendBuffer x = to_device(gpu, a), y = to_device(gpu, b);
    // Queued ops the copy must follow: x = a + b, then x = x + b again.
    gpu.add(x.data(), y.data(), int64_t(n));
    gpu.add(x.data(), y.data(), int64_t(n));
    std::vector<float> want = a;
    cpu.add(want.data(), b.data(), int64_t(n));
    cpu.add(want.data(), b.data(), int64_t(n));

    float* host = gpu.alloc_host(n);
    const uint64_t d2h_before = gpu.stats().d2h_bytes;
    gpu.download_async(host, x.data(), n);
    std::shared_ptr<BackendFence> fence = gpu.download_fence();
    EXPECT_EQ(gpu.stats().d2h_bytes - d2h_before, 4 * n);
    std::thread waiter([&] { fence->wait(); });
    waiter.join();
    EXPECT_EQ(std::vector<float>(host, host + n), want) << n;
    gpu.free_host(host);
  }
}

TEST(CudaDownloadAsync, evicted_tokens_wait_for_their_copy_before_freeing) {
  LTRI_SKIP_WITHOUT_CUDA();
  CudaBackend gpu(0);
  const int64_t kv_row = 1024, tokens = 512;
  const std::vector<float> k = randn(size_t(kv_row * tokens), 5);
  BackendBuffer src = to_device(gpu, k);
  // A job dropped before it ran still holds a copy in flight: the destructor waits for it.
  for (int i = 0; i < 8; ++i) {
    EvictedTokens dropped(gpu, tokens, kv_row);
    gpu.download_async(dropped.k, src.data(), size_t(kv_row * tokens));
    dropped.copied = gpu.download_fence();
  }
  // One that is waited for holds the values.
  EvictedTokens e(gpu, tokens, kv_row);
  gpu.download_async(e.k, src.data(), size_t(kv_row * tokens));
  e.copied = gpu.download_fence();
  e.copied->wait();
  EXPECT_EQ(std::vector<float>(e.k, e.k + kv_row * tokens), k);
}

}  // namespace
}  // namespace ltri
