// generate() on the bundled demo model (15.7M parameters, vocab 8192): its text is the
// tokenizer's decode of the greedy ids computed here independently (Session::forward + an
// argmax written in this file), and it stops where it should: n_predict, an EOS id, a stop
// string, a full context.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "runtime/engine.hpp"
#include "runtime/generator.hpp"
#include "test_paths.hpp"

namespace ltri {
namespace {

// The passkey format the bundled model was trained on (tools/train_demo/tasks.py, docs/eval.md),
// with a five-sentence haystack on each side of the needle.
const char* kPrompt =
    "There is an important info hidden inside a lot of irrelevant text. Find it and memorize it. I will "
    "quiz you about the important information there.\n\nThe grass is green. The sky is blue. The sun is "
    "yellow. Here we go. There and back again. The pass key is 48213. Remember it. 48213 is the pass key. "
    "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.\n\nWhat is "
    "the pass key? The pass key is";

class Generator : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ModelLoadOptions load;
    load.threads = 1;  // the model is small; one thread keeps a loaded CI machine from thrashing
    engine_ = std::make_unique<Engine>(Engine::load(test::source_dir() + "/models/ltri-demo", load));
    prompt_ = prompt_ids();
    want_ = greedy_ids(prompt_, 16);
  }
  static void TearDownTestSuite() { engine_.reset(); }

  // The first n reference ids after the passkey prompt, and their text.
  static std::vector<int32_t> want(size_t n) { return {want_.begin(), want_.begin() + std::ptrdiff_t(n)}; }
  static std::string want_text(size_t n) { return tokenizer().decode(want(n)); }

  static const Tokenizer& tokenizer() { return engine_->tokenizer(); }
  static int64_t vocab() { return engine_->model().config().vocab_size; }
  static std::unique_ptr<Session> session(int64_t max_context = 512) {
    SessionOptions o;
    o.max_context = max_context;
    return engine_->model().new_session(o);
  }
  static std::vector<int32_t> prompt_ids(const std::string& text = kPrompt) {
    return tokenizer().encode(text, EncodeOptions{});
  }

  // The first n greedy ids after `prompt`, one forward per token, argmax by hand.
  static std::vector<int32_t> greedy_ids(const std::vector<int32_t>& prompt, int n) {
    auto s = session();
    std::vector<float> logits(static_cast<size_t>(vocab()));  // (vocab), f32
    s->forward(prompt, logits.data());
    std::vector<int32_t> ids;
    for (int i = 0; i < n; ++i) {
      int32_t best = 0;
      for (int32_t v = 1; v < int32_t(vocab()); ++v) {
        if (logits[size_t(v)] > logits[size_t(best)]) best = v;
      }
      ids.push_back(best);
      if (i + 1 < n) s->forward(std::vector<int32_t>{best}, logits.data());
    }
    return ids;
  }

  struct Result {
    std::string text;
    std::vector<std::string> pieces;
    GenerateStats stats;
  };
  static Result run(const std::vector<int32_t>& prompt, const GenerateOptions& options, int64_t max_context = 512) {
    auto s = session(max_context);
    Result r;
    r.stats = generate(*s, vocab(), tokenizer(), prompt, options, [&](std::string_view piece) {
      r.pieces.emplace_back(piece);
      r.text += piece;
    });
    return r;
  }
  static GenerateOptions greedy(int64_t n_predict) {
    GenerateOptions o;
    o.n_predict = n_predict;
    o.sampling.temperature = 0.0f;
    return o;  // eos_ids empty: nothing stops it but n_predict
  }

  static std::unique_ptr<Engine> engine_;
  static std::vector<int32_t> prompt_;  // the passkey prompt's ids
  static std::vector<int32_t> want_;    // (16) greedy ids after it, computed by hand
};

std::unique_ptr<Engine> Generator::engine_;
std::vector<int32_t> Generator::prompt_;
std::vector<int32_t> Generator::want_;

TEST_F(Generator, greedy_text_is_the_decode_of_the_independent_greedy_ids) {
  const Result r = run(prompt_, greedy(12));
  EXPECT_EQ(r.text, want_text(12));
  EXPECT_NE(r.text.find("48213"), std::string::npos) << r.text;  // the demo model's passkey skill
  EXPECT_EQ(r.stats.generated_tokens, 12);
  EXPECT_EQ(r.stats.sampled_tokens, 12);
  EXPECT_EQ(r.stats.eval_runs, 11);  // no forward for the last token
  EXPECT_EQ(r.stats.prompt_tokens, int64_t(prompt_.size()));
  EXPECT_EQ(r.stats.stop_reason, StopReason::Length);
  for (const std::string& piece : r.pieces) EXPECT_FALSE(piece.empty());
}

TEST_F(Generator, n_predict_is_respected) {
  for (int64_t n : {0, 1, 5}) {
    const Result r = run(prompt_, greedy(n));
    EXPECT_EQ(r.stats.generated_tokens, n);
    EXPECT_EQ(r.stats.stop_reason, StopReason::Length);
    EXPECT_EQ(r.text, want_text(size_t(n))) << "n " << n;
  }
}

TEST_F(Generator, eos_token_ends_generation_and_is_not_printed) {
  // The third greedy token declared EOS (and not one of the first two, or they would stop first).
  ASSERT_NE(want_[0], want_[2]);
  ASSERT_NE(want_[1], want_[2]);
  GenerateOptions o = greedy(20);
  o.eos_ids = {want_[2]};
  const Result r = run(prompt_, o);
  EXPECT_EQ(r.stats.stop_reason, StopReason::Eos);
  EXPECT_EQ(r.stats.generated_tokens, 2);
  EXPECT_EQ(r.stats.sampled_tokens, 3);
  EXPECT_EQ(r.text, want_text(2));

  o.eos_ids = {12345, want_[0]};  // EOS first: no text at all
  const Result none = run(prompt_, o);
  EXPECT_EQ(none.stats.stop_reason, StopReason::Eos);
  EXPECT_EQ(none.stats.generated_tokens, 0);
  EXPECT_EQ(none.text, "");
}

TEST_F(Generator, ignore_eos_keeps_going_and_prints_the_eos_token) {
  GenerateOptions o = greedy(6);
  o.eos_ids = {want_[1]};
  o.ignore_eos = true;
  const Result r = run(prompt_, o);
  EXPECT_EQ(r.stats.stop_reason, StopReason::Length);
  EXPECT_EQ(r.stats.generated_tokens, 6);
  EXPECT_EQ(r.text, want_text(6));
}

TEST_F(Generator, stop_string_cuts_the_text_before_it) {
  const std::string full = want_text(16);
  // A stop string taken from the middle of the model's own greedy text (not a fixed word, so the
  // test holds for any weights): generation stops at its first occurrence, cutting it off.
  const std::string stop = full.substr(full.size() / 2, 4);
  const size_t at = full.find(stop);
  ASSERT_GT(at, 0u) << full;
  GenerateOptions o = greedy(16);
  o.stop_strings = {stop};
  const Result r = run(prompt_, o);
  EXPECT_EQ(r.stats.stop_reason, StopReason::StopString);
  EXPECT_EQ(r.text, full.substr(0, at));
  EXPECT_LT(r.stats.generated_tokens, 16);

  // A stop string that never appears changes nothing.
  o.n_predict = 6;
  o.stop_strings = {"\x01never\x02"};
  EXPECT_EQ(run(prompt_, o).text, want_text(6));
}

TEST_F(Generator, full_context_stops_generation) {
  const int64_t max_context = int64_t(prompt_.size()) + 3;
  // 3 forwards fill the context; the logits of the last one still give a 4th token.
  const Result r = run(prompt_, greedy(-1), max_context);
  EXPECT_EQ(r.stats.stop_reason, StopReason::ContextFull);
  EXPECT_EQ(r.stats.generated_tokens, 4);
  EXPECT_EQ(r.stats.eval_runs, 3);
  EXPECT_EQ(r.text, want_text(4));
}

TEST_F(Generator, same_seed_same_sampled_text) {
  const std::vector<int32_t> prompt = prompt_ids("Once upon a time");
  GenerateOptions o;
  o.n_predict = 8;
  o.sampling.temperature = 1.0f;
  o.sampling.top_k = 0;
  o.sampling.top_p = 1.0f;
  o.sampling.seed = 1234;
  const std::string a = run(prompt, o).text;
  EXPECT_EQ(run(prompt, o).text, a);
  EXPECT_FALSE(a.empty());
}

TEST_F(Generator, bad_input_is_refused) {
  EXPECT_THROW(run({}, greedy(4)), Error);
  try {
    run({}, greedy(4));
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("prompt is empty"), std::string::npos) << e.what();
  }
  const std::vector<int32_t> prompt = prompt_ids();
  EXPECT_THROW(run(prompt, greedy(4), int64_t(prompt.size()) - 1), Error);  // over the context
  EXPECT_THROW(run(prompt, greedy(-2)), Error);
  GenerateOptions bad_top_p = greedy(4);
  bad_top_p.sampling.top_p = 0.0f;
  EXPECT_THROW(run(prompt, bad_top_p), Error);
}

TEST_F(Generator, model_eos_ids_join_tokenizer_and_config) {
  // <|end_of_text|> is the demo tokenizer's eos_token and config.json's eos_token_id.
  const int32_t end_of_text = tokenizer().token_to_id("<|end_of_text|>");
  ASSERT_GE(end_of_text, 0);
  const std::vector<int32_t> ids = model_eos_ids(tokenizer(), engine_->model().config());
  EXPECT_EQ(ids, std::vector<int32_t>{end_of_text});
  ModelConfig two_eos = engine_->model().config();
  two_eos.eos_token_ids = {end_of_text, 7, 7, -1};  // repeats and a negative id dropped
  EXPECT_EQ(model_eos_ids(tokenizer(), two_eos), (std::vector<int32_t>{end_of_text, 7}));
  // The engine's list holds them too (and may add generation_config.json's).
  EXPECT_NE(std::find(engine_->eos_ids().begin(), engine_->eos_ids().end(), end_of_text), engine_->eos_ids().end());
}

}  // namespace
}  // namespace ltri
