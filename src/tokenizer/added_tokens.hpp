#pragma once
// Added tokens ("<|eot_id|>", "<s>", ...): found in the text before anything else touches it,
// and cut out as single ids; only the text between them goes through normalizer, pre-tokenizer
// and BPE. Matching follows HF's AddedVocabulary: leftmost-longest matches (HF builds an
// Aho-Corasick automaton; we walk a byte trie from each position, which finds the same matches
// in O(text bytes x longest token)), then the single_word / lstrip / rstrip rules.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/json_fields.hpp"

namespace ltri {

class Normalizer;

struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool special = false;
  bool single_word = false;  // only where not inside a word (\w on neither side)
  bool lstrip = false;       // swallows the whitespace before it
  bool rstrip = false;       // swallows the whitespace after it
  bool normalized = false;   // matched in normalized text instead of the raw text
  std::string match_text;    // content, or its normalized form when `normalized`
};

// Parses the "added_tokens" array. Empty contents are ignored (as HF ignores them); a repeated
// content or id is an error naming `path`.
std::vector<AddedToken> parse_added_tokens(const Json& list, const JsonPath& path,
                                           const Normalizer* normalizer);

// One stretch of the searched text: either plain text or an added token (index into the list).
struct TextSegment {
  size_t begin = 0;
  size_t end = 0;
  int32_t token = -1;  // index into the AddedToken list, -1 for plain text
};

class AddedTokenMatcher {
 public:
  AddedTokenMatcher() = default;
  // Indexes the tokens with tokens[i].normalized == normalized_tokens. `tokens` must outlive
  // the matcher.
  AddedTokenMatcher(const std::vector<AddedToken>& tokens, bool normalized_tokens);

  bool empty() const { return nodes_.size() <= 1; }

  // Segments covering `text` in order (HF's AddedVocabulary::find_matches). With
  // skip_special, special tokens are left in the text (HF's encode_special_tokens).
  void split(std::string_view text, bool skip_special, std::vector<TextSegment>& out) const;

 private:
  struct Node {
    std::vector<std::pair<unsigned char, int32_t>> children;  // byte -> node
    int32_t token = -1;                                        // token ending here
  };
  // Index of the longest token starting at text[pos], -1 if none; sets *length.
  int32_t longest_at(std::string_view text, size_t pos, size_t* length) const;

  const std::vector<AddedToken>* tokens_ = nullptr;
  std::vector<Node> nodes_;
  std::array<bool, 256> starts_token_{};  // first bytes of tokens: skip other positions fast
};

}  // namespace ltri
