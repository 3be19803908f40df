// --attn-host-kv int8: the store holds each (token, KV head) row of evicted K/V as head_dim int8
// values with one f32 scale (absmax / 127). Each value comes back within half a scale step of
// what was added; rows cross slab boundaries like f32 ones; with an f32 index
// (--attn-index-dtype f32) retrieval scores the same vectors, so the same units are picked as
// with f32, and the retrieved rows are the f32 run's
// rows quantised and dequantised; end to end, logits stay finite and close to full attention
// (and to the f32 store) for both retrieving policies.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.hpp"
#include "core/error.hpp"
#include "kernels/cpu/cpu_backend.hpp"
#include "kv/context_store.hpp"
#include "kv/retrieved_kv.hpp"
#include "kv/streaming_base.hpp"
#include "kv_test_util.hpp"

namespace ltri {
namespace {

using test::StreamDriver;

constexpr int64_t kKv = 2, kHd = 8, kRow = kKv * kHd;

// x quantised to int8 with scale absmax / 127 and back, written out here rather than taken from
// the store: round(x / scale) to nearest even (the default rounding mode), times the scale.
std::vector<float> quantized_row(const float* x, int64_t width) {
  float absmax = 0.0f;
  for (int64_t i = 0; i < width; ++i) absmax = std::max(absmax, std::fabs(x[i]));
  const float scale = absmax / 127.0f;
  std::vector<float> out(size_t(width), 0.0f);
  if (scale == 0.0f) return out;
  for (int64_t i = 0; i < width; ++i) out[size_t(i)] = float(int8_t(std::nearbyint(x[i] / scale))) * scale;
  return out;
}

// Units of 1..7 tokens across slabs of 5; token t's rows: random normal, except that one KV head
// of every third token is all zeros and of every fifth is one large value among small ones.
struct Filled {
  ContextStore store;
  std::vector<float> k, v;  // every row as added, token order
};

Filled fill(Backend* backend, uint32_t seed) {
  Filled f{ContextStore(kKv, kHd, 8, backend, DType::I8, 5, 5), {}, {}};
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  int64_t token = 0;
  for (int64_t u = 0; u < 14; ++u) {
    const int64_t len = 1 + u % 7;
    std::vector<float> k(size_t(len * kRow)), v(k.size()), vec(size_t(kKv * kHd));
    for (float& x : k) x = normal(rng);
    for (float& x : v) x = normal(rng);
    for (int64_t i = 0; i < len; ++i, ++token) {
      if (token % 3 == 0) std::fill_n(k.begin() + i * kRow + kHd, kHd, 0.0f);  // KV head 1 of K
      if (token % 5 == 0) {
        std::fill_n(v.begin() + i * kRow, kHd, 1e-3f);  // KV head 0 of V: one large value
        v[size_t(i * kRow + 3)] = -250.0f;
      }
    }
    f.store.add_unit(k.data(), v.data(), len, vec.data(), 1);
    f.k.insert(f.k.end(), k.begin(), k.end());
    f.v.insert(f.v.end(), v.begin(), v.end());
  }
  return f;
}

TEST(HostKvInt8, halves_round_to_the_even_step_as_nearbyint_does) {
  // absmax 127: the scale is exactly 1, so each value is its own step count, halves included.
  ContextStore s(1, kHd, 0, nullptr, DType::I8, 4, 4);
  const std::vector<float> k = {127.0f, 2.5f, -2.5f, 0.5f, 1.5f, -0.5f, 126.5f, -3.5f};
  const std::vector<float> vec(k.size(), 0.0f);
  s.add_unit(k.data(), k.data(), 1, vec.data(), 1);
  ASSERT_EQ(s.k_scales(0)[0], 1.0f);
  const int8_t* q = static_cast<const int8_t*>(s.k_data(0));
  const std::vector<int> want = {127, 2, -2, 0, 2, 0, 126, -4};
  for (int64_t c = 0; c < kHd; ++c) {
    EXPECT_EQ(int(q[c]), want[size_t(c)]) << "value " << c;
    EXPECT_EQ(float(q[c]), std::nearbyint(k[size_t(c)])) << "value " << c;
  }
}

TEST(HostKvInt8, each_value_comes_back_within_half_a_scale_step_across_slab_boundaries) {
  const Filled f = fill(nullptr, 31);
  const ContextStore& s = f.store;
  ASSERT_EQ(s.n_tokens() * kRow, int64_t(f.k.size()));
  EXPECT_EQ(s.kv_dtype(), DType::I8);
  EXPECT_EQ(s.stored_row_bytes(), kRow + kKv * 4);
  for (int64_t i = 0; i < s.n_tokens(); ++i) {
    const int64_t t = s.first_token() + i;
    for (const bool is_v : {false, true}) {
      const int8_t* q = static_cast<const int8_t*>(is_v ? s.v_data(t) : s.k_data(t));
      const float* scales = is_v ? s.v_scales(t) : s.k_scales(t);
      const float* added = (is_v ? f.v : f.k).data() + i * kRow;
      for (int64_t g = 0; g < kKv; ++g) {
        float absmax = 0.0f;
        for (int64_t c = 0; c < kHd; ++c) absmax = std::max(absmax, std::fabs(added[g * kHd + c]));
        ASSERT_EQ(scales[g], absmax / 127.0f) << "token " << t << (is_v ? " V" : " K") << " head " << g;
        const std::vector<float> want = quantized_row(added + g * kHd, kHd);
        for (int64_t c = 0; c < kHd; ++c) {
          const float back = float(q[g * kHd + c]) * scales[g];
          ASSERT_EQ(back, want[size_t(c)]) << "token " << t << " head " << g << " value " << c;
          // The bound the format promises: half a step of absmax / 127 (plus the division's
          // and the product's f32 rounding, ~1e-7 relative).
          ASSERT_LE(std::fabs(back - added[g * kHd + c]), scales[g] * 0.5f * (1.0f + 1e-5f) + 1e-30f);
        }
      }
    }
  }
  // Rows of an all-zero head stay zero with scale 0; a row with one large value keeps it exactly
  // (it is the absmax: 127 steps) and flushes the small ones to 0 (1e-3 < half of 250 / 127).
  EXPECT_EQ(s.k_scales(s.first_token())[1], 0.0f);
  EXPECT_EQ(static_cast<const int8_t*>(s.v_data(s.first_token()))[3], -127);
  EXPECT_EQ(float(static_cast<const int8_t*>(s.v_data(s.first_token()))[3]) * s.v_scales(s.first_token())[0], -250.0f);
  EXPECT_EQ(static_cast<const int8_t*>(s.v_data(s.first_token()))[0], 0);
  EXPECT_EQ(s.contiguous_tokens(s.first_token() + 3), 2);  // slabs of 5 tokens
  EXPECT_THROW(s.k(s.first_token()), Error);                 // no f32 rows to hand out
  const ContextStore f32(kKv, kHd, 0);
  EXPECT_THROW(f32.k_scales(0), Error);  // no scales in an f32 store
}

TEST(HostKvInt8, a_store_takes_one_byte_per_value_plus_a_scale_per_row) {
  CpuBackend f32_backend(1), int8_backend(1);
  ContextStore f32(kKv, kHd, 0, nullptr, DType::F32, 64, 64), int8(kKv, kHd, 0, nullptr, DType::I8, 64, 64);
  std::vector<float> k(size_t(10 * kRow), 0.5f), vec(size_t(kKv * kHd));
  f32.add_unit(k.data(), k.data(), 10, vec.data(), 1);
  int8.add_unit(k.data(), k.data(), 10, vec.data(), 1);
  // One slab of 64 tokens each (index blocks and unit tables equal): K and V values, plus the scales.
  EXPECT_EQ(f32.bytes() - int8.bytes(), size_t(2 * 64 * kRow * 4) - size_t(2 * 64 * (kRow + kKv * 4)));
}

TEST(HostKvInt8, retrieved_rows_are_dequantised_and_cost_one_byte_per_value_plus_the_scales) {
  CpuBackend backend(1);
  const Filled f = fill(nullptr, 32);
  RetrievedKv r(backend, kRow, 60);
  for (const std::vector<int64_t>& picked : std::vector<std::vector<int64_t>>{{0, 3, 4, 9}, {1, 2, 3, 12, 13}}) {
    const int64_t before = r.bytes_uploaded();
    r.load(f.store, picked);
    std::vector<float> want_k, want_v;
    for (int64_t u : picked) {
      const StoredUnit& unit = f.store.units()[size_t(u)];
      for (int64_t t = unit.first_token; t < unit.first_token + unit.length; ++t) {
        for (int64_t g = 0; g < kKv; ++g) {
          const auto k = quantized_row(f.k.data() + (t - 8) * kRow + g * kHd, kHd);
          const auto v = quantized_row(f.v.data() + (t - 8) * kRow + g * kHd, kHd);
          want_k.insert(want_k.end(), k.begin(), k.end());
          want_v.insert(want_v.end(), v.begin(), v.end());
        }
      }
    }
    ASSERT_EQ(r.n_tokens() * kRow, int64_t(want_k.size()));
    EXPECT_EQ(std::vector<float>(r.k(), r.k() + want_k.size()), want_k);
    EXPECT_EQ(std::vector<float>(r.v(), r.v() + want_v.size()), want_v);
    EXPECT_GT(r.bytes_uploaded(), before);
    EXPECT_EQ((r.bytes_uploaded() - before) % (2 * (kRow + kKv * 4)), 0);  // whole tokens: int8 values + scales
  }
  // The first load uploads every picked token: 1 byte per value and 4 per row of K and of V.
  RetrievedKv fresh(backend, kRow, 60);
  fresh.load(f.store, {0, 3});
  const int64_t tokens = f.store.units()[0].length + f.store.units()[3].length;
  EXPECT_EQ(fresh.bytes_uploaded(), 2 * tokens * (kRow + kKv * 4));
}

AttentionOptions options(const char* policy, const char* host_kv) {
  AttentionOptions o;
  o.policy = policy;
  o.n_init = 2;
  o.n_local = 32;
  o.budget = 16;
  o.span_min = 4;
  o.span_max = 12;
  o.theta = 0.5;
  o.index = "static";
  o.index_static = 2;
  o.block_size = 8;
  o.block_repr = 2;
  o.placement = "ordered";
  o.host_kv = host_kv;
  o.index_dtype = "f32";  // only the store's K/V differ between the runs compared here
  return o;
}

TEST(HostKvInt8, an_int8_store_picks_the_same_units_and_retrieves_their_rows_quantised) {
  const ModelConfig config = test::policy_test_config();
  for (const char* policy : {"ltri", "infllm"}) {
    SCOPED_TRACE(policy);
    // Two drivers draw the same random stream (same seed): only the store's format differs.
    StreamDriver f32(config, options(policy, "f32"), 16), int8(config, options(policy, "int8"), 16);
    const auto& f32_policy = dynamic_cast<const StreamingPolicyBase&>(f32.policy());
    const auto& int8_policy = dynamic_cast<const StreamingPolicyBase&>(int8.policy());
    const int64_t head_dim = config.head_dim;
    int64_t compared = 0;
    for (int step = 0; step < 20; ++step) {
      const int64_t n = step < 14 ? 16 : 1;  // prefill chunks, then decode steps
      f32.feed(n);
      int8.feed(n);
      for (int64_t l = 0; l < config.num_hidden_layers; ++l) {
        const RetrievedKv& a = f32_policy.retrieved(l);
        const RetrievedKv& b = int8_policy.retrieved(l);
        ASSERT_EQ(a.units(), b.units()) << "step " << step << " layer " << l;
        ASSERT_EQ(a.n_tokens(), b.n_tokens());
        const int64_t rows = a.n_tokens() * f32.kv_row() / head_dim;  // (token, KV head) rows
        for (int64_t r = 0; r < rows; ++r) {
          const auto k = quantized_row(a.k() + r * head_dim, head_dim);
          const auto v = quantized_row(a.v() + r * head_dim, head_dim);
          ASSERT_EQ(std::vector<float>(b.k() + r * head_dim, b.k() + (r + 1) * head_dim), k) << "layer " << l << " row " << r;
          ASSERT_EQ(std::vector<float>(b.v() + r * head_dim, b.v() + (r + 1) * head_dim), v) << "layer " << l << " row " << r;
        }
        compared += rows;
      }
    }
    EXPECT_GT(compared, 0);  // retrieval did happen
    EXPECT_EQ(int8_policy.store(0).kv_dtype(), DType::I8);
    EXPECT_LT(int8_policy.host_bytes(), f32_policy.host_bytes());
  }
}

TEST(HostKvInt8, with_every_evicted_token_retrieved_logits_stay_finite_and_close_to_full_attention) {
  const auto model = test::load_tiny("llama_gqa_bf16");
  const auto ids = test::random_ids(150, model->config().vocab_size, 12);
  const auto full = test::run_logits(*model, ids, AttentionOptions{}, 16, 130);
  for (const char* policy : {"ltri", "infllm"}) {
    SCOPED_TRACE(policy);
    AttentionOptions o = options(policy, "f32");
    o.n_init = 4;
    o.n_local = 16;
    o.budget = 200;  // more than the store: everything evicted comes back, in order
    o.span_min = 2;
    const auto f32 = test::run_logits(*model, ids, o, 16, 130);
    o.host_kv = "int8";
    const auto int8 = test::run_logits(*model, ids, o, 16, 130);
    for (float x : int8) ASSERT_TRUE(std::isfinite(x));
    EXPECT_LT(test::max_abs_diff(f32, full), 1e-4f);
    const float diff = test::max_abs_diff(int8, full);
    EXPECT_GT(diff, 1e-6f);  // the store did quantise
    EXPECT_LT(diff, 0.05f);  // measured 0.0098 (ltri) and 0.0102 (infllm), logits up to 4.2; bf16: 0.0035
  }
}

TEST(HostKvInt8, an_unknown_host_kv_format_is_one_line_naming_the_flag_and_the_choices) {
  const ModelConfig config = test::policy_test_config();
  auto backend = make_cpu_backend(1);
  for (const char* bad : {"int4", "i8", "INT8", ""}) {
    try {
      make_kv_policy(options("ltri", bad), {*backend, config, 1 << 20, 16, ""});
      ADD_FAILURE() << "no error for --attn-host-kv '" << bad << "'";
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()), "--attn-host-kv " + std::string(bad) + ": expected f32, bf16 or int8");
    }
  }
}

}  // namespace
}  // namespace ltri
