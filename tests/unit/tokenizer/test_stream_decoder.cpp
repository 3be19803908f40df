// StreamDecoder: pieces never split a UTF-8 character, and they concatenate to decode().
#include <gtest/gtest.h>

#include "real_tokenizers.hpp"
#include "tiny_tokenizers.hpp"

namespace ltri {
namespace {

using test::json;

// A byte-level tokenizer with one token per byte and no merges (token id = byte value), so
// every multi-byte character is spread over several tokens.
Tokenizer byte_level_tokenizer() {
  json vocab = json::object();
  int next_shifted = 256;  // the GPT-2 alphabet: unprintable bytes map to U+0100, U+0101, ...
  for (int b = 0; b < 256; ++b) {
    const bool kept = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    vocab[utf8::encode(static_cast<char32_t>(kept ? b : next_shifted++))] = b;
  }
  json doc = test::tokenizer_doc(test::bpe_model({"x"}, {}));
  doc["model"]["vocab"] = vocab;
  doc["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}};
  doc["decoder"] = {{"type", "ByteLevel"}};
  return test::build(doc);
}

std::vector<std::string> stream_pieces(const Tokenizer& t, const std::vector<int32_t>& ids, bool skip = false) {
  StreamDecoder stream(t, skip);
  std::vector<std::string> pieces;
  for (int32_t id : ids) pieces.push_back(stream.push(id));
  pieces.push_back(stream.flush());
  return pieces;
}

TEST(StreamDecoder, emoji_spread_over_byte_tokens_comes_out_whole) {
  const Tokenizer t = byte_level_tokenizer();
  const std::string text = "a\xF0\x9F\x98\x80 \xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9 \xC3\xA9!";  // a😀 👨‍👩 é!
  EncodeOptions o;
  o.add_special_tokens = false;
  const std::vector<int32_t> ids = t.encode(text, o);
  ASSERT_EQ(ids.size(), text.size());  // one token per byte
  const std::vector<std::string> pieces = stream_pieces(t, ids);
  std::string joined;
  for (const std::string& p : pieces) {
    EXPECT_TRUE(utf8::is_valid(p)) << "partial character emitted";
    EXPECT_EQ(p.find("\xEF\xBF\xBD"), std::string::npos) << "replacement character emitted";
    joined += p;
  }
  EXPECT_EQ(joined, text);
  // The first byte of the emoji emits nothing; its last byte emits the whole emoji.
  EXPECT_EQ(pieces[1], "");
  EXPECT_EQ(pieces[4], "\xF0\x9F\x98\x80");
}

TEST(StreamDecoder, invalid_bytes_come_out_as_replacement_characters) {
  const Tokenizer t = byte_level_tokenizer();
  // 'a', a lone continuation byte 0x80, then a truncated 3-byte sequence at the end.
  const std::vector<int32_t> ids = {'a', 0x80, 'b', 0xE2, 0x82};
  std::string joined;
  for (const std::string& p : stream_pieces(t, ids)) {
    EXPECT_TRUE(utf8::is_valid(p));
    joined += p;
  }
  EXPECT_EQ(joined, t.decode(ids));
  EXPECT_EQ(joined, "a\xEF\xBF\xBD" "b\xEF\xBF\xBD");
}

TEST(StreamDecoder, llama2_pieces_keep_spaces_as_decode_does) {
  const Tokenizer* t = test::real_tokenizer("llama2");
  ASSERT_NE(t, nullptr);
  // Leading-space strip, runs of spaces, byte-fallback emoji and a special token mid-stream.
  const std::string text = "Hello  world \xF0\x9F\x98\x80</s> next\n\n  end";
  const std::vector<int32_t> ids = t->encode(text);
  for (bool skip : {false, true}) {
    std::string joined;
    for (const std::string& p : stream_pieces(*t, ids, skip)) {
      EXPECT_TRUE(utf8::is_valid(p));
      joined += p;
    }
    EXPECT_EQ(joined, t->decode(ids, skip)) << "skip_special=" << skip;
  }
}

TEST(StreamDecoder, llama3_pieces_concatenate_to_decode_for_cjk_and_emoji) {
  const Tokenizer* t = test::real_tokenizer("llama3");
  ASSERT_NE(t, nullptr);
  const std::string text =
      "<|begin_of_text|>\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E \xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D"
      "\xF0\x9F\x91\xA7 \xF0\x9F\x87\xBA\xF0\x9F\x87\xB8<|eot_id|>";
  const std::vector<int32_t> ids = t->encode(text);
  for (bool skip : {false, true}) {
    std::string joined;
    for (const std::string& p : stream_pieces(*t, ids, skip)) {
      EXPECT_TRUE(utf8::is_valid(p));
      EXPECT_EQ(p.find("\xEF\xBF\xBD"), std::string::npos);
      joined += p;
    }
    EXPECT_EQ(joined, t->decode(ids, skip));
  }
}

}  // namespace
}  // namespace ltri
