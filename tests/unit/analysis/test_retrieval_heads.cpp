// The retrieval-head scorer on a constructed case: one head's top-1 lands on the needle token
// being copied, so it scores 1 and every other head 0; and the heads file round-trips.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <vector>

#include "analysis/attention_probe.hpp"
#include "analysis/retrieval_heads.hpp"
#include "core/error.hpp"
#include "io/model_config.hpp"
#include "ops/rope_table.hpp"
#include "test_paths.hpp"

namespace ltri {
namespace {

constexpr int64_t kLayers = 2, kHeads = 4, kKvHeads = 2, kHeadDim = 8;

// One decode step over `n_keys` keys in which only `head` of layer 0 looks at key `target`:
// every position is pinned to 0 (stride 0, query_position 0), so RoPE is the identity and the
// scores are plain dot products. The other heads' queries are 0: uniform attention, whose top-1
// is column 0 (ties go to the lowest column).
struct DecodeStep {
  std::vector<float> keys, values, q_layer0, q_layer1;
  AttentionPlan plan;

  DecodeStep(int64_t n_keys, int head, int64_t target) {
    const int64_t kv_row = kKvHeads * kHeadDim;
    keys.assign(size_t(n_keys * kv_row), 0.0f);
    values.assign(size_t(n_keys * kv_row), 0.0f);
    q_layer0.assign(size_t(kHeads * kHeadDim), 0.0f);
    q_layer1.assign(size_t(kHeads * kHeadDim), 0.0f);
    const int64_t g = head / (kHeads / kKvHeads);
    keys[size_t(target * kv_row + g * kHeadDim + 3)] = 8.0f;
    q_layer0[size_t(head * kHeadDim + 3)] = 8.0f;
    plan.segments.push_back({keys.data(), values.data(), n_keys - 1, 0, 0, false, 0});
    plan.segments.push_back({keys.data() + (n_keys - 1) * kv_row, values.data() + (n_keys - 1) * kv_row, 1, 0, 0, true, 0});
    plan.query_first_position = 0;
  }
};

TEST(RetrievalHeads, only_the_head_that_points_at_the_copied_needle_token_scores) {
  ModelConfig config;
  config.head_dim = kHeadDim;
  RopeTable rope(config);
  rope.ensure(16);
  // Tokens 0..9; the needle value is tokens [4, 7) = ids 100, 101, 102.
  std::vector<int32_t> tokens = {1, 20, 21, 22, 100, 101, 102, 23, 24, 25};
  ProbeSettings settings;
  settings.row_begin = 9;
  settings.keep_top1 = true;
  AttentionProbe probe(kLayers, kHeads, kKvHeads, kHeadDim, settings);
  RetrievalHeadCounter counter(kLayers, kHeads);

  // The prompt's rows 0..8 run first (outside the probe's window: not analysed).
  const std::vector<float> prompt_q(size_t(9 * kHeads * kHeadDim), 0.0f);
  DecodeStep prompt(10, 0, 0);
  for (int64_t l = 0; l < kLayers; ++l) probe.on_attention(l, prompt_q.data(), 9, kHeads, prompt.plan, rope);
  // Row 9 (the last prompt token) copies id 100: head 1 of layer 0 looks at token 4.
  DecodeStep first(10, 1, 4);
  probe.on_attention(0, first.q_layer0.data(), 1, kHeads, first.plan, rope);
  probe.on_attention(1, first.q_layer1.data(), 1, kHeads, first.plan, rope);
  ASSERT_EQ(probe.top1(9, 0, 1), 4);
  counter.add_copy_step(probe, 9, tokens, 4, 7, 100);

  // Row 10 (token 100 fed back) copies id 101: head 1 looks at token 5.
  tokens.push_back(100);
  DecodeStep second(11, 1, 5);
  probe.on_attention(0, second.q_layer0.data(), 1, kHeads, second.plan, rope);
  probe.on_attention(1, second.q_layer1.data(), 1, kHeads, second.plan, rope);
  counter.add_copy_step(probe, 10, tokens, 4, 7, 101);

  ASSERT_EQ(counter.copy_steps(), 2);
  const auto scores = counter.scores();
  for (int64_t l = 0; l < kLayers; ++l) {
    for (int64_t h = 0; h < kHeads; ++h) {
      EXPECT_DOUBLE_EQ(scores[size_t(l)][size_t(h)], l == 0 && h == 1 ? 1.0 : 0.0) << "layer " << l << " head " << h;
    }
  }

  // Looking at a needle token other than the one copied is no hit.
  RetrievalHeadCounter wrong(kLayers, kHeads);
  wrong.add_copy_step(probe, 10, tokens, 4, 7, 102);
  EXPECT_DOUBLE_EQ(wrong.scores()[0][1], 0.0);
}

TEST(RetrievalHeads, heads_file_round_trips_and_bad_files_are_refused) {
  const std::string path = test::scratch_path("ltri_test_heads.json");
  HeadsFile h;
  h.model = "tiny";
  h.n_layers = 2;
  h.n_heads = 3;
  h.scores = {{0.0, 0.5, 0.25}, {0.75, 0.125, 0.0}};
  h.samples = 4;
  h.lengths = {1024};
  write_heads_file(path, h);
  const HeadsFile back = read_heads_file(path);
  EXPECT_EQ(back.n_layers, 2);
  EXPECT_EQ(back.n_heads, 3);
  EXPECT_EQ(back.scores, h.scores);
  EXPECT_EQ(best_head_per_layer(back), (std::vector<int>{1, 0}));
  const std::string table = format_heads_table(back);
  EXPECT_NE(table.find("0.500*"), std::string::npos) << table;
  EXPECT_NE(table.find("0.000 "), std::string::npos) << table;

  std::FILE* f = std::fopen(path.c_str(), "w");
  std::fputs("{\"format\": \"ltri-heads-1\", \"n_layers\": 2, \"n_heads\": 3, \"scores\": [[0, 1, 2]]}", f);
  std::fclose(f);
  EXPECT_THROW(read_heads_file(path), Error);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace ltri
