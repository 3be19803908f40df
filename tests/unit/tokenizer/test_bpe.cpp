// The BPE model on hand-built vocabularies: merge order, ties, ignore_merges, byte fallback,
// unknown characters, and the two merge spellings.
#include <gtest/gtest.h>

#include "tiny_tokenizers.hpp"

namespace ltri {
namespace {

using test::bpe_model;
using test::build;
using test::json;
using test::tokenizer_doc;

EncodeOptions plain() {
  EncodeOptions o;
  o.add_special_tokens = false;
  return o;
}

//                                  0    1    2    3     4     5      6
const std::vector<std::string> kAbc = {"a", "b", "c", "ab", "bc", "abc", "aa"};

TEST(Bpe, lowest_rank_merge_is_applied_first) {
  // "b c" outranks "a b": abc -> a + bc, and no merge joins a and bc.
  const Tokenizer bc_first = build(tokenizer_doc(bpe_model(kAbc, {"b c", "a b", "ab c"})));
  EXPECT_EQ(bc_first.encode("abc", plain()), (std::vector<int32_t>{0, 4}));
  // "a b" first: abc -> ab + c -> abc.
  const Tokenizer ab_first = build(tokenizer_doc(bpe_model(kAbc, {"a b", "b c", "ab c"})));
  EXPECT_EQ(ab_first.encode("abc", plain()), (std::vector<int32_t>{5}));
}

TEST(Bpe, equal_pairs_merge_leftmost_first) {
  // aaa: both (a,a) pairs have the same rank; the left one merges, leaving aa + a.
  const Tokenizer t = build(tokenizer_doc(bpe_model(kAbc, {"a a"})));
  EXPECT_EQ(t.encode("aaa", plain()), (std::vector<int32_t>{6, 0}));
  EXPECT_EQ(t.encode("aaaa", plain()), (std::vector<int32_t>{6, 6}));
}

TEST(Bpe, merges_as_pairs_equal_merges_as_strings) {
  json model = bpe_model(kAbc, {});
  model["merges"] = json::array({json::array({"a", "b"}), json::array({"ab", "c"})});
  const Tokenizer pairs = build(tokenizer_doc(model));
  const Tokenizer strings = build(tokenizer_doc(bpe_model(kAbc, {"a b", "ab c"})));
  for (const char* text : {"abc", "cab", "abcabc", "bca"}) {
    EXPECT_EQ(pairs.encode(text, plain()), strings.encode(text, plain())) << text;
  }
  EXPECT_EQ(strings.encode("abc", plain()), (std::vector<int32_t>{5}));
}

TEST(Bpe, ignore_merges_emits_a_word_in_the_vocab_whole) {
  // With only "a b", abc merges to ab + c; abc itself is in the vocab.
  json model = bpe_model(kAbc, {"a b"});
  EXPECT_EQ(build(tokenizer_doc(model)).encode("abc", plain()), (std::vector<int32_t>{3, 2}));
  model["ignore_merges"] = true;
  const Tokenizer t = build(tokenizer_doc(model));
  EXPECT_EQ(t.encode("abc", plain()), (std::vector<int32_t>{5}));
  // A word not in the vocab still goes through the merges.
  EXPECT_EQ(t.encode("abca", plain()), (std::vector<int32_t>{3, 2, 0}));
}

json byte_fallback_doc() {
  std::vector<std::string> tokens = {"<unk>", "a", "b"};
  char name[8];
  for (int b = 0; b < 256; ++b) {
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    tokens.push_back(name);
  }
  json model = bpe_model(tokens, {});
  model["byte_fallback"] = true;
  model["unk_token"] = "<unk>";
  json doc = tokenizer_doc(model);
  doc["decoder"] = {{"type", "Sequence"},
                    {"decoders", json::array({{{"type", "ByteFallback"}}, {{"type", "Fuse"}}})}};
  return doc;
}

TEST(Bpe, byte_fallback_spells_unknown_characters_as_utf8_byte_tokens) {
  const Tokenizer t = build(byte_fallback_doc());
  // "é" = C3 A9 is not in the vocab: it becomes <0xC3> <0xA9> (ids 3 + byte).
  EXPECT_EQ(t.encode("a\xC3\xA9" "b", plain()), (std::vector<int32_t>{1, 3 + 0xC3, 3 + 0xA9, 2}));
  EXPECT_EQ(t.id_to_token(3 + 0xC3), "<0xC3>");
  // The ByteFallback decoder puts the bytes back together.
  EXPECT_EQ(t.decode(t.encode("a\xC3\xA9" "b\xF0\x9F\x98\x80", plain())), "a\xC3\xA9" "b\xF0\x9F\x98\x80");
  // A byte run that is not UTF-8 decodes to one U+FFFD per byte token, as in HF.
  EXPECT_EQ(t.decode({1, 3 + 0xC3, 2}), "a\xEF\xBF\xBD" "b");
  EXPECT_EQ(t.decode({3 + 0xF0, 3 + 0x9F}), "\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(Bpe, unknown_characters_become_unk_and_fuse_when_asked) {
  json model = bpe_model({"<unk>", "a"}, {});
  model["unk_token"] = "<unk>";
  EXPECT_EQ(build(tokenizer_doc(model)).encode("axyza", plain()), (std::vector<int32_t>{1, 0, 0, 0, 1}));
  model["fuse_unk"] = true;
  EXPECT_EQ(build(tokenizer_doc(model)).encode("axyza", plain()), (std::vector<int32_t>{1, 0, 1}));
  // Without an unk token, unknown characters are dropped (HF does the same).
  EXPECT_EQ(build(tokenizer_doc(bpe_model({"a"}, {}))).encode("axa", plain()), (std::vector<int32_t>{0, 0}));
}

TEST(Bpe, continuing_subword_prefix_marks_non_initial_symbols) {
  json model = bpe_model({"a", "##b", "##c", "ab", "abc"}, {"a ##b", "ab ##c"});
  model["continuing_subword_prefix"] = "##";
  const Tokenizer t = build(tokenizer_doc(model));
  EXPECT_EQ(t.encode("abc", plain()), (std::vector<int32_t>{4}));
  EXPECT_EQ(t.encode("ac", plain()), (std::vector<int32_t>{0, 2}));
}

TEST(Bpe, a_long_word_without_pre_tokenizer_merges_like_a_short_one) {
  // 100k symbols in one word (a SentencePiece-style file gives BPE whole paragraphs).
  const Tokenizer t = build(tokenizer_doc(bpe_model(kAbc, {"a b", "ab c"})));
  std::string text;
  for (int i = 0; i < 100000; ++i) text += "abc";
  const std::vector<int32_t> ids = t.encode(text, plain());
  ASSERT_EQ(ids.size(), 100000u);
  for (int32_t id : ids) ASSERT_EQ(id, 5);
}

}  // namespace
}  // namespace ltri
