// The CUDA attention kernel against CpuBackend::attention (itself checked against a
// double-precision direct sum in tests/unit/kernels/test_cpu_ops.cpp) on the plans the policies
// build: full attention (past + causal chunk), streaming with fixed placement (init and retrieved
// at stride 0 with a pinned query_position, window, chunk) and ordered placement; head dims 64
// and 128, GQA ratios 1, 4 and 8, odd lengths (1, 7, 131, 1000), decode (n = 1, split keys, the
// one-token kernel of cuda_attention_decode.cu, GQA ratios 1 to 8).
// Every test skips when no GPU is present.
#include <gtest/gtest.h>

#include <string>
#include <vector>

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

constexpr double kTolerance = 1e-4;  // f32, different summation order and exp

// One segment's description; its keys and values are made by the test.
struct SegmentSpec {
  int64_t n;
  int64_t first_position;
  int64_t stride;
  bool causal;
  int64_t query_position;
};

struct Case {
  std::string name;
  int64_t n;  // queries
  int64_t query_first_position;
  std::vector<SegmentSpec> segments;
};

// Plans as the policies make them (kv/full_policy.cpp, kv/streaming_base.cpp).
std::vector<Case> plan_cases(int64_t n) {
  const int64_t n_local = 300;
  return {
      {"full_first_chunk", n, 0, {{n, 0, 1, true, -1}}},
      {"full_with_past", n, 1000, {{1000, 0, 1, false, -1}, {n, 1000, 1, true, -1}}},
      {"streaming_fixed", n, 131,
       {{7, 0, 0, false, n_local}, {131, 0, 0, false, n_local}, {131, 0, 1, false, -1}, {n, 131, 1, true, -1}}},
      {"streaming_ordered", n, 7 + 131 + 1000,
       {{7, 0, 1, false, -1}, {131, 7, 1, false, -1}, {1000, 138, 1, false, -1}, {n, 1138, 1, true, -1}}},
      {"one_key", n, 0, {{1, 0, 1, false, -1}}},
  };
}

void check_attention(CpuBackend& cpu, CudaBackend& gpu, int64_t head_dim, int64_t n_kv_heads, int64_t group, const Case& c, uint32_t seed) {
  const int64_t n_heads = n_kv_heads * group;
  const int64_t kv_row = n_kv_heads * head_dim;
  ModelConfig config;
  config.head_dim = head_dim;
  config.rope_theta = 10000.0;
  RopeTable table(config);
  table.ensure(4096);

  const auto q = randn(size_t(c.n * n_heads * head_dim), seed);
  std::vector<std::vector<float>> keys, values;
  std::vector<BackendBuffer> device_buffers;
  AttentionPlan cpu_plan, gpu_plan;
  cpu_plan.query_first_position = gpu_plan.query_first_position = c.query_first_position;
  for (size_t s = 0; s < c.segments.size(); ++s) {
    const SegmentSpec& spec = c.segments[s];
    keys.push_back(randn(size_t(spec.n * kv_row), seed + 100 + uint32_t(s)));
    values.push_back(randn(size_t(spec.n * kv_row), seed + 200 + uint32_t(s)));
  }
  for (size_t s = 0; s < c.segments.size(); ++s) {
    const SegmentSpec& spec = c.segments[s];
    KvSegment seg{nullptr, nullptr, spec.n, spec.first_position, spec.stride, spec.causal, spec.query_position};
    seg.k = keys[s].data();
    seg.v = values[s].data();
    cpu_plan.segments.push_back(seg);
    device_buffers.push_back(to_device(gpu, keys[s]));
    seg.k = device_buffers.back().data();
    device_buffers.push_back(to_device(gpu, values[s]));
    seg.v = device_buffers.back().data();
    gpu_plan.segments.push_back(seg);
  }

  std::vector<float> want(q.size());
  cpu.attention(q.data(), c.n, n_heads, n_kv_heads, head_dim, cpu_plan, table, want.data());
  BackendBuffer d_q = to_device(gpu, q), d_out(gpu, q.size());
  gpu.attention(d_q.data(), c.n, n_heads, n_kv_heads, head_dim, gpu_plan, table, d_out.data());
  EXPECT_LT(scaled_max_error(to_host(gpu, d_out.data(), q.size()), want), kTolerance)
      << c.name << ": head_dim " << head_dim << " kv heads " << n_kv_heads << " group " << group << " n " << c.n;
}

TEST(CudaAttention, matches_cpu_on_policy_plans_head_dims_gqa_and_odd_lengths) {
  LTRI_SKIP_WITHOUT_CUDA();
  CpuBackend cpu(2);
  CudaBackend gpu(0);
  uint32_t seed = 1;
  for (const int64_t head_dim : {64, 128}) {
    for (const int64_t group : {1, 4, 8}) {
      const int64_t n_kv_heads = group == 8 ? 1 : 2;
      for (const int64_t n : {1, 7, 131}) {
        for (const Case& c : plan_cases(n)) check_attention(cpu, gpu, head_dim, n_kv_heads, group, c, seed++);
      }
    }
  }
}

TEST(CudaAttention, long_chunk_with_causal_tiles_matches_cpu) {
  LTRI_SKIP_WITHOUT_CUDA();
  CpuBackend cpu(2);
  CudaBackend gpu(0);
  for (const int64_t head_dim : {64, 128}) {
    check_attention(cpu, gpu, head_dim, 2, 3, {"chunk_1000", 1000, 500, {{500, 0, 1, false, -1}, {1000, 500, 1, true, -1}}}, 7);
  }
}

TEST(CudaAttention, decode_over_many_keys_splits_and_matches_cpu) {
  LTRI_SKIP_WITHOUT_CUDA();
  // n = 1 over ~3K keys: the decode kernel splits the keys across blocks and merges the parts.
  // Groups 3 and 6 leave some of its compiled heads (4, 8) unused.
  CpuBackend cpu(2);
  CudaBackend gpu(0);
  for (const int64_t head_dim : {64, 128}) {
    for (const int64_t group : {1, 2, 3, 4, 6, 8}) {
      check_attention(cpu, gpu, head_dim, 2, group,
                      {"decode_3k", 1, 3000, {{4, 0, 0, false, 2900}, {2996, 4, 1, false, -1}, {1, 3000, 1, true, -1}}},
                      11);
    }
  }
}

TEST(CudaAttention, decode_over_an_ltri_plan_matches_cpu) {
  LTRI_SKIP_WITHOUT_CUDA();
  // The plan of an ltri decode step with fixed placement: init and retrieved keys at stride 0
  // seen from one query position, the window at its own positions, then the token itself;
  // segment lengths that leave partial steps of keys in several warps.
  CpuBackend cpu(2);
  CudaBackend gpu(0);
  for (const int64_t head_dim : {64, 128}) {
    for (const int64_t group : {3, 4}) {
      check_attention(cpu, gpu, head_dim, 2, group,
                      {"ltri_decode", 1, 3500,
                       {{64, 0, 0, false, 2100}, {517, 0, 0, false, 2100}, {2049, 1451, 1, false, -1}, {1, 3500, 1, true, -1}}},
                      23 + uint32_t(group));
    }
  }
}

TEST(CudaAttention, rejects_a_head_dim_it_is_not_compiled_for) {
  LTRI_SKIP_WITHOUT_CUDA();
  CudaBackend gpu(0);
  ModelConfig config;
  config.head_dim = 48;
  RopeTable table(config);
  table.ensure(16);
  BackendBuffer kv(gpu, 48), q(gpu, 48), out(gpu, 48);
  AttentionPlan plan;
  plan.segments.push_back({kv.data(), kv.data(), 1, 0, 1, true, -1});
  EXPECT_THROW(gpu.attention(q.data(), 1, 1, 1, 48, plan, table, out.data()), Error);
}

}  // namespace
}  // namespace ltri
