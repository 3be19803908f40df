// Retrieval's choice on the GPU (cuda_select.cu: launch_select_by_budget) without the policy
// around it: n units of mostly 1-6 tokens (one in eight up to 64; about 6 on average, as the
// spans of the random-weight 8B model are), a budget of 2048 tokens, and ranks "spread"
// (normal, mean 0), "close" (normal, mean 5, sd 0.5) and "voted" (85% exactly 0, the rest a few
// levels). Rows: one choice by spread or close ranks, and the ltri policy's pair of choices
// (close ranks as the layer's own scores, then the voted ranks with those scores as tie), the
// second choice sorting 64-bit keys or reusing the first choice's order. Prints time per row
// (CUDA events around repeated rows after one warm-up) and the units picked.
//
//   build-gpu/ltri_select_bench                   # 5000, 21000, 85000, 170000 units
//   build-gpu/ltri_select_bench 21000             # unit counts
//
// Environment: LTRI_BENCH_BUDGET=2048, LTRI_BENCH_REPS=100.
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "kernels/cuda/cuda_check.hpp"
#include "kernels/cuda/cuda_select_kernels.hpp"
#include "cuda_bench_util.cuh"

namespace {

using ltri::bench::env_count;
using ltri::bench::parse_integer;

template <class T>
T* to_device(const std::vector<T>& x) {
  T* d = nullptr;
  LTRI_CUDA_CHECK(cudaMalloc(&d, x.size() * sizeof(T)));
  LTRI_CUDA_CHECK(cudaMemcpy(d, x.data(), x.size() * sizeof(T), cudaMemcpyHostToDevice));
  return d;
}

void run(int argc, char** argv) {
  const long long budget = env_count("select_bench", "LTRI_BENCH_BUDGET", 2048, 1 << 24);
  const int reps = int(env_count("select_bench", "LTRI_BENCH_REPS", 100, 100000));
  std::vector<long long> counts;
  for (int i = 1; i < argc; ++i) {
    long long n = 0;
    if (!parse_integer(argv[i], &n) || n < 1 || n > (1 << 26)) ltri::fail("select_bench: unit count '", argv[i], "' is not 1..2^26");
    counts.push_back(n);
  }
  if (counts.empty()) counts = {5000, 21000, 85000, 170000};

  cudaDeviceProp prop{};
  LTRI_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  std::printf("%s; budget %lld tokens; %d timed calls per cell\n\n", prop.name, budget, reps);
  std::printf("| units | ranks | us per row | units picked (last choice) |\n| ---: | --- | ---: | ---: |\n");
  cudaEvent_t start, stop;
  LTRI_CUDA_CHECK(cudaEventCreate(&start));
  LTRI_CUDA_CHECK(cudaEventCreate(&stop));
  for (const long long n : counts) {
    std::mt19937 rng{uint32_t(n)};
    std::vector<int32_t> unit_tokens(size_t(2 * n));
    int32_t first = 0;
    for (long long u = 0; u < n; ++u) {
      const int32_t length = rng() % 8 == 0 ? 1 + int32_t(rng() % 64) : 1 + int32_t(rng() % 6);
      unit_tokens[size_t(2 * u)] = first;
      unit_tokens[size_t(2 * u + 1)] = length;
      first += length;
    }
    std::normal_distribution<float> wide(0.0f, 1.0f), narrow(5.0f, 0.5f);
    std::vector<float> spread_rank(static_cast<size_t>(n)), close_rank(spread_rank.size()), voted_rank(spread_rank.size());
    for (long long u = 0; u < n; ++u) {
      spread_rank[size_t(u)] = wide(rng);
      close_rank[size_t(u)] = narrow(rng);
      voted_rank[size_t(u)] = rng() % 100 < 85 ? 0.0f : 0.25f * float(1 + rng() % 8);
    }
    int32_t* tokens_dev = to_device(unit_tokens);
    float* spread_dev = to_device(spread_rank);
    float* close_dev = to_device(close_rank);
    float* voted_dev = to_device(voted_rank);
    int32_t* picked = nullptr;
    LTRI_CUDA_CHECK(cudaMalloc(&picked, size_t(1 + budget) * sizeof(int32_t)));
    const size_t scratch_bytes = ltri::cuda::select_scratch_bytes(n);
    void* scratch = nullptr;
    LTRI_CUDA_CHECK(cudaMalloc(&scratch, scratch_bytes));
    // A row times one choice, or the ltri policy's pair (own scores, then the voted ranks tied
    // by them), the second sorting 64 bits or reusing the first one's order.
    struct Choice {
      const float* rank;
      const float* tie;
      bool tie_in_scratch_order;
    };
    struct Row {
      const char* name;
      std::vector<Choice> choices;
    };
    const std::vector<Row> rows = {
        {"spread", {{spread_dev, nullptr, false}}},
        {"close", {{close_dev, nullptr, false}}},
        {"pair: close, then voted (64-bit sort)", {{close_dev, nullptr, false}, {voted_dev, close_dev, false}}},
        {"pair: close, then voted (order reused)", {{close_dev, nullptr, false}, {voted_dev, close_dev, true}}},
    };
    for (const Row& row : rows) {
      const auto run_row = [&] {
        for (const Choice& c : row.choices) {
          ltri::cuda::SelectArgs a;
          a.rank = c.rank;
          a.tie = c.tie;
          a.tie_in_scratch_order = c.tie_in_scratch_order;
          a.unit_tokens = tokens_dev;
          a.n_units = n;
          a.budget = budget;
          a.shortest = 1;
          a.picked = picked;
          ltri::cuda::launch_select_by_budget(a, scratch, scratch_bytes, nullptr);
        }
      };
      run_row();  // warm-up
      LTRI_CUDA_CHECK(cudaEventRecord(start));
      for (int r = 0; r < reps; ++r) run_row();
      LTRI_CUDA_CHECK(cudaEventRecord(stop));
      LTRI_CUDA_CHECK(cudaEventSynchronize(stop));
      float ms = 0.0f;
      LTRI_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
      int32_t n_picked = 0;
      LTRI_CUDA_CHECK(cudaMemcpy(&n_picked, picked, sizeof(int32_t), cudaMemcpyDeviceToHost));
      std::printf("| %lld | %s | %.1f | %d |\n", n, row.name, 1000.0 * double(ms) / reps, n_picked);
    }
    for (void* p : {static_cast<void*>(tokens_dev), static_cast<void*>(spread_dev), static_cast<void*>(close_dev),
                    static_cast<void*>(voted_dev), static_cast<void*>(picked), scratch}) {
      LTRI_CUDA_CHECK(cudaFree(p));
    }
  }
  LTRI_CUDA_CHECK(cudaEventDestroy(start));
  LTRI_CUDA_CHECK(cudaEventDestroy(stop));
}

}  // namespace

int main(int argc, char** argv) { return ltri::bench::run_main(run, argc, argv); }
