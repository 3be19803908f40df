// The host side of retrieval on the GPU: pinned slabs from alloc_host, bf16 uploads widened on
// the device (bit for bit the CPU backend's widening, half the bytes over the link), int8
// uploads dequantised there (bit for bit, a byte per value plus the scales), and RetrievedKv's
// ping-pong reloads giving the CPU backend's buffers exactly, from f32, bf16 and int8 stores
// whose slabs the CUDA backend allocated; gather_rows_stable (a load's runs in one upload and
// one kernel) equal to the CPU backend's per-run copies and uploads, bit for bit, for every
// host dtype, with device and host runs mixed. Every test skips when no GPU is present.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <random>
#include <utility>
#include <vector>

#include "core/dtype.hpp"
#include "cuda_test_util.hpp"
#include "kernels/cpu/cpu_backend.hpp"
#include "core/error.hpp"
#include "kernels/cuda/cuda_backend.hpp"
#include "kernels/cuda/host_pinning.hpp"
#include "kv/context_store.hpp"
#include "kv/retrieved_kv.hpp"

namespace ltri {
namespace {

using test::randn;
using test::to_host;

TEST(CudaHostKv, pinned_host_memory_uploads_and_frees) {
  LTRI_SKIP_WITHOUT_CUDA();
  CudaBackend gpu(0);
  const size_t n = (size_t(1) << 20) + 3;
  float* host = gpu.alloc_host(n);
  ASSERT_NE(host, nullptr);
  // Page-locked (registered or cudaHostAlloc'ed), not the pageable fallback.
  cudaPointerAttributes attributes{};
  ASSERT_EQ(cudaPointerGetAttributes(&attributes, host), cudaSuccess);
  EXPECT_EQ(attributes.type, cudaMemoryTypeHost);
  const std::vector<float> want = randn(n, 1);
  std::copy(want.begin(), want.end(), host);
  BackendBuffer device(gpu, n);
  gpu.upload(device.data(), host, n);
  EXPECT_EQ(to_host(gpu, device.data(), n), want);
  gpu.free_host(host);
}

TEST(CudaHostKv, host_pin_mode_follows_the_environment_and_refuses_other_values) {
  // No GPU needed: only the switch is read.
  ::unsetenv("LTRI_HOST_PIN");
  EXPECT_TRUE(cuda::host_pin_by_register()) << "register by default";
  ::setenv("LTRI_HOST_PIN", "alloc", 1);
  EXPECT_FALSE(cuda::host_pin_by_register());
  ::setenv("LTRI_HOST_PIN", "mlock", 1);
  try {
    cuda::host_pin_by_register();
    ADD_FAILURE() << "LTRI_HOST_PIN=mlock accepted";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "LTRI_HOST_PIN=mlock: expected register or alloc");
  }
  ::unsetenv("LTRI_HOST_PIN");
}

TEST(CudaHostKv, bf16_upload_widens_bit_for_bit_as_the_cpu_and_moves_two_bytes_per_value) {
  LTRI_SKIP_WITHOUT_CUDA();
  CudaBackend gpu(0);
  CpuBackend cpu(1);
  std::mt19937 rng(2);
  for (size_t n : {size_t(1), size_t(7), size_t(70001), size_t(300000)}) {
    std::vector<uint16_t> bits(n);
    for (uint16_t& b : bits) b = uint16_t(rng());  // every pattern: NaNs, infinities, subnormals
    std::vector<float> want(n);
    cpu.upload_bf16(want.data(), bits.data(), n);
    BackendBuffer device(gpu, n);
    const uint64_t h2d_before = gpu.stats().h2d_bytes;
    gpu.upload_bf16(device.data(), bits.data(), n);
    EXPECT_EQ(gpu.stats().h2d_bytes - h2d_before, 2 * n) << n;
    const std::vector<float> got = to_host(gpu, device.data(), n);
    for (size_t i = 0; i < n; ++i) {
      uint32_t g, w;
      std::memcpy(&g, &got[i], 4);
      std::memcpy(&w, &want[i], 4);
      ASSERT_EQ(g, w) << "n " << n << " element " << i;
      ASSERT_EQ(w, uint32_t(bits[i]) << 16);
    }
  }
}

TEST(CudaHostKv, stable_uploads_queue_without_waiting_and_land_in_order) {
  LTRI_SKIP_WITHOUT_CUDA();
  CudaBackend gpu(0);
  CpuBackend cpu(1);
  // Several f32 and bf16 uploads queued back to back from pinned memory with no synchronisation
  // in between, the bf16 ones growing so the staging buffer is reallocated under queued copies,
  // and a second upload to the same destination (the later one must win).
  const std::vector<size_t> sizes = {5, 4099, 70001, 300000};
  float* host = gpu.alloc_host(300000);
  uint16_t* host_bits = reinterpret_cast<uint16_t*>(gpu.alloc_host(300000 / 2 + 1));
  std::mt19937 rng(3);
  const std::vector<float> f32 = randn(300000, 4);
  std::copy(f32.begin(), f32.end(), host);
  for (size_t i = 0; i < 300000; ++i) host_bits[i] = uint16_t(rng() & 0x7f7f);  // finite values
  std::vector<BackendBuffer> a, b;
  const uint64_t h2d_before = gpu.stats().h2d_bytes;
  uint64_t expected_bytes = 0;
  for (size_t n : sizes) {
    a.emplace_back(gpu, n);
    b.emplace_back(gpu, n);
    gpu.upload_stable(a.back().data(), host, n);
    gpu.upload_bf16_stable(b.back().data(), host_bits, n);
    expected_bytes += 6 * n;
  }
  gpu.upload_stable(a[0].data(), host + 10, sizes[0]);
  expected_bytes += 4 * sizes[0];
  EXPECT_EQ(gpu.stats().h2d_bytes - h2d_before, expected_bytes);
  for (size_t j = 0; j < sizes.size(); ++j) {
    const size_t n = sizes[j];
    const std::vector<float> want_a(host + (j == 0 ? 10 : 0), host + (j == 0 ? 10 : 0) + n);
    EXPECT_EQ(to_host(gpu, a[j].data(), n), want_a) << n;
    std::vector<float> want_b(n);
    cpu.upload_bf16(want_b.data(), host_bits, n);
    EXPECT_EQ(to_host(gpu, b[j].data(), n), want_b) << n;
  }
  gpu.free_host(reinterpret_cast<float*>(host_bits));
  gpu.free_host(host);
}

void add_units(ContextStore& s, int64_t n_units, std::mt19937& rng) {
  const int64_t row = s.n_kv_heads() * s.head_dim();
  for (int64_t u = 0; u < n_units; ++u) {
    const int64_t len = 1 + int64_t(rng() % 40);
    const std::vector<float> k = randn(size_t(len * row), uint32_t(rng())), v = randn(k.size(), uint32_t(rng()));
    const std::vector<float> vec(static_cast<size_t>(row));
    s.add_unit(k.data(), v.data(), len, vec.data(), 1);
  }
}

TEST(CudaHostKv, int8_upload_dequantises_bit_for_bit_as_the_cpu_and_moves_a_byte_per_value_and_the_scales) {
  LTRI_SKIP_WITHOUT_CUDA();
  CudaBackend gpu(0);
  CpuBackend cpu(1);
  std::mt19937 rng(4);
  for (const auto& [n_rows, width] : {std::pair<size_t, size_t>{1, 1}, {3, 128}, {1001, 64}, {5000, 128}}) {
    const size_t n = n_rows * width;
    std::vector<int8_t> values(n);
    for (int8_t& q : values) q = int8_t(int(rng() % 255) - 127);
    std::vector<float> scales = randn(n_rows, 5);
    for (float& s : scales) s = std::fabs(s) * 0.01f;
    scales[0] = 0.0f;  // an all-zero row's scale
    std::vector<float> want(n);
    cpu.upload_int8_stable(want.data(), values.data(), scales.data(), n_rows, width);
    BackendBuffer device(gpu, n);
    const uint64_t h2d_before = gpu.stats().h2d_bytes;
    gpu.upload_int8_stable(device.data(), values.data(), scales.data(), n_rows, width);
    EXPECT_EQ(gpu.stats().h2d_bytes - h2d_before, n + 4 * n_rows) << n;
    const std::vector<float> got = to_host(gpu, device.data(), n);
    for (size_t i = 0; i < n; ++i) {
      ASSERT_EQ(std::memcmp(&got[i], &want[i], 4), 0) << "n " << n << " element " << i;
      ASSERT_EQ(want[i], float(values[i]) * scales[i / width]);
    }
  }
}

TEST(CudaHostKv, gathered_runs_equal_the_cpu_backends_copies_and_uploads) {
  LTRI_SKIP_WITHOUT_CUDA();
  CudaBackend gpu(0);
  CpuBackend cpu(1);
  const int64_t n_runs = 300;
  std::mt19937 rng(9);
  // Rows of 1024 values make a staging of several MB, which is packed on several threads.
  // Host rows in pageable memory go through the staging; in the backend's page-locked memory
  // (as the context store's slabs) the kernel reads bf16 and int8 rows in place.
  for (const bool pinned : {false, true})
  for (const int64_t width : {int64_t(64), int64_t(1024)})
  for (DType dtype : {DType::F32, DType::BF16, DType::I8}) {
    SCOPED_TRACE(std::string(dtype_name(dtype)) + " width " + std::to_string(width) + (pinned ? " pinned" : ""));
    // Runs of 0..20 rows of `width` values; every third one copies from a device buffer.
    std::vector<int64_t> rows(n_runs);
    int64_t total = 0;
    for (int64_t& r : rows) total += r = int64_t(rng() % 21);
    const std::vector<float> source = randn(size_t(total * width), 4);
    std::vector<uint16_t> bf16(source.size());
    std::vector<int8_t> int8(source.size());
    for (size_t i = 0; i < source.size(); ++i) {
      bf16[i] = f32_to_bf16(source[i]);
      int8[i] = int8_t(int(rng() % 255) - 127);
    }
    std::vector<float> scales = randn(size_t(total), 5);
    for (float& x : scales) x = std::fabs(x) * 0.01f;
    // The host rows the runs read: the vectors above, or copies of them in page-locked memory.
    const size_t host_bytes = source.size() * dtype_size(dtype);
    unsigned char* page_locked = pinned ? reinterpret_cast<unsigned char*>(gpu.alloc_host((host_bytes + 3) / 4)) : nullptr;
    const unsigned char* host_rows = dtype == DType::F32    ? reinterpret_cast<const unsigned char*>(source.data())
                                     : dtype == DType::BF16 ? reinterpret_cast<const unsigned char*>(bf16.data())
                                                            : reinterpret_cast<const unsigned char*>(int8.data());
    if (pinned) {
      std::memcpy(page_locked, host_rows, host_bytes);
      host_rows = page_locked;
    }
    BackendBuffer device_source(gpu, source.size()), gpu_out(gpu, source.size());
    gpu.upload(device_source.data(), source.data(), source.size());
    std::vector<float> cpu_out(source.size(), std::nanf(""));
    std::vector<GatherRun> on_gpu, on_cpu;
    // Destinations in reverse order of the sources, so a misplaced run shows.
    int64_t src_row = 0, dst_row = total;
    for (int64_t i = 0; i < n_runs; ++i) {
      dst_row -= rows[size_t(i)];
      const size_t src = size_t(src_row * width), dst = size_t(dst_row * width);
      const void* host = host_rows + src * dtype_size(dtype);
      const float* host_scales = dtype == DType::I8 ? scales.data() + src_row : nullptr;
      const bool from_device = i % 3 == 0;
      on_gpu.push_back({gpu_out.data() + dst, rows[size_t(i)] * width, from_device ? device_source.data() + src : nullptr,
                        host, host_scales});
      on_cpu.push_back({cpu_out.data() + dst, rows[size_t(i)] * width, from_device ? source.data() + src : nullptr, host,
                        host_scales});
      src_row += rows[size_t(i)];
    }
    const int64_t in_place_before = gpu.gather_runs_in_place();
    gpu.gather_rows_stable(on_gpu, dtype, width);
    cpu.gather_rows_stable(on_cpu, dtype, width);
    const std::vector<float> got = to_host(gpu, gpu_out.data(), source.size());
    ASSERT_EQ(std::memcmp(got.data(), cpu_out.data(), got.size() * sizeof(float)), 0);
    EXPECT_EQ(std::count_if(cpu_out.begin(), cpu_out.end(), [](float x) { return std::isnan(x); }), 0);  // all written
    // Page-locked bf16 and int8 rows are read in place: every run from the host (two in three;
    // all aligned), none from pageable memory or for f32.
    const int64_t from_host = n_runs - (n_runs + 2) / 3;
    EXPECT_EQ(gpu.gather_runs_in_place() - in_place_before, pinned && dtype != DType::F32 ? from_host : 0);
    if (page_locked) gpu.free_host(reinterpret_cast<float*>(page_locked));
  }
}

TEST(CudaHostKv, ping_pong_reloads_equal_the_cpu_backend_from_f32_bf16_and_int8_stores) {
  LTRI_SKIP_WITHOUT_CUDA();
  CudaBackend gpu(0);
  CpuBackend cpu(1);
  const int64_t n_kv_heads = 8, head_dim = 128, row = n_kv_heads * head_dim, capacity = 600;
  for (DType dtype : {DType::F32, DType::BF16, DType::I8}) {
    SCOPED_TRACE(dtype_name(dtype));
    std::mt19937 rng(3);
    ContextStore s(n_kv_heads, head_dim, 64, &gpu, dtype, 100, 100);  // pinned slabs of 100 tokens
    add_units(s, 40, rng);
    RetrievedKv on_gpu(gpu, row, capacity), on_cpu(cpu, row, capacity);
    std::vector<int64_t> picked;
    for (int step = 0; step < 12; ++step) {
      if (step % 4 == 3) add_units(s, 5, rng);
      // Keep most of the last pick, add a few units (some neighbours), stay within capacity.
      std::vector<int64_t> next;
      for (int64_t u : picked) {
        if (rng() % 4 != 0) next.push_back(u);
      }
      for (int i = 0; i < 3; ++i) next.push_back(int64_t(rng() % s.units().size()));
      std::sort(next.begin(), next.end());
      next.erase(std::unique(next.begin(), next.end()), next.end());
      int64_t tokens = 0;
      std::vector<int64_t> fitting;
      for (int64_t u : next) {
        if (tokens + s.units()[size_t(u)].length > capacity) continue;
        tokens += s.units()[size_t(u)].length;
        fitting.push_back(u);
      }
      on_gpu.load(s, fitting);
      on_cpu.load(s, fitting);
      picked = fitting;
      ASSERT_EQ(on_gpu.n_tokens(), on_cpu.n_tokens());
      const size_t floats = size_t(on_cpu.n_tokens() * row);
      ASSERT_EQ(to_host(gpu, on_gpu.k(), floats), std::vector<float>(on_cpu.k(), on_cpu.k() + floats)) << step;
      ASSERT_EQ(to_host(gpu, on_gpu.v(), floats), std::vector<float>(on_cpu.v(), on_cpu.v() + floats)) << step;
      EXPECT_EQ(on_gpu.bytes_uploaded(), on_cpu.bytes_uploaded());
    }
  }
}

}  // namespace
}  // namespace ltri
