// Each element-wise CUDA op and the cuBLAS matmul against the CPU backend's op (itself checked
// against direct double-precision definitions in tests/unit/kernels/test_cpu_ops.cpp), plus the
// memory ops: zeroed allocation, round trips, and copies between overlapping ranges.
// Every test skips when no GPU is present.
#include <gtest/gtest.h>

#include <cstring>
#include <numeric>
#include <string>

#include "core/error.hpp"
#include "cuda_test_util.hpp"
#include "kernels/cpu/cpu_backend.hpp"
#include "kernels/cuda/cuda_backend.hpp"
#include "ops/rope_table.hpp"

namespace ltri {
namespace {

using test::randn;
using test::scaled_max_error;
using test::to_device;
using test::to_host;

constexpr double kTolerance = 1e-5;  // element-wise ops: the same formula in f32

TEST(CudaOps, no_device_is_one_clear_error_or_a_working_backend) {
  if (cuda_device_count() == 0) {
    try {
      CudaBackend backend(0);
      FAIL() << "constructed a CUDA backend without a device";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("--device cuda: no CUDA device found"), std::string::npos) << e.what();
    }
  } else {
    CudaBackend backend(0);
    EXPECT_STREQ(backend.name(), "cuda");
    EXPECT_THROW(CudaBackend one_past_the_last(cuda_device_count()), Error);
  }
}

TEST(CudaOps, alloc_is_zeroed_and_upload_download_round_trip) {
  LTRI_SKIP_WITHOUT_CUDA();
  CudaBackend gpu(0);
  BackendBuffer buf(gpu, 1000);
  EXPECT_EQ(to_host(gpu, buf.data(), 1000), std::vector<float>(1000, 0.0f));
  const auto x = randn(1000, 1);
  gpu.upload(buf.data(), x.data(), x.size());
  EXPECT_EQ(to_host(gpu, buf.data(), 1000), x);
}

TEST(CudaOps, copy_has_memmove_semantics_on_overlapping_ranges) {
  LTRI_SKIP_WITHOUT_CUDA();
  CudaBackend gpu(0);
  std::vector<float> x(4096);
  std::iota(x.begin(), x.end(), 0.0f);
  // (dst offset, src offset, n): down by less than n (the streaming window's shift), up, disjoint.
  const int64_t cases[][3] = {{0, 100, 3000}, {0, 1, 4095}, {100, 0, 3000}, {1, 0, 4095}, {0, 2048, 2048}, {5, 5, 10}};
  for (const auto& c : cases) {
    BackendBuffer buf = to_device(gpu, x);
    gpu.copy(buf.data() + c[0], buf.data() + c[1], size_t(c[2]));
    std::vector<float> want = x;
    std::memmove(want.data() + c[0], want.data() + c[1], size_t(c[2]) * sizeof(float));
    EXPECT_EQ(to_host(gpu, buf.data(), x.size()), want) << "dst " << c[0] << " src " << c[1] << " n " << c[2];
  }
}

TEST(CudaOps, matmul_matches_cpu) {
  LTRI_SKIP_WITHOUT_CUDA();
  CudaBackend gpu(0);
  CpuBackend cpu(2);
  const int64_t shapes[][3] = {{1, 384, 1152}, {7, 33, 19}, {131, 384, 1024}, {1000, 64, 131}, {2, 1024, 8192}};
  for (const auto& s : shapes) {
    const int64_t n = s[0], k = s[1], m = s[2];
    const auto x = randn(size_t(n * k), 1), w = randn(size_t(m * k), 2, 0.05f);
    std::vector<float> want(size_t(n * m));
    cpu.matmul(x.data(), w.data(), n, k, m, want.data());
    BackendBuffer dx = to_device(gpu, x), dw = to_device(gpu, w), dout(gpu, size_t(n * m));
    gpu.matmul(dx.data(), dw.data(), n, k, m, dout.data());
    EXPECT_LT(scaled_max_error(to_host(gpu, dout.data(), size_t(n * m)), want), 1e-5)
        << "n " << n << " k " << k << " m " << m;
  }
}

TEST(CudaOps, embed_rmsnorm_bias_add_swiglu_match_cpu) {
  LTRI_SKIP_WITHOUT_CUDA();
  CudaBackend gpu(0);
  CpuBackend cpu(2);
  for (const int64_t n : {1, 7, 131}) {
    const int64_t dim = 384, vocab = 50;
    const auto table = randn(size_t(vocab * dim), 3);
    std::vector<int32_t> ids(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) ids[size_t(i)] = int32_t((i * 17 + 3) % vocab);
    std::vector<float> ids_as_floats(static_cast<size_t>(n));
    std::memcpy(ids_as_floats.data(), ids.data(), size_t(n) * sizeof(float));

    // embed
    std::vector<float> x(size_t(n * dim));
    cpu.embed(table.data(), ids.data(), n, dim, x.data());
    BackendBuffer d_table = to_device(gpu, table), d_ids = to_device(gpu, ids_as_floats), d_x(gpu, size_t(n * dim));
    gpu.embed(d_table.data(), reinterpret_cast<const int32_t*>(d_ids.data()), n, dim, d_x.data());
    EXPECT_EQ(to_host(gpu, d_x.data(), x.size()), x) << "embed n " << n;

    // rmsnorm, into another buffer and in place
    const auto weight = randn(size_t(dim), 4);
    std::vector<float> normed(x.size());
    cpu.rmsnorm(x.data(), weight.data(), n, dim, 1e-5f, normed.data());
    BackendBuffer d_weight = to_device(gpu, weight), d_normed(gpu, x.size());
    gpu.rmsnorm(d_x.data(), d_weight.data(), n, dim, 1e-5f, d_normed.data());
    EXPECT_LT(scaled_max_error(to_host(gpu, d_normed.data(), x.size()), normed), kTolerance) << "rmsnorm n " << n;
    gpu.rmsnorm(d_x.data(), d_weight.data(), n, dim, 1e-5f, d_x.data());
    EXPECT_LT(scaled_max_error(to_host(gpu, d_x.data(), x.size()), normed), kTolerance) << "rmsnorm in place n " << n;

    // add_bias, add, swiglu
    const auto bias = randn(size_t(dim), 5), y = randn(x.size(), 6);
    std::vector<float> want = normed;
    cpu.add_bias(want.data(), bias.data(), n, dim);
    cpu.add(want.data(), y.data(), int64_t(want.size()));
    cpu.swiglu(want.data(), y.data(), int64_t(want.size()));
    BackendBuffer d_bias = to_device(gpu, bias), d_y = to_device(gpu, y);
    gpu.add_bias(d_normed.data(), d_bias.data(), n, dim);
    gpu.add(d_normed.data(), d_y.data(), int64_t(want.size()));
    gpu.swiglu(d_normed.data(), d_y.data(), int64_t(want.size()));
    EXPECT_LT(scaled_max_error(to_host(gpu, d_normed.data(), want.size()), want), kTolerance) << "n " << n;
  }
}

TEST(CudaOps, add_rmsnorm_is_bit_for_bit_add_then_rmsnorm_and_matches_cpu) {
  LTRI_SKIP_WITHOUT_CUDA();
  CudaBackend gpu(0);
  CpuBackend cpu(2);
  for (const int64_t n : {1, 7, 131}) {
    for (const int64_t dim : {384, 4096, 77}) {
      const auto x = randn(size_t(n * dim), 11, 2.0f), h = randn(size_t(n * dim), 12), w = randn(size_t(dim), 13);
      // Two ops on the GPU: the reference the fused kernel must equal exactly.
      BackendBuffer x2 = to_device(gpu, x), h2 = to_device(gpu, h), dw = to_device(gpu, w), out2(gpu, x.size());
      gpu.add(x2.data(), h2.data(), n * dim);
      gpu.rmsnorm(x2.data(), dw.data(), n, dim, 1e-5f, out2.data());
      // Fused, writing over h as the model does.
      BackendBuffer x1 = to_device(gpu, x), h1 = to_device(gpu, h);
      gpu.add_rmsnorm(x1.data(), h1.data(), dw.data(), n, dim, 1e-5f, h1.data());
      const std::string where = "n " + std::to_string(n) + " dim " + std::to_string(dim);
      EXPECT_EQ(to_host(gpu, x1.data(), x.size()), to_host(gpu, x2.data(), x.size())) << where;
      const std::vector<float> got = to_host(gpu, h1.data(), x.size());
      EXPECT_EQ(got, to_host(gpu, out2.data(), x.size())) << where;
      std::vector<float> cx = x, ch = h;
      cpu.add_rmsnorm(cx.data(), ch.data(), w.data(), n, dim, 1e-5f, ch.data());
      EXPECT_LT(scaled_max_error(got, ch), kTolerance) << where;
    }
  }
  BackendBuffer x = to_device(gpu, randn(64, 1)), h = to_device(gpu, randn(64, 2)), w = to_device(gpu, randn(64, 3));
  EXPECT_THROW(gpu.add_rmsnorm(x.data(), h.data(), w.data(), 1, 64, 1e-5f, x.data()), Error);
}

TEST(CudaOps, rope_matches_cpu_for_head_dims_64_and_128) {
  LTRI_SKIP_WITHOUT_CUDA();
  CudaBackend gpu(0);
  CpuBackend cpu(2);
  for (const int64_t head_dim : {64, 128}) {
    ModelConfig config;
    config.head_dim = head_dim;
    config.rope_theta = head_dim == 64 ? 10000.0 : 500000.0;
    RopeTable table(config);
    table.ensure(3000);
    for (const int64_t first : {0, 5, 1900}) {
      const int64_t n = 131, heads = 4;
      auto x = randn(size_t(n * heads * head_dim), 7);
      BackendBuffer d_x = to_device(gpu, x);
      cpu.rope(x.data(), n, heads, first, table);
      gpu.rope(d_x.data(), n, heads, first, table);
      EXPECT_LT(scaled_max_error(to_host(gpu, d_x.data(), x.size()), x), kTolerance)
          << "head_dim " << head_dim << " first " << first;
    }
  }
}

}  // namespace
}  // namespace ltri
