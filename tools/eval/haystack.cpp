#include "haystack.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>

#include "core/error.hpp"
#include "core/mapped_file.hpp"

namespace ltri::eval {

namespace fs = std::filesystem;

UnitStream::UnitStream(Maker make, size_t distinct_units)
    : make_(std::move(make)), distinct_units_(distinct_units) {}

const HaystackUnit& UnitStream::at(size_t index) {
  while (units_.size() <= index) units_.push_back(make_(units_.size()));
  return units_[index];
}

UnitStream noise_units(char separator) {
  return UnitStream([separator](size_t) { return HaystackUnit{kNoiseBlock, separator}; },
                    std::numeric_limits<size_t>::max());
}

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_closer(char c) { return c == '"' || c == '\'' || c == ')' || c == ']'; }

// Whether the '.' at `dot` ends a title or an initial rather than a sentence.
bool dot_ends_abbreviation(std::string_view text, size_t dot) {
  size_t begin = dot;
  while (begin > 0 && !is_space(text[begin - 1]) && text[begin - 1] != '"' && text[begin - 1] != '(') --begin;
  const std::string_view word = text.substr(begin, dot - begin);
  static constexpr std::string_view kTitles[] = {"Mr", "Mrs", "Dr", "St", "Messrs", "Mme", "Esq", "Col", "Capt"};
  if (std::find(std::begin(kTitles), std::end(kTitles), word) != std::end(kTitles)) return true;
  return word.size() == 1 && word[0] >= 'A' && word[0] <= 'Z' && word[0] != 'I';
}

}  // namespace

std::vector<HaystackUnit> split_sentences(std::string_view text) {
  std::vector<HaystackUnit> units;
  size_t start = 0;
  // Closes the unit text[start, end) and skips the whitespace after it.
  const auto close_unit = [&](size_t end) {
    size_t next = end;
    bool newline = false;
    while (next < text.size() && is_space(text[next])) {
      newline = newline || text[next] == '\n';
      ++next;
    }
    size_t b = start, e = end;
    while (b < e && is_space(text[b])) ++b;
    while (e > b && is_space(text[e - 1])) --e;
    if (e > b) {
      units.push_back({std::string(text.substr(b, e - b)), newline || next == text.size() ? '\n' : ' '});
    } else if (newline && !units.empty()) {
      units.back().separator = '\n';
    }
    start = next;
    return next;
  };
  size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (c == '\n') {
      i = close_unit(i);
      continue;
    }
    if (c == '.' || c == '!' || c == '?') {
      size_t end = i + 1;
      while (end < text.size() && is_closer(text[end])) ++end;
      if ((end == text.size() || is_space(text[end])) && !(c == '.' && dot_ends_abbreviation(text, i))) {
        i = close_unit(end);
        continue;
      }
    }
    ++i;
  }
  close_unit(text.size());
  if (!units.empty()) units.back().separator = '\n';
  return units;
}

ProseText ProseText::from_text(std::string_view text, const std::string& source) {
  ProseText prose;
  prose.source_ = source;
  prose.sentences_ = split_sentences(text);
  if (prose.sentences_.empty()) fail(source, ": no sentences to build a haystack from (the text is empty)");
  for (size_t i = 0; i < prose.sentences_.size(); ++i) {
    if (i == 0 || prose.sentences_[i - 1].separator == '\n') prose.paragraph_starts_.push_back(i);
  }
  return prose;
}

ProseText ProseText::load(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    std::vector<std::string> files;
    for (const fs::directory_entry& entry : fs::directory_iterator(path, ec)) {
      if (entry.is_regular_file() && entry.path().extension() == ".txt") files.push_back(entry.path().string());
    }
    if (ec) fail(path, ": cannot list the haystack directory: ", ec.message());
    if (files.empty()) fail(path, ": no *.txt files in the haystack directory");
    std::sort(files.begin(), files.end());
    std::string text;
    for (const std::string& file : files) text += read_text_file(file) + "\n";
    return from_text(text, path);
  }
  if (!fs::exists(path, ec)) fail(path, ": haystack file not found");
  return from_text(read_text_file(path), path);
}

UnitStream prose_units(const ProseText& prose, EvalRng& rng) {
  const std::vector<size_t>& starts = prose.paragraph_starts();
  const size_t first = starts[rng.below(starts.size())];
  const std::vector<HaystackUnit>* sentences = &prose.sentences();
  return UnitStream([sentences, first](size_t i) { return (*sentences)[(first + i) % sentences->size()]; },
                    sentences->size());
}

std::string render_haystack(const std::vector<HaystackUnit>& units, const std::vector<PlacedNeedle>& needles,
                            std::vector<size_t>* needle_offsets) {
  std::vector<const PlacedNeedle*> order;
  for (const PlacedNeedle& n : needles) order.push_back(&n);
  std::stable_sort(order.begin(), order.end(),
                   [](const PlacedNeedle* a, const PlacedNeedle* b) { return a->boundary < b->boundary; });
  std::string out;
  char pending = 0;  // separator owed before the next piece (0 at the very start)
  if (needle_offsets != nullptr) needle_offsets->assign(needles.size(), 0);
  const auto put = [&](const std::string& piece, char separator_after) {
    if (pending != 0) out += pending;
    out += piece;
    pending = separator_after;
  };
  size_t next_needle = 0;
  for (size_t k = 0; k <= units.size(); ++k) {
    const char needle_separator = k == 0 ? ' ' : units[k - 1].separator;
    while (next_needle < order.size() && (order[next_needle]->boundary <= k || k == units.size())) {
      const PlacedNeedle* needle = order[next_needle++];
      put(needle->text, needle_separator);
      if (needle_offsets != nullptr) (*needle_offsets)[size_t(needle - needles.data())] = out.size() - needle->text.size();
    }
    if (k < units.size()) put(units[k].text, units[k].separator);
  }
  return out;
}

size_t boundary_at_depth(const std::vector<int64_t>& offsets, double depth) {
  if (offsets.empty()) fail("boundary_at_depth: no boundaries");
  const double target = std::clamp(depth, 0.0, 1.0) * double(offsets.back());
  const auto above = std::lower_bound(offsets.begin(), offsets.end(), target,
                                      [](int64_t offset, double t) { return double(offset) < t; });
  if (above == offsets.begin()) return 0;
  if (above == offsets.end()) return offsets.size() - 1;
  const auto below = above - 1;
  // Ties go to the later boundary, so depth 1 lands after the last unit.
  return size_t((target - double(*below) < double(*above) - target ? below : above) - offsets.begin());
}

}  // namespace ltri::eval
