#pragma once
// Shared by the CUDA tests: skip without a GPU, device buffers from host vectors, and the
// comparison every test uses (max |got - want| relative to the scale of want).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <random>
#include <vector>

#include "kernels/cuda/cuda_backend.hpp"

namespace ltri::test {

// Skips the calling test when this machine has no usable GPU (CI has none); with
// LTRI_REQUIRE_CUDA=1 in the environment (scripts/gpu_test.sh) a missing GPU fails it instead,
// so a broken driver on the GPU machine cannot pass as "all skipped".
#define LTRI_SKIP_WITHOUT_CUDA()                                                        \
  do {                                                                                  \
    if (::ltri::cuda_device_count() == 0) {                                             \
      if (std::getenv("LTRI_REQUIRE_CUDA")) FAIL() << "no CUDA device (LTRI_REQUIRE_CUDA set)"; \
      GTEST_SKIP() << "no CUDA device";                                                 \
    }                                                                                   \
  } while (0)

inline std::vector<float> randn(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return v;
}

// A device copy of `host` that frees itself.
inline BackendBuffer to_device(Backend& backend, const std::vector<float>& host) {
  BackendBuffer buf(backend, host.size());
  backend.upload(buf.data(), host.data(), host.size());
  return buf;
}

inline std::vector<float> to_host(Backend& backend, const float* device, size_t n) {
  std::vector<float> host(n);
  backend.download(host.data(), device, n);
  return host;
}

// max |got - want| / max(|want|, tiny): the error measured against the data's own scale, so one
// tolerance fits logits of 30 and activations of 0.1.
inline double scaled_max_error(const std::vector<float>& got, const std::vector<float>& want) {
  EXPECT_EQ(got.size(), want.size());
  double err = 0.0, scale = 1e-30;
  for (size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
    if (!std::isfinite(got[i])) return INFINITY;
    err = std::max(err, double(std::fabs(got[i] - want[i])));
    scale = std::max(scale, double(std::fabs(want[i])));
  }
  return err / scale;
}

}  // namespace ltri::test
