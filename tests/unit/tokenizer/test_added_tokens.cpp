// Added tokens are cut out of the raw text before normalization and BPE. The segmentations
// expected here are the ones HF's own unit tests give (tokenizers/src/tokenizer/
// added_vocabulary.rs: test_single_word_is_unicode_correct, test_lstrip_unicode_space,
// test_encode_special_tokens), observed through ids: the tiny model has one id per character
// and no merges, so plain text maps to one id per character.
#include <gtest/gtest.h>

#include <algorithm>

#include "tiny_tokenizers.hpp"

namespace ltri {
namespace {

using test::json;

struct Expected {
  std::string text;
  int token = -1;  // added-token id, or -1 for plain text
};

class CharTokenizer {
 public:
  // `added`: the added_tokens entries (ids must be >= 1000).
  CharTokenizer(const std::vector<std::string>& texts, const json& added)
      : chars_(test::chars_of(texts)), tokenizer_(make(chars_, added)) {}

  std::vector<int32_t> ids_of(const std::vector<Expected>& segments) const {
    std::vector<int32_t> ids;
    for (const Expected& s : segments) {
      if (s.token >= 0) {
        ids.push_back(s.token);
        continue;
      }
      for (size_t pos = 0; pos < s.text.size();) {
        const size_t n = utf8::valid_sequence_length(s.text, pos);
        const std::string c = s.text.substr(pos, n);
        ids.push_back(static_cast<int32_t>(std::find(chars_.begin(), chars_.end(), c) - chars_.begin()));
        pos += n;
      }
    }
    return ids;
  }
  const Tokenizer& tokenizer() const { return tokenizer_; }

 private:
  static Tokenizer make(const std::vector<std::string>& chars, const json& added) {
    json doc = test::tokenizer_doc(test::bpe_model(chars, {}));
    doc["added_tokens"] = added;
    return test::build(doc);
  }
  std::vector<std::string> chars_;
  Tokenizer tokenizer_;
};

json mask_token(bool special, bool lstrip, bool rstrip, bool single_word) {
  return {{"id", 1000},       {"content", "<mask>"}, {"single_word", single_word}, {"lstrip", lstrip},
          {"rstrip", rstrip}, {"normalized", false}, {"special", special}};
}

EncodeOptions options(bool parse_special) {
  EncodeOptions o;
  o.add_special_tokens = false;
  o.parse_special = parse_special;
  return o;
}

TEST(AddedTokens, are_split_out_of_the_text_and_kept_as_text_without_parse_special) {
  const std::string text = "a<|eot|>b<|eot|><|eot|>";
  const CharTokenizer t({text}, json::array({test::added_token(1000, "<|eot|>", true)}));
  EXPECT_EQ(t.tokenizer().encode(text, options(true)),
            t.ids_of({{"a"}, {"", 1000}, {"b"}, {"", 1000}, {"", 1000}}));
  EXPECT_EQ(t.tokenizer().encode(text, options(false)), t.ids_of({{text}}));
}

TEST(AddedTokens, the_longest_token_at_the_leftmost_position_wins) {
  const std::string text = "x<a><a>b<a>";
  const CharTokenizer t({text}, json::array({test::added_token(1000, "<a>", true),
                                             test::added_token(1001, "<a><a>", true),
                                             test::added_token(1002, "a><a>b", true)}));
  // At '<' (position 1) both <a> and <a><a> start: the longer wins. "a><a>b" starts later.
  EXPECT_EQ(t.tokenizer().encode(text, options(true)), t.ids_of({{"x"}, {"", 1001}, {"b"}, {"", 1000}}));
}

TEST(AddedTokens, single_word_tokens_match_only_between_non_word_characters) {
  // HF test_single_word_is_unicode_correct: punctuation and '-' are not word characters, a
  // combining mark (U+0330) is.
  const std::string text = "<mask>, <mask>- \u25CC\u0330<mask>";
  const CharTokenizer t({text}, json::array({mask_token(false, false, false, true)}));
  EXPECT_EQ(t.tokenizer().encode(text, options(true)),
            t.ids_of({{"", 1000}, {", "}, {"", 1000}, {"- \u25CC\u0330<mask>"}}));
}

TEST(AddedTokens, lstrip_and_rstrip_swallow_unicode_whitespace_around_the_token) {
  // HF test_lstrip_unicode_space.
  const std::string text = "Hi <mask> there\t<mask>\t<mask>\u2000";
  const CharTokenizer t({text}, json::array({mask_token(false, true, true, true)}));
  EXPECT_EQ(t.tokenizer().encode(text, options(true)),
            t.ids_of({{"Hi"}, {"", 1000}, {"there"}, {"", 1000}, {"", 1000}}));
}

TEST(AddedTokens, without_parse_special_only_special_tokens_stay_text) {
  // HF test_encode_special_tokens (less its Lowercase normalizer): "ask>" is a normal added
  // token matched in normalized text, "<mask>" and "<pad>" are special.
  const std::string text = "hi <mask> there\t<mask>\t<mask>\u2000 <pad> <mask><pad><pad>";
  json added = json::array({mask_token(true, true, true, true), test::added_token(1001, "ask>", false, true),
                            test::added_token(1002, "<pad>", true)});
  const CharTokenizer t({text}, added);
  EXPECT_EQ(t.tokenizer().encode(text, options(false)),
            t.ids_of({{"hi <m"}, {"", 1001}, {" there\t<m"}, {"", 1001}, {"\t<m"}, {"", 1001},
                      {"\u2000 <pad> <m"}, {"", 1001}, {"<pad><pad>"}}));
  EXPECT_EQ(t.tokenizer().encode(text, options(true)),
            t.ids_of({{"hi"}, {"", 1000}, {"there"}, {"", 1000}, {"", 1000}, {"", 1002}, {"", 1000},
                      {"", 1002}, {"", 1002}}));
}

TEST(AddedTokens, decode_writes_special_tokens_unless_skipped) {
  const std::string text = "a<s>b";
  const CharTokenizer t({text}, json::array({test::added_token(1000, "<s>", true)}));
  const std::vector<int32_t> ids = t.tokenizer().encode(text, options(true));
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_TRUE(t.tokenizer().is_special(1000));
  EXPECT_EQ(t.tokenizer().token_to_id("<s>"), 1000);
  EXPECT_EQ(t.tokenizer().vocab_size(), 1001);
  // No decoder: HF joins the tokens with spaces.
  EXPECT_EQ(t.tokenizer().decode(ids), "a <s> b");
  EXPECT_EQ(t.tokenizer().decode(ids, /*skip_special=*/true), "a b");
}

}  // namespace
}  // namespace ltri
