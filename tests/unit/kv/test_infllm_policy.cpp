// infllm: evicted tokens go to the store in whole blocks, and a block holding a planted needle
// is the one retrieved for a query that points at the needle.
#include <gtest/gtest.h>

#include <algorithm>

#include "kv/infllm_policy.hpp"
#include "kv_test_util.hpp"

namespace ltri {
namespace {

using test::StreamDriver;
using test::visible_keys;

AttentionOptions infllm(int64_t budget) {
  AttentionOptions o;
  o.policy = "infllm";
  o.n_init = 2;
  o.n_local = 32;
  o.budget = budget;
  o.block_size = 8;
  o.block_repr = 2;
  o.placement = "ordered";
  return o;
}

// Dimension 3 of head_dim 8 turns slowest under RoPE (angle 0.06 rad at distance n_local =
// 32), so a needle written there is seen by a query written there at any distance.
constexpr int64_t kNeedleDim = 3;

TEST(InfllmPolicy, stores_whole_blocks_in_order) {
  StreamDriver d(test::policy_test_config(), infllm(16), 16);
  for (int step = 0; step < 20; ++step) d.feed(16);
  const auto& policy = dynamic_cast<const InfllmPolicy&>(d.policy());
  for (int64_t l = 0; l < 2; ++l) {
    const ContextStore& s = policy.store(l);
    int64_t next = 2;  // after the init tokens
    for (const StoredUnit& u : s.units()) {
      EXPECT_EQ(u.first_token, next);
      EXPECT_EQ(u.length, 8);
      EXPECT_EQ(u.n_vectors, 1);
      next += u.length;
    }
    EXPECT_EQ(next, policy.window().begin(l));  // store + window = every non-init token
    // Evicted right after each chunk: the window holds n_local plus less than one block.
    EXPECT_GE(policy.window().size(l), 32);
    EXPECT_LT(policy.window().size(l), 32 + 8);
  }
}

TEST(InfllmPolicy, the_block_holding_a_planted_needle_is_retrieved) {
  const int64_t needle_first = 2 + 8 * 25;  // a block boundary: blocks start at 2 + 8k
  StreamDriver d(test::policy_test_config(), infllm(8), 16);  // budget: one block
  d.fill_key = [&](int64_t t, int64_t, float* k) {
    if (t >= needle_first && t < needle_first + 8) {
      for (int64_t g = 0; g < 2; ++g) k[g * 8 + kNeedleDim] = 8.0f;
    }
  };
  for (int step = 0; step < 25; ++step) d.feed(16);  // 400 tokens; the needle is long evicted
  d.fill_query = [&](int64_t, int64_t, float* q) {
    for (int64_t h = 0; h < 4; ++h) q[h * 8 + kNeedleDim] = 4.0f;
  };
  d.feed(16, [&](int64_t layer, const AttentionPlan& plan) {
    const auto& policy = dynamic_cast<const InfllmPolicy&>(d.policy());
    const RetrievedKv& r = policy.retrieved(layer);
    ASSERT_EQ(r.units().size(), 1u);
    EXPECT_EQ(policy.store(layer).units()[size_t(r.units()[0])].first_token, needle_first);
    std::vector<int64_t> tokens;
    for (const auto& k : visible_keys(plan, d.kv_row())) tokens.push_back(k.token);
    for (int64_t t = needle_first; t < needle_first + 8; ++t) {
      EXPECT_NE(std::find(tokens.begin(), tokens.end(), t), tokens.end()) << "needle token " << t;
    }
  });
}

}  // namespace
}  // namespace ltri
