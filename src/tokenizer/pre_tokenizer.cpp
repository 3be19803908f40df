// Pre-tokenizers: cut normalized text into the "words" that BPE sees, with HF's split
// behaviours. Llama-3: Sequence[Split(regex, Isolated), ByteLevel(use_regex=false)] -- the regex
// makes the words, ByteLevel rewrites their bytes into the GPT-2 alphabet. Mistral-style
// files use Metaspace (spaces become "▁", words start at each "▁").
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
  bool is_match;
};

// HF's NormalizedString::split(pattern, behavior), streamed: the pattern's matches and the
// gaps between them form contiguous segments covering the text (HF's Pattern::find_matches;
// empty text is one empty non-match), `invert` swaps which are matches, and the behaviour
// decides what is kept and what is glued together. HF computes MergedWithNext with a
// right-to-left fold; the forward form here is equivalent: a match is glued to the segment
// after it when that segment is not a match. Empty results are dropped.
class Splitter {
 public:
  Splitter(SplitBehavior behavior, const PieceSink& sink, const Piece& piece)
      : behavior_(behavior), sink_(sink), piece_(piece) {}

  void run(const Pattern& pattern, bool invert) {
    const std::string_view text = piece_.text;
    if (text.empty()) {
      add({0, 0, invert});
    } else {
      Pattern::Cursor cursor(pattern, text);
      Span m;
      size_t prev = 0;
      while (cursor.next(m)) {
        if (prev != m.begin) add({prev, m.begin, invert});
        add({m.begin, m.end, !invert});
        prev = m.end;
      }
      if (prev != text.size()) add({prev, text.size(), invert});
    }
    if (held_) emit(held_segment_);
  }

 private:
  void add(const Segment& seg) {
    switch (behavior_) {
      case SplitBehavior::Isolated:
        emit(seg);
        break;
      case SplitBehavior::Removed:
        if (!seg.is_match) emit(seg);
        break;
      case SplitBehavior::MergedWithPrevious:
      case SplitBehavior::Contiguous: {
        const bool glue = behavior_ == SplitBehavior::Contiguous ? seg.is_match == previous_match_
                                                                  : seg.is_match && !previous_match_;
        if (glue && held_) {
          held_segment_.end = seg.end;
        } else {
          if (held_) emit(held_segment_);
          held_segment_ = seg;
          held_ = true;
        }
        previous_match_ = seg.is_match;
        break;
      }
      case SplitBehavior::MergedWithNext:
        if (held_) {
          held_ = false;
          if (!seg.is_match) {
            emit({held_segment_.begin, seg.end, false});
            break;
          }
          emit(held_segment_);
        }
        if (seg.is_match) {
          held_segment_ = seg;
          held_ = true;
        } else {
          emit(seg);
        }
        break;
    }
  }

  void emit(const Segment& seg) {
    if (seg.begin == seg.end) return;
    sink_({piece_.text.substr(seg.begin, seg.end - seg.begin), piece_.at_origin && seg.begin == 0});
  }

  SplitBehavior behavior_;
  const PieceSink& sink_;
  const Piece& piece_;
  bool previous_match_ = false;
  bool held_ = false;  // a segment waiting to see whether the next one is glued to it
  Segment held_segment_{0, 0, false};
};

void split_piece(const Piece& piece, const Pattern& pattern, SplitBehavior behavior, bool invert,
                 const PieceSink& sink) {
  Splitter(behavior, sink, piece).run(pattern, invert);
}

class SequencePreTokenizer final : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> steps) : steps_(std::move(steps)) {}
  void pre_tokenize(Piece piece, const PieceSink& sink) const override { run(0, std::move(piece), sink); }

 private:
  // Each pre-token of step i goes straight through steps i+1.. before the next is made.
  void run(size_t step, Piece piece, const PieceSink& sink) const {
    if (step == steps_.size()) {
      sink(std::move(piece));
      return;
    }
    steps_[step]->pre_tokenize(std::move(piece), [&](Piece&& p) { run(step + 1, std::move(p), sink); });
  }
  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

class SplitPreTokenizer final : public PreTokenizer {
 public:
  SplitPreTokenizer(Pattern pattern, SplitBehavior behavior, bool invert)
      : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}
  void pre_tokenize(Piece piece, const PieceSink& sink) const override {
    split_piece(piece, pattern_, behavior_, invert_, sink);
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
  void pre_tokenize(Piece piece, const PieceSink& sink) const override {
    if (piece.text.empty()) return;
    if (add_prefix_space_ && piece.text[0] != ' ') piece.text = ' ' + piece.text;
    const auto to_bytes = [&](Piece&& p) {
      p.text = byte_level::encode(p.text);
      sink(std::move(p));
    };
    if (use_regex_) {
      split_piece(piece, regex_, SplitBehavior::Isolated, false, to_bytes);
    } else {
      to_bytes(std::move(piece));
    }
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
  void pre_tokenize(Piece piece, const PieceSink& sink) const override {
    if (piece.text.empty()) return;
    std::string replaced;
    replaced.reserve(piece.text.size() + replacement_.size());
    for (char c : piece.text) {
      if (c == ' ') {
        replaced += replacement_;
      } else {
        replaced += c;
      }
    }
    const bool starts_with_replacement = replaced.compare(0, replacement_.size(), replacement_) == 0;
    const bool prepend = !starts_with_replacement && (scheme_ == PrependScheme::Always ||
                                                      (scheme_ == PrependScheme::First && piece.at_origin));
    if (prepend) replaced = replacement_ + replaced;
    piece.text = std::move(replaced);
    if (split_) {
      split_piece(piece, split_pattern_, SplitBehavior::MergedWithNext, false, sink);
    } else {
      sink(std::move(piece));
    }
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
