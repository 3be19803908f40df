// Each CPU op against a direct double-precision evaluation of its definition.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "core/error.hpp"
#include "kernels/cpu/cpu_backend.hpp"
#include "ops/rope_table.hpp"

namespace ltri {
namespace {

std::vector<float> randn(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return v;
}

ModelConfig rope_config(int64_t head_dim, double theta, RopeScalingType type) {
  ModelConfig c;
  c.head_dim = head_dim;
  c.rope_theta = theta;
  c.rope_scaling.type = type;
  c.rope_scaling.factor = 8.0;
  c.rope_scaling.low_freq_factor = 1.0;
  c.rope_scaling.high_freq_factor = 4.0;
  c.rope_scaling.original_max_position_embeddings = 64;
  return c;
}

// Rotates one head vector by position p with the given inverse frequencies, in double.
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

TEST(CpuOps, matmul_is_x_times_w_transposed) {
  CpuBackend b(2);
  const int64_t n = 7, k = 33, m = 19;
  const auto x = randn(size_t(n * k), 1), w = randn(size_t(m * k), 2);
  std::vector<float> out(size_t(n * m));
  b.matmul(x.data(), w.data(), n, k, m, out.data());
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < m; ++j) {
      double s = 0;
      for (int64_t t = 0; t < k; ++t) s += double(x[size_t(i * k + t)]) * w[size_t(j * k + t)];
      EXPECT_NEAR(out[size_t(i * m + j)], s, 1e-4);
    }
}

TEST(CpuOps, rmsnorm_matches_definition) {
  CpuBackend b(2);
  const int64_t n = 5, dim = 129;
  const auto x = randn(size_t(n * dim), 3, 3.0f), w = randn(size_t(dim), 4);
  std::vector<float> out(x.size());
  b.rmsnorm(x.data(), w.data(), n, dim, 1e-5f, out.data());
  for (int64_t i = 0; i < n; ++i) {
    double ss = 0;
    for (int64_t d = 0; d < dim; ++d) ss += double(x[size_t(i * dim + d)]) * x[size_t(i * dim + d)];
    const double inv = 1.0 / std::sqrt(ss / dim + 1e-5);
    for (int64_t d = 0; d < dim; ++d)
      EXPECT_NEAR(out[size_t(i * dim + d)], w[size_t(d)] * x[size_t(i * dim + d)] * inv, 1e-5);
  }
}

TEST(CpuOps, add_rmsnorm_is_add_then_rmsnorm_and_refuses_out_on_x) {
  CpuBackend b(2);
  const int64_t n = 3, dim = 77;
  const auto x0 = randn(size_t(n * dim), 5), h0 = randn(size_t(n * dim), 6), w = randn(size_t(dim), 7);
  std::vector<float> x_want = x0, want(x0.size());
  b.add(x_want.data(), h0.data(), n * dim);
  b.rmsnorm(x_want.data(), w.data(), n, dim, 1e-5f, want.data());
  std::vector<float> x = x0, h = h0;
  b.add_rmsnorm(x.data(), h.data(), w.data(), n, dim, 1e-5f, h.data());  // out over h, as the model does
  EXPECT_EQ(x, x_want);
  EXPECT_EQ(h, want);
  EXPECT_THROW(b.add_rmsnorm(x.data(), h0.data(), w.data(), n, dim, 1e-5f, x.data()), Error);
}

TEST(CpuOps, swiglu_is_silu_gate_times_up) {
  CpuBackend b(2);
  auto g = randn(1000, 5, 4.0f);
  const auto u = randn(1000, 6), g0 = g;
  b.swiglu(g.data(), u.data(), 1000);
  for (size_t i = 0; i < g.size(); ++i)
    EXPECT_NEAR(g[i], g0[i] / (1.0 + std::exp(-double(g0[i]))) * u[i], 1e-5);
}

TEST(CpuOps, shared_input_projections_and_swiglu_down_are_the_separate_ops) {
  // The defaults of matmul_weights and swiglu_matmul_weight: the model's q/k/v, gate/up and
  // down projections go through them, so they must give exactly what the single ops give.
  CpuBackend b(2);
  const int64_t n = 5, k = 33, ffn = 21;
  const auto x = randn(size_t(n * k), 8), wq = randn(size_t(19 * k), 9), wk = randn(size_t(7 * k), 10);
  std::vector<float> q(size_t(n * 19)), kk(size_t(n * 7)), q_want(q.size()), k_want(kk.size());
  const Backend::Projection both[] = {{{wq.data(), DType::F32}, 19, q.data()}, {{wk.data(), DType::F32}, 7, kk.data()}};
  b.matmul_weights(x.data(), n, k, both);
  b.matmul_weight(x.data(), {wq.data(), DType::F32}, n, k, 19, q_want.data());
  b.matmul_weight(x.data(), {wk.data(), DType::F32}, n, k, 7, k_want.data());
  EXPECT_EQ(q, q_want);
  EXPECT_EQ(kk, k_want);

  const auto gate0 = randn(size_t(n * ffn), 11, 3.0f), up = randn(size_t(n * ffn), 12), wd = randn(size_t(k * ffn), 13);
  std::vector<float> gate = gate0, out(size_t(n * k)), want(out.size());
  b.swiglu_matmul_weight(gate.data(), up.data(), {wd.data(), DType::F32}, n, ffn, k, out.data());
  std::vector<float> act = gate0;
  b.swiglu(act.data(), up.data(), n * ffn);
  b.matmul_weight(act.data(), {wd.data(), DType::F32}, n, ffn, k, want.data());
  EXPECT_EQ(out, want);
}

TEST(CpuOps, mlp_and_the_norm_folded_ops_are_the_ops_they_are_made_of) {
  // The defaults of mlp, norm_matmul_weights and norm_mlp, which the model calls: the same
  // numbers as the ops one at a time (the CPU model's parity with transformers rests on them).
  CpuBackend b(2);
  const int64_t n = 4, hidden = 24, ffn = 10;
  const auto x0 = randn(size_t(n * hidden), 20), h0 = randn(size_t(n * hidden), 21), norm_w = randn(size_t(hidden), 22);
  const auto wg = randn(size_t(ffn * hidden), 23), wu = randn(size_t(ffn * hidden), 24), wd = randn(size_t(hidden * ffn), 25);
  std::vector<float> gate_up_w = wg;  // gate over up, as a loader's fused matrix
  gate_up_w.insert(gate_up_w.end(), wu.begin(), wu.end());
  const Backend::MlpWeights mlp{{wg.data(), DType::F32}, {wu.data(), DType::F32}, {nullptr, DType::F32},
                                {wd.data(), DType::F32}};
  Backend::MlpWeights mlp_fused = mlp;
  mlp_fused.gate_up = {gate_up_w.data(), DType::F32};

  // The MLP by hand: gate and up, silu(gate) * up, down.
  const auto mlp_by_hand = [&](const std::vector<float>& x, int64_t rows) {
    std::vector<float> g(size_t(rows * ffn)), u(g.size()), out(size_t(rows * hidden));
    b.matmul(x.data(), wg.data(), rows, hidden, ffn, g.data());
    b.matmul(x.data(), wu.data(), rows, hidden, ffn, u.data());
    b.swiglu(g.data(), u.data(), rows * ffn);
    b.matmul(g.data(), wd.data(), rows, ffn, hidden, out.data());
    return out;
  };
  std::vector<float> scratch(size_t(n * 2 * ffn)), out(size_t(n * hidden));
  b.mlp(x0.data(), mlp, n, hidden, ffn, scratch.data(), out.data());
  EXPECT_EQ(out, mlp_by_hand(x0, n));
  // One row through the fused matrix: one product of 2 * ffn rows, which BLAS may sum in
  // another order than two of ffn (the CPU loader never fuses; CUDA's GEMV is exact per row).
  std::vector<float> one_out(static_cast<size_t>(hidden));
  b.mlp(x0.data(), mlp_fused, 1, hidden, ffn, scratch.data(), one_out.data());
  const std::vector<float> one_want = mlp_by_hand(std::vector<float>(x0.begin(), x0.begin() + hidden), 1);
  for (size_t i = 0; i < one_out.size(); ++i) EXPECT_NEAR(one_out[i], one_want[i], 1e-4 * (1.0 + std::fabs(one_want[i])));

  for (const bool with_add : {true, false}) {
    std::vector<float> x = x0, h = h0, x_want = x0, normed_want(size_t(n * hidden));
    if (with_add) {
      b.add_rmsnorm(x_want.data(), h0.data(), norm_w.data(), n, hidden, 1e-5f, normed_want.data());
    } else {
      b.rmsnorm(x_want.data(), norm_w.data(), n, hidden, 1e-5f, normed_want.data());
    }
    const Backend::ResidualNorm norm{x.data(), with_add ? h.data() : nullptr, norm_w.data(), 1e-5f, h.data()};
    std::vector<float> q(size_t(n * 7)), q_want(q.size());
    const Backend::Projection proj[] = {{{wg.data(), DType::F32}, 7, q.data()}};
    b.norm_matmul_weights(norm, n, hidden, proj);
    b.matmul(normed_want.data(), wg.data(), n, hidden, 7, q_want.data());
    EXPECT_EQ(q, q_want);
    EXPECT_EQ(x, x_want);
    EXPECT_EQ(h, normed_want);  // normed over h, as the model passes it

    h = h0;
    x = x0;
    b.norm_mlp(norm, n, hidden, mlp, ffn, scratch.data(), h.data());
    EXPECT_EQ(h, mlp_by_hand(normed_want, n));
    EXPECT_EQ(x, x_want);
  }
}

TEST(CpuOps, llama3_inv_freq_keeps_high_slows_low_and_blends_between) {
  const ModelConfig c = rope_config(64, 500000.0, RopeScalingType::Llama3);
  const std::vector<double> inv = rope_inv_freq(c);
  ModelConfig plain = c;
  plain.rope_scaling.type = RopeScalingType::None;
  const std::vector<double> base = rope_inv_freq(plain);
  int kept = 0, slowed = 0, blended = 0;
  for (size_t i = 0; i < inv.size(); ++i) {
    const double wavelen = 2 * M_PI / base[i];
    if (wavelen < 64.0 / 4.0) { EXPECT_DOUBLE_EQ(inv[i], base[i]); ++kept; }
    else if (wavelen > 64.0) { EXPECT_DOUBLE_EQ(inv[i], base[i] / 8.0); ++slowed; }
    else { EXPECT_LT(inv[i], base[i]); EXPECT_GT(inv[i], base[i] / 8.0); ++blended; }
  }
  EXPECT_GT(kept, 0);
  EXPECT_GT(slowed, 0);
  EXPECT_GT(blended, 0);
  ModelConfig linear = rope_config(64, 10000.0, RopeScalingType::Linear);
  linear.rope_scaling.factor = 4.0;
  const std::vector<double> lin = rope_inv_freq(linear);
  for (size_t i = 0; i < lin.size(); ++i) EXPECT_DOUBLE_EQ(lin[i] * 4.0, rope_inv_freq(rope_config(64, 10000.0, RopeScalingType::None))[i]);
}

TEST(CpuOps, rope_rotates_rotate_half_pairs_at_large_positions) {
  CpuBackend b(2);
  const int64_t hd = 64, heads = 3, n = 4, first = 1'000'000;
  const ModelConfig c = rope_config(hd, 10000.0, RopeScalingType::None);
  RopeTable table(c);
  table.ensure(first + n);
  auto x = randn(size_t(n * heads * hd), 7);
  const auto x0 = x;
  b.rope(x.data(), n, heads, first, table);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t h = 0; h < heads; ++h) {
      const auto want = rotate(x0.data() + (i * heads + h) * hd, hd, first + i, table.inv_freq());
      for (int64_t d = 0; d < hd; ++d) EXPECT_NEAR(x[size_t((i * heads + h) * hd + d)], want[size_t(d)], 2e-5);
    }
}

// Direct attention in double: query i at position qp+i (or, against a segment with a fixed
// query_position, at that position), keys at the positions the segments give.
std::vector<double> reference_attention(const std::vector<float>& q, int64_t n, int64_t n_heads,
                                        int64_t n_kv, int64_t hd, const AttentionPlan& plan,
                                        const std::vector<double>& inv) {
  // Rotated keys once per (segment, key, kv head).
  std::vector<std::vector<std::vector<double>>> keys(plan.segments.size());
  for (size_t si = 0; si < plan.segments.size(); ++si) {
    const KvSegment& s = plan.segments[si];
    for (int64_t t = 0; t < s.n; ++t)
      for (int64_t g = 0; g < n_kv; ++g)
        keys[si].push_back(rotate(s.k + (t * n_kv + g) * hd, hd, s.first_position + t * s.position_stride, inv));
  }
  std::vector<double> out(size_t(n * n_heads * hd), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t h = 0; h < n_heads; ++h) {
      const int64_t g = h / (n_heads / n_kv);
      std::vector<double> scores;
      std::vector<const float*> values;
      for (size_t si = 0; si < plan.segments.size(); ++si) {
        const KvSegment& s = plan.segments[si];
        const int64_t query_pos = s.query_position >= 0 ? s.query_position : plan.query_first_position + i;
        const auto qr = rotate(q.data() + (i * n_heads + h) * hd, hd, query_pos, inv);
        for (int64_t t = 0; t < s.n; ++t) {
          if (s.causal && t > i) continue;
          const std::vector<double>& kr = keys[si][size_t(t * n_kv + g)];
          double dot = 0;
          for (int64_t d = 0; d < hd; ++d) dot += qr[size_t(d)] * kr[size_t(d)];
          scores.push_back(dot / std::sqrt(double(hd)));
          values.push_back(s.v + (t * n_kv + g) * hd);
        }
      }
      double mx = -1e300, sum = 0;
      for (double s : scores) mx = std::max(mx, s);
      for (double& s : scores) sum += (s = std::exp(s - mx));
      for (size_t c = 0; c < scores.size(); ++c)
        for (int64_t d = 0; d < hd; ++d) out[size_t((i * n_heads + h) * hd + d)] += scores[c] / sum * values[c][d];
    }
  return out;
}

void check_attention(int64_t n_heads, int64_t n_kv, int64_t hd, int64_t n, int64_t past, uint32_t seed) {
  CpuBackend b(2);
  const ModelConfig c = rope_config(hd, 10000.0, RopeScalingType::None);
  RopeTable table(c);
  table.ensure(past + n + 8);
  const auto q = randn(size_t(n * n_heads * hd), seed);
  const auto k_past = randn(size_t(past * n_kv * hd), seed + 1), v_past = randn(size_t(past * n_kv * hd), seed + 2);
  const auto k_new = randn(size_t(n * n_kv * hd), seed + 3), v_new = randn(size_t(n * n_kv * hd), seed + 4);
  AttentionPlan plan;
  plan.segments.push_back({k_past.data(), v_past.data(), past, 0, 1, false});
  plan.segments.push_back({k_new.data(), v_new.data(), n, past, 1, true});
  plan.query_first_position = past;
  std::vector<float> out(q.size());
  b.attention(q.data(), n, n_heads, n_kv, hd, plan, table, out.data());
  const auto want = reference_attention(q, n, n_heads, n_kv, hd, plan, table.inv_freq());
  for (size_t i = 0; i < out.size(); ++i) ASSERT_NEAR(out[i], want[i], 2e-5) << "element " << i;
}

TEST(CpuOps, attention_matches_direct_sum_with_gqa_and_odd_lengths) {
  check_attention(4, 2, 16, 7, 13, 10);
  check_attention(6, 2, 64, 1, 300, 20);   // decode step
  check_attention(8, 1, 32, 33, 0, 30);    // prefill only, MQA
  check_attention(4, 4, 128, 5, 3, 40);    // no grouping, head dim 128
  check_attention(4, 2, 64, 130, 70, 50);  // query tiles under the causal diagonal
  check_attention(8, 2, 128, 1, 2000, 60); // decode split over several parts of the keys
  check_attention(4, 1, 64, 1, 1301, 70);  // decode, MQA: parts of the keys share the threads
}

TEST(CpuOps, attention_over_split_segments_equals_one_segment) {
  // Positions are carried by the segments, so splitting the past in two changes nothing.
  CpuBackend b(2);
  const int64_t n_heads = 4, n_kv = 2, hd = 16, past = 40, n = 5;
  RopeTable table(rope_config(hd, 10000.0, RopeScalingType::None));
  table.ensure(past + n);
  const auto q = randn(size_t(n * n_heads * hd), 1);
  const auto k = randn(size_t((past + n) * n_kv * hd), 2), v = randn(size_t((past + n) * n_kv * hd), 3);
  const float* kn = k.data() + past * n_kv * hd;
  const float* vn = v.data() + past * n_kv * hd;
  AttentionPlan one;
  one.segments = {{k.data(), v.data(), past, 0, 1, false}, {kn, vn, n, past, 1, true}};
  one.query_first_position = past;
  AttentionPlan split = one;
  split.segments = {{k.data(), v.data(), 17, 0, 1, false},
                    {k.data() + 17 * n_kv * hd, v.data() + 17 * n_kv * hd, past - 17, 17, 1, false},
                    {kn, vn, n, past, 1, true}};
  std::vector<float> a(q.size()), c(q.size());
  b.attention(q.data(), n, n_heads, n_kv, hd, one, table, a.data());
  b.attention(q.data(), n, n_heads, n_kv, hd, split, table, c.data());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], c[i], 1e-5);
}

TEST(CpuOps, attention_with_fixed_position_segment_matches_direct_sum) {
  // Stride 0: every key of the segment at one position (how streaming policies place
  // retrieved tokens).
  CpuBackend b(2);
  const int64_t n_heads = 2, n_kv = 1, hd = 8, n = 3;
  RopeTable table(rope_config(hd, 10000.0, RopeScalingType::None));
  table.ensure(200);
  const auto q = randn(size_t(n * n_heads * hd), 5);
  const auto k1 = randn(size_t(10 * hd), 6), v1 = randn(size_t(10 * hd), 7);
  const auto k2 = randn(size_t(n * hd), 8), v2 = randn(size_t(n * hd), 9);
  AttentionPlan plan;
  plan.segments = {{k1.data(), v1.data(), 10, 50, 0, false}, {k2.data(), v2.data(), n, 100, 1, true}};
  plan.query_first_position = 100;
  std::vector<float> out(q.size());
  b.attention(q.data(), n, n_heads, n_kv, hd, plan, table, out.data());
  const auto want = reference_attention(q, n, n_heads, n_kv, hd, plan, table.inv_freq());
  for (size_t i = 0; i < out.size(); ++i) EXPECT_NEAR(out[i], want[i], 2e-5);
}

// A streaming-style plan: init tokens (keys at 0, stride 0, queries pinned), retrieved tokens
// (stride 0 at another key position, queries pinned elsewhere), a local window at true
// positions and the causal chunk; every segment length odd.
void check_mixed_placements(int64_t n_heads, int64_t n_kv, int64_t hd, int64_t n, uint32_t seed) {
  CpuBackend b(2);
  RopeTable table(rope_config(hd, 10000.0, RopeScalingType::None));
  table.ensure(4096);
  std::mt19937 rng(seed);
  auto length = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng) | 1; };
  const int64_t n_init = length(1, 9), n_retrieved = length(5, 70), n_local = length(3, 200);
  const int64_t first = 1000 + length(0, 500);  // the chunk's first position
  const int64_t row = n_kv * hd;
  const auto q = randn(size_t(n * n_heads * hd), seed + 1);
  const auto k = randn(size_t((n_init + n_retrieved + n_local + n) * row), seed + 2);
  const auto v = randn(k.size(), seed + 3);
  const float* kp = k.data();
  const float* vp = v.data();
  AttentionPlan plan;
  plan.query_first_position = first;
  plan.segments.push_back({kp, vp, n_init, 0, 0, false, 77});
  kp += n_init * row, vp += n_init * row;
  plan.segments.push_back({kp, vp, n_retrieved, 5, 0, false, 300});
  kp += n_retrieved * row, vp += n_retrieved * row;
  plan.segments.push_back({kp, vp, n_local, first - n_local, 1, false, -1});
  kp += n_local * row, vp += n_local * row;
  plan.segments.push_back({kp, vp, n, first, 1, true, -1});
  std::vector<float> out(q.size());
  b.attention(q.data(), n, n_heads, n_kv, hd, plan, table, out.data());
  const auto want = reference_attention(q, n, n_heads, n_kv, hd, plan, table.inv_freq());
  for (size_t i = 0; i < out.size(); ++i) ASSERT_NEAR(out[i], want[i], 2e-5) << "element " << i;
}

TEST(CpuOps, attention_with_pinned_query_positions_matches_direct_sum) {
  check_mixed_placements(4, 2, 64, 1, 100);    // decode step
  check_mixed_placements(6, 2, 64, 37, 110);   // GQA, odd chunk
  check_mixed_placements(8, 1, 128, 9, 120);   // MQA, head dim 128
  check_mixed_placements(4, 4, 128, 150, 130); // several query tiles
}

TEST(CpuOps, pinned_query_position_depends_only_on_the_distance) {
  // RoPE scores depend on query position minus key position only: keys at 0 with the chunk's
  // queries pinned at d attend exactly as keys at p with queries pinned at p + d, and (one
  // query) as keys at Q - d seen by a query that truly sits at Q.
  CpuBackend b(2);
  const int64_t n_heads = 6, n_kv = 2, hd = 64, n_fixed = 21, d = 128, p = 901, n_local = 15;
  RopeTable table(rope_config(hd, 10000.0, RopeScalingType::None));
  table.ensure(2048);
  const int64_t row = n_kv * hd;
  const auto k_fixed = randn(size_t(n_fixed * row), 1), v_fixed = randn(size_t(n_fixed * row), 2);
  const auto k_local = randn(size_t((n_local + 5) * row), 3), v_local = randn(size_t((n_local + 5) * row), 4);
  for (const int64_t n : {int64_t(1), int64_t(5)}) {
    const int64_t first = 1500;
    const auto q = randn(size_t(n * n_heads * hd), 5 + uint32_t(n));
    AttentionPlan at_zero;
    at_zero.query_first_position = first;
    at_zero.segments = {{k_fixed.data(), v_fixed.data(), n_fixed, 0, 0, false, d},
                        {k_local.data(), v_local.data(), n_local, first - n_local, 1, false, -1},
                        {k_local.data() + n_local * row, v_local.data() + n_local * row, n, first, 1, true, -1}};
    AttentionPlan shifted = at_zero;
    shifted.segments[0].first_position = p;
    shifted.segments[0].query_position = p + d;
    std::vector<float> a(q.size()), c(q.size());
    b.attention(q.data(), n, n_heads, n_kv, hd, at_zero, table, a.data());
    b.attention(q.data(), n, n_heads, n_kv, hd, shifted, table, c.data());
    for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], c[i], 1e-5) << "n " << n << " element " << i;
    if (n == 1) {
      AttentionPlan true_distance = at_zero;
      true_distance.segments[0].first_position = first - d;
      true_distance.segments[0].query_position = -1;
      b.attention(q.data(), n, n_heads, n_kv, hd, true_distance, table, c.data());
      for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], c[i], 1e-5) << "element " << i;
    }
  }
}

}  // namespace
}  // namespace ltri
