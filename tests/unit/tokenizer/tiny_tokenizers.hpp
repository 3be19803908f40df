#pragma once
// Hand-built tokenizer.json documents for unit tests: small enough to reason about by hand.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tokenizer/tokenizer.hpp"
#include "tokenizer/utf8.hpp"

namespace ltri::test {

using nlohmann::json;

// A BPE model whose vocab is `tokens` (ids in order) and whose merges are "left right" lines
// in rank order.
inline json bpe_model(const std::vector<std::string>& tokens, const std::vector<std::string>& merges) {
  json vocab = json::object();
  for (size_t i = 0; i < tokens.size(); ++i) vocab[tokens[i]] = static_cast<int>(i);
  return {{"type", "BPE"},           {"dropout", nullptr},   {"unk_token", nullptr},
          {"continuing_subword_prefix", nullptr}, {"end_of_word_suffix", nullptr},
          {"fuse_unk", false},       {"byte_fallback", false}, {"ignore_merges", false},
          {"vocab", vocab},          {"merges", merges}};
}

inline json tokenizer_doc(const json& model) {
  return {{"version", "1.0"},       {"truncation", nullptr},    {"padding", nullptr},
          {"added_tokens", json::array()}, {"normalizer", nullptr}, {"pre_tokenizer", nullptr},
          {"post_processor", nullptr}, {"decoder", nullptr},    {"model", model}};
}

inline json added_token(int id, const std::string& content, bool special, bool normalized = false) {
  return {{"id", id},         {"content", content}, {"single_word", false}, {"lstrip", false},
          {"rstrip", false},  {"normalized", normalized}, {"special", special}};
}

inline Tokenizer build(const json& doc) { return Tokenizer::from_json(doc.dump(), "tiny/tokenizer.json"); }

// The distinct characters of the strings, in first-seen order (a vocab with one id per char).
inline std::vector<std::string> chars_of(const std::vector<std::string>& texts) {
  std::vector<std::string> chars;
  for (const std::string& t : texts) {
    for (size_t pos = 0; pos < t.size();) {
      size_t n = utf8::valid_sequence_length(t, pos);
      const std::string c = t.substr(pos, n);
      bool seen = false;
      for (const std::string& have : chars) seen = seen || have == c;
      if (!seen) chars.push_back(c);
      pos += n;
    }
  }
  return chars;
}

}  // namespace ltri::test
