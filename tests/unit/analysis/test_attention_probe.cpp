// AttentionProbe against an independent double-precision attention (RoPE angles from the
// formula, not the table), and against the CPU attention op's own output.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "analysis/attention_probe.hpp"
#include "core/error.hpp"
#include "io/model_config.hpp"
#include "ops/backend.hpp"
#include "ops/rope_table.hpp"

namespace ltri {
namespace {

constexpr int64_t kHeads = 4, kKvHeads = 2, kHeadDim = 8;
constexpr double kRopeTheta = 10000.0;

ModelConfig rope_config() {
  ModelConfig c;
  c.head_dim = kHeadDim;
  c.rope_theta = kRopeTheta;
  return c;
}

std::vector<float> random_floats(size_t n, std::mt19937& rng, float scale = 1.0f) {
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// Rotation of one head vector by `position`, HF rotate_half layout, angles in double.
std::vector<double> rotate(const float* x, int64_t position) {
  const int64_t half = kHeadDim / 2;
  std::vector<double> out(kHeadDim);
  for (int64_t i = 0; i < half; ++i) {
    const double inv_freq = 1.0 / std::pow(kRopeTheta, double(2 * i) / double(kHeadDim));
    const double a = double(position) * inv_freq;
    out[size_t(i)] = x[i] * std::cos(a) - x[i + half] * std::sin(a);
    out[size_t(i + half)] = x[i + half] * std::cos(a) + x[i] * std::sin(a);
  }
  return out;
}

struct Column {
  const float* k;  // (n_kv_heads, head_dim)
  int64_t position;
  int64_t query_position;  // -1: the query's own position
  int64_t causal_index;    // -1: always visible; else visible to chunk rows >= this
};

// probs[h][c] for chunk row i, straight from the definition.
std::vector<std::vector<double>> direct_probs(const float* q_row, int64_t i, int64_t query_first_position,
                                              const std::vector<Column>& cols) {
  std::vector<std::vector<double>> p(kHeads, std::vector<double>(cols.size(), 0.0));
  for (int64_t h = 0; h < kHeads; ++h) {
    const int64_t g = h / (kHeads / kKvHeads);
    std::vector<double> s(cols.size(), -INFINITY);
    for (size_t c = 0; c < cols.size(); ++c) {
      if (cols[c].causal_index >= 0 && cols[c].causal_index > i) continue;
      const int64_t qp = cols[c].query_position >= 0 ? cols[c].query_position : query_first_position + i;
      const std::vector<double> qr = rotate(q_row + h * kHeadDim, qp);
      const std::vector<double> kr = rotate(cols[c].k + g * kHeadDim, cols[c].position);
      double dot = 0.0;
      for (int64_t d = 0; d < kHeadDim; ++d) dot += qr[size_t(d)] * kr[size_t(d)];
      s[c] = dot / std::sqrt(double(kHeadDim));
    }
    double mx = -INFINITY, sum = 0.0;
    for (double x : s) mx = std::max(mx, x);
    for (size_t c = 0; c < cols.size(); ++c) sum += std::isinf(s[c]) ? 0.0 : std::exp(s[c] - mx);
    for (size_t c = 0; c < cols.size(); ++c) p[size_t(h)][c] = std::isinf(s[c]) ? 0.0 : std::exp(s[c] - mx) / sum;
  }
  return p;
}

// A plan of every segment kind: past keys at true positions, keys pinned at one position that
// every query sees from a fixed distance (query_position), and the causal chunk.
struct Fixture {
  std::mt19937 rng{42};
  int64_t n = 5;  // chunk rows
  std::vector<float> q, k_past, v_past, k_fixed, v_fixed, k_chunk, v_chunk;
  AttentionPlan plan;
  RopeTable rope{rope_config()};
  std::vector<Column> columns;

  explicit Fixture(bool with_fixed_segment) {
    const int64_t kv_row = kKvHeads * kHeadDim;
    q = random_floats(size_t(n * kHeads * kHeadDim), rng);
    k_past = random_floats(size_t(7 * kv_row), rng);
    v_past = random_floats(size_t(7 * kv_row), rng);
    k_fixed = random_floats(size_t(3 * kv_row), rng);
    v_fixed = random_floats(size_t(3 * kv_row), rng);
    k_chunk = random_floats(size_t(n * kv_row), rng);
    v_chunk = random_floats(size_t(n * kv_row), rng);
    if (with_fixed_segment) {
      plan.segments.push_back({k_fixed.data(), v_fixed.data(), 3, 0, 0, false, 40});
      for (int64_t t = 0; t < 3; ++t) columns.push_back({k_fixed.data() + t * kv_row, 0, 40, -1});
    }
    plan.segments.push_back({k_past.data(), v_past.data(), 7, 30, 1, false, -1});
    for (int64_t t = 0; t < 7; ++t) columns.push_back({k_past.data() + t * kv_row, 30 + t, -1, -1});
    plan.segments.push_back({k_chunk.data(), v_chunk.data(), n, 37, 1, true, -1});
    for (int64_t t = 0; t < n; ++t) columns.push_back({k_chunk.data() + t * kv_row, 37 + t, -1, t});
    plan.query_first_position = 37;
    rope.ensure(64);
  }
  int64_t visible() const { return int64_t(columns.size()); }
};

ProbeSettings map_of_head(int head, int64_t n_layers, int64_t rows, int64_t cols) {
  ProbeSettings s;
  s.row_begin = 0;
  s.row_end = rows;
  s.col_begin = 0;
  s.col_end = cols;
  s.map_heads.assign(size_t(n_layers), AttentionProbe::kNoMap);
  s.map_heads[0] = head;
  s.keep_top1 = true;
  return s;
}

TEST(AttentionProbe, probabilities_match_a_direct_double_computation) {
  Fixture f(true);
  for (int head = 0; head < kHeads; ++head) {
    AttentionProbe probe(1, kHeads, kKvHeads, kHeadDim, map_of_head(head, 1, f.n, f.visible()));
    probe.on_attention(0, f.q.data(), f.n, kHeads, f.plan, f.rope);
    for (int64_t i = 0; i < f.n; ++i) {
      const auto want = direct_probs(f.q.data() + i * kHeads * kHeadDim, i, f.plan.query_first_position, f.columns);
      double row_sum = 0.0;
      for (int64_t c = 0; c < f.visible(); ++c) {
        const float got = probe.map(0)[size_t(i * f.visible() + c)];
        EXPECT_NEAR(got, want[size_t(head)][size_t(c)], 2e-6) << "head " << head << " row " << i << " col " << c;
        row_sum += got;
      }
      EXPECT_NEAR(row_sum, 1.0, 1e-5) << "row " << i;
      // Top-1 of every head is the direct argmax.
      for (int64_t h = 0; h < kHeads; ++h) {
        const auto& p = want[size_t(h)];
        EXPECT_EQ(probe.top1(i, 0, h), int64_t(std::max_element(p.begin(), p.end()) - p.begin()));
      }
    }
  }
}

TEST(AttentionProbe, mean_map_is_the_mean_of_head_maps_and_respects_windows) {
  Fixture f(true);
  // Rows [1, 4), columns [2, 9) of the mean map.
  ProbeSettings s;
  s.row_begin = 1;
  s.row_end = 4;
  s.col_begin = 2;
  s.col_end = 9;
  s.map_heads = {AttentionProbe::kMeanOfHeads};
  s.row_max_from = 3;
  AttentionProbe probe(1, kHeads, kKvHeads, kHeadDim, s);
  probe.on_attention(0, f.q.data(), f.n, kHeads, f.plan, f.rope);
  ASSERT_EQ(probe.map_rows(), 3);
  ASSERT_EQ(probe.map_cols(), 7);
  for (int64_t r = 0; r < 3; ++r) {
    const int64_t i = r + 1;
    const auto want = direct_probs(f.q.data() + i * kHeads * kHeadDim, i, f.plan.query_first_position, f.columns);
    double want_max = 0.0;
    for (int64_t c = 0; c < f.visible(); ++c) {
      double mean = 0.0;
      for (int64_t h = 0; h < kHeads; ++h) mean += want[size_t(h)][size_t(c)] / kHeads;
      if (c >= 3) want_max = std::max(want_max, mean);
      if (c >= 2 && c < 9) {
        EXPECT_NEAR(probe.map(0)[size_t(r * 7 + c - 2)], mean, 2e-6);
      }
    }
    EXPECT_NEAR(probe.row_max(0)[size_t(r)], want_max, 2e-6);
  }
  EXPECT_EQ(probe.top1(0, 0, 0), -1);  // top-1 was not asked for
}

TEST(AttentionProbe, band_scaled_map_follows_the_ltri_policy_definition) {
  Fixture f(false);  // full attention: 7 past tokens, then the chunk's tokens 7..11
  ProbeSettings s;
  s.row_begin = 7;
  s.row_end = 12;
  s.col_begin = 0;
  s.col_end = 12;
  s.map_heads = {AttentionProbe::kMeanOfHeads};
  s.row_max_from = 2;  // tokens 0, 1 are sinks
  s.scale_band = 4;    // each head's row scaled by its max over the 4 columns ending at the diagonal
  AttentionProbe probe(1, kHeads, kKvHeads, kHeadDim, s);
  const std::vector<float> past_q(size_t(7 * kHeads * kHeadDim), 0.0f);
  probe.on_attention(0, past_q.data(), 7, kHeads, f.plan, f.rope);  // rows 0..6: outside the window
  probe.on_attention(0, f.q.data(), f.n, kHeads, f.plan, f.rope);
  for (int64_t i = 0; i < f.n; ++i) {
    const int64_t row = 7 + i;
    const auto p = direct_probs(f.q.data() + i * kHeads * kHeadDim, i, f.plan.query_first_position, f.columns);
    std::vector<double> mean(size_t(f.visible()), 0.0);
    for (int64_t h = 0; h < kHeads; ++h) {
      double mx = 0.0;
      for (int64_t c = std::max<int64_t>(2, row - 3); c <= row; ++c) mx = std::max(mx, p[size_t(h)][size_t(c)]);
      for (int64_t c = 0; c < f.visible(); ++c) mean[size_t(c)] += p[size_t(h)][size_t(c)] / mx / kHeads;
    }
    double band_max = 0.0;
    for (int64_t c = std::max<int64_t>(2, row - 3); c <= row; ++c) band_max = std::max(band_max, mean[size_t(c)]);
    for (int64_t c = 0; c < 12; ++c) EXPECT_NEAR(probe.map(0)[size_t(i * 12 + c)], mean[size_t(c)], 1e-5) << row << "," << c;
    EXPECT_NEAR(probe.row_max(0)[size_t(i)], band_max, 1e-5);
  }
}

TEST(AttentionProbe, rows_are_counted_across_chunks) {
  Fixture f(false);
  // The same chunk fed twice: the second call's rows are rows n..2n-1 of the session.
  ProbeSettings s;
  s.row_begin = f.n + 1;
  s.keep_top1 = true;
  AttentionProbe probe(2, kHeads, kKvHeads, kHeadDim, s);
  probe.on_attention(0, f.q.data(), f.n, kHeads, f.plan, f.rope);
  probe.on_attention(1, f.q.data(), f.n, kHeads, f.plan, f.rope);
  EXPECT_EQ(probe.top1(1, 0, 0), -1);
  probe.on_attention(0, f.q.data(), f.n, kHeads, f.plan, f.rope);
  EXPECT_EQ(probe.rows_seen(0), 2 * f.n);
  EXPECT_EQ(probe.rows_seen(1), f.n);
  const auto want = direct_probs(f.q.data() + 1 * kHeads * kHeadDim, 1, f.plan.query_first_position, f.columns);
  for (int64_t h = 0; h < kHeads; ++h) {
    const auto& p = want[size_t(h)];
    EXPECT_EQ(probe.top1(f.n + 1, 0, h), int64_t(std::max_element(p.begin(), p.end()) - p.begin()));
    EXPECT_EQ(probe.top1(f.n + 1, 1, h), -1);  // layer 1 has not seen its second chunk
  }
}

TEST(AttentionProbe, probabilities_reproduce_the_cpu_attention_op_output) {
  Fixture f(false);  // the CPU op may not place fixed query positions; true positions only
  std::unique_ptr<Backend> backend = make_cpu_backend(1);
  std::vector<float> out(size_t(f.n * kHeads * kHeadDim));
  backend->attention(f.q.data(), f.n, kHeads, kKvHeads, kHeadDim, f.plan, f.rope, out.data());
  const int64_t kv_row = kKvHeads * kHeadDim;
  std::vector<const float*> values;
  for (int64_t t = 0; t < 7; ++t) values.push_back(f.v_past.data() + t * kv_row);
  for (int64_t t = 0; t < f.n; ++t) values.push_back(f.v_chunk.data() + t * kv_row);
  for (int head = 0; head < kHeads; ++head) {
    AttentionProbe probe(1, kHeads, kKvHeads, kHeadDim, map_of_head(head, 1, f.n, f.visible()));
    probe.on_attention(0, f.q.data(), f.n, kHeads, f.plan, f.rope);
    const int64_t g = head / (kHeads / kKvHeads);
    for (int64_t i = 0; i < f.n; ++i) {
      for (int64_t d = 0; d < kHeadDim; ++d) {
        double o = 0.0;
        for (int64_t c = 0; c < f.visible(); ++c) o += probe.map(0)[size_t(i * f.visible() + c)] * values[size_t(c)][g * kHeadDim + d];
        EXPECT_NEAR(out[size_t((i * kHeads + head) * kHeadDim + d)], o, 1e-4);
      }
    }
  }
}

TEST(AttentionProbe, bad_settings_are_refused) {
  ProbeSettings s;
  s.map_heads = {AttentionProbe::kMeanOfHeads};  // a map without a finite row window
  EXPECT_THROW(AttentionProbe(1, kHeads, kKvHeads, kHeadDim, s), Error);
  s.row_end = 4;
  s.col_end = 4;
  s.map_heads = {kHeads};  // no such head
  EXPECT_THROW(AttentionProbe(1, kHeads, kKvHeads, kHeadDim, s), Error);
  EXPECT_THROW(AttentionProbe(1, 3, 2, kHeadDim, ProbeSettings{}), Error);  // 3 heads over 2 KV heads
}

}  // namespace
}  // namespace ltri
