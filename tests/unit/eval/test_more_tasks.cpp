// The RULER vt / cwe / fwe and InfiniteBench number_string / kv_retrieval generators, measured
// with the bundled model's tokenizer: the prompt's token count, where the needle sits (counted
// here on the final text), the published wording, and the answers recomputed from the prompt
// itself (word counts for cwe and fwe, the chain for vt, the JSON for kv_retrieval).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <regex>
#include <string>

#include <nlohmann/json.hpp>

#include "eval/kv_retrieval_task.hpp"
#include "eval/task_registry.hpp"
#include "test_paths.hpp"
#include "tokenizer/tokenizer.hpp"

namespace ltri::eval {
namespace {

struct Fixture {
  Tokenizer tokenizer = Tokenizer::load(test::source_dir() + "/models/ltri-demo");
  // A fixed word list (enough words for cwe at 4K), so the tests do not depend on the machine.
  WordList words = [] {
    std::string text;
    for (char a = 'a'; a <= 'z'; ++a) {
      for (char b = 'a'; b <= 'z'; ++b) text += std::string("wo") + a + b + "d\n";
    }
    return WordList::from_text(text, "mem");
  }();
  PromptFormat format = PromptFormat::plain(tokenizer);
  TaskSources sources{nullptr, &words};
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

// Token count as `ltri run -p` encodes the text (BOS added), independent of PromptFormat.
int64_t run_tokens(const std::string& text) {
  EncodeOptions options;
  options.add_special_tokens = true;
  return int64_t(fixture().tokenizer.encode(text, options).size());
}

EvalSample sample(const std::string& task, int64_t length, double depth, uint64_t seed = 1,
                  QuestionPlacement placement = QuestionPlacement::AfterContext) {
  return make_sample(task, fixture().sources, fixture().format, seed, length, depth, 0, placement);
}

// Filler tokens before `needle` over all filler tokens of the haystack [hay_begin, hay_end),
// where `other_needles` are not filler.
double measured_depth(const std::string& prompt, size_t hay_begin, size_t hay_end, const std::string& needle,
                      const std::vector<std::string>& other_needles = {}) {
  const size_t at = prompt.find(needle);
  EXPECT_NE(at, std::string::npos) << needle;
  const auto piece_tokens = [](const std::string& t) { return double(run_tokens(" " + t) - 1); };
  double needles_before = 0, needles_all = piece_tokens(needle);
  for (const std::string& o : other_needles) {
    needles_all += piece_tokens(o);
    if (prompt.find(o) < at) needles_before += piece_tokens(o);
  }
  const double start = double(run_tokens(prompt.substr(0, hay_begin)));
  const double end = double(run_tokens(prompt.substr(0, hay_end)));
  return (double(run_tokens(prompt.substr(0, at))) - start - needles_before) / (end - start - needles_all);
}

TEST(MoreTasks, PromptTokensAreTheRequestedLengthWithinOnePercent) {
  for (const std::string task : {"vt", "cwe", "fwe", "number_string", "kv_retrieval"}) {
    // cwe changes its frequencies at 4096 and cannot be shorter than its worked example.
    const std::vector<int64_t> lengths = task == "cwe" ? std::vector<int64_t>{1024, 4096} : std::vector<int64_t>{512, 2048};
    for (int64_t length : lengths) {
      const EvalSample s = sample(task, length, 0.5);
      const int64_t tokens = run_tokens(s.prompt);
      EXPECT_EQ(int64_t(s.ids.size()), tokens) << task;
      EXPECT_LE(std::llabs(tokens - length), length / 100) << task << " at " << length << ": " << tokens;
    }
  }
}

TEST(MoreTasks, NumberStringNeedleSitsAtTheRequestedDepth) {
  const std::string before = "There is an important info hidden inside a lot of irrelevant text. Find it. I will quiz "
                             "you about the important information there.\n\n";
  for (double depth : {0.0, 0.3, 0.5, 0.8, 1.0}) {
    const EvalSample s = sample("number_string", 2048, depth);
    const std::string& key = s.expected[0];
    EXPECT_TRUE(std::regex_match(key, std::regex("[0-9]{10}"))) << key;
    ASSERT_EQ(s.prompt.rfind(before, 0), 0u);
    const size_t hay_end = s.prompt.rfind("\n\nWhat is the sequence of digits?\n\nThe sequence of digits is");
    ASSERT_NE(hay_end, std::string::npos);
    EXPECT_EQ(hay_end + 60, s.prompt.size());
    const double d = measured_depth(s.prompt, before.size(), hay_end,
                                    "The sequence of digits is " + key + ". Remember it. " + key +
                                        " is the sequence of digits.");
    EXPECT_NEAR(d, depth, 0.01) << depth;  // noise blocks are ~25 tokens of ~2000
    EXPECT_NEAR(s.needle_depths.at(0), d, 0.01);
  }
}

TEST(MoreTasks, KvRetrievalIsValidJsonWithTheAskedPairAtTheRequestedDepth) {
  const std::string before = "Extract the value corresponding to the specified key in the JSON object below.\n\nJSON data:\n";
  for (double depth : {0.0, 0.25, 0.5, 1.0}) {
    const EvalSample s = sample("kv_retrieval", 2048, depth);
    ASSERT_EQ(s.prompt.rfind(before, 0), 0u);
    const size_t json_end = s.prompt.rfind("}\n\nKey: \"");
    ASSERT_NE(json_end, std::string::npos);
    const nlohmann::json object = nlohmann::json::parse(s.prompt.substr(before.size(), json_end + 1 - before.size()));
    const std::smatch key = [&] {
      std::smatch m;
      std::regex_search(s.prompt, m, std::regex("Key: \"([0-9a-f-]{36})\"\nThe value associated with the specified key is:$"));
      return m;
    }();
    ASSERT_FALSE(key.empty());
    ASSERT_TRUE(object.contains(key.str(1)));
    EXPECT_EQ(object[key.str(1)], s.expected.at(0));
    // The asked pair's place among the pairs, in tokens.
    const std::string pair = "\"" + key.str(1) + "\": \"" + s.expected[0] + "\"";
    const double d = measured_depth(s.prompt, before.size() + 1, json_end, pair);
    EXPECT_NEAR(d, depth, 0.02) << depth;  // a pair is ~55 tokens of ~2000
    EXPECT_GT(object.size(), 20u);
  }
}

TEST(MoreTasks, VtChainIsCompleteInOrderAndCentredOnTheDepth) {
  for (double depth : {0.2, 0.5, 0.8}) {
    const EvalSample s = sample("vt", 4096, depth);
    ASSERT_EQ(s.expected.size(), 5u);
    std::smatch first;
    ASSERT_TRUE(std::regex_search(s.prompt, first, std::regex("VAR ([A-Z]{5}) = ([0-9]{5})\\.")));
    EXPECT_EQ(first.str(1), s.expected[0]);
    // Follow the chain in the text: each link names the previous variable, after it.
    std::vector<std::string> links{first.str(0)};
    size_t at = size_t(first.position(0));
    for (size_t i = 1; i < 5; ++i) {
      const std::string link = "VAR " + s.expected[i] + " = VAR " + s.expected[i - 1] + ".";
      const size_t next = s.prompt.find(link);
      ASSERT_NE(next, std::string::npos) << link;
      EXPECT_GT(next, at);
      at = next;
      links.push_back(link);
    }
    const std::string before = "Memorize and track the chain(s) of variable assignment hidden in the following text.\n\n";
    ASSERT_EQ(s.prompt.rfind(before, 0), 0u);
    const size_t hay_end = s.prompt.rfind("\nQuestion: Find all variables that are assigned the value " + first.str(2) +
                                          " in the text above. Answer: According to the chain(s) of variable "
                                          "assignment in the text above, 5 variables are assgined the value " +
                                          first.str(2) + ", they are:");
    ASSERT_NE(hay_end, std::string::npos);
    std::vector<std::string> others(links.begin(), links.end());
    others.erase(others.begin() + 2);
    EXPECT_NEAR(measured_depth(s.prompt, before.size(), hay_end, links[2], others), depth, 0.01);
  }
}

// Word -> occurrences in a "1. w 2. w ..." list.
std::map<std::string, int> count_numbered(const std::string& list) {
  std::map<std::string, int> counts;
  const std::regex item("(?:^| )([0-9]+)\\. ([a-z]+)");
  int expected_number = 1;
  const std::sregex_iterator none;
  for (auto it = std::sregex_iterator(list.begin(), list.end(), item); it != std::sregex_iterator(); ++it) {
    EXPECT_EQ(std::stoi((*it)[1]), expected_number++);
    ++counts[(*it)[2]];
  }
  return counts;
}

TEST(MoreTasks, CweCommonWordsAreTheTenMostFrequentInTheList) {
  for (int64_t length : {1024, 4096}) {
    const EvalSample s = sample("cwe", length, 0.5);
    EXPECT_EQ(s.depth, kNoDepth);
    const std::string head = "Below is a numbered list of words. In these words, some appear more often than others. "
                             "Memorize the ones that appear most often.\n";
    const std::string question = "\nQuestion: What are the 10 most common words in the above list? Answer: The top 10 "
                                 "words that appear most often in the list are:";
    // The worked example comes first, then the task: the task's list is after the last head.
    const size_t list_begin = s.prompt.rfind(head) + head.size();
    ASSERT_TRUE(s.prompt.ends_with(question));
    ASSERT_EQ(s.prompt.rfind(head, 0), 0u);  // example first
    const std::map<std::string, int> counts = count_numbered(s.prompt.substr(list_begin, s.prompt.size() - question.size() - list_begin));
    const int common = length < 4096 ? 6 : 30, uncommon = length < 4096 ? 1 : 3;
    ASSERT_EQ(s.expected.size(), 10u);
    for (const std::string& w : s.expected) EXPECT_EQ(counts.at(w), common) << w;
    for (const auto& [w, c] : counts) {
      if (std::find(s.expected.begin(), s.expected.end(), w) == s.expected.end()) {
        EXPECT_EQ(c, uncommon) << w;
      }
    }
    EXPECT_GT(counts.size(), 15u);  // uncommon words too
  }
}

TEST(MoreTasks, FweAnswerIsRanksTwoToFourOfTheCodedText) {
  const EvalSample s = sample("fwe", 2048, 0.5);
  const std::string head = "Read the following coded text and track the frequency of each coded word. Find the three "
                           "most frequently appeared coded words. ";
  const std::string tail = "\nQuestion: Do not provide any explanation. Please ignore the dots '....'. What are the "
                           "three most frequently appeared words in the above coded text? Answer: According to the "
                           "coded text above, the three most frequently appeared words are:";
  ASSERT_EQ(s.prompt.rfind(head, 0), 0u);
  ASSERT_TRUE(s.prompt.ends_with(tail));
  std::map<std::string, int> counts;
  const std::string text = s.prompt.substr(head.size(), s.prompt.size() - tail.size() - head.size());
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find(' ', start);
    if (end == std::string::npos) end = text.size();
    if (end > start) ++counts[text.substr(start, end - start)];
    start = end + 1;
  }
  std::vector<std::pair<int, std::string>> ranked;
  for (const auto& [w, c] : counts) ranked.push_back({c, w});
  std::sort(ranked.rbegin(), ranked.rend());
  ASSERT_GE(ranked.size(), 5u);
  EXPECT_EQ(ranked[0].second, "...");
  // Ranks 2-4 have distinct counts above rank 5's, so the answer is unambiguous.
  EXPECT_GT(ranked[3].first, ranked[4].first);
  std::vector<std::string> top{ranked[1].second, ranked[2].second, ranked[3].second};
  std::vector<std::string> expected = s.expected;
  std::sort(top.begin(), top.end());
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(top, expected);
  for (const std::string& w : s.expected) EXPECT_TRUE(std::regex_match(w, std::regex("[a-z]{6}")));
}

TEST(MoreTasks, InfllmVariantAsksBeforeTheContextToo) {
  const EvalSample after = sample("number_string", 1024, 0.5);
  const EvalSample both = sample("number_string", 1024, 0.5, 1, QuestionPlacement::BeforeAndAfterContext);
  EXPECT_EQ(after.expected, both.expected);  // the same draw
  EXPECT_EQ(both.prompt.rfind("There is an important info hidden inside a lot of irrelevant text. Find it. I will quiz "
                              "you about the important information there.\n\nWhat is the sequence of digits?\n\nThe grass",
                              0),
            0u);
  EXPECT_TRUE(both.prompt.ends_with("\n\nWhat is the sequence of digits?\n\nThe sequence of digits is"));
  EXPECT_LE(std::llabs(int64_t(both.ids.size()) - 1024), 10);

  const EvalSample kv = sample("kv_retrieval", 1024, 0.5, 1, QuestionPlacement::BeforeAndAfterContext);
  EXPECT_EQ(kv.prompt.rfind("Extract the value corresponding to the specified key ", 0), 0u);
  std::smatch m;
  ASSERT_TRUE(std::regex_search(kv.prompt, m, std::regex("Key: \"([0-9a-f-]{36})\"\n")));
  EXPECT_NE(kv.prompt.find("specified key " + m.str(1) + " in the JSON object below.\n\nJSON data:\n{"), std::string::npos);
  EXPECT_EQ(parse_question_placement("both"), QuestionPlacement::BeforeAndAfterContext);
  EXPECT_STREQ(question_placement_name(QuestionPlacement::BeforeAndAfterContext), "before_and_after_context");
}

TEST(MoreTasks, CutOffKvPairsAreCompleted) {
  EXPECT_EQ(complete_kv_pair("\"ab"), "\"ab\": \"\",");
  EXPECT_EQ(complete_kv_pair("\"ab\":"), "\"ab\": \"\",");
  EXPECT_EQ(complete_kv_pair("\"ab\": \"c"), "\"ab\": \"c\",");
  EXPECT_EQ(complete_kv_pair("\"ab\": \"cd\","), "\"ab\": \"cd\",");
}

TEST(MoreTasks, ListAnswersGetRulersTokenBudget) {
  EXPECT_EQ(sample("vt", 1024, 0.5).max_new_tokens, 30);
  EXPECT_EQ(sample("cwe", 1024, 0.5).max_new_tokens, 120);
  EXPECT_EQ(sample("fwe", 1024, 0.5).max_new_tokens, 50);
}

TEST(MoreTasks, AnswersGetTheirOwnTokensPlusSlack) {
  // Digit strings and uuids take more tokens than the 1.5-characters-a-token estimate of
  // tasks.py: a sample allows the answer's own token count (as the model writes it after the
  // prompt) plus 8 when that is more.
  for (const char* task : {"number_string", "kv_retrieval"}) {
    SCOPED_TRACE(task);
    const EvalSample s = sample(task, 1024, 0.5);
    ASSERT_EQ(s.expected.size(), 1u);
    const int64_t answer_tokens = run_tokens(" " + s.expected[0] + ".") - 1;  // without the BOS
    const int64_t estimate = int64_t(double(s.expected[0].size() + 2) / 1.5);
    EXPECT_EQ(s.max_new_tokens, std::max(answer_tokens, estimate) + 8);
    EXPECT_GT(answer_tokens, estimate);  // the case the token count is there for
  }
}

TEST(MoreTasks, ScoringIsTheBenchmarksOwn) {
  EXPECT_EQ(sample("vt", 1024, 0.5).scoring, Scoring::StringMatchAll);
  EXPECT_EQ(sample("cwe", 1024, 0.5).scoring, Scoring::StringMatchAll);
  EXPECT_EQ(sample("fwe", 1024, 0.5).scoring, Scoring::StringMatchAll);
  EXPECT_EQ(sample("number_string", 1024, 0.5).scoring, Scoring::FirstNumber);
  EXPECT_EQ(sample("kv_retrieval", 1024, 0.5).scoring, Scoring::ExactWord);
}

TEST(MoreTasks, ASeedFixesThePrompt) {
  for (const std::string task : {"vt", "cwe", "fwe", "number_string", "kv_retrieval"}) {
    const EvalSample a = sample(task, 1024, 0.5, 42);
    EXPECT_EQ(a.prompt, sample(task, 1024, 0.5, 42).prompt) << task;
    EXPECT_NE(a.expected, sample(task, 1024, 0.5, 43).expected) << task;
  }
}

}  // namespace
}  // namespace ltri::eval
