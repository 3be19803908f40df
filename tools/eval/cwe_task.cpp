#include "cwe_task.hpp"

#include <algorithm>
#include <memory>

#include "core/error.hpp"

namespace ltri::eval {

namespace {

constexpr int64_t kCommonWords = 10;

struct Frequencies {
  int64_t common;
  int64_t uncommon;
};

// "1. w1 2. w2 ..." of `words[0, n)`: the first 10 repeated `f.common` times, the rest
// `f.uncommon` times, shuffled by a stream seeded with `shuffle_seed` (the same n gives the
// same list).
std::string numbered_list(const std::vector<std::string>& words, int64_t n, Frequencies f, uint64_t shuffle_seed) {
  std::vector<const std::string*> items;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t repeats = i < kCommonWords ? f.common : f.uncommon;
    for (int64_t r = 0; r < repeats; ++r) items.push_back(&words[size_t(i)]);
  }
  EvalRng rng(shuffle_seed);
  for (size_t i = items.size(); i > 1; --i) std::swap(items[i - 1], items[rng.below(i)]);  // Fisher-Yates
  std::string text;
  for (size_t i = 0; i < items.size(); ++i) text += cat(i == 0 ? "" : " ", i + 1, ". ", *items[i]);
  return text;
}

const char* kInstructions =
    "Below is a numbered list of words. In these words, some appear more often than others. "
    "Memorize the ones that appear most often.\n";
const char* kQuestion = "Question: What are the 10 most common words in the above list?";
const char* kAnswerPrefix = "Answer: The top 10 words that appear most often in the list are:";

}  // namespace

TaskInstance make_cwe(const WordList& words, EvalRng& rng, int64_t length) {
  // Every usable word, in a random order for this sample: the task's words are its first n.
  auto pool = std::make_shared<std::vector<std::string>>(words.train());
  pool->insert(pool->end(), words.heldout().begin(), words.heldout().end());
  std::sort(pool->begin(), pool->end());
  for (size_t i = pool->size(); i > 1; --i) std::swap((*pool)[i - 1], (*pool)[rng.below(i)]);

  const bool short_context = length < 4096;
  const Frequencies task_f = short_context ? Frequencies{6, 1} : Frequencies{30, 3};
  const Frequencies example_f = short_context ? Frequencies{3, 1} : Frequencies{10, 3};
  const int64_t example_words = short_context ? 20 : 40;
  if (int64_t(pool->size()) < example_words + 2 * kCommonWords) {
    fail("cwe: the word list has too few words (", pool->size(), ")");
  }
  // The example takes its words from the end of the pool, the task from the start.
  std::vector<std::string> example(pool->end() - example_words, pool->end());
  pool->resize(pool->size() - size_t(example_words));
  std::string example_answer;
  for (int64_t i = 0; i < kCommonWords; ++i) example_answer += cat(i == 0 ? "" : " ", i + 1, ". ", example[size_t(i)]);
  const std::string example_text = cat(kInstructions, numbered_list(example, example_words, example_f, rng.next()),
                                       "\n", kQuestion, " ", kAnswerPrefix, " ", example_answer, "\n");

  const uint64_t shuffle_seed = rng.next();
  TaskInstance t;
  t.task = "cwe";
  t.expected = std::vector<std::string>(pool->begin(), pool->begin() + kCommonWords);
  t.scoring = Scoring::StringMatchAll;
  t.has_depth = false;
  t.max_new_tokens = 120;  // RULER's tokens_to_generate for cwe
  t.sized_min = kCommonWords;
  t.sized_max = int64_t(pool->size());
  t.sized_haystack = [pool, task_f, shuffle_seed](int64_t n) { return numbered_list(*pool, n, task_f, shuffle_seed); };
  t.parts.before = example_text + kInstructions;
  t.parts.after = "\n";
  t.parts.question = kQuestion;
  t.parts.answer_prefix = kAnswerPrefix;
  t.parts.before_with_question = example_text + kInstructions + kQuestion + "\n";
  return t;
}

}  // namespace ltri::eval
