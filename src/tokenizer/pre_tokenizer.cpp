// Pre-tokenizers: cut normalized text into the "words" that BPE sees, with HF's split
// behaviours. Llama-3: Sequence[Split(regex, Isolated), ByteLevel(use_regex=false)] -- the regex
// makes the words, ByteLevel rewrites their bytes into the GPT-2 alphabet. Mistral-style
// files use Metaspace (spaces become "▁", words start at each "▁").
#include <algorithm>
#include <vector>

#include "tokenizer/byte_level.hpp"
#include "tokenizer/components.hpp"
#include "tokenizer/utf8.hpp"

namespace ltri {
namespace {

enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

struct Segment {
  size_t begin;
  size_t end;
  bool flag;  // is a match, then (after the behaviour) "remove me"
};

// HF's Pattern::find_matches: contiguous segments covering the whole text, each flagged as
// a match or not. Empty text gives one empty non-match.
void find_segments(const Pattern& pattern, std::string_view text, bool invert,
                   std::vector<Segment>& out) {
  out.clear();
  if (text.empty()) {
    out.push_back({0, 0, invert});
    return;
  }
  thread_local std::vector<Span> spans;
  pattern.find_all(text, spans);
  size_t prev = 0;
  for (const Span& s : spans) {
    if (prev != s.begin) out.push_back({prev, s.begin, invert});
    out.push_back({s.begin, s.end, !invert});
    prev = s.end;
  }
  if (prev != text.size()) out.push_back({prev, text.size(), invert});
}

// NormalizedString::split: turns the flagged segments into kept ranges per behaviour.
void apply_behavior(SplitBehavior behavior, std::vector<Segment>& segs) {
  std::vector<Segment> out;
  out.reserve(segs.size());
  switch (behavior) {
    case SplitBehavior::Isolated:
      for (Segment s : segs) out.push_back({s.begin, s.end, false});
      break;
    case SplitBehavior::Removed:
      out = segs;
      break;
    case SplitBehavior::Contiguous: {
      bool previous_match = false;
      for (const Segment& s : segs) {
        if (s.flag == previous_match && !out.empty()) {
          out.back().end = s.end;
        } else {
          out.push_back({s.begin, s.end, false});
        }
        previous_match = s.flag;
      }
      break;
    }
    case SplitBehavior::MergedWithPrevious: {
      bool previous_match = false;
      for (const Segment& s : segs) {
        if (s.flag && !previous_match && !out.empty()) {
          out.back().end = s.end;
        } else {
          out.push_back({s.begin, s.end, false});
        }
        previous_match = s.flag;
      }
      break;
    }
    case SplitBehavior::MergedWithNext: {
      bool previous_match = false;
      for (auto it = segs.rbegin(); it != segs.rend(); ++it) {
        if (it->flag && !previous_match && !out.empty()) {
          out.back().begin = it->begin;
        } else {
          out.push_back({it->begin, it->end, false});
        }
        previous_match = it->flag;
      }
      std::reverse(out.begin(), out.end());
      break;
    }
  }
  segs = std::move(out);
}

// Splits every piece; pieces left empty are dropped (PreTokenizedString::split does that).
void split_pieces(std::vector<Piece>& pieces, const Pattern& pattern, SplitBehavior behavior,
                  bool invert) {
  std::vector<Piece> out;
  out.reserve(pieces.size() * 2);
  std::vector<Segment> segs;
  for (Piece& piece : pieces) {
    find_segments(pattern, piece.text, invert, segs);
    apply_behavior(behavior, segs);
    for (const Segment& s : segs) {
      if (s.flag || s.begin == s.end) continue;
      out.push_back({piece.text.substr(s.begin, s.end - s.begin), piece.at_origin && s.begin == 0});
    }
  }
  pieces = std::move(out);
}

class SequencePreTokenizer final : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> steps) : steps_(std::move(steps)) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    for (const auto& step : steps_) step->pre_tokenize(pieces);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

class SplitPreTokenizer final : public PreTokenizer {
 public:
  SplitPreTokenizer(Pattern pattern, SplitBehavior behavior, bool invert)
      : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    split_pieces(pieces, pattern_, behavior_, invert_);
  }

 private:
  Pattern pattern_;
  SplitBehavior behavior_;
  bool invert_;
};

// GPT-2's own word regex, used when ByteLevel has use_regex=true.
constexpr const char* kGpt2Regex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

class ByteLevelPreTokenizer final : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex)
      : add_prefix_space_(add_prefix_space), use_regex_(use_regex) {
    if (use_regex_) regex_ = Pattern::regex(kGpt2Regex, "tokenizer: GPT-2 regex");
  }
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    if (add_prefix_space_) {
      for (Piece& p : pieces) {
        if (!p.text.empty() && p.text[0] != ' ') p.text = ' ' + p.text;
      }
    }
    if (use_regex_) split_pieces(pieces, regex_, SplitBehavior::Isolated, false);
    for (Piece& p : pieces) p.text = byte_level::encode(p.text);
  }

 private:
  bool add_prefix_space_;
  bool use_regex_;
  Pattern regex_;
};

enum class PrependScheme { First, Never, Always };

class MetaspacePreTokenizer final : public PreTokenizer {
 public:
  MetaspacePreTokenizer(std::string replacement, PrependScheme scheme, bool split)
      : replacement_(std::move(replacement)),
        scheme_(scheme),
        split_(split),
        split_pattern_(Pattern::literal(replacement_)) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    for (Piece& p : pieces) {
      std::string replaced;
      replaced.reserve(p.text.size() + replacement_.size());
      for (char c : p.text) {
        if (c == ' ') {
          replaced += replacement_;
        } else {
          replaced += c;
        }
      }
      const bool starts_with_replacement = replaced.compare(0, replacement_.size(), replacement_) == 0;
      const bool prepend = !replaced.empty() && !starts_with_replacement &&
                           (scheme_ == PrependScheme::Always ||
                            (scheme_ == PrependScheme::First && p.at_origin));
      if (prepend) replaced.insert(0, replacement_);
      p.text = std::move(replaced);
    }
    if (split_) split_pieces(pieces, split_pattern_, SplitBehavior::MergedWithNext, false);
  }

 private:
  std::string replacement_;
  PrependScheme scheme_;
  bool split_;
  Pattern split_pattern_;
};

SplitBehavior parse_behavior(const Json& obj, const JsonPath& path) {
  const std::string name = string_field(obj, "behavior", path);
  if (name == "Removed") return SplitBehavior::Removed;
  if (name == "Isolated") return SplitBehavior::Isolated;
  if (name == "MergedWithPrevious") return SplitBehavior::MergedWithPrevious;
  if (name == "MergedWithNext") return SplitBehavior::MergedWithNext;
  if (name == "Contiguous") return SplitBehavior::Contiguous;
  (path / "behavior").fail("unknown split behavior '", name, "'");
}

std::string single_char(const Json& obj, std::string_view key, const JsonPath& path) {
  std::string s = string_field(obj, key, path);
  if (s.empty() || utf8::count_chars(s) != 1) (path / key).fail("expected one character, got '", s, "'");
  return s;
}

}  // namespace

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const Json& json, const JsonPath& path) {
  if (json.is_null()) return nullptr;
  const std::string type = component_type(json, path);
  if (type == "Sequence") {
    const JsonPath list_path = path / "pretokenizers";
    const Json& list = as_array(require_field(json, "pretokenizers", path), list_path);
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    for (size_t i = 0; i < list.size(); ++i) {
      if (list[i].is_null()) list_path[i].fail("expected a pre-tokenizer, got null");
      steps.push_back(make_pre_tokenizer(list[i], list_path[i]));
    }
    return std::make_unique<SequencePreTokenizer>(std::move(steps));
  }
  if (type == "Split") {
    return std::make_unique<SplitPreTokenizer>(
        make_pattern(require_field(json, "pattern", path), path / "pattern"),
        parse_behavior(json, path), bool_field(json, "invert", path, false));
  }
  if (type == "ByteLevel") {
    return std::make_unique<ByteLevelPreTokenizer>(bool_field(json, "add_prefix_space", path, true),
                                                   bool_field(json, "use_regex", path, true));
  }
  if (type == "Metaspace") {
    PrependScheme scheme = PrependScheme::Always;
    if (const Json* s = optional_field(json, "prepend_scheme", path)) {
      const std::string name = as_string(*s, path / "prepend_scheme");
      if (name == "first") {
        scheme = PrependScheme::First;
      } else if (name == "never") {
        scheme = PrependScheme::Never;
      } else if (name == "always") {
        scheme = PrependScheme::Always;
      } else {
        (path / "prepend_scheme").fail("expected first, never or always, got '", name, "'");
      }
    }
    if (!bool_field(json, "add_prefix_space", path, true) && scheme != PrependScheme::Never) {
      // HF refuses this too (prepend_scheme defaults to "always").
      path.fail("add_prefix_space false contradicts prepend_scheme (give prepend_scheme \"never\")");
    }
    return std::make_unique<MetaspacePreTokenizer>(single_char(json, "replacement", path), scheme,
                                                   bool_field(json, "split", path, true));
  }
  path.fail("type '", type,
            "' is not supported (supported pre-tokenizers: Sequence, Split, ByteLevel, Metaspace)");
}

}  // namespace ltri
