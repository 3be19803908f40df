// The text primitives under the tokenizer: lossy UTF-8 (Rust's from_utf8_lossy), the GPT-2
// byte alphabet, and the Oniguruma -> PCRE2 regex translation.
#include <gtest/gtest.h>

#include "tokenizer/byte_level.hpp"
#include "tokenizer/pattern.hpp"
#include "tokenizer/utf8.hpp"

namespace ltri {
namespace {

const std::string kFffd = "\xEF\xBF\xBD";

TEST(Utf8, valid_text_is_kept_and_each_maximal_invalid_subpart_becomes_one_fffd) {
  EXPECT_EQ(utf8::to_valid_utf8("caf\xC3\xA9 \xF0\x9F\x98\x80"), "caf\xC3\xA9 \xF0\x9F\x98\x80");
  // Examples of the Unicode standard's "maximal subpart" substitution, which Rust follows.
  EXPECT_EQ(utf8::to_valid_utf8("a\x80" "b"), "a" + kFffd + "b");
  EXPECT_EQ(utf8::to_valid_utf8("\xF0\x9F\x98"), kFffd);                 // truncated: one
  EXPECT_EQ(utf8::to_valid_utf8("\xF0\x9F\x98" "a"), kFffd + "a");
  EXPECT_EQ(utf8::to_valid_utf8("\xED\xA0\x80"), kFffd + kFffd + kFffd);  // surrogate: three
  EXPECT_EQ(utf8::to_valid_utf8("\xC0\xAF"), kFffd + kFffd);              // overlong: two
  EXPECT_EQ(utf8::to_valid_utf8("\xF4\x90\x80\x80"), kFffd + kFffd + kFffd + kFffd);  // > U+10FFFF
  EXPECT_EQ(utf8::to_valid_utf8("\xE2\x82"), kFffd);
  EXPECT_EQ(utf8::to_valid_utf8(std::string("a\0b", 3)), std::string("a\0b", 3));
}

TEST(ByteLevel, alphabet_maps_every_byte_to_one_character_and_back) {
  EXPECT_EQ(byte_level::encode(" "), "\xC4\xA0");   // 'Ġ'
  EXPECT_EQ(byte_level::encode("\n"), "\xC4\x8A");  // 'Ċ'
  EXPECT_EQ(byte_level::encode("a!~"), "a!~");
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  const std::string mapped = byte_level::encode(all);
  EXPECT_EQ(utf8::count_chars(mapped), 256u);
  std::string back;
  ASSERT_TRUE(byte_level::decode(mapped, back));
  EXPECT_EQ(back, all);
  std::string out = "x";
  EXPECT_FALSE(byte_level::decode("<|eot_id|>\xE4\xBD\xA0", out));  // U+4F60 is not in the alphabet
  EXPECT_EQ(out, "x");
}

std::vector<std::string> matches(const Pattern& p, const std::string& text) {
  std::vector<Span> spans;
  p.find_all(text, spans);
  std::vector<std::string> out;
  for (const Span& s : spans) out.push_back(text.substr(s.begin, s.end - s.begin));
  return out;
}

TEST(Pattern, backslash_s_means_white_space_as_in_oniguruma) {
  const Pattern space = Pattern::regex("\\s+", "test");
  // U+0085 NEL and U+3000 are White_Space; U+180E (Mongolian vowel separator) no longer is,
  // though PCRE2's own \s still accepts it.
  EXPECT_EQ(matches(space, "a\xC2\x85" "b\xE3\x80\x80" "c"), (std::vector<std::string>{"\xC2\x85", "\xE3\x80\x80"}));
  EXPECT_TRUE(matches(space, "a\xE1\xA0\x8E" "b").empty());
  const Pattern not_space_class = Pattern::regex("[^\\s\\p{L}]+", "test");
  EXPECT_EQ(matches(not_space_class, "ab\xE1\xA0\x8E!! c"), (std::vector<std::string>{"\xE1\xA0\x8E!!"}));
}

TEST(Pattern, translation_rewrites_only_real_escapes) {
  EXPECT_EQ(translate_oniguruma("\\s"), "\\p{White_Space}");
  EXPECT_EQ(translate_oniguruma("\\\\s"), "\\\\s");  // an escaped backslash, then 's'
  EXPECT_EQ(translate_oniguruma("[^\\S]"), "[^\\P{White_Space}]");
  EXPECT_EQ(translate_oniguruma("\\h"), "[0-9a-fA-F]");  // Oniguruma: hex digit
  EXPECT_EQ(translate_oniguruma("\\u00e9"), "\\x{00e9}");
  EXPECT_EQ(translate_oniguruma("[]\\s]"), "[]\\p{White_Space}]");
}

TEST(Pattern, empty_matches_advance_like_oniguruma_find_iter) {
  // "a*" on "baab": empty at 0, "aa" at 1, then empty at 3 is skipped (it touches the previous
  // match's end), then empty at 4 (end of text).
  const Pattern p = Pattern::regex("a*", "test");
  std::vector<Span> spans;
  p.find_all("baab", spans);
  std::vector<std::pair<size_t, size_t>> got;
  for (const Span& s : spans) got.emplace_back(s.begin, s.end);
  EXPECT_EQ(got, (std::vector<std::pair<size_t, size_t>>{{0, 0}, {1, 3}, {4, 4}}));
}

TEST(Pattern, case_insensitive_contractions_fold_like_unicode) {
  const Pattern p = Pattern::regex("(?i:'s|'t)", "test");
  EXPECT_EQ(matches(p, "it's IT'S it'T it'\xC5\xBF"), (std::vector<std::string>{"'s", "'S", "'T", "'\xC5\xBF"}));
}

}  // namespace
}  // namespace ltri
