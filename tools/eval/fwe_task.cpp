#include "fwe_task.hpp"

#include <algorithm>
#include <cmath>
#include <memory>
#include <set>

#include "core/error.hpp"

namespace ltri::eval {

namespace {

constexpr double kZeta2 = 1.6449340668482264;  // zeta(2) = pi^2 / 6

}  // namespace

int64_t fwe_count(int64_t n, int64_t rank) {
  return int64_t(std::floor(double(n) / (double(rank) * double(rank)) / kZeta2));
}

TaskInstance make_fwe(EvalRng& rng, int64_t length) {
  const size_t vocab_size = size_t(std::max<int64_t>(length / 50, 5));
  std::set<std::string> distinct;
  while (distinct.size() < vocab_size) {
    std::string word;
    for (int i = 0; i < 6; ++i) word += char('a' + rng.below(26));
    distinct.insert(std::move(word));
  }
  auto vocab = std::make_shared<std::vector<std::string>>(distinct.begin(), distinct.end());
  for (size_t i = vocab->size(); i > 1; --i) std::swap((*vocab)[i - 1], (*vocab)[rng.below(i)]);
  (*vocab)[0] = "...";  // the top rank is noise, as in RULER

  const uint64_t shuffle_seed = rng.next();
  TaskInstance t;
  t.task = "fwe";
  t.expected = {(*vocab)[1], (*vocab)[2], (*vocab)[3]};
  t.scoring = Scoring::StringMatchAll;
  t.has_depth = false;
  t.max_new_tokens = 50;  // RULER's tokens_to_generate for fwe
  t.sized_min = 40;  // enough words that ranks 2-4 appear and differ in count
  t.sized_max = int64_t(1) << 40;
  // n is the number of words: RULER's counts for n, then the noise "..." until there are n, so
  // each step of n adds one word and the prompt can be sized to within a token or two.
  t.sized_haystack = [vocab, shuffle_seed](int64_t n) {
    std::vector<const std::string*> words;
    for (size_t k = 0; k < vocab->size(); ++k) {
      const int64_t count = fwe_count(n, int64_t(k) + 1);
      for (int64_t c = 0; c < count; ++c) words.push_back(&(*vocab)[k]);
    }
    while (int64_t(words.size()) < n) words.push_back(&(*vocab)[0]);
    EvalRng shuffle(shuffle_seed);
    for (size_t i = words.size(); i > 1; --i) std::swap(words[i - 1], words[shuffle.below(i)]);
    std::string text;
    for (size_t i = 0; i < words.size(); ++i) text += (i == 0 ? "" : " ") + *words[i];
    return text;
  };
  t.parts.before =
      "Read the following coded text and track the frequency of each coded word. Find the three most frequently "
      "appeared coded words. ";
  t.parts.after = "\n";
  t.parts.question =
      "Question: Do not provide any explanation. Please ignore the dots '....'. What are the three most frequently "
      "appeared words in the above coded text?";
  t.parts.answer_prefix = "Answer: According to the coded text above, the three most frequently appeared words are:";
  return t;
}

}  // namespace ltri::eval
