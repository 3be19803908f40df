// Backend::attention_band on the CPU backend (AttentionBandHost) against a direct
// double-precision evaluation of its definition (ops/attention_band_host.hpp): rotation at
// t - first_key, softmax over the band, votes added per KV head, segmentation rows with max 1.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "core/error.hpp"
#include "kernels/cpu/cpu_backend.hpp"
#include "ops/rope_table.hpp"

namespace ltri {
namespace {

std::vector<float> randn(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return v;
}

std::vector<double> rotate(const float* x, int64_t hd, int64_t p, const std::vector<double>& inv) {
  std::vector<double> out(static_cast<size_t>(hd));
  const int64_t half = hd / 2;
  for (int64_t i = 0; i < half; ++i) {
    const double a = x[i], b = x[i + half], t = double(p) * inv[size_t(i)];
    out[size_t(i)] = a * std::cos(t) - b * std::sin(t);
    out[size_t(i + half)] = b * std::cos(t) + a * std::sin(t);
  }
  return out;
}

struct Reference {
  std::vector<double> votes;  // (n_keys, n_kv_heads), the chunk's contributions
  std::vector<double> seg;    // (n, width)
};

// The band from its definition, in double.
Reference band_reference(const AttentionBandArgs& a, const std::vector<double>& inv) {
  const int64_t hd = a.head_dim, group = a.n_heads / a.n_kv_heads, w = a.width, n_keys = a.n_keys();
  Reference ref;
  ref.votes.assign(size_t(n_keys * a.n_kv_heads), 0.0);
  ref.seg.assign(size_t(a.n * w), 0.0);
  std::vector<double> mean(static_cast<size_t>(w));
  for (int64_t i = 0; i < a.n; ++i) {
    const int64_t t = a.first_query + i;
    if (t < a.first_key) continue;  // sink row
    std::fill(mean.begin(), mean.end(), 0.0);
    for (int64_t h = 0; h < a.n_heads; ++h) {
      const auto q = rotate(a.q + (i * a.n_heads + h) * hd, hd, t - a.first_key, inv);
      const int64_t d_last = std::min(w - 1, t - a.first_key);
      std::vector<double> s(size_t(d_last + 1));
      for (int64_t d = 0; d <= d_last; ++d) {
        const int64_t j = t - d;
        const auto k = rotate(a.keys + ((j - a.first_key) * a.n_kv_heads + h / group) * hd, hd, j - a.first_key, inv);
        double dot = 0.0;
        for (int64_t e = 0; e < hd; ++e) dot += q[size_t(e)] * k[size_t(e)];
        s[size_t(d)] = dot / std::sqrt(double(hd));
      }
      const double mx = *std::max_element(s.begin(), s.end());
      double sum = 0.0;
      for (double x : s) sum += std::exp(x - mx);
      for (int64_t d = 0; d <= d_last; ++d) {
        const double rel = std::exp(s[size_t(d)] - mx);  // A_ij / max_j A_ij
        ref.votes[size_t((t - d - a.first_key) * a.n_kv_heads + h / group)] += rel / sum;
        if (a.seg_head == h) ref.seg[size_t(i * w + d)] = rel;
        mean[size_t(d)] += rel / double(a.n_heads);
      }
    }
    if (a.seg_head == kBandMeanOfHeads) {
      const double mx = *std::max_element(mean.begin(), mean.end());
      for (int64_t d = 0; d < w; ++d) ref.seg[size_t(i * w + d)] = mean[size_t(d)] / mx;
    }
  }
  return ref;
}

struct BandCase {
  int64_t n_heads, n_kv_heads, head_dim, n, first_query, first_key, width, seg_head;
};

TEST(AttentionBand, cpu_op_matches_the_definition_in_double) {
  const BandCase cases[] = {
      {4, 4, 16, 7, 40, 40 - 11, 12, kBandMeanOfHeads},  // band reaches back before the chunk
      {6, 2, 32, 20, 9, 4, 8, 3},                        // GQA 3, single head, keys from the sink boundary
      {8, 2, 64, 33, 0, 2, 16, kBandMeanOfHeads},        // first chunk: rows 0, 1 are sinks
      {4, 1, 16, 1, 100, 100 - 15, 16, 0},               // decode: one query, full band
      {2, 2, 8, 5, 30, 33, 4, kBandMeanOfHeads},         // first_key inside the chunk
  };
  CpuBackend cpu(2);
  uint32_t seed = 1;
  for (const BandCase& c : cases) {
    ModelConfig config;
    config.head_dim = c.head_dim;
    config.rope_theta = 10000.0;
    RopeTable table(config);
    table.ensure(c.first_query + c.n - c.first_key);
    AttentionBandArgs a;
    a.n = c.n;
    a.first_query = c.first_query;
    a.first_key = c.first_key;
    a.n_heads = c.n_heads;
    a.n_kv_heads = c.n_kv_heads;
    a.head_dim = c.head_dim;
    a.width = c.width;
    a.seg_head = c.seg_head;
    const auto q = randn(size_t(c.n * c.n_heads * c.head_dim), seed++);
    const auto keys = randn(size_t(a.n_keys() * c.n_kv_heads * c.head_dim), seed++);
    a.q = q.data();
    a.keys = keys.data();
    // Votes already held by the keys (from earlier chunks): the op adds to them.
    const auto before = randn(size_t(a.n_keys() * c.n_kv_heads), seed++);
    std::vector<float> votes = before;
    std::vector<float> seg(size_t(c.n * c.width), -1.0f);  // every cell must be written
    cpu.attention_band(a, table, votes.data(), seg.data());

    const Reference ref = band_reference(a, table.inv_freq());
    // f32 scores (|s| up to ~4) carry ~1e-6 relative rounding; exp turns that into ~1e-5 at most.
    for (size_t k = 0; k < votes.size(); ++k) {
      EXPECT_NEAR(votes[k] - before[k], ref.votes[k], 1e-4) << "vote " << k << " of case n=" << c.n;
    }
    for (size_t k = 0; k < seg.size(); ++k) EXPECT_NEAR(seg[k], ref.seg[k], 1e-5) << "seg cell " << k;
    // Each query row's weights sum to 1 per head: the votes of the chunk total n_heads x rows.
    const int64_t rows = std::min(c.n, c.first_query + c.n - c.first_key);
    double total = 0.0;
    for (size_t k = 0; k < votes.size(); ++k) total += double(votes[k]) - double(before[k]);
    EXPECT_NEAR(total, double(c.n_heads * rows), 1e-3);
  }
}

TEST(AttentionBand, no_local_keys_leaves_votes_and_zeroes_seg) {
  CpuBackend cpu(1);
  ModelConfig config;
  config.head_dim = 8;
  RopeTable table(config);
  table.ensure(8);
  AttentionBandArgs a;
  a.n = 3;
  a.first_query = 0;
  a.first_key = 3;  // all three queries are sinks
  a.n_heads = a.n_kv_heads = 1;
  a.head_dim = 8;
  a.width = 4;
  const std::vector<float> q(24, 1.0f);
  a.q = q.data();
  a.keys = q.data();
  std::vector<float> seg(12, 5.0f);
  float votes = 7.0f;
  cpu.attention_band(a, table, &votes, seg.data());
  EXPECT_EQ(votes, 7.0f);
  EXPECT_EQ(seg, std::vector<float>(12, 0.0f));
}

TEST(AttentionBand, a_bad_seg_head_is_one_clear_error) {
  CpuBackend cpu(1);
  ModelConfig config;
  config.head_dim = 8;
  RopeTable table(config);
  AttentionBandArgs a;
  a.n = 1;
  a.n_heads = 2;
  a.n_kv_heads = 1;
  a.head_dim = 8;
  a.width = 4;
  a.seg_head = 2;
  try {
    cpu.attention_band(a, table, nullptr, nullptr);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("seg_head 2"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace ltri
