#include "analysis/needle_prompts.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "core/error.hpp"
#include "core/mapped_file.hpp"

namespace ltri {

namespace {

// Key words (RULER keys are "word-word"); plain English words the tokenizer splits into one or
// two tokens each.
constexpr const char* kKeyWords[] = {
    "amber",  "anchor", "apple",  "arrow",  "autumn", "badger", "basket", "beacon", "birch",
    "bishop", "blossom", "bottle", "bridge", "bronze", "candle", "canyon", "carpet", "castle",
    "cedar",  "cellar", "chalk",  "cherry", "cinder", "clover", "cobalt", "copper", "coral",
    "cotton", "crane",  "crystal", "daisy", "desert", "dragon", "ember",  "falcon", "feather",
    "fern",   "forest", "fossil", "garnet", "ginger", "glacier", "granite", "harbor", "hazel",
    "heron",  "indigo", "island", "ivory",  "jasmine", "juniper", "kettle", "lantern", "lemon",
    "lilac",  "maple",  "marble", "meadow", "mirror", "nectar", "oak",    "olive",  "orchid",
    "otter",  "pebble", "pepper", "pillow", "pine",   "planet", "quartz", "rabbit", "raven",
    "ribbon", "river",  "saddle", "salmon", "silver", "spruce", "summit", "thistle", "thunder",
    "timber", "tulip",  "velvet", "violet", "walnut", "willow", "winter", "zephyr"};

// The first sentence end (". ", "! ", "? ", or a line end) at or after `from`; npos if none.
size_t sentence_end(const std::string& s, size_t from) {
  for (size_t i = from; i < s.size(); ++i) {
    if (s[i] == '\n') return i + 1;
    if ((s[i] == '.' || s[i] == '!' || s[i] == '?') && i + 1 < s.size() && s[i + 1] == ' ') return i + 1;
  }
  return std::string::npos;
}

std::string random_value(NeedleValue kind, std::mt19937_64& rng) {
  char buf[64];
  if (kind == NeedleValue::Number) {
    std::uniform_int_distribution<int> number(1000000, 9999999);
    std::snprintf(buf, sizeof buf, "%d", number(rng));
    return buf;
  }
  // uuid4 layout: 8-4-4-4-12 hex digits, version nibble 4, variant 8..b.
  const char* hex = "0123456789abcdef";
  std::uniform_int_distribution<int> digit(0, 15);
  std::string u;
  for (int i = 0; i < 32; ++i) {
    char c = hex[digit(rng)];
    if (i == 12) c = '4';
    if (i == 16) c = "89ab"[digit(rng) % 4];
    if (i == 8 || i == 12 || i == 16 || i == 20) u += '-';
    u += c;
  }
  return u;
}

void append(std::vector<int32_t>& dst, const std::vector<int32_t>& src) {
  dst.insert(dst.end(), src.begin(), src.end());
}

}  // namespace

Haystack::Haystack(std::string text) : text_(std::move(text)) {
  if (text_.size() < 100) fail("haystack: text of ", text_.size(), " bytes is too short (need >= 100)");
}

Haystack Haystack::load(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(path, ec)) fail(path, ": haystack file or directory not found");
  std::vector<std::string> files;
  if (fs::is_directory(path, ec)) {
    for (const auto& entry : fs::directory_iterator(path, ec)) {
      if (entry.is_regular_file() && entry.path().extension() == ".txt") files.push_back(entry.path().string());
    }
    std::sort(files.begin(), files.end());
    if (files.empty()) fail(path, ": no .txt files in the haystack directory");
  } else {
    files.push_back(path);
  }
  std::string text;
  for (const std::string& f : files) {
    if (!text.empty()) text += '\n';
    text += read_text_file(f);
  }
  if (text.size() < 100) fail(path, ": haystack text of ", text.size(), " bytes is too short (need >= 100)");
  return Haystack(std::move(text));
}

std::string Haystack::sample(std::mt19937_64& rng, int64_t n_chars) const {
  n_chars = std::max<int64_t>(1, n_chars);
  std::string text = text_;
  while (int64_t(text.size()) < n_chars + 2) text += "\n" + text_;
  std::uniform_int_distribution<size_t> pick(0, text.size() - size_t(n_chars) - 1);
  size_t start = pick(rng);
  const size_t line = text.find('\n', start);
  if (line != std::string::npos && line + 1 < start + 2000 && line + 1 + size_t(n_chars) <= text.size()) {
    start = line + 1;
  }
  // End at the last sentence end before the limit when one is near, else at a word break, so
  // the length stays close to n_chars (the prompt builder sizes haystacks by it).
  size_t end = std::min(text.size(), start + size_t(n_chars));
  const size_t floor = end > start + 150 ? end - 150 : start;
  size_t stop = std::string::npos;
  for (size_t at = sentence_end(text, floor); at != std::string::npos && at <= end; at = sentence_end(text, at)) stop = at;
  if (stop != std::string::npos && stop > start) {
    end = stop;
  } else {
    const size_t space = text.rfind(' ', end);
    if (space != std::string::npos && space > start) end = space;
  }
  std::string out = text.substr(start, end - start);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

NeedlePrompt make_needle_prompt(const Tokenizer& tokenizer, const Haystack& haystack,
                                int64_t target_tokens, double depth, NeedleValue kind,
                                std::mt19937_64& rng) {
  if (target_tokens < 64) fail("needle prompt: target length ", target_tokens, " is too short (need >= 64 tokens)");
  depth = std::clamp(depth, 0.0, 1.0);
  const char* noun = kind == NeedleValue::Number ? "number" : "uuid";
  const char* nouns = kind == NeedleValue::Number ? "numbers" : "uuids";
  const std::string header = cat("Some special magic ", nouns,
                                 " are hidden within the following text. Make sure to memorize it. "
                                 "I will quiz you about the ", nouns, " afterwards.\n");
  EncodeOptions with_bos, plain;
  plain.add_special_tokens = false;

  // Two passes: the first measures how many tokens the chosen number of characters makes.
  int64_t hay_chars = int64_t(double(target_tokens) * 3.6);
  const std::mt19937_64 start_state = rng;
  NeedlePrompt p;
  for (int pass = 0; pass < 4; ++pass) {
    rng = start_state;
    const std::string key = cat(kKeyWords[rng() % std::size(kKeyWords)], "-", kKeyWords[rng() % std::size(kKeyWords)]);
    const std::string value = random_value(kind, rng);
    const std::string hay = haystack.sample(rng, std::max<int64_t>(200, hay_chars));
    size_t cut = sentence_end(hay, size_t(depth * double(hay.size())));
    if (cut == std::string::npos || depth <= 0.0) cut = depth <= 0.0 ? 0 : hay.size();
    const bool at_line_start = cut == 0 || hay[cut - 1] == '\n';
    const std::string before = header + hay.substr(0, cut);
    const std::string lead = cat(at_line_start ? "" : " ", "One of the special magic ", nouns, " for ", key, " is:");
    const std::string value_text = " " + value;
    std::string after = ".";
    if (at_line_start) after += "\n";
    after += hay.substr(cut);
    after += cat("\nWhat is the special magic ", noun, " for ", key,
                 " mentioned in the provided text? The special magic ", noun, " for ", key,
                 " mentioned in the provided text is");

    p = NeedlePrompt{};
    p.key = key;
    p.value = value;
    p.prompt = tokenizer.encode(before, with_bos);
    p.needle_begin = int64_t(p.prompt.size());
    append(p.prompt, tokenizer.encode(lead, plain));
    const std::vector<int32_t> value_ids = tokenizer.encode(value_text, plain);
    p.value_begin = int64_t(p.prompt.size());
    p.value_len = int64_t(value_ids.size());
    append(p.prompt, value_ids);
    const std::vector<int32_t> dot = tokenizer.encode(".", plain);
    append(p.prompt, dot);
    p.needle_end = int64_t(p.prompt.size());
    append(p.prompt, tokenizer.encode(after.substr(1), plain));  // the "." is already in
    p.answer = value_ids;
    p.answer_value_begin = 0;
    append(p.answer, dot);

    const int64_t total = int64_t(p.prompt.size() + p.answer.size());
    if (std::abs(total - target_tokens) <= std::max<int64_t>(8, target_tokens / 100)) break;
    const double chars_per_token = double(hay.size()) / double(std::max<size_t>(1, tokenizer.encode(hay, plain).size()));
    hay_chars = std::max<int64_t>(200, hay_chars + int64_t(double(target_tokens - total) * chars_per_token));
  }
  return p;
}

}  // namespace ltri
