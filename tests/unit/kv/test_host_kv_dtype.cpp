// --attn-host-kv bf16: the store holds evicted K/V in bf16. With an f32 index
// (--attn-index-dtype f32) retrieval scores the same vectors, so the same units are picked as
// with f32, and the retrieved rows are exactly the f32 run's rows rounded to bf16; end to end,
// the logits stay within bf16 rounding of full attention where the budget brings every evicted
// token back. --attn-index-dtype: auto follows the store, and a bf16 index with every evicted
// token retrieved still reproduces full attention.
#include <gtest/gtest.h>

#include <cstring>

#include "core/dtype.hpp"
#include "core/error.hpp"
#include "kv/streaming_base.hpp"
#include "kv_test_util.hpp"

namespace ltri {
namespace {

using test::StreamDriver;

AttentionOptions ltri_options(const char* host_kv) {
  AttentionOptions o;
  o.policy = "ltri";
  o.n_init = 2;
  o.n_local = 32;
  o.budget = 16;
  o.span_min = 4;
  o.span_max = 12;
  o.theta = 0.5;
  o.index = "static";
  o.index_static = 2;
  o.placement = "ordered";
  o.host_kv = host_kv;
  return o;
}

// f32 -> nearest-even bf16 -> f32, written out here rather than taken from core/dtype.hpp
// (finite values only, which is all the stream has).
float round_to_bf16(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, 4);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  bits &= 0xffff0000u;
  float r;
  std::memcpy(&r, &bits, 4);
  return r;
}

TEST(HostKvDtype, a_bf16_store_picks_the_same_units_and_retrieves_their_rows_rounded) {
  const ModelConfig config = test::policy_test_config();
  // Two drivers draw the same random stream (same seed): only the store's dtype differs.
  AttentionOptions bf16_options = ltri_options("bf16");
  bf16_options.index_dtype = "f32";  // only the store's K/V differ
  StreamDriver f32(config, ltri_options("f32"), 16), bf16(config, bf16_options, 16);
  const auto& f32_policy = dynamic_cast<const StreamingPolicyBase&>(f32.policy());
  const auto& bf16_policy = dynamic_cast<const StreamingPolicyBase&>(bf16.policy());
  int64_t compared = 0;
  for (int step = 0; step < 20; ++step) {
    const int64_t n = step < 14 ? 16 : 1;  // prefill chunks, then decode steps
    f32.feed(n);
    bf16.feed(n);
    for (int64_t l = 0; l < config.num_hidden_layers; ++l) {
      const RetrievedKv& a = f32_policy.retrieved(l);
      const RetrievedKv& b = bf16_policy.retrieved(l);
      ASSERT_EQ(a.units(), b.units()) << "step " << step << " layer " << l;
      ASSERT_EQ(a.n_tokens(), b.n_tokens());
      const int64_t floats = a.n_tokens() * f32.kv_row();
      for (int64_t i = 0; i < floats; ++i) {
        ASSERT_EQ(b.k()[i], round_to_bf16(a.k()[i])) << "step " << step << " layer " << l << " K " << i;
        ASSERT_EQ(b.v()[i], round_to_bf16(a.v()[i])) << "step " << step << " layer " << l << " V " << i;
      }
      compared += floats;
    }
  }
  EXPECT_GT(compared, 0);  // retrieval did happen
  EXPECT_EQ(bf16_policy.store(0).kv_dtype(), DType::BF16);
  EXPECT_LT(bf16_policy.host_bytes(), f32_policy.host_bytes());
}

TEST(HostKvDtype, with_every_evicted_token_retrieved_logits_stay_within_bf16_rounding_of_full_attention) {
  const auto model = test::load_tiny("llama_gqa_bf16");
  const auto ids = test::random_ids(150, model->config().vocab_size, 12);
  const auto full = test::run_logits(*model, ids, AttentionOptions{}, 16, 130);
  AttentionOptions o = ltri_options("f32");
  o.n_init = 4;
  o.n_local = 16;
  o.budget = 200;  // more than the store: everything evicted comes back, in order
  o.span_min = 2;
  const auto f32 = test::run_logits(*model, ids, o, 16, 130);
  o.host_kv = "bf16";
  const auto bf16 = test::run_logits(*model, ids, o, 16, 130);
  EXPECT_LT(test::max_abs_diff(f32, full), 1e-4f);
  // Nearly every key and value is rounded to 8 significant bits (relative error <= 2^-9).
  const float diff = test::max_abs_diff(bf16, full);
  EXPECT_GT(diff, 1e-6f);  // the store did round
  EXPECT_LT(diff, 0.02f);  // measured 0.0035
}

TEST(HostKvDtype, the_index_dtype_follows_the_store_unless_set) {
  const ModelConfig config = test::policy_test_config();
  auto backend = make_cpu_backend(1);
  const auto index_dtype = [&](const char* host_kv, const char* index) {
    AttentionOptions o = ltri_options(host_kv);
    o.index_dtype = index;
    const auto policy = make_kv_policy(o, {*backend, config, 1 << 20, 16, ""});
    return dynamic_cast<const StreamingPolicyBase&>(*policy).store(0).index_dtype();
  };
  EXPECT_EQ(index_dtype("f32", "auto"), DType::F32);
  EXPECT_EQ(index_dtype("bf16", "auto"), DType::BF16);
  EXPECT_EQ(index_dtype("int8", "auto"), DType::BF16);
  EXPECT_EQ(index_dtype("f32", "bf16"), DType::BF16);
  EXPECT_EQ(index_dtype("int8", "f32"), DType::F32);
  try {
    index_dtype("f32", "f16");
    FAIL() << "no error for --attn-index-dtype f16";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "--attn-index-dtype f16: expected auto, f32 or bf16");
  }
}

TEST(HostKvDtype, a_bf16_index_with_every_evicted_token_retrieved_reproduces_full_attention) {
  const auto model = test::load_tiny("llama_gqa_bf16");
  const auto ids = test::random_ids(150, model->config().vocab_size, 12);
  const auto full = test::run_logits(*model, ids, AttentionOptions{}, 16, 130);
  AttentionOptions o = ltri_options("f32");
  o.n_init = 4;
  o.n_local = 16;
  o.budget = 200;  // more than the store: everything evicted comes back, in order
  o.span_min = 2;
  o.index = "dynamic";
  o.index_dtype = "bf16";
  EXPECT_LT(test::max_abs_diff(test::run_logits(*model, ids, o, 16, 130), full), 1e-4f);
}

TEST(HostKvDtype, an_unknown_host_kv_dtype_is_one_line_naming_the_flag) {
  const ModelConfig config = test::policy_test_config();
  auto backend = make_cpu_backend(1);
  try {
    make_kv_policy(ltri_options("f16"), {*backend, config, 1 << 20, 16, ""});
    FAIL() << "no error for --attn-host-kv f16";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "--attn-host-kv f16: expected f32, bf16 or int8");
  }
}

}  // namespace
}  // namespace ltri
