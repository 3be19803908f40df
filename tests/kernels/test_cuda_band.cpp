// CudaBackend::attention_band (cuda_band.cu) against the CPU backend's op (AttentionBandHost,
// itself checked against the definition in double in tests/unit/kernels/test_attention_band.cpp)
// on the shapes the policies produce. Every test skips when no GPU is present.
#include <gtest/gtest.h>

#include <string>

#include "core/error.hpp"
#include "cuda_test_util.hpp"
#include "kernels/cpu/cpu_backend.hpp"
#include "kernels/cuda/cuda_backend.hpp"
#include "kv/attention_band.hpp"
#include "ops/rope_table.hpp"

namespace ltri {
namespace {

using test::randn;
using test::scaled_max_error;
using test::to_device;

// Both sides rotate bit for bit alike (same table, same roundings); the scores then differ only
// in f32 summation order over head_dim (OpenBLAS vs a sequential fma chain): ~1e-6 of
// sum |q_e k_e| / sqrt(d), a few 1e-6 absolute for unit-normal inputs. exp turns an absolute
// error in s into the same relative error in each probability, so seg cells (<= 1) and votes
// (sums of probabilities, in double on both sides) agree to ~1e-5 of their scale; 1e-4 leaves
// room for the worst row, and a wrong band (a cell off by one, a missed key, an unnormalised
// row) is off by far more.
constexpr double kTolerance = 1e-4;

struct BandCase {
  int64_t head_dim, n_kv_heads, group, n, width;
  int64_t first_query, first_key;
  int64_t seg_head;
  std::string what;
};

void check_band(CpuBackend& cpu, CudaBackend& gpu, const BandCase& c, uint32_t seed) {
  const int64_t n_heads = c.n_kv_heads * c.group;
  ModelConfig config;
  config.head_dim = c.head_dim;
  config.rope_theta = 500000.0;
  RopeTable table(config);
  table.ensure(c.width + c.n);

  AttentionBandArgs a;
  a.n = c.n;
  a.first_query = c.first_query;
  a.first_key = c.first_key;
  a.n_heads = n_heads;
  a.n_kv_heads = c.n_kv_heads;
  a.head_dim = c.head_dim;
  a.width = c.width;
  a.seg_head = c.seg_head;
  const auto q = randn(size_t(c.n * n_heads * c.head_dim), seed);
  const auto keys = randn(size_t(a.n_keys() * c.n_kv_heads * c.head_dim), seed + 1);
  const auto votes_before = randn(size_t(a.n_keys() * c.n_kv_heads), seed + 2);  // earlier chunks' votes

  std::vector<float> want_votes = votes_before, want_seg(size_t(c.n * c.width), -1.0f);
  a.q = q.data();
  a.keys = keys.data();
  cpu.attention_band(a, table, want_votes.data(), want_seg.data());

  BackendBuffer d_q = to_device(gpu, q), d_keys = to_device(gpu, keys);
  a.q = d_q.data();
  a.keys = d_keys.data();
  std::vector<float> got_votes = votes_before, got_seg(size_t(c.n * c.width), -1.0f);
  gpu.attention_band(a, table, got_votes.data(), got_seg.data());
  const std::string where = c.what + ": head_dim " + std::to_string(c.head_dim) + " group " + std::to_string(c.group) +
                            " n " + std::to_string(c.n) + " width " + std::to_string(c.width);
  EXPECT_LT(scaled_max_error(got_votes, want_votes), kTolerance) << where;
  EXPECT_LT(scaled_max_error(got_seg, want_seg), kTolerance) << where;

  // Without seg the votes are the same.
  std::vector<float> votes_only = votes_before;
  gpu.attention_band(a, table, votes_only.data(), nullptr);
  EXPECT_EQ(votes_only, got_votes) << where << " (votes without seg)";

  // The asynchronous band: the chunk's own votes, added to the earlier ones afterwards, are the
  // same sums bit for bit, and the seg rows the same.
  const int64_t vote_floats = a.n_keys() * c.n_kv_heads;
  float* out = gpu.alloc_host(size_t(vote_floats + c.n * c.width));
  gpu.attention_band_async(a, table, out, true)->wait();
  std::vector<float> async_votes = votes_before;
  for (int64_t k = 0; k < vote_floats; ++k) async_votes[size_t(k)] += out[k];
  EXPECT_EQ(async_votes, got_votes) << where << " (async)";
  EXPECT_EQ(std::vector<float>(out + vote_floats, out + vote_floats + c.n * c.width), got_seg) << where << " (async)";
  gpu.free_host(out);
}

TEST(CudaBand, matches_cpu_on_head_dims_gqa_chunk_lengths_widths_and_window_edges) {
  LTRI_SKIP_WITHOUT_CUDA();
  CpuBackend cpu(2);
  CudaBackend gpu(0);
  uint32_t seed = 1;
  int variant = 0;
  for (const int64_t head_dim : {64, 128}) {
    for (const int64_t group : {1, 3, 4}) {
      for (const int64_t n : {1, 7, 131, 512}) {
        for (const int64_t width : {128, 256}) {
          const int64_t n_kv_heads = 2, first_query = 1000;
          const int64_t seg_head = variant % 2 ? kBandMeanOfHeads : (variant / 2) % (n_kv_heads * group);
          // Where the local keys start, as streaming_base.cpp picks first_key: the full band
          // back from the chunk; a window shorter than the band (first_key > first_query - width);
          // the first chunk with 4 sinks (rows 0..3 have no band).
          const BandCase cases[] = {
              {head_dim, n_kv_heads, group, n, width, first_query, first_query - (width - 1), seg_head, "full band"},
              {head_dim, n_kv_heads, group, n, width, first_query, first_query - width / 3, seg_head, "short window"},
              {head_dim, n_kv_heads, group, n, width, 0, std::min<int64_t>(4, n - 1), seg_head, "sink boundary"},
          };
          for (const BandCase& c : cases) check_band(cpu, gpu, c, seed += 3);
          ++variant;
        }
      }
    }
  }
}

TEST(CudaBand, keys_starting_inside_the_chunk_and_no_local_keys) {
  LTRI_SKIP_WITHOUT_CUDA();
  CpuBackend cpu(2);
  CudaBackend gpu(0);
  // The chunk straddles the sink boundary: its first 40 rows are sinks.
  check_band(cpu, gpu, {128, 8, 4, 131, 256, 0, 40, kBandMeanOfHeads, "sinks in the chunk"}, 500);
  check_band(cpu, gpu, {64, 1, 4, 70, 128, 10, 45, 2, "sinks in the chunk, one head"}, 600);

  // Every query a sink: votes untouched, seg zero, as on the CPU.
  ModelConfig config;
  config.head_dim = 64;
  RopeTable table(config);
  AttentionBandArgs a;
  a.n = 3;
  a.first_query = 0;
  a.first_key = 3;
  a.n_heads = a.n_kv_heads = 1;
  a.head_dim = 64;
  a.width = 16;
  BackendBuffer d_q(gpu, 3 * 64);
  a.q = d_q.data();
  a.keys = d_q.data();
  std::vector<float> seg(3 * 16, 5.0f);
  float votes = 7.0f;
  gpu.attention_band(a, table, &votes, seg.data());
  EXPECT_EQ(votes, 7.0f);
  EXPECT_EQ(seg, std::vector<float>(3 * 16, 0.0f));
}

TEST(CudaBand, rejects_a_head_dim_it_is_not_compiled_for) {
  LTRI_SKIP_WITHOUT_CUDA();
  CudaBackend gpu(0);
  ModelConfig config;
  config.head_dim = 48;
  RopeTable table(config);
  table.ensure(16);
  AttentionBandArgs a;
  a.n = 1;
  a.first_query = 4;
  a.n_heads = a.n_kv_heads = 1;
  a.head_dim = 48;
  a.width = 8;
  BackendBuffer d_x(gpu, 5 * 48);
  a.q = a.keys = d_x.data();
  float votes[5] = {};
  try {
    gpu.attention_band(a, table, votes, nullptr);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("head_dim 48"), std::string::npos) << e.what();
  }
}

TEST(CudaBand, queued_bands_filed_later_equal_bands_filed_at_once) {
  LTRI_SKIP_WITHOUT_CUDA();
  CudaBackend gpu(0);
  // Two layers' bands queued back to back (the second kernel reuses the first's scratch while
  // its copy may be in flight), then filed: the same rows as compute() gives, bit for bit.
  const int64_t n_heads = 8, n_kv = 2, hd = 128, width = 256, n = 131, first_query = 700, first_key = 700 - 255;
  ModelConfig config;
  config.head_dim = hd;
  config.rope_theta = 500000.0;
  RopeTable table(config);
  table.ensure(width + n);
  BandCollector band(n_heads, n_kv, hd, width);
  ASSERT_TRUE(gpu.has_attention_band_async());
  std::vector<BackendBuffer> qs, keys;
  std::vector<TokenRows> votes_now, seg_now, votes_later, seg_later;
  std::vector<std::unique_ptr<PendingBand>> pending;
  for (int layer = 0; layer < 2; ++layer) {
    qs.push_back(to_device(gpu, randn(size_t(n * n_heads * hd), 40 + layer)));
    keys.push_back(to_device(gpu, randn(size_t((first_query + n - first_key) * n_kv * hd), 50 + layer)));
    for (auto* rows : {&votes_now, &votes_later}) {
      rows->emplace_back(n_kv, 2048);
      rows->back().reset(first_key);
      rows->back().push(first_query + n - first_key);
      for (int64_t t = first_key; t < first_query; ++t) rows->back().row(t)[t % n_kv] = 0.25f * float(t % 7);  // earlier votes
    }
    for (auto* rows : {&seg_now, &seg_later}) {
      rows->emplace_back(width, 2048);
      rows->back().reset(first_key);
      rows->back().push(first_query + n - first_key);
    }
    pending.push_back(std::make_unique<PendingBand>(gpu));
  }
  for (int layer = 0; layer < 2; ++layer) {
    ASSERT_TRUE(band.start(gpu, qs[size_t(layer)].data(), n, first_query, keys[size_t(layer)].data(), first_key, table,
                           layer == 0 ? BandCollector::kMeanOfHeads : 3, true, *pending[size_t(layer)]));
    EXPECT_TRUE(pending[size_t(layer)]->pending());
  }
  for (int layer = 0; layer < 2; ++layer) {
    band.compute(gpu, qs[size_t(layer)].data(), n, first_query, keys[size_t(layer)].data(), first_key, table,
                 layer == 0 ? BandCollector::kMeanOfHeads : 3, &seg_now[size_t(layer)], votes_now[size_t(layer)]);
    pending[size_t(layer)]->apply(votes_later[size_t(layer)], &seg_later[size_t(layer)]);
    EXPECT_FALSE(pending[size_t(layer)]->pending());
    for (int64_t t = first_key; t < first_query + n; ++t) {
      const float* a = votes_now[size_t(layer)].row(t);
      const float* b = votes_later[size_t(layer)].row(t);
      ASSERT_EQ(std::vector<float>(a, a + n_kv), std::vector<float>(b, b + n_kv)) << "layer " << layer << " token " << t;
    }
    for (int64_t t = first_query; t < first_query + n; ++t) {
      const float* a = seg_now[size_t(layer)].row(t);
      const float* b = seg_later[size_t(layer)].row(t);
      ASSERT_EQ(std::vector<float>(a, a + width), std::vector<float>(b, b + width)) << "layer " << layer << " token " << t;
    }
  }
  // The CPU backend has no asynchronous band: start() queues nothing.
  CpuBackend cpu(1);
  PendingBand cpu_pending(cpu);
  EXPECT_FALSE(band.start(cpu, nullptr, n, first_query, nullptr, first_key, table, 0, true, cpu_pending));
  EXPECT_FALSE(cpu_pending.pending());
}

}  // namespace
}  // namespace ltri
