// Decoders: tokens -> text, each step rewriting the list of token strings as HF's
// decode_chain does. Llama-3: ByteLevel (alphabet -> bytes -> lossy UTF-8). Llama-2:
// Sequence[Replace "▁"->" ", ByteFallback, Fuse, Strip(" ", start 1)] -- so the single leading
// space of the whole output is dropped, and <0xXX> runs become bytes.
#include <vector>

#include "tokenizer/byte_level.hpp"
#include "tokenizer/components.hpp"
#include "tokenizer/utf8.hpp"

namespace ltri {
namespace {

class SequenceDecoder final : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> steps) : steps_(std::move(steps)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (const auto& step : steps_) step->decode_chain(tokens);
  }

 private:
  std::vector<std::unique_ptr<Decoder>> steps_;
};

// All tokens to bytes (a token with a character outside the alphabet keeps its own UTF-8
// bytes, e.g. "<|eot_id|>"), then one lossy UTF-8 conversion of the whole byte string.
class ByteLevelDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string bytes;
    for (const std::string& t : tokens) {
      if (!byte_level::decode(t, bytes)) bytes += t;
    }
    tokens.assign(1, utf8::to_valid_utf8(bytes));
  }
};

// "<0xXX>" tokens become bytes; each run of them is one string if valid UTF-8, else one
// U+FFFD per byte token.
class ByteFallbackDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    out.reserve(tokens.size());
    std::string run;  // bytes of the current run of byte tokens
    const auto flush = [&]() {
      if (run.empty()) return;
      if (utf8::is_valid(run)) {
        out.push_back(run);
      } else {
        for (size_t i = 0; i < run.size(); ++i) out.emplace_back(utf8::kReplacement);
      }
      run.clear();
    };
    for (std::string& t : tokens) {
      int byte = -1;
      if (parse_byte_token(t, &byte)) {
        run.push_back(static_cast<char>(byte));
      } else {
        flush();
        out.push_back(std::move(t));
      }
    }
    flush();
    tokens = std::move(out);
  }

 private:
  // HF: 6 bytes, "<0x" ... ">", and u8::from_str_radix of the two middle characters (which
  // also accepts a '+' sign, "<0x+A>").
  static bool parse_byte_token(const std::string& t, int* byte) {
    if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return false;
    const auto hex = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    if (t[3] == '+') {
      const int lo = hex(t[4]);
      if (lo < 0) return false;
      *byte = lo;
      return true;
    }
    const int hi = hex(t[3]);
    const int lo = hex(t[4]);
    if (hi < 0 || lo < 0) return false;
    *byte = hi * 16 + lo;
    return true;
  }
};

class FuseDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string joined;
    for (const std::string& t : tokens) joined += t;
    tokens.assign(1, std::move(joined));
  }
};

// Removes up to `start` leading and `stop` trailing `content` characters of every token.
class StripDecoder final : public Decoder {
 public:
  StripDecoder(std::string content, size_t start, size_t stop)
      : content_(std::move(content)), start_(start), stop_(stop) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::string& t : tokens) {
      size_t begin = 0;
      for (size_t i = 0; i < start_ && begin < t.size() && t.compare(begin, content_.size(), content_) == 0; ++i) {
        begin += content_.size();
      }
      size_t end = t.size();
      for (size_t i = 0; i < stop_ && end >= begin + content_.size() &&
                         t.compare(end - content_.size(), content_.size(), content_) == 0;
           ++i) {
        end -= content_.size();
      }
      t = t.substr(begin, end - begin);
    }
  }

 private:
  std::string content_;  // one character
  size_t start_;
  size_t stop_;
};

class ReplaceDecoder final : public Decoder {
 public:
  ReplaceDecoder(Pattern pattern, std::string content) : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    thread_local std::vector<Span> spans;
    for (std::string& t : tokens) {
      pattern_.find_all(t, spans);
      if (spans.empty()) continue;
      std::string out;
      size_t pos = 0;
      for (const Span& s : spans) {
        out.append(t, pos, s.begin - pos);
        out += content_;
        pos = s.end;
      }
      out.append(t, pos, std::string::npos);
      t = std::move(out);
    }
  }

 private:
  Pattern pattern_;
  std::string content_;
};

// Metaspace: the replacement character becomes a space, except in the first token when a
// prefix was prepended while encoding (there it is dropped).
class MetaspaceDecoder final : public Decoder {
 public:
  MetaspaceDecoder(std::string replacement, bool drop_in_first)
      : replacement_(std::move(replacement)), drop_in_first_(drop_in_first) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string& t = tokens[i];
      std::string out;
      size_t pos = 0;
      size_t found;
      while ((found = t.find(replacement_, pos)) != std::string::npos) {
        out.append(t, pos, found - pos);
        if (!(i == 0 && drop_in_first_)) out += ' ';
        pos = found + replacement_.size();
      }
      out.append(t, pos, std::string::npos);
      t = std::move(out);
    }
  }

 private:
  std::string replacement_;
  bool drop_in_first_;
};

std::string one_char(const Json& json, const char* key, const JsonPath& path) {
  std::string s = string_field(json, key, path);
  if (s.empty() || utf8::count_chars(s) != 1) (path / key).fail("expected one character, got '", s, "'");
  return s;
}

size_t count_field(const Json& json, const char* key, const JsonPath& path) {
  const Json* v = optional_field(json, key, path);
  if (!v) return 0;
  const int64_t n = as_int(*v, path / key);
  if (n < 0 || n > 1000000) (path / key).fail("expected a small count, got ", n);
  return static_cast<size_t>(n);
}

}  // namespace

std::unique_ptr<Decoder> make_decoder(const Json& json, const JsonPath& path) {
  if (json.is_null()) return nullptr;
  const std::string type = component_type(json, path);
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Strip") {
    return std::make_unique<StripDecoder>(one_char(json, "content", path), count_field(json, "start", path),
                                          count_field(json, "stop", path));
  }
  if (type == "Replace") {
    return std::make_unique<ReplaceDecoder>(make_pattern(require_field(json, "pattern", path), path / "pattern"),
                                            string_field(json, "content", path));
  }
  if (type == "Metaspace") {
    std::string scheme = "always";
    if (const Json* s = optional_field(json, "prepend_scheme", path)) scheme = as_string(*s, path / "prepend_scheme");
    if (scheme != "always" && scheme != "first" && scheme != "never") {
      (path / "prepend_scheme").fail("expected first, never or always, got '", scheme, "'");
    }
    const bool add_prefix_space = bool_field(json, "add_prefix_space", path, true);
    return std::make_unique<MetaspaceDecoder>(one_char(json, "replacement", path),
                                              scheme != "never" && add_prefix_space);
  }
  if (type == "Sequence") {
    const JsonPath list_path = path / "decoders";
    const Json& list = as_array(require_field(json, "decoders", path), list_path);
    std::vector<std::unique_ptr<Decoder>> steps;
    for (size_t i = 0; i < list.size(); ++i) {
      if (list[i].is_null()) list_path[i].fail("expected a decoder, got null");
      steps.push_back(make_decoder(list[i], list_path[i]));
    }
    return std::make_unique<SequenceDecoder>(std::move(steps));
  }
  path.fail("type '", type,
            "' is not supported (supported decoders: ByteLevel, ByteFallback, Fuse, Strip, Replace, "
            "Metaspace, Sequence)");
}

}  // namespace ltri
