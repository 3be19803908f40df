// CudaBackend::score_units (cuda_score.cu, the index in a UnitIndexMirror on the GPU) against
// the CPU backend's op (the host scorers, themselves checked against the definition in double
// in tests/unit/kv/test_unit_scoring_op.cpp) on stores of 10K+ index vectors. Every test skips
// when no GPU is present.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>

#include "core/error.hpp"
#include "cuda_test_util.hpp"
#include "kernels/cpu/cpu_backend.hpp"
#include "kernels/cuda/cuda_backend.hpp"
#include "kv/context_store.hpp"
#include "kv/host_rope.hpp"
#include "kv/unit_index_mirror.hpp"
#include "ops/rope_table.hpp"

namespace ltri {
namespace {

using test::randn;
using test::scaled_max_error;
using test::to_device;

// The GPU's dots are f32 SGEMM sums of the same f32 products in another order than OpenBLAS's:
// a few ulp of sum |q_e k_e| per dot, ~1e-6 absolute for unit-normal inputs at head_dim 128.
// The max over queries and vectors and the weighted sum over heads are computed in the same
// order with the same roundings on both sides, so a score is off by at most the weights' sum
// times the worst dot error: ~1e-6 of the scores' scale (~40 here). 1e-5 leaves room; a wrong
// vector, unit boundary, KV head or weight moves scores by O(1).
constexpr double kTolerance = 1e-5;

// Units of 1..32 index vectors (lengths 32..63 tokens) until the store holds `min_vectors`.
void fill_store(ContextStore& s, int64_t min_vectors, std::mt19937& rng) {
  const int64_t kv_row = s.n_kv_heads() * s.head_dim();
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> kv, vec;
  const int64_t target = s.n_vectors() + min_vectors;
  while (s.n_vectors() < target) {
    const int64_t m = 1 + int64_t(rng() % 32), len = 32 + int64_t(rng() % 32);
    kv.assign(size_t(len * kv_row), 0.0f);
    vec.resize(size_t(s.n_kv_heads() * m * s.head_dim()));
    for (float& x : vec) x = normal(rng);
    s.add_unit(kv.data(), kv.data(), len, vec.data(), m);
  }
}

void check_scores(CpuBackend& cpu, CudaBackend& gpu, UnitIndexMirror& mirror, const ContextStore& s, int64_t n_q,
                  const std::vector<float>& weights, uint32_t seed, const std::string& where) {
  const int64_t n_heads = int64_t(weights.size());
  const auto q = randn(size_t(n_q * n_heads * s.head_dim()), seed);
  UnitIndexMirror unused;  // the CPU op reads the store
  std::vector<float> want, got;
  cpu.score_units(s, unused, q.data(), n_q, false, weights, want);
  gpu.score_units(s, mirror, q.data(), n_q, false, weights, got);
  ASSERT_EQ(got.size(), s.units().size()) << where;
  EXPECT_LT(scaled_max_error(got, want), kTolerance) << where << " n_q " << n_q;
  EXPECT_EQ(mirror.n_vectors(), s.n_vectors()) << where;
  if (n_q == 1) {  // the mean-query route of the CPU op (matrix-vector product): same numbers
    cpu.score_units(s, unused, q.data(), 1, true, weights, want);
    gpu.score_units(s, mirror, q.data(), 1, true, weights, got);
    EXPECT_LT(scaled_max_error(got, want), kTolerance) << where << " mean query";
  }
}

// Both index dtypes: with a bf16 index both sides multiply bf16-rounded queries by the bf16
// vectors (exact products) and sum in f32, so the same tolerance holds.
TEST(CudaScore, matches_cpu_on_head_dims_gqa_query_counts_head_weights_and_index_dtypes) {
  LTRI_SKIP_WITHOUT_CUDA();
  CpuBackend cpu(2);
  CudaBackend gpu(0);
  uint32_t seed = 1;
  for (const DType dtype : {DType::F32, DType::BF16}) {
  for (const int64_t head_dim : {64, 128}) {
    for (const int64_t group : {1, 4}) {
      const int64_t n_kv_heads = group == 1 ? 4 : 2, n_heads = n_kv_heads * group;
      std::mt19937 rng(seed);
      ContextStore s(n_kv_heads, head_dim, 128, nullptr, DType::F32, ContextStore::kFirstSlabTokens,
                     ContextStore::kMaxSlabTokens, 0, dtype);
      fill_store(s, 10000, rng);
      UnitIndexMirror mirror;
      std::vector<float> mean(size_t(n_heads), 1.0f / float(n_heads)), one_hot(size_t(n_heads), 0.0f);
      one_hot[size_t(n_heads - 1)] = 1.0f;
      std::vector<float> some_zero = mean;  // every other head 0; KV head 0 keeps only head 0 at GQA 4
      for (int64_t h = 1; h < n_heads; h += 2) some_zero[size_t(h)] = 0.0f;
      const std::string where = std::string(dtype_name(dtype)) + " head_dim " + std::to_string(head_dim) + " group " +
                                std::to_string(group);
      for (const auto& w : {mean, one_hot, some_zero}) {
        for (const int64_t n_q : {1, 16, 17}) check_scores(cpu, gpu, mirror, s, n_q, w, seed += 7, where);
      }
    }
  }
  }
}

TEST(CudaScore, mirror_follows_a_growing_and_a_reset_store) {
  LTRI_SKIP_WITHOUT_CUDA();
  CpuBackend cpu(2);
  CudaBackend gpu(0);
  std::mt19937 rng(40);
  ContextStore s(8, 128, 128);
  UnitIndexMirror mirror;
  std::vector<float> w(32, 1.0f / 32.0f);
  // Chunk by chunk, as prefill stores spans: each sync appends, the capacity grows past 256.
  for (int chunk = 0; chunk < 6; ++chunk) {
    fill_store(s, 300 + 1500 * chunk, rng);
    check_scores(cpu, gpu, mirror, s, 16, w, 100 + uint32_t(chunk), "chunk " + std::to_string(chunk));
  }
  EXPECT_GE(mirror.bytes(), size_t(s.n_vectors() * 8 * 128) * sizeof(float));
  // The policy's reset: store emptied, mirror cleared, a new stream stored.
  s.reset(128);
  mirror.clear();
  fill_store(s, 2000, rng);
  check_scores(cpu, gpu, mirror, s, 17, w, 200, "after reset");
}

TEST(CudaScore, a_mirror_of_the_scored_kv_heads_only_scores_as_the_cpu_and_widens_when_asked) {
  // One retrieval head (head 5 of 8, GQA 2: KV head 2 of 4) mirrors one KV head of four; the
  // mean of heads afterwards needs them all, and the same mirror then holds them all.
  LTRI_SKIP_WITHOUT_CUDA();
  CpuBackend cpu(2);
  CudaBackend gpu(0);
  for (const DType dtype : {DType::F32, DType::BF16}) {
    std::mt19937 rng(60);
    ContextStore s(4, 128, 128, nullptr, DType::F32, ContextStore::kFirstSlabTokens, ContextStore::kMaxSlabTokens, 0,
                   dtype);
    fill_store(s, 8000, rng);
    UnitIndexMirror mirror;
    std::vector<float> one_hot(8, 0.0f), mean(8, 0.125f);
    one_hot[5] = 1.0f;
    const std::string where = dtype_name(dtype);
    check_scores(cpu, gpu, mirror, s, 16, one_hot, 61, where + " one head");
    EXPECT_EQ(mirror.heads(), std::vector<int64_t>({2})) << where;
    EXPECT_LT(mirror.bytes(), size_t(2 * s.n_vectors() * 128) * dtype_size(dtype)) << where;
    fill_store(s, 3000, rng);  // appended one head wide
    check_scores(cpu, gpu, mirror, s, 17, one_hot, 62, where + " one head, grown");
    check_scores(cpu, gpu, mirror, s, 16, mean, 63, where + " mean after one head");
    EXPECT_EQ(mirror.heads(), std::vector<int64_t>({0, 1, 2, 3})) << where;
    check_scores(cpu, gpu, mirror, s, 16, one_hot, 64, where + " one head of a full mirror");
  }
}

// The choice in GPU memory (score_units_device) gets query means before RoPE and rotates the
// scored heads' rows itself: its scores must be those of the host-rotated means, bit for bit
// (the same GEMM operand, so the same sums), or the units chosen would depend on the route.
TEST(CudaScore, device_means_rotated_on_the_gpu_score_as_host_rotated_means_bit_for_bit) {
  LTRI_SKIP_WITHOUT_CUDA();
  CudaBackend gpu(0);
  uint32_t seed = 300;
  for (const DType dtype : {DType::F32, DType::BF16}) {
    for (const int64_t head_dim : {64, 128}) {
      const int64_t n_kv_heads = 2, n_heads = 8;
      ModelConfig config;
      config.head_dim = head_dim;
      config.rope_theta = 500000.0;
      RopeTable table(config);
      const int64_t position = 4096;  // n_local of the 8B benchmark
      table.ensure(position + 1);
      std::mt19937 rng(seed);
      ContextStore s(n_kv_heads, head_dim, 128, nullptr, DType::F32, ContextStore::kFirstSlabTokens,
                     ContextStore::kMaxSlabTokens, 0, dtype);
      fill_store(s, 6000, rng);
      UnitIndexMirror mirror;
      std::vector<float> mean(size_t(n_heads), 1.0f / float(n_heads)), one_hot(size_t(n_heads), 0.0f);
      one_hot[5] = 1.0f;
      for (const auto& w : {mean, one_hot}) {
        for (const int64_t n_q : {1, 17, 64}) {
          const std::string where = std::string(dtype_name(dtype)) + " head_dim " + std::to_string(head_dim) +
                                    " n_q " + std::to_string(n_q) + (w == mean ? " mean" : " one head");
          const auto means = randn(size_t(n_q * n_heads * head_dim), seed += 3);
          std::vector<float> rotated = means;
          for (int64_t i = 0; i < n_q; ++i) {
            for (int64_t h = 0; h < n_heads; ++h) {
              if (w[size_t(h)] != 0.0f) rope_rotate_host(&rotated[size_t((i * n_heads + h) * head_dim)], 1, head_dim, position, table);
            }
          }
          std::vector<float> want, got(s.units().size(), -1.0f);
          gpu.score_units(s, mirror, rotated.data(), n_q, false, w, want);
          BackendBuffer d_means = to_device(gpu, means);
          BackendBuffer d_scores(gpu, s.units().size());
          gpu.score_units_device(s, mirror, d_means.data(), n_q, position, table, w, d_scores.data());
          gpu.download(got.data(), d_scores.data(), got.size());
          EXPECT_EQ(got, want) << where;
        }
      }
      EXPECT_THROW(gpu.score_units_device(s, mirror, nullptr, 1, table.size(), table, mean, nullptr), Error);
    }
  }
}

TEST(CudaScore, a_planted_needle_unit_ranks_first) {
  LTRI_SKIP_WITHOUT_CUDA();
  CudaBackend gpu(0);
  std::mt19937 rng(50);
  ContextStore s(2, 64, 0);
  fill_store(s, 5000, rng);
  const int64_t needle = int64_t(s.units().size());
  std::vector<float> kv(size_t(8 * 2 * 64)), vec(size_t(2 * 3 * 64), 0.1f);
  for (int64_t g = 0; g < 2; ++g) vec[size_t((g * 3 + 2) * 64 + 5)] = 40.0f;  // vector 2 of 3 points at e_5
  s.add_unit(kv.data(), kv.data(), 8, vec.data(), 3);
  fill_store(s, 5000, rng);
  std::vector<float> q(size_t(16 * 8 * 64), 0.0f);  // 16 queries, 8 heads; only query 9 looks at e_5
  for (int64_t h = 0; h < 8; ++h) q[size_t((9 * 8 + h) * 64 + 5)] = 3.0f;
  UnitIndexMirror mirror;
  std::vector<float> scores;
  gpu.score_units(s, mirror, q.data(), 16, false, std::vector<float>(8, 0.125f), scores);
  EXPECT_EQ(std::max_element(scores.begin(), scores.end()) - scores.begin(), needle);
}

}  // namespace
}  // namespace ltri
