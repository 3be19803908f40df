#pragma once
// What the CUDA kernel benches share (attention_bench.cu, band_bench.cu, select_bench.cu, gemm_bench.cu):
// random device inputs without a host round trip, Llama-3 RoPE tables, event timing, strict
// integer parsing.
#include <cuda_runtime.h>

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "kernels/cuda/cuda_check.hpp"

namespace ltri::bench {

// Uniform values in [-scale / 2, scale / 2) from a hash of the index: no host round trip.
static __global__ void fill_kernel(float* x, int64_t n, uint32_t seed, float scale) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  uint32_t h = uint32_t(i) * 2654435761u ^ seed;
  h ^= h >> 13;
  h *= 0x5bd1e995u;
  h ^= h >> 15;
  x[i] = scale * (float(h & 0xffffff) / float(0x1000000) - 0.5f);
}

inline float* device_random(int64_t n, uint32_t seed, float scale) {
  float* x = nullptr;
  LTRI_CUDA_CHECK(cudaMalloc(&x, size_t(n) * sizeof(float)));
  fill_kernel<<<unsigned((n + 255) / 256), 256>>>(x, n, seed, scale);
  LTRI_CUDA_CHECK_LAUNCH("fill_kernel");
  return x;
}

// RoPE tables (positions, head_dim / 2) with Llama-3's base; the values only need to be sane.
inline void rope_tables(int64_t positions, int64_t head_dim, float** cos_out, float** sin_out) {
  const int64_t half = head_dim / 2;
  std::vector<float> c(size_t(positions * half)), s(c.size());
  for (int64_t p = 0; p < positions; ++p) {
    for (int64_t i = 0; i < half; ++i) {
      const double angle = double(p) * std::pow(500000.0, -2.0 * double(i) / double(head_dim));
      c[size_t(p * half + i)] = float(std::cos(angle));
      s[size_t(p * half + i)] = float(std::sin(angle));
    }
  }
  LTRI_CUDA_CHECK(cudaMalloc(cos_out, c.size() * sizeof(float)));
  LTRI_CUDA_CHECK(cudaMalloc(sin_out, s.size() * sizeof(float)));
  LTRI_CUDA_CHECK(cudaMemcpy(*cos_out, c.data(), c.size() * sizeof(float), cudaMemcpyHostToDevice));
  LTRI_CUDA_CHECK(cudaMemcpy(*sin_out, s.data(), s.size() * sizeof(float), cudaMemcpyHostToDevice));
}

// Milliseconds per call of fn on the default stream: one untimed call, then the mean of `reps`
// between two CUDA events.
template <typename Fn>
float mean_call_ms(Fn fn, int reps) {
  fn();
  cudaEvent_t start, stop;
  LTRI_CUDA_CHECK(cudaEventCreate(&start));
  LTRI_CUDA_CHECK(cudaEventCreate(&stop));
  LTRI_CUDA_CHECK(cudaEventRecord(start));
  for (int i = 0; i < reps; ++i) fn();
  LTRI_CUDA_CHECK(cudaEventRecord(stop));
  LTRI_CUDA_CHECK(cudaEventSynchronize(stop));
  float ms = 0.0f;
  LTRI_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
  LTRI_CUDA_CHECK(cudaEventDestroy(start));
  LTRI_CUDA_CHECK(cudaEventDestroy(stop));
  return ms / float(reps);
}

// A whole decimal integer, or false ("5x", "" and out-of-range values are not).
inline bool parse_integer(const std::string& text, long long* value) {
  if (text.empty()) return false;
  char* end = nullptr;
  errno = 0;
  *value = std::strtoll(text.c_str(), &end, 10);
  return errno == 0 && *end == '\0';
}

// A count from 1 to `most` from the environment variable `name`, else `fallback`; `tool`
// names the bench in the error.
inline long long env_count(const char* tool, const char* name, long long fallback, long long most) {
  const char* text = std::getenv(name);
  if (!text) return fallback;
  long long value = 0;
  if (!parse_integer(text, &value) || value < 1 || value > most) {
    ltri::fail(tool, ": ", name, "='", text, "' is not a count from 1 to ", most);
  }
  return value;
}

// A bench's main: run(argc, argv), an error as one line on stderr and exit status 1.
inline int run_main(void (*run)(int, char**), int argc, char** argv) {
  try {
    run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}

}  // namespace ltri::bench
