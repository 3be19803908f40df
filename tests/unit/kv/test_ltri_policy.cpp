// ltri: spans partition the evicted tokens exactly and follow planted attention blocks; a
// planted needle's span is the one retrieved; the question's spans persist through decode;
// layers vote; dynamic index sizes follow the spec's ratio.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <unistd.h>

#include "kv/ltri_policy.hpp"
#include "kv_test_util.hpp"

namespace ltri {
namespace {

using test::StreamDriver;
using test::visible_keys;

namespace fs = std::filesystem;

constexpr int64_t kInit = 2, kLocal = 32, kSpanMax = 12, kHeadDim = 8;

AttentionOptions ltri_options(int64_t budget) {
  AttentionOptions o;
  o.policy = "ltri";
  o.n_init = kInit;
  o.n_local = kLocal;
  o.budget = budget;
  o.span_min = 4;
  o.span_max = kSpanMax;
  o.theta = 0.5;
  o.index = "static";
  o.index_static = 2;
  o.placement = "ordered";
  return o;
}

const LtriPolicy& ltri_of(StreamDriver& d) { return dynamic_cast<const LtriPolicy&>(d.policy()); }

// A stream cut into blocks of 5..12 tokens whose keys and queries point one way per block:
// e2, e3, -e2, -e3 in turn. Dimensions 2 and 3 of head_dim 8 turn slowly under RoPE (0.12 rad
// at 12 tokens), so within the band each query attends to its own block only (the previous
// block is orthogonal, the one before opposite): the attention map is block diagonal, with
// triangles exactly on the blocks. Optionally one block is a needle: its keys also carry 8 in
// dimension 7 (paired with 3, as slow), where no other key has anything.
struct PlantedStream {
  std::vector<int64_t> block_of;     // per token (tokens before kInit: -1)
  std::vector<int64_t> block_start;  // per block
  std::vector<int64_t> block_len;
  int64_t needle_block = -1;

  PlantedStream(int64_t n_tokens, uint32_t seed) {
    std::mt19937 rng(seed);
    block_of.assign(size_t(n_tokens), -1);
    for (int64_t t = kInit; t < n_tokens;) {
      const int64_t len = std::min<int64_t>(5 + int64_t(rng() % 8), n_tokens - t);
      block_start.push_back(t);
      block_len.push_back(len);
      for (int64_t i = 0; i < len; ++i) block_of[size_t(t + i)] = int64_t(block_start.size()) - 1;
      t += len;
    }
  }
  void direction(int64_t t, float* row, int64_t heads, float scale) const {
    std::fill(row, row + heads * kHeadDim, 0.0f);
    const int64_t b = block_of[size_t(t)];
    if (b < 0) return;
    const int64_t dim = 2 + b % 2;
    const float sign = (b / 2) % 2 == 0 ? 1.0f : -1.0f;
    for (int64_t h = 0; h < heads; ++h) row[h * kHeadDim + dim] = sign * scale;
  }
  void attach(StreamDriver& d, int64_t needle_layers = -1) const {
    d.fill_key = [this, needle_layers](int64_t t, int64_t layer, float* k) {
      direction(t, k, 2, 4.0f);
      if (block_of[size_t(t)] == needle_block && needle_block >= 0 && (needle_layers < 0 || layer == needle_layers)) {
        for (int64_t g = 0; g < 2; ++g) k[g * kHeadDim + 7] = 8.0f;
      }
    };
    d.fill_query = [this](int64_t t, int64_t, float* q) { direction(t, q, 4, 4.0f); };
  }
  // Queries that look for the needle (dimension 7) and nothing else.
  static void ask_for_needle(StreamDriver& d) {
    d.fill_query = [](int64_t, int64_t, float* q) {
      std::fill(q, q + 4 * kHeadDim, 0.0f);
      for (int64_t h = 0; h < 4; ++h) q[h * kHeadDim + 7] = 4.0f;
    };
  }
  // The next chunk of `chunk` tokens is prose (queries pointing at their own blocks with
  // `prose_scale`) ending in a question of `question` tokens that looks for the needle.
  void ask_at_end_of_next_chunk(StreamDriver& d, int64_t chunk, int64_t question, float prose_scale) const {
    const int64_t from = d.policy().n_past() + chunk - question;
    d.fill_query = [this, from, prose_scale](int64_t t, int64_t, float* q) {
      direction(std::min<int64_t>(t, int64_t(block_of.size()) - 1), q, 4, prose_scale);
      if (t >= from) {
        std::fill(q, q + 4 * kHeadDim, 0.0f);
        for (int64_t h = 0; h < 4; ++h) q[h * kHeadDim + 7] = 4.0f;
      }
    };
  }
};

void expect_exact_partition(const LtriPolicy& policy, int64_t layer) {
  const ContextStore& s = policy.store(layer);
  int64_t next = kInit;
  for (const StoredUnit& u : s.units()) {
    ASSERT_EQ(u.first_token, next) << "layer " << layer;
    ASSERT_GE(u.length, 1);
    ASSERT_LE(u.length, kSpanMax);
    next += u.length;
  }
  // Every evicted token is in exactly one span; the rest are in the window.
  EXPECT_EQ(next, policy.window().begin(layer));
  EXPECT_EQ(s.n_tokens(), next - kInit);
}

TEST(LtriPolicy, spans_partition_the_evicted_tokens_exactly_on_a_random_stream) {
  StreamDriver d(test::policy_test_config(), ltri_options(16), 16);
  for (int step = 0; step < 40; ++step) d.feed(step < 30 ? 16 : 1);
  const LtriPolicy& p = ltri_of(d);
  for (int64_t l = 0; l < 2; ++l) {
    expect_exact_partition(p, l);
    EXPECT_GT(p.store(l).units().size(), 20u);
    // Evicted right after each chunk; the open span waits: less than span_max tokens beyond n_local.
    EXPECT_LT(p.window().size(l), kLocal + kSpanMax);
  }
}

TEST(LtriPolicy, spans_follow_planted_attention_blocks) {
  const PlantedStream stream(600, 21);
  StreamDriver d(test::policy_test_config(), ltri_options(16), 16);
  stream.attach(d);
  for (int step = 0; step < 30; ++step) d.feed(16);
  const LtriPolicy& p = ltri_of(d);
  for (int64_t l = 0; l < 2; ++l) {
    expect_exact_partition(p, l);
    const auto& units = p.store(l).units();
    ASSERT_GT(units.size(), 30u);
    for (const StoredUnit& u : units) {
      const int64_t b = stream.block_of[size_t(u.first_token)];
      EXPECT_EQ(u.first_token, stream.block_start[size_t(b)]) << "layer " << l;
      EXPECT_EQ(u.length, stream.block_len[size_t(b)]) << "layer " << l << " block " << b;
      EXPECT_EQ(u.n_vectors, 2);  // index static 2
    }
  }
}

int64_t find_block_of_length(const PlantedStream& s, int64_t len, int64_t after) {
  for (size_t b = 0; b < s.block_len.size(); ++b) {
    if (s.block_len[b] == len && s.block_start[b] > after) return int64_t(b);
  }
  return -1;
}

TEST(LtriPolicy, the_span_of_a_planted_needle_is_retrieved_and_persists_through_decode) {
  for (bool persist : {true, false}) {
    SCOPED_TRACE(persist ? "persist" : "no persist");
    PlantedStream stream(600, 22);
    stream.needle_block = find_block_of_length(stream, 8, 150);
    ASSERT_GE(stream.needle_block, 0);
    const int64_t needle_first = stream.block_start[size_t(stream.needle_block)];
    AttentionOptions o = ltri_options(8);  // budget: exactly the needle's 8 tokens
    o.persist = persist;
    StreamDriver d(test::policy_test_config(), o, 16);
    stream.attach(d);
    for (int step = 0; step < 30; ++step) d.feed(16);  // 480 tokens; the needle is evicted
    PlantedStream::ask_for_needle(d);
    d.feed(16, [&](int64_t layer, const AttentionPlan& plan) {
      const LtriPolicy& p = ltri_of(d);
      const RetrievedKv& r = p.retrieved(layer);
      ASSERT_EQ(r.units().size(), 1u);
      EXPECT_EQ(p.store(layer).units()[size_t(r.units()[0])].first_token, needle_first);
      std::vector<int64_t> tokens;
      for (const auto& k : visible_keys(plan, d.kv_row())) tokens.push_back(k.token);
      for (int64_t t = needle_first; t < needle_first + 8; ++t) {
        EXPECT_NE(std::find(tokens.begin(), tokens.end(), t), tokens.end()) << "needle token " << t;
      }
    });
    // Decode steps whose queries point elsewhere: with persistence the needle stays visible.
    stream.attach(d);
    int64_t steps_with_needle = 0;
    for (int step = 0; step < 12; ++step) {
      bool seen = false;
      d.feed(1, [&](int64_t layer, const AttentionPlan& plan) {
        for (const auto& k : visible_keys(plan, d.kv_row())) seen |= k.token == needle_first;
        if (persist) {
          EXPECT_EQ(ltri_of(d).persistent_units(layer).size(), 1u);
        }
      });
      steps_with_needle += seen;
    }
    if (persist) {
      EXPECT_EQ(steps_with_needle, 12);
    } else {
      EXPECT_LT(steps_with_needle, 12);
    }
  }
}

TEST(LtriPolicy, pinned_spans_built_when_the_prompt_ends_equal_those_of_the_first_decode_step) {
  // The session tells the policy that a prompt ended (end_prompt): the persistent sets are
  // built then, inside the prompt's time, and the decode steps see what they would have seen
  // had the first step built them.
  PlantedStream stream(600, 22);
  stream.needle_block = find_block_of_length(stream, 8, 150);
  ASSERT_GE(stream.needle_block, 0);
  const int64_t needle_first = stream.block_start[size_t(stream.needle_block)];
  AttentionOptions o = ltri_options(8);
  StreamDriver told(test::policy_test_config(), o, 16), untold(test::policy_test_config(), o, 16);
  for (StreamDriver* d : {&told, &untold}) {
    stream.attach(*d);
    for (int step = 0; step < 30; ++step) d->feed(16);
    PlantedStream::ask_for_needle(*d);
    d->feed(16);
    stream.attach(*d);  // decode queries point at other blocks
  }
  const LtriPolicy& p = ltri_of(told);
  EXPECT_TRUE(p.persistent_units(0).empty());  // not before the prompt's end
  EXPECT_EQ(p.persistent_builds(), 0);
  told.policy().end_prompt();
  EXPECT_EQ(p.persistent_builds(), 1);
  for (int64_t layer = 0; layer < 2; ++layer) {
    ASSERT_EQ(p.persistent_units(layer).size(), 1u) << "layer " << layer;
    EXPECT_EQ(p.store(layer).units()[size_t(p.persistent_units(layer)[0])].first_token, needle_first);
  }
  for (int step = 0; step < 6; ++step) {
    std::vector<std::vector<int64_t>> seen[2];
    for (int which = 0; which < 2; ++which) {
      StreamDriver& d = which == 0 ? told : untold;
      d.feed(1, [&](int64_t layer, const AttentionPlan& plan) {
        std::vector<int64_t> tokens;
        for (const auto& k : visible_keys(plan, d.kv_row())) tokens.push_back(k.token);
        seen[which].push_back(tokens);
        EXPECT_EQ(ltri_of(d).persistent_units(layer), p.persistent_units(layer)) << "step " << step;
      });
    }
    EXPECT_EQ(seen[0], seen[1]) << "step " << step;
  }
  EXPECT_EQ(p.persistent_builds(), 1);  // not again at the first decode step
  EXPECT_EQ(ltri_of(untold).persistent_builds(), 1);  // there
  told.feed(16);  // a new prompt chunk: the pinned spans belong to the prompt before it
  EXPECT_TRUE(p.persistent_units(0).empty());
}

TEST(LtriPolicy, without_decode_retrieval_decode_sees_exactly_the_pinned_spans) {
  for (bool decode_retrieval : {true, false}) {
    SCOPED_TRACE(decode_retrieval ? "decode retrieval" : "pinned spans only");
    PlantedStream stream(600, 22);
    stream.needle_block = find_block_of_length(stream, 8, 150);
    ASSERT_GE(stream.needle_block, 0);
    AttentionOptions o = ltri_options(8);
    o.decode_retrieval = decode_retrieval;
    StreamDriver d(test::policy_test_config(), o, 16);
    stream.attach(d);
    for (int step = 0; step < 30; ++step) d.feed(16);
    PlantedStream::ask_for_needle(d);
    d.feed(16);
    stream.attach(d);  // decode queries point at other blocks
    int64_t steps_with_additions = 0;
    for (int step = 0; step < 12; ++step) {
      d.feed(1, [&](int64_t layer, const AttentionPlan&) {
        const LtriPolicy& p = ltri_of(d);
        const std::vector<int64_t>& pinned = p.persistent_units(layer);
        const std::vector<int64_t>& loaded = p.retrieved(layer).units();
        ASSERT_EQ(pinned.size(), 1u);
        ASSERT_TRUE(std::includes(loaded.begin(), loaded.end(), pinned.begin(), pinned.end()));
        if (decode_retrieval) {
          steps_with_additions += loaded.size() > pinned.size();
        } else {
          EXPECT_EQ(loaded, pinned);
        }
      });
    }
    if (decode_retrieval) {
      EXPECT_GT(steps_with_additions, 0);
    }
  }
}

TEST(LtriPolicy, a_short_question_at_the_end_of_a_chunk_finds_its_needle_with_per_query_scores) {
  // Only the chunk's last 2 of 16 queries ask for the needle; the others look at their own
  // blocks. The chunk's mean query hardly points at the needle; its best query does, and so
  // does the best block mean when blocks (counted back from the chunk's end) are 2 tokens. A
  // block of the whole chunk is the mean query again.
  struct Mode {
    const char* query;
    int64_t block;
    bool finds;
  };
  for (const Mode mode : {Mode{"max", 1, true}, Mode{"max", 2, true}, Mode{"max", 16, false}, Mode{"mean", 1, false}}) {
    SCOPED_TRACE(std::string(mode.query) + " block " + std::to_string(mode.block));
    PlantedStream stream(600, 25);
    stream.needle_block = find_block_of_length(stream, 8, 150);
    const int64_t needle_first = stream.block_start[size_t(stream.needle_block)];
    AttentionOptions o = ltri_options(8);
    o.retrieval_query = mode.query;
    o.query_block = mode.block;
    StreamDriver d(test::policy_test_config(), o, 16);
    stream.attach(d);
    for (int step = 0; step < 30; ++step) d.feed(16);
    stream.ask_at_end_of_next_chunk(d, 16, 2, 4.0f);
    d.feed(16, [&](int64_t layer, const AttentionPlan&) {
      const LtriPolicy& p = ltri_of(d);
      const RetrievedKv& r = p.retrieved(layer);
      ASSERT_EQ(r.units().size(), 1u);
      const int64_t first = p.store(layer).units()[size_t(r.units()[0])].first_token;
      if (mode.finds) {
        EXPECT_EQ(first, needle_first) << "layer " << layer;
      } else {
        EXPECT_NE(first, needle_first) << "layer " << layer;
      }
    });
  }
}

TEST(LtriPolicy, the_persistent_set_is_scored_with_the_question_not_the_whole_last_chunk) {
  // The last chunk is prose (queries pointing hard at their own blocks) ending in a 2-token
  // question that asks for the needle. Every query of the chunk ranks a prose span first; the
  // question's queries alone rank the needle's span first, and with question_tokens 2 that
  // span is pinned for decode. The chunk's own retrieval (prefill) still uses every query.
  for (const int64_t question_tokens : {int64_t(0), int64_t(2)}) {
    SCOPED_TRACE("question_tokens " + std::to_string(question_tokens));
    PlantedStream stream(600, 25);
    stream.needle_block = find_block_of_length(stream, 8, 150);
    ASSERT_GE(stream.needle_block, 0);
    const int64_t needle_first = stream.block_start[size_t(stream.needle_block)];
    AttentionOptions o = ltri_options(8);  // budget: one span
    o.query_block = 1;
    o.question_tokens = question_tokens;
    StreamDriver d(test::policy_test_config(), o, 16);
    stream.attach(d);
    for (int step = 0; step < 30; ++step) d.feed(16);
    stream.ask_at_end_of_next_chunk(d, 16, 2, 12.0f);
    d.feed(16, [&](int64_t layer, const AttentionPlan&) {
      const LtriPolicy& p = ltri_of(d);
      const RetrievedKv& r = p.retrieved(layer);
      ASSERT_EQ(r.units().size(), 1u);
      EXPECT_NE(p.store(layer).units()[size_t(r.units()[0])].first_token, needle_first) << "layer " << layer;
    });
    stream.attach(d);
    d.feed(1, [&](int64_t layer, const AttentionPlan&) {
      const LtriPolicy& p = ltri_of(d);
      const std::vector<int64_t>& pinned = p.persistent_units(layer);
      ASSERT_EQ(pinned.size(), 1u);
      const int64_t first = p.store(layer).units()[size_t(pinned[0])].first_token;
      if (question_tokens > 0) {
        EXPECT_EQ(first, needle_first) << "layer " << layer;
      } else {
        EXPECT_NE(first, needle_first) << "layer " << layer;
      }
    });
  }
}

TEST(LtriPolicy, the_question_tokens_round_up_to_whole_query_blocks) {
  // Blocks of 4 counted back from the chunk's end: question_tokens 2 keeps the last block,
  // whose mean still points at the needle (2 of its 4 queries ask for it, the other 2 are
  // silent), while the chunk's other blocks point hard at prose.
  PlantedStream stream(600, 25);
  stream.needle_block = find_block_of_length(stream, 8, 150);
  ASSERT_GE(stream.needle_block, 0);
  const int64_t needle_first = stream.block_start[size_t(stream.needle_block)];
  AttentionOptions o = ltri_options(8);
  o.query_block = 4;
  o.question_tokens = 2;
  StreamDriver d(test::policy_test_config(), o, 16);
  stream.attach(d);
  for (int step = 0; step < 30; ++step) d.feed(16);
  const int64_t tail = d.policy().n_past() + 12;
  d.fill_query = [&](int64_t t, int64_t, float* q) {
    stream.direction(std::min<int64_t>(t, 599), q, 4, 12.0f);
    if (t >= tail) std::fill(q, q + 4 * kHeadDim, 0.0f);
    if (t >= tail + 2) {
      for (int64_t h = 0; h < 4; ++h) q[h * kHeadDim + 7] = 8.0f;
    }
  };
  d.feed(16);
  stream.attach(d);
  d.feed(1, [&](int64_t layer, const AttentionPlan&) {
    const LtriPolicy& p = ltri_of(d);
    ASSERT_EQ(p.persistent_units(layer).size(), 1u);
    EXPECT_EQ(p.store(layer).units()[size_t(p.persistent_units(layer)[0])].first_token, needle_first);
  });
}

fs::path write_heads_file(const std::string& text) {
  const fs::path path = fs::temp_directory_path() / ("ltri_kv_heads_" + std::to_string(::getpid()) + ".json");
  std::ofstream(path) << text;
  return path;
}

TEST(LtriPolicy, layers_vote_for_the_spans_the_retrieval_layer_found) {
  // The needle exists only in layer 0's keys; layer 0 has the retrieval head (score 1), layer
  // 1 none (score 0). With voting, layer 1 loads the tokens layer 0 chose; without, its own
  // (uninformed) choice.
  const fs::path heads = write_heads_file(R"({"format": "ltri-heads-1", "n_layers": 2, "n_heads": 4,
      "scores": [[1.0, 0, 0, 0], [0, 0, 0, 0]], "threshold": 0.1})");
  for (bool voting : {true, false}) {
    SCOPED_TRACE(voting ? "voting" : "no voting");
    PlantedStream stream(600, 23);
    stream.needle_block = find_block_of_length(stream, 8, 150);
    const int64_t needle_first = stream.block_start[size_t(stream.needle_block)];
    AttentionOptions o = ltri_options(8);
    o.voting = voting;
    o.heads_file = heads.string();
    StreamDriver d(test::policy_test_config(), o, 16);
    stream.attach(d, /*needle only in layer*/ 0);
    for (int step = 0; step < 30; ++step) d.feed(16);
    PlantedStream::ask_for_needle(d);
    d.feed(16, [&](int64_t layer, const AttentionPlan&) {
      const LtriPolicy& p = ltri_of(d);
      const RetrievedKv& r = p.retrieved(layer);
      ASSERT_EQ(r.units().size(), 1u);
      const int64_t first = p.store(layer).units()[size_t(r.units()[0])].first_token;
      if (layer == 0 || voting) {
        EXPECT_EQ(first, needle_first) << "layer " << layer;
      } else {
        EXPECT_NE(first, needle_first) << "layer " << layer;
      }
    });
  }
  fs::remove(heads);
}

TEST(LtriPolicy, dynamic_index_keeps_more_vectors_when_the_neighbours_looked_away) {
  // Planted blocks: the triangles are bright, their neighbours dark, so r_a is large and with
  // lambda 1 a span keeps min(length, index_max) vectors; a tiny lambda keeps one.
  for (double lambda : {1.0, 1e-9}) {
    const PlantedStream stream(400, 24);
    AttentionOptions o = ltri_options(16);
    o.index = "dynamic";
    o.lambda = lambda;
    o.index_max = 6;
    StreamDriver d(test::policy_test_config(), o, 16);
    stream.attach(d);
    for (int step = 0; step < 20; ++step) d.feed(16);
    for (const StoredUnit& u : ltri_of(d).store(0).units()) {
      EXPECT_EQ(u.n_vectors, lambda == 1.0 ? std::min<int64_t>(u.length, 6) : 1) << "length " << u.length;
    }
  }
}

}  // namespace
}  // namespace ltri
