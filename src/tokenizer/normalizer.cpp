// Normalizers: the text rewrites applied to each stretch of text between added tokens before
// pre-tokenization. Llama-2 style files use Sequence[Prepend "▁", Replace " " -> "▁"], which
// is how SentencePiece's "add dummy prefix" and space escaping are expressed in HF's format.
#include <vector>

#include "tokenizer/components.hpp"
#include "tokenizer/utf8.hpp"

namespace ltri {
namespace {

class SequenceNormalizer final : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> steps) : steps_(std::move(steps)) {}
  void normalize(std::string& text) const override {
    for (const auto& step : steps_) step->normalize(text);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> steps_;
};

// HF prepends only to non-empty text, so an empty stretch stays empty (and yields no tokens).
class PrependNormalizer final : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prefix) : prefix_(std::move(prefix)) {}
  void normalize(std::string& text) const override {
    if (!text.empty()) text.insert(0, prefix_);
  }

 private:
  std::string prefix_;
};

// Every non-overlapping match, left to right, is replaced by `content`.
class ReplaceNormalizer final : public Normalizer {
 public:
  ReplaceNormalizer(Pattern pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void normalize(std::string& text) const override {
    thread_local std::vector<Span> spans;
    pattern_.find_all(text, spans);
    if (spans.empty()) return;
    std::string out;
    out.reserve(text.size() + spans.size() * content_.size());
    size_t pos = 0;
    for (const Span& s : spans) {
      out.append(text, pos, s.begin - pos);
      out += content_;
      pos = s.end;
    }
    out.append(text, pos, std::string::npos);
    text = std::move(out);
  }

 private:
  Pattern pattern_;
  std::string content_;
};

// Removes leading and/or trailing whitespace (Unicode White_Space, as Rust's trim does).
class StripNormalizer final : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  void normalize(std::string& text) const override {
    size_t begin = 0;
    size_t end = text.size();
    if (left_) {
      while (begin < end) {
        size_t n = 0;
        const char32_t c = utf8::decode_at(text, begin, &n);
        if (!utf8::is_white_space(c)) break;
        begin += n;
      }
    }
    if (right_) {
      while (end > begin) {
        size_t start = end - 1;
        while (start > begin && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
        size_t n = 0;
        const char32_t c = utf8::decode_at(text, start, &n);
        if (!utf8::is_white_space(c)) break;
        end = start;
      }
    }
    text = text.substr(begin, end - begin);
  }

 private:
  bool left_;
  bool right_;
};

}  // namespace

std::unique_ptr<Normalizer> make_normalizer(const Json& json, const JsonPath& path) {
  if (json.is_null()) return nullptr;
  const std::string type = component_type(json, path);
  if (type == "Sequence") {
    const JsonPath list_path = path / "normalizers";
    const Json& list = as_array(require_field(json, "normalizers", path), list_path);
    std::vector<std::unique_ptr<Normalizer>> steps;
    for (size_t i = 0; i < list.size(); ++i) {
      if (list[i].is_null()) list_path[i].fail("expected a normalizer, got null");
      steps.push_back(make_normalizer(list[i], list_path[i]));
    }
    return std::make_unique<SequenceNormalizer>(std::move(steps));
  }
  if (type == "Prepend") return std::make_unique<PrependNormalizer>(string_field(json, "prepend", path));
  if (type == "Replace") {
    return std::make_unique<ReplaceNormalizer>(
        make_pattern(require_field(json, "pattern", path), path / "pattern"),
        string_field(json, "content", path));
  }
  if (type == "Strip") {
    return std::make_unique<StripNormalizer>(bool_field(json, "strip_left", path, false),
                                             bool_field(json, "strip_right", path, false));
  }
  path.fail("type '", type, "' is not supported (supported normalizers: Sequence, Prepend, Replace, Strip)");
}

}  // namespace ltri
