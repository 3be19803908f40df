// The bf16 tensor-core attention kernels (cuda_attention_mma.cu: mma.sync; cuda_attention_wgmma.cu:
// wgmma, run where the GPU and build have it, required on compute capability 9.0 when
// LTRI_REQUIRE_CUDA=1) against CpuBackend::attention
// (f32, itself checked against a double-precision direct sum in tests/unit/kernels/) on the plans
// the policies build: full attention (first chunk causal, past + causal chunk), streaming with
// fixed placement (init and retrieved at stride 0 with a pinned query_position, window, chunk)
// and ordered placement; head dims 64 and 128, GQA ratios 1, 4 and 8, odd lengths (1, 7, 131,
// 1000), a 4096-query chunk over 4096 past keys (many 128-row blocks, causal tiles skipped and cut
// by the diagonal) and a 4096-query streaming plan over 8148 keys in four segments (the bf16
// pre-pass's segment boundaries and fixed placement at length); each with the keys whole and
// split in three parts (merge path). The kernel is called through its launcher so every length
// is covered (the backend sends decode to the f32 kernel); a test checks the backend's choice, and
// one the backend's two-pass attention (attention_early) against one pass.
// Every test skips when no GPU is present.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "cuda_test_util.hpp"
#include "kernels/cpu/cpu_backend.hpp"
#include "kernels/cuda/cuda_backend.hpp"
#include "kernels/cuda/cuda_kernels.hpp"
#include "ops/rope_table.hpp"

namespace ltri {
namespace {

using test::randn;
using test::scaled_max_error;
using test::to_device;
using test::to_host;

// q, k, v and the probabilities are rounded to bf16 (relative error <= 2^-9 each) and summed in
// f32. A score q.k / sqrt(d) of unit-normal inputs then moves by ~2^-9 * sqrt(2) ~ 3e-3 (the
// rounding errors of the d products add like a random walk, as the products do), so each
// probability is off by ~0.3% relative, each value by <= 0.2%: the output, a weighted mean of
// values, is off by well under 1% of its scale. 2e-2 leaves room for the largest of ~1e5
// elements; the mistakes this must catch are far larger: a causal mask off by one key changes
// an early row's mean by O(1) of the values' scale, a key rotated to a neighbouring position
// changes scores by O(1) through the fast-turning dims.
constexpr double kTolerance = 2e-2;

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

// Host and device copies of one case's inputs.
struct Inputs {
  std::vector<float> q;
  std::vector<std::vector<float>> keys, values;
  std::vector<BackendBuffer> device_kv;
  AttentionPlan cpu_plan, gpu_plan;
};

Inputs make_inputs(CudaBackend& gpu, const Case& c, int64_t n_heads, int64_t n_kv_heads, int64_t head_dim, uint32_t seed) {
  Inputs in;
  const int64_t kv_row = n_kv_heads * head_dim;
  in.q = randn(size_t(c.n * n_heads * head_dim), seed);
  in.cpu_plan.query_first_position = in.gpu_plan.query_first_position = c.query_first_position;
  for (size_t s = 0; s < c.segments.size(); ++s) {
    in.keys.push_back(randn(size_t(c.segments[s].n * kv_row), seed + 100 + uint32_t(s)));
    in.values.push_back(randn(size_t(c.segments[s].n * kv_row), seed + 200 + uint32_t(s)));
  }
  for (size_t s = 0; s < c.segments.size(); ++s) {
    const SegmentSpec& spec = c.segments[s];
    KvSegment seg{nullptr, nullptr, spec.n, spec.first_position, spec.stride, spec.causal, spec.query_position};
    seg.k = in.keys[s].data();
    seg.v = in.values[s].data();
    in.cpu_plan.segments.push_back(seg);
    in.device_kv.push_back(to_device(gpu, in.keys[s]));
    seg.k = in.device_kv.back().data();
    in.device_kv.push_back(to_device(gpu, in.values[s]));
    seg.v = in.device_kv.back().data();
    in.gpu_plan.segments.push_back(seg);
  }
  return in;
}

enum class Kernel { mma, wgmma };

const char* kernel_name(Kernel kernel) { return kernel == Kernel::mma ? "mma" : "wgmma"; }

// The kernels this GPU and build run: mma always (sm_80+), wgmma on compute capability 9.0 with
// sm_90a code.
std::vector<Kernel> kernels() {
  static const bool wgmma = cuda::attention_wgmma_available();
  if (wgmma) return {Kernel::mma, Kernel::wgmma};
  return {Kernel::mma};
}

// The kernel's launcher on `plan` with the keys split into `splits` parts; the RoPE table is
// uploaded here as CudaBackend would.
std::vector<float> run_kernel(Kernel kernel, CudaBackend& gpu, const RopeTable& table, const float* d_q, int64_t n,
                              int64_t n_heads, int64_t n_kv_heads, int64_t head_dim, const AttentionPlan& plan,
                              int splits) {
  const size_t table_floats = size_t(table.size() * head_dim / 2);
  BackendBuffer d_cos = to_device(gpu, std::vector<float>(table.cos(0), table.cos(0) + table_floats));
  BackendBuffer d_sin = to_device(gpu, std::vector<float>(table.sin(0), table.sin(0) + table_floats));
  const size_t out_floats = size_t(n * n_heads * head_dim);
  BackendBuffer d_out(gpu, out_floats);
  cuda::AttentionArgs args;
  args.q = d_q;
  args.out = d_out.data();
  args.n = n;
  args.n_heads = n_heads;
  args.n_kv_heads = n_kv_heads;
  args.head_dim = head_dim;
  args.query_first_position = plan.query_first_position;
  args.cos = d_cos.data();
  args.sin = d_sin.data();
  for (const KvSegment& s : plan.segments) {
    cuda::AttentionSegment& d = args.segments[args.n_segments++];
    d.k = s.k;
    d.v = s.v;
    d.n = s.n;
    d.first_position = s.first_position;
    d.position_stride = s.position_stride;
    d.query_position = s.query_position;
    d.causal = s.causal ? 1 : 0;
  }
  const bool wgmma = kernel == Kernel::wgmma;
  EXPECT_TRUE(wgmma ? cuda::attention_wgmma_supports(args) : cuda::attention_mma_supports(args));
  const size_t scratch_floats =
      wgmma ? cuda::attention_wgmma_scratch_floats(args, splits) : cuda::attention_mma_scratch_floats(args, splits);
  BackendBuffer scratch(gpu, std::max<size_t>(1, scratch_floats));
  gpu.synchronize();  // inputs uploaded on the backend's stream
  if (wgmma) {
    cuda::launch_attention_wgmma(args, splits, scratch.data(), nullptr);
  } else {
    cuda::launch_attention_mma(args, splits, scratch.data(), nullptr);
  }
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  return to_host(gpu, d_out.data(), out_floats);
}

void check_mma(CpuBackend& cpu, CudaBackend& gpu, int64_t head_dim, int64_t n_kv_heads, int64_t group, const Case& c,
               uint32_t seed) {
  const int64_t n_heads = n_kv_heads * group;
  ModelConfig config;
  config.head_dim = head_dim;
  config.rope_theta = 10000.0;
  RopeTable table(config);
  table.ensure(16384);
  Inputs in = make_inputs(gpu, c, n_heads, n_kv_heads, head_dim, seed);
  std::vector<float> want(in.q.size());
  cpu.attention(in.q.data(), c.n, n_heads, n_kv_heads, head_dim, in.cpu_plan, table, want.data());
  BackendBuffer d_q = to_device(gpu, in.q);
  for (const Kernel kernel : kernels()) {
    for (const int splits : {1, 3}) {
      const std::vector<float> got =
          run_kernel(kernel, gpu, table, d_q.data(), c.n, n_heads, n_kv_heads, head_dim, in.gpu_plan, splits);
      EXPECT_LT(scaled_max_error(got, want), kTolerance)
          << kernel_name(kernel) << " " << c.name << ": head_dim " << head_dim << " kv heads " << n_kv_heads
          << " group " << group << " n " << c.n << " splits " << splits;
    }
  }
}

TEST(CudaAttentionMma, matches_cpu_on_policy_plans_head_dims_gqa_and_odd_lengths) {
  LTRI_SKIP_WITHOUT_CUDA();
  CpuBackend cpu(0);
  CudaBackend gpu(0);
  uint32_t seed = 1;
  for (const int64_t head_dim : {64, 128}) {
    for (const int64_t group : {1, 4, 8}) {
      const int64_t n_kv_heads = group == 8 ? 1 : 2;
      for (const int64_t n : {1, 7, 131}) {
        for (const Case& c : plan_cases(n)) check_mma(cpu, gpu, head_dim, n_kv_heads, group, c, seed++);
      }
    }
    for (const Case& c : plan_cases(1000)) check_mma(cpu, gpu, head_dim, 2, 4, c, seed++);
  }
}

TEST(CudaAttentionMma, long_causal_chunk_over_past_keys_matches_cpu) {
  LTRI_SKIP_WITHOUT_CUDA();
  // 4096 queries (many 128-row blocks, causal tiles cut inside a tile) over 4096 + 4096 keys.
  CpuBackend cpu(0);
  CudaBackend gpu(0);
  for (const int64_t head_dim : {64, 128}) {
    check_mma(cpu, gpu, head_dim, 1, 4,
              {"chunk_4096", 4096, 4096, {{4096, 0, 1, false, -1}, {4096, 4096, 1, true, -1}}}, 7);
  }
}

TEST(CudaAttentionMma, long_streaming_plan_with_fixed_placement_matches_cpu) {
  LTRI_SKIP_WITHOUT_CUDA();
  // As StreamingPolicyBase lays out a fixed-placement chunk: init and retrieved keys at position 0
  // (stride 0) seen by queries pinned at n_local, the window at 0.., the chunk causal after it.
  // Segments start at columns 4, 2004 and 4052 of the bf16 scratch, not multiples of 64: tiles
  // start mid-way and every segment ends in a partial tile.
  CpuBackend cpu(0);
  CudaBackend gpu(0);
  const int64_t n = 4096, window = 2048, n_local = 6144;
  check_mma(cpu, gpu, 128, 2, 2,
            {"streaming_fixed_long",
             n,
             window,
             {{4, 0, 0, false, n_local}, {2000, 0, 0, false, n_local}, {window, 0, 1, false, -1}, {n, window, 1, true, -1}}},
            11);
}

// Two-pass attention (CudaBackend::attention_early, then attention()): the early part on its own
// stream and a part of the GPU's blocks taking items from a counter, the rest as a second part,
// both merged. On the plan StreamingPolicyBase makes under fixed placement ([init | retrieved |
// window | chunk], all but the retrieved early), against the CPU's one pass and the GPU's one
// pass; also with nothing left for the second pass, and the errors of a plan whose early
// segments were not given to attention_early.
TEST(CudaAttentionMma, two_pass_attention_matches_one_pass) {
  LTRI_SKIP_WITHOUT_CUDA();
  CudaBackend gpu(0);
  gpu.set_attention_precision(DType::BF16);
  if (!gpu.has_attention_early(4096)) GTEST_SKIP() << "two-pass attention runs on the wgmma kernel (compute capability 9.0)";
  CpuBackend cpu(0);
  ModelConfig config;
  config.rope_theta = 10000.0;
  uint32_t seed = 40;
  for (const int64_t head_dim : {64, 128}) {
    config.head_dim = head_dim;
    RopeTable table(config);
    table.ensure(16384);
    for (const int64_t n : {int64_t(131), int64_t(1000), int64_t(4096)}) {
      for (const bool with_retrieved : {true, false}) {
        const int64_t window = 2048, n_local = 6144, n_kv_heads = 2, group = 4, n_heads = n_kv_heads * group;
        Case c{"streaming_fixed_two_pass", n, window, {{4, 0, 0, false, n_local}}};
        if (with_retrieved) c.segments.push_back({2000, 0, 0, false, n_local});
        c.segments.push_back({window, 0, 1, false, -1});
        c.segments.push_back({n, window, 1, true, -1});
        SCOPED_TRACE("head_dim " + std::to_string(head_dim) + " n " + std::to_string(n) +
                     (with_retrieved ? " with retrieved" : " all early"));
        Inputs in = make_inputs(gpu, c, n_heads, n_kv_heads, head_dim, seed++);
        std::vector<float> want(in.q.size());
        cpu.attention(in.q.data(), n, n_heads, n_kv_heads, head_dim, in.cpu_plan, table, want.data());
        BackendBuffer d_q = to_device(gpu, in.q), d_out(gpu, in.q.size());
        gpu.attention(d_q.data(), n, n_heads, n_kv_heads, head_dim, in.gpu_plan, table, d_out.data());
        const std::vector<float> one_pass = to_host(gpu, d_out.data(), in.q.size());

        AttentionPlan whole = in.gpu_plan, early;
        early.query_first_position = whole.query_first_position;
        for (size_t s = 0; s < whole.segments.size(); ++s) {
          whole.segments[s].early = !(with_retrieved && s == 1);
          if (whole.segments[s].early) early.segments.push_back(whole.segments[s]);
        }
        gpu.fill_zero(d_out.data(), in.q.size());
        gpu.attention_early(d_q.data(), n, n_heads, n_kv_heads, head_dim, early, table);
        gpu.attention(d_q.data(), n, n_heads, n_kv_heads, head_dim, whole, table, d_out.data());
        const std::vector<float> two_pass = to_host(gpu, d_out.data(), in.q.size());
        EXPECT_LT(scaled_max_error(two_pass, want), kTolerance);
        EXPECT_LT(scaled_max_error(two_pass, one_pass), kTolerance);
        // With a second part the merge rounds differently from one softmax: equal results would
        // mean one pass ran. (A merge of the early part alone divides as the one pass does.)
        if (with_retrieved) {
          EXPECT_GT(scaled_max_error(two_pass, one_pass), 0.0) << "the two-pass path did not run";
        }

        // A plan with early segments and no early pass before it, or another query's: one error line.
        try {
          gpu.attention(d_q.data(), n, n_heads, n_kv_heads, head_dim, whole, table, d_out.data());
          ADD_FAILURE() << "a plan with early segments but no early pass ran";
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find("early segments do not match"), std::string::npos) << e.what();
        }
      }
    }
  }
}

TEST(CudaAttentionMma, wgmma_kernel_is_available_on_compute_capability_9_0) {
  LTRI_SKIP_WITHOUT_CUDA();
  int device = 0, major = 0, minor = 0;
  ASSERT_EQ(cudaGetDevice(&device), cudaSuccess);
  ASSERT_EQ(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device), cudaSuccess);
  ASSERT_EQ(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device), cudaSuccess);
  const char* required = std::getenv("LTRI_REQUIRE_CUDA");
  if (major != 9 || minor != 0 || required == nullptr || std::string(required) != "1") {
    GTEST_SKIP() << "checked on compute capability 9.0 with LTRI_REQUIRE_CUDA=1 (scripts/gpu_build.sh builds sm_90a)";
  }
  EXPECT_TRUE(cuda::attention_wgmma_available()) << "an H100/H200 build must carry the wgmma kernel";
  CudaBackend gpu(0);
  gpu.set_attention_precision(DType::BF16);
  EXPECT_TRUE(gpu.uses_wgmma_attention());
}

TEST(CudaAttentionMma, bf16_precision_sends_prefill_to_tensor_cores_and_keeps_decode_in_f32) {
  LTRI_SKIP_WITHOUT_CUDA();
  CpuBackend cpu(0);
  CudaBackend gpu(0);
  ModelConfig config;
  config.head_dim = 128;
  config.rope_theta = 10000.0;
  RopeTable table(config);
  table.ensure(4096);
  for (const int64_t n : {int64_t(1), int64_t(131)}) {
    const Case c{"full_with_past", n, 1000, {{1000, 0, 1, false, -1}, {n, 1000, 1, true, -1}}};
    Inputs in = make_inputs(gpu, c, 8, 2, 128, 5);
    std::vector<float> want(in.q.size());
    cpu.attention(in.q.data(), n, 8, 2, 128, in.cpu_plan, table, want.data());
    BackendBuffer d_q = to_device(gpu, in.q), d_out(gpu, in.q.size());
    gpu.set_attention_precision(DType::F32);
    gpu.attention(d_q.data(), n, 8, 2, 128, in.gpu_plan, table, d_out.data());
    const std::vector<float> f32 = to_host(gpu, d_out.data(), in.q.size());
    gpu.set_attention_precision(DType::BF16);
    gpu.attention(d_q.data(), n, 8, 2, 128, in.gpu_plan, table, d_out.data());
    const std::vector<float> bf16 = to_host(gpu, d_out.data(), in.q.size());
    EXPECT_LT(scaled_max_error(bf16, want), kTolerance) << "n " << n;
    if (n < CudaBackend::kMmaMinQueries) {
      EXPECT_EQ(bf16, f32) << "decode must stay on the f32 kernel";
    } else {
      // bf16 rounding shows: the result is not the f32 kernel's (which is within 1e-4 of the CPU).
      EXPECT_GT(scaled_max_error(bf16, f32), 1e-5) << "prefill did not run on the bf16 kernel";
    }
  }
}

}  // namespace
}  // namespace ltri
