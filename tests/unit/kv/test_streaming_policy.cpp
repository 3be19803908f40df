// The streaming policy (StreamingLLM): what it shows each chunk, at which positions, that a
// window covering the input is full attention, and that positions and memory stay bounded.
#include <gtest/gtest.h>

#include <algorithm>

#include "core/error.hpp"
#include "kv/streaming_base.hpp"
#include "kv_test_util.hpp"

namespace ltri {
namespace {

using test::StreamDriver;
using test::visible_keys;

AttentionOptions streaming_options(int64_t n_init, int64_t n_local, const char* placement) {
  AttentionOptions o;
  o.policy = "streaming";
  o.n_init = n_init;
  o.n_local = n_local;
  o.placement = placement;
  return o;
}

TEST(StreamingPolicy, window_covering_the_input_matches_full_attention) {
  const auto model = test::load_tiny("llama_gqa_bf16");
  const auto ids = test::random_ids(150, model->config().vocab_size, 3);
  AttentionOptions full;
  const auto ref = test::run_logits(*model, ids, full, 16, 130);
  for (const char* placement : {"fixed", "ordered"}) {
    const auto got = test::run_logits(*model, ids, streaming_options(4, 150, placement), 16, 130);
    EXPECT_LT(test::max_abs_diff(got, ref), 1e-4f) << placement;
  }
  // The window is too small: the logits must differ (the test can fail).
  const auto cut = test::run_logits(*model, ids, streaming_options(4, 32, "ordered"), 16, 130);
  EXPECT_GT(test::max_abs_diff(cut, ref), 1e-3f);
}

TEST(StreamingPolicy, sees_the_init_tokens_and_exactly_the_last_n_local_tokens) {
  const int64_t n_init = 3, n_local = 20, chunk = 8;
  for (const char* placement : {"ordered", "fixed"}) {
    const bool fixed = std::string(placement) == "fixed";
    StreamDriver d(test::policy_test_config(), streaming_options(n_init, n_local, placement), chunk);
    int64_t fed = 0;
    for (int64_t step = 0; step < 30; ++step) {
      const int64_t n = step < 12 ? chunk : 1;  // prefill chunks, then decode steps
      d.feed(n, [&](int64_t, const AttentionPlan& plan) {
        const auto keys = visible_keys(plan, d.kv_row());
        // Expected: tokens [0, n_init) and [max(n_init, fed - n_local), fed + n).
        std::vector<int64_t> expected;
        for (int64_t t = 0; t < std::min(n_init, fed + n); ++t) expected.push_back(t);
        for (int64_t t = std::max(n_init, fed - n_local); t < fed + n; ++t) expected.push_back(t);
        std::vector<int64_t> got;
        for (const auto& k : keys) got.push_back(k.token);
        ASSERT_EQ(got, expected) << placement << " after " << fed << " tokens";
        const bool evicted = fed - n_local > n_init;
        for (const auto& k : keys) {
          if (k.token < n_init && evicted && fixed) {
            // InfLLM's placement: every query sees the sinks n_local away.
            EXPECT_EQ(k.position, 0);
            EXPECT_EQ(k.query_position, n_local);
          } else {
            // True relative distances: query fed + i at query_first_position + i.
            const int64_t distance_from_first_query = fed - k.token;
            if (k.token >= n_init || !evicted) {
              EXPECT_EQ(plan.query_first_position - k.position, distance_from_first_query) << placement;
            } else {
              EXPECT_EQ(k.position, k.token);  // ordered: sinks just before the window
            }
            EXPECT_EQ(k.query_position, -1);
          }
          EXPECT_EQ(k.causal, k.token >= fed);
        }
      });
      fed += n;
    }
  }
}

TEST(StreamingPolicy, positions_and_memory_stay_bounded_on_a_long_stream) {
  const int64_t chunk = 32;
  StreamDriver d(test::policy_test_config(), streaming_options(4, 64, "ordered"), chunk);
  const int64_t bound = d.policy().positions_needed(chunk);
  size_t bytes_after_fill = 0;
  for (int64_t step = 0; step < 400; ++step) {
    const int64_t n = step < 200 ? chunk : 1;
    EXPECT_EQ(d.policy().positions_needed(n), bound - chunk + n);
    d.feed(n, [&](int64_t, const AttentionPlan& plan) {
      for (const auto& k : visible_keys(plan, d.kv_row())) ASSERT_LT(k.position, bound);
      ASSERT_LT(plan.query_first_position + n - 1, bound);
    });
    if (step == 100) bytes_after_fill = d.policy().kv_bytes();
    if (step > 100) {
      ASSERT_EQ(d.policy().kv_bytes(), bytes_after_fill) << "step " << step;
    }
  }
  EXPECT_EQ(d.policy().n_past(), 200 * chunk + 200);
  EXPECT_LE(bound, 4 + 64 + chunk);
  EXPECT_EQ(d.policy().host_bytes(), 0u);
}

TEST(StreamingPolicy, context_is_not_capped_by_the_model_positions_unless_asked) {
  const auto model = test::load_tiny("llama_gqa_bf16");  // max_position_embeddings 512
  const auto ids = test::random_ids(700, model->config().vocab_size, 5);
  SessionOptions so;
  so.chunk = 64;
  so.attention = streaming_options(4, 128, "fixed");
  auto session = model->new_session(so);
  std::vector<float> logits(size_t(model->config().vocab_size));
  session->forward(ids, logits.data());
  EXPECT_EQ(session->n_past(), 700);
  for (float x : logits) ASSERT_TRUE(std::isfinite(x));

  so.max_context = 300;  // an explicit -c still caps it
  auto capped = model->new_session(so);
  try {
    capped->forward(ids, logits.data());
    FAIL() << "700 tokens accepted under -c 300";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("exceeds the context limit of 300"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace ltri
