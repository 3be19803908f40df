#include "prompt_fit.hpp"

#include <algorithm>
#include <cstdlib>
#include <map>

#include "core/error.hpp"
#include "length_list.hpp"

namespace ltri::eval {

namespace {

// Tokens to generate for the instance's answer when -n does not say (task.hpp).
int64_t answer_allowance(const TaskInstance& instance, const PromptFormat& format) {
  if (instance.max_new_tokens > 0) return instance.max_new_tokens;
  const int64_t answer_tokens = format.count_piece(" " + join_values(instance.expected) + ".");
  return default_max_new_tokens(instance.expected, answer_tokens);
}

std::vector<std::string> split_words(const std::string& text) {
  std::vector<std::string> words;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(' ', start);
    if (end == std::string::npos) end = text.size();
    if (end > start) words.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return words;
}

// The haystack of a task at one size: n whole units, then the first `words` words of unit n
// and the first `bytes` bytes of the word after them (cut at a UTF-8 character boundary).
struct Layout {
  size_t units = 0;
  size_t words = 0;
  size_t bytes = 0;
};

// Shortens `bytes` so that text[0, bytes) does not end inside a UTF-8 character.
size_t utf8_floor(const std::string& text, size_t bytes) {
  while (bytes > 0 && bytes < text.size() && (uint8_t(text[bytes]) & 0xC0) == 0x80) --bytes;
  return bytes;
}

struct Rendered {
  std::string prompt;
  std::string haystack;
  std::vector<size_t> needle_offsets;  // byte offsets in `haystack`, in instance.needles order
  int64_t tokens = 0;
};

class PromptFitter {
 public:
  PromptFitter(TaskInstance& instance, const PromptFormat& format) : instance_(instance), format_(format) {}

  // Tokens of unit i as it sits in the haystack (after the previous unit's separator).
  int64_t unit_tokens(size_t i) {
    while (unit_tokens_.size() <= i) {
      const size_t k = unit_tokens_.size();
      const char separator = k == 0 ? ' ' : instance_.haystack.at(k - 1).separator;
      unit_tokens_.push_back(format_.count_piece(separator + instance_.haystack.at(k).text));
    }
    return unit_tokens_[i];
  }

  Rendered render(const Layout& layout) {
    std::vector<HaystackUnit> units;
    std::vector<int64_t> offsets{0};  // tokens before each boundary
    for (size_t i = 0; i < layout.units; ++i) {
      units.push_back(instance_.haystack.at(i));
      offsets.push_back(offsets.back() + unit_tokens(i));
    }
    if (layout.words > 0 || layout.bytes > 0) {
      const HaystackUnit& next = instance_.haystack.at(layout.units);
      const std::vector<std::string> words = split_words(next.text);
      std::string partial;
      for (size_t w = 0; w < layout.words && w < words.size(); ++w) partial += (w == 0 ? "" : " ") + words[w];
      if (layout.bytes > 0 && layout.words < words.size()) {
        const std::string& cut = words[layout.words];
        partial += (layout.words == 0 ? "" : " ") + cut.substr(0, utf8_floor(cut, layout.bytes));
      }
      if (instance_.complete_partial_unit && !partial.empty()) partial = instance_.complete_partial_unit(partial);
      offsets.push_back(offsets.back() + format_.count_piece(" " + partial));
      units.push_back({partial, next.separator});
    }
    std::vector<PlacedNeedle> placed;
    for (const Needle& needle : instance_.needles) {
      placed.push_back({needle.text, boundary_at_depth(offsets, needle.depth)});
    }
    Rendered r;
    r.haystack = render_haystack(units, placed, &r.needle_offsets);
    const std::string& suffix = instance_.trim_haystack_suffix;
    if (!suffix.empty() && r.haystack.size() >= suffix.size() &&
        r.haystack.compare(r.haystack.size() - suffix.size(), suffix.size(), suffix) == 0) {
      r.haystack.resize(r.haystack.size() - suffix.size());
    }
    r.prompt = format_.render(instance_.parts, r.haystack);
    r.tokens = format_.count(r.prompt);
    return r;
  }

  int64_t tokens(const Layout& layout) { return render(layout).tokens; }

  size_t words_in_unit(size_t i) { return split_words(instance_.haystack.at(i).text).size(); }
  size_t bytes_in_word(size_t unit, size_t word) {
    const std::vector<std::string> words = split_words(instance_.haystack.at(unit).text);
    return word < words.size() ? words[word].size() : 0;
  }

 private:
  TaskInstance& instance_;
  const PromptFormat& format_;
  std::vector<int64_t> unit_tokens_;
};

// Tasks sized by a parameter n (cwe, fwe): the n whose prompt is nearest the target, by a
// galloping then binary search on the real token count.
EvalSample fit_sized_prompt(TaskInstance& instance, const PromptFormat& format, int64_t target_tokens) {
  std::map<int64_t, int64_t> cache;
  const auto tokens = [&](int64_t n) {
    const auto it = cache.find(n);
    if (it != cache.end()) return it->second;
    return cache[n] = format.count(format.render(instance.parts, instance.sized_haystack(n)));
  };
  const int64_t slack = target_tokens / 100;
  const int64_t lo_n = instance.sized_min, max_n = instance.sized_max;
  if (tokens(lo_n) > target_tokens + slack) {
    fail("--lengths: ", format_length(target_tokens), " is shorter than the smallest ", instance.task, " prompt (",
         tokens(lo_n), " tokens)");
  }
  int64_t lo = lo_n, hi = lo_n + 1, step = 1;  // invariant: tokens(lo) <= target < tokens(hi)
  while (hi <= max_n && tokens(hi) <= target_tokens) {
    lo = hi;
    step *= 2;
    hi = std::min(lo + step, max_n + 1);
  }
  while (hi - lo > 1) {
    const int64_t mid = lo + (hi - lo) / 2;
    (tokens(mid) <= target_tokens ? lo : hi) = mid;
  }
  int64_t best = lo;
  if (hi <= max_n && std::llabs(tokens(hi) - target_tokens) < std::llabs(tokens(lo) - target_tokens)) best = hi;
  // The count is not quite monotonic in n (each n reshuffles the text, so tokens merge
  // differently): if the search's answer misses by more than a couple of tokens, try the
  // neighbours too.
  for (int64_t d = 1; d <= 16 && std::llabs(tokens(best) - target_tokens) > 2; ++d) {
    for (int64_t n : {lo - d, hi + d}) {
      if (n >= lo_n && n <= max_n && std::llabs(tokens(n) - target_tokens) < std::llabs(tokens(best) - target_tokens)) {
        best = n;
      }
    }
  }
  if (std::llabs(tokens(best) - target_tokens) > slack) {
    fail(instance.task, ": could not size the prompt to ", target_tokens, " tokens (closest: ", tokens(best),
         best == max_n ? ", the word list ran out)" : ")");
  }
  EvalSample s;
  s.task = instance.task;
  s.requested_tokens = target_tokens;
  s.depth = kNoDepth;
  const std::string haystack = instance.sized_haystack(best);
  s.prompt = format.render(instance.parts, haystack);
  s.ids = format.encode(s.prompt);
  s.expected = instance.expected;
  s.scoring = instance.scoring;
  s.max_new_tokens = answer_allowance(instance, format);
  s.haystack_tokens = format.count_piece(haystack);
  s.haystack_units = size_t(best);
  return s;
}

}  // namespace

EvalSample fit_prompt(TaskInstance& instance, const PromptFormat& format, int64_t target_tokens, double depth) {
  if (instance.sized_haystack) return fit_sized_prompt(instance, format, target_tokens);
  PromptFitter fitter(instance, format);
  const int64_t bare = fitter.tokens({0, 0, 0});
  const int64_t slack = target_tokens / 100;  // the ±1% the length may miss by
  if (bare > target_tokens + slack) {
    fail("--lengths: ", format_length(target_tokens), " is shorter than the ", instance.task,
         " prompt without any haystack (", bare, " tokens)");
  }

  // The largest number of whole units whose prompt fits: first a guess from the units' own
  // token counts, then a galloping search on the real count (merges across unit edges and the
  // needles' positions make the sum of unit counts a little off).
  size_t guess = 0;
  for (int64_t sum = bare; sum + fitter.unit_tokens(guess) <= target_tokens; ++guess) sum += fitter.unit_tokens(guess);
  const auto fits = [&](size_t n) { return fitter.tokens({n, 0, 0}) <= target_tokens; };
  size_t lo = 0, hi = 0;  // invariant after the search: fits(lo) (or lo == 0), !fits(hi)
  if (fits(guess)) {
    lo = guess;
    size_t step = 1;
    hi = lo + step;
    while (fits(hi)) {
      lo = hi;
      step *= 2;
      hi = lo + step;
    }
  } else {
    hi = guess;
    size_t step = 1;
    lo = hi >= step ? hi - step : 0;
    while (lo > 0 && !fits(lo)) {
      hi = lo;
      step *= 2;
      lo = hi >= step ? hi - step : 0;
    }
  }
  while (hi - lo > 1) {
    const size_t mid = lo + (hi - lo) / 2;
    (fits(mid) ? lo : hi) = mid;
  }
  const size_t n_units = lo;

  // Then words of the next unit: the largest count that fits.
  size_t w_lo = 0, w_hi = fitter.words_in_unit(n_units);  // w_hi words = the whole unit: too long
  int64_t lo_tokens = fitter.tokens({n_units, 0, 0});
  int64_t hi_tokens = fitter.tokens({n_units + 1, 0, 0});
  while (w_hi - w_lo > 1) {
    const size_t mid = w_lo + (w_hi - w_lo) / 2;
    const int64_t t = fitter.tokens({n_units, mid, 0});
    (t <= target_tokens ? w_lo : w_hi) = mid;
    (t <= target_tokens ? lo_tokens : hi_tokens) = t;
  }
  Layout best{n_units, w_lo, 0};
  Layout above = w_hi < fitter.words_in_unit(n_units) ? Layout{n_units, w_hi, 0} : Layout{n_units + 1, 0, 0};
  // A word can be many tokens (a uuid is ~25): if a word step misses by more than a couple of
  // tokens, cut into the next word by bytes.
  if (std::llabs(lo_tokens - target_tokens) > 2 && std::llabs(hi_tokens - target_tokens) > 2) {
    size_t b_lo = 0, b_hi = fitter.bytes_in_word(n_units, w_lo);
    while (b_hi - b_lo > 1) {
      const size_t mid = b_lo + (b_hi - b_lo) / 2;
      const int64_t t = fitter.tokens({n_units, w_lo, mid});
      (t <= target_tokens ? b_lo : b_hi) = mid;
      (t <= target_tokens ? lo_tokens : hi_tokens) = t;
    }
    best = Layout{n_units, w_lo, b_lo};
    if (b_hi < fitter.bytes_in_word(n_units, w_lo)) above = Layout{n_units, w_lo, b_hi};
  }
  if (std::llabs(hi_tokens - target_tokens) < std::llabs(lo_tokens - target_tokens)) best = above;

  const Rendered r = fitter.render(best);
  if (std::llabs(r.tokens - target_tokens) > slack) {
    fail(instance.task, ": could not size the prompt to ", target_tokens, " tokens (closest: ", r.tokens, ")");
  }
  EvalSample s;
  s.task = instance.task;
  s.requested_tokens = target_tokens;
  s.depth = depth;
  s.prompt = r.prompt;
  s.ids = format.encode(r.prompt);
  s.expected = instance.expected;
  s.scoring = instance.scoring;
  s.max_new_tokens = answer_allowance(instance, format);
  s.haystack_tokens = format.count_piece(r.haystack);
  s.haystack_units = best.units;
  const size_t used_units = best.units + (best.words > 0 || best.bytes > 0 ? 1 : 0);
  s.haystack_repeated = used_units > instance.haystack.distinct_units();
  // Depths count filler tokens only: a needle at depth 1 has all the filler before it.
  std::vector<int64_t> needle_tokens;
  int64_t all_needle_tokens = 0;
  for (const Needle& needle : instance.needles) {
    needle_tokens.push_back(format.count_piece(" " + needle.text));
    all_needle_tokens += needle_tokens.back();
  }
  const int64_t filler_tokens = s.haystack_tokens - all_needle_tokens;
  for (size_t i = 0; i < instance.needles.size(); ++i) {
    if (!instance.needles[i].target) continue;
    int64_t before = format.count_piece(std::string_view(r.haystack).substr(0, r.needle_offsets[i]));
    for (size_t j = 0; j < instance.needles.size(); ++j) {
      if (r.needle_offsets[j] < r.needle_offsets[i]) before -= needle_tokens[j];
    }
    s.needle_depths.push_back(filler_tokens > 0 ? std::clamp(double(before) / double(filler_tokens), 0.0, 1.0) : 0.0);
  }
  return s;
}

}  // namespace ltri::eval
