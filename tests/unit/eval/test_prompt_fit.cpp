// Generated prompts, measured with the bundled model's tokenizer (models/ltri-demo): their
// length in tokens, where the needle sits, the exact wording of the public formats, and that a
// seed fixes them.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <regex>
#include <string>

#include "core/error.hpp"
#include "eval/task_registry.hpp"
#include "test_paths.hpp"
#include "tokenizer/tokenizer.hpp"

namespace ltri::eval {
namespace {

struct Fixture {
  Tokenizer tokenizer = Tokenizer::load(test::source_dir() + "/models/ltri-demo");
  ProseText prose = ProseText::load(test::source_dir() + "/data/heldout/austen_persuasion.txt");
  // A fixed word list, so the tests do not depend on the machine's dictionary.
  WordList words = WordList::from_text(
      "abdomens\nabductor\napple\nbanana\ncherry\nquaint\nlathe\nmeadow\nzephyr\nharbor\nvelvet\nginger\n", "mem");
  PromptFormat format = PromptFormat::plain(tokenizer);
  TaskSources sources{&prose, &words};
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

// Token count of text as `ltri run -p` encodes it (post-processor adds BOS); independent of
// PromptFormat.
int64_t run_tokens(const std::string& text) {
  EncodeOptions options;
  options.add_special_tokens = true;
  return int64_t(fixture().tokenizer.encode(text, options).size());
}

EvalSample sample(const std::string& task, int64_t length, double depth, uint64_t seed = 1, int64_t index = 0) {
  Fixture& f = fixture();
  return make_sample(task, f.sources, f.format, seed, length, depth, index);
}

TEST(PromptFit, PromptTokensAreTheRequestedLengthWithinOnePercent) {
  for (const std::string task : {"passkey", "niah_single_1", "niah_single_2", "niah_single_3", "niah_multikey_1",
                                 "niah_multikey_2", "niah_multikey_3", "niah_multivalue", "niah_multiquery"}) {
    for (int64_t length : {1024, 2048, 4096}) {
      const EvalSample s = sample(task, length, 0.5);
      const int64_t tokens = run_tokens(s.prompt);
      EXPECT_EQ(int64_t(s.ids.size()), tokens) << task;
      EXPECT_LE(std::llabs(tokens - length), length / 100) << task << " at " << length << ": " << tokens;
      EXPECT_EQ(s.ids.front(), fixture().tokenizer.bos_id());
    }
  }
}

TEST(PromptFit, TooShortALengthIsRefusedWithTheTasksOwnSize) {
  try {
    sample("niah_single_2", 40, 0.5);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--lengths: 40 is shorter than the niah_single_2 prompt without any haystack"),
              std::string::npos)
        << e.what();
  }
}

// Where the needle starts among the haystack's filler tokens, measured on the final text:
// tokens before the needle minus those before the haystack, over the haystack's tokens less the
// needle's own (so a needle at the very end is at depth 1).
double measured_depth(const std::string& prompt, const std::string& needle, const std::string& before,
                      const std::string& after) {
  const size_t hay_begin = before.size();
  const size_t hay_end = prompt.rfind(after);
  const size_t at = prompt.find(needle);
  EXPECT_NE(at, std::string::npos);
  const double start = double(run_tokens(prompt.substr(0, hay_begin)));
  const double end = double(run_tokens(prompt.substr(0, hay_end)));
  const double needle_tokens = double(run_tokens(" " + needle) - 1);
  return (double(run_tokens(prompt.substr(0, at))) - start) / (end - start - needle_tokens);
}

TEST(PromptFit, PasskeyNeedleSitsAtTheRequestedDepth) {
  const std::string before = "There is an important info hidden inside a lot of irrelevant text. Find it and "
                             "memorize it. I will quiz you about the important information there.\n\n";
  for (int64_t length : {1024, 4096}) {
    for (double depth : {0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0}) {
      const EvalSample s = sample("passkey", length, depth);
      const std::string& key = s.expected[0];
      const std::string needle = "The pass key is " + key + ". Remember it. " + key + " is the pass key.";
      const double d = measured_depth(s.prompt, needle, before, "\n\nWhat is the pass key?");
      // Noise blocks are ~25 tokens: the nearest boundary is at most half a block away.
      EXPECT_NEAR(d, depth, 14.0 / double(length) + 0.005) << "length " << length;
      ASSERT_EQ(s.needle_depths.size(), 1u);
      EXPECT_NEAR(s.needle_depths[0], d, 0.01);
    }
  }
}

TEST(PromptFit, NiahNeedleSitsAtTheRequestedDepthInProse) {
  const std::string before = "Some special magic numbers are hidden within the following text. Make sure to "
                             "memorize it. I will quiz you about the numbers afterwards.\n";
  double worst = 0;
  for (double depth : {0.0, 0.2, 0.4, 0.6, 0.8, 1.0}) {
    for (uint64_t seed : {1, 2, 3}) {
      const EvalSample s = sample("niah_single_2", 4096, depth, seed);
      const std::smatch m = [&] {
        std::smatch match;
        std::regex_search(s.prompt, match, std::regex("One of the special magic numbers for [a-z]+-[a-z]+ is: [0-9]{7}\\."));
        return match;
      }();
      ASSERT_FALSE(m.empty());
      const double d = measured_depth(s.prompt, m.str(0), before, "\nWhat is the special magic number for");
      worst = std::max(worst, std::fabs(d - depth));
    }
  }
  // Sentences of held-out prose run to ~150 tokens (3.7% of 4K): half of one is the most a
  // nearest-boundary placement can miss by.
  EXPECT_LT(worst, 0.02);
}

TEST(PromptFit, FormatsAreTheirPublishedWording) {
  const EvalSample p = sample("passkey", 1024, 0.5);
  ASSERT_EQ(p.expected.size(), 1u);
  EXPECT_TRUE(std::regex_match(p.expected[0], std::regex("[1-9][0-9]{4}")));
  EXPECT_EQ(p.prompt.rfind("There is an important info hidden inside a lot of irrelevant text. Find it and memorize "
                           "it. I will quiz you about the important information there.\n\nThe grass is green. The sky "
                           "is blue. The sun is yellow. Here we go. There and back again. The grass is green.", 0),
            0u);
  EXPECT_TRUE(p.prompt.ends_with(".\n\nWhat is the pass key? The pass key is"));
  EXPECT_EQ(p.scoring, Scoring::FirstNumber);

  const EvalSample n = sample("niah_single_3", 1024, 0.5);
  ASSERT_EQ(n.expected.size(), 1u);
  EXPECT_TRUE(std::regex_match(n.expected[0], std::regex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")));
  std::smatch m;
  ASSERT_TRUE(std::regex_search(n.prompt, m, std::regex("One of the special magic uuids for ([a-z]+-[a-z]+) is: " +
                                                        n.expected[0] + "\\.")));
  const std::string key = m.str(1);
  EXPECT_EQ(n.prompt.rfind("Some special magic uuids are hidden within the following text. Make sure to memorize it. "
                           "I will quiz you about the uuids afterwards.\n", 0),
            0u);
  EXPECT_TRUE(n.prompt.ends_with("\nWhat is the special magic uuid for " + key +
                                 " mentioned in the provided text? The special magic uuid for " + key +
                                 " mentioned in the provided text is"));
  EXPECT_EQ(n.scoring, Scoring::StringMatchAll);

  const EvalSample q = sample("niah_multiquery", 2048, 0.5);
  EXPECT_EQ(q.expected.size(), 4u);
  EXPECT_NE(q.prompt.find("\nWhat are all the special magic numbers for "), std::string::npos);
  EXPECT_TRUE(q.prompt.ends_with(" mentioned in the provided text are"));
  for (const std::string& v : q.expected) EXPECT_NE(q.prompt.find(" is: " + v + "."), std::string::npos) << v;

  // multikey_1: the asked needle and three distractors with other keys.
  const EvalSample k = sample("niah_multikey_1", 2048, 0.5);
  const std::regex needle("One of the special magic numbers for [a-z]+-[a-z]+ is: [0-9]{7}\\.");
  EXPECT_EQ(std::distance(std::sregex_iterator(k.prompt.begin(), k.prompt.end(), needle), std::sregex_iterator()), 4);
}

TEST(PromptFit, ChatTemplateWrapsTheTaskAndOpensTheAnswer) {
  // The Llama-3 tokenizer scripts/setup.sh fetches for the tokenizer tests.
  const std::string dir = test::deps_dir() + "/tokenizers/llama3";
  if (!std::filesystem::exists(dir + "/tokenizer.json")) GTEST_SKIP() << "no " << dir << " (scripts/fetch_test_deps.sh)";
  const Tokenizer llama3 = Tokenizer::load(dir);
  const PromptFormat chat = PromptFormat::chat(llama3);
  EXPECT_STREQ(chat.name(), "chat:llama3");
  const EvalSample s = make_sample("passkey", {}, chat, 1, 2048, 0.5, 0);
  EXPECT_EQ(s.prompt.rfind("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nThere is an important info", 0), 0u);
  EXPECT_TRUE(s.prompt.ends_with("\n\nWhat is the pass key?<|eot_id|><|start_header_id|>assistant<|end_header_id|>"
                                 "\n\nThe pass key is"));
  // As `ltri run --chat` encodes it: the template's own BOS, special tokens parsed.
  EncodeOptions options;
  options.add_special_tokens = false;
  options.parse_special = true;
  const std::vector<int32_t> ids = llama3.encode(s.prompt, options);
  EXPECT_EQ(s.ids, ids);
  EXPECT_LE(std::llabs(int64_t(ids.size()) - 2048), 20);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), llama3.bos_id()), 1);
}

TEST(PromptFit, ASeedFixesThePromptAndDifferentSeedsOrCellsChangeIt) {
  for (const std::string task : {"passkey", "niah_single_2", "niah_multikey_3"}) {
    const EvalSample a = sample(task, 1024, 0.5, 42);
    EXPECT_EQ(a.prompt, sample(task, 1024, 0.5, 42).prompt) << task;
    EXPECT_NE(a.expected, sample(task, 1024, 0.5, 43).expected) << task;
    EXPECT_NE(a.expected, sample(task, 1024, 0.5, 42, 1).expected) << task;  // the next sample of the cell
    EXPECT_NE(a.expected, sample(task, 1024, 0.25, 42).expected) << task;    // another depth
  }
}

TEST(PromptFit, DepthGridSpreadsOverTheHaystack) {
  EXPECT_EQ(depth_grid(1), std::vector<double>{0.5});
  EXPECT_EQ(depth_grid(2), (std::vector<double>{0.0, 1.0}));
  EXPECT_EQ(depth_grid(5), (std::vector<double>{0.0, 0.25, 0.5, 0.75, 1.0}));
  EXPECT_EQ(depth_grid(11).size(), 11u);
  EXPECT_THROW(depth_grid(0), Error);
}

TEST(PromptFit, UnknownTasksAreNamedWithTheKnownOnes) {
  try {
    check_task_name("niah_single_9");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("--task: unknown task 'niah_single_9' (one of: passkey, niah_single_1,", 0), 0u)
        << e.what();
  }
}

}  // namespace
}  // namespace ltri::eval
