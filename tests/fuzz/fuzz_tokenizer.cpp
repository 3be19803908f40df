// libFuzzer target for the tokenizer.
//  1. The input as a tokenizer.json: loading may only throw ltri::Error; whatever loads must
//     encode and decode a sample of the input without crashing.
//  2. The input as text, through two small valid tokenizers built once (byte-level BPE with the
//     Llama-3 regex, and SentencePiece-style BPE with byte fallback): encode, decode and stream
//     decode must not crash, and the byte-level one must give the (valid UTF-8) text back.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/error.hpp"
#include "tokenizer/tokenizer.hpp"
#include "tokenizer/utf8.hpp"

namespace {

// The GPT-2 byte alphabet as a vocab (id = byte), a few merges, two special tokens.
std::string byte_level_json() {
  std::string vocab;
  int shifted = 256;
  for (int b = 0; b < 256; ++b) {
    const bool kept = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    std::string ch = ltri::utf8::encode(static_cast<char32_t>(kept ? b : shifted++));
    if (ch == "\"" || ch == "\\") ch = "\\" + ch;
    vocab += "\"" + ch + "\": " + std::to_string(b) + ", ";
  }
  vocab += "\"th\": 256, \"the\": 257, \"\xC4\xA0t\": 258, \"\xC4\xA0the\": 259, \"in\": 260";
  return R"({"added_tokens": [
      {"id": 300, "content": "<|eot_id|>", "special": true, "normalized": false, "lstrip": false, "rstrip": false, "single_word": false},
      {"id": 301, "content": "<|begin_of_text|>", "special": true, "normalized": false, "lstrip": false, "rstrip": false, "single_word": false}],
    "normalizer": null,
    "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
      {"type": "Split", "pattern": {"Regex": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}, "behavior": "Isolated", "invert": false},
      {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]},
    "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
      "special_tokens": {"<|begin_of_text|>": {"id": "<|begin_of_text|>", "ids": [301], "tokens": ["<|begin_of_text|>"]}}},
    "decoder": {"type": "ByteLevel"},
    "model": {"type": "BPE", "ignore_merges": true, "vocab": {)" +
         vocab + R"(}, "merges": ["t h", "th e", "Ġ t", "Ġ the", "i n"]}})";
}

std::string sentencepiece_json() {
  std::string vocab = "\"<unk>\": 0, \"<s>\": 1, \"</s>\": 2";
  char name[16];
  for (int b = 0; b < 256; ++b) {
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    vocab += ", \"" + std::string(name) + "\": " + std::to_string(3 + b);
  }
  vocab += ", \"\xE2\x96\x81\": 259, \"a\": 260, \"b\": 261, \"\xE2\x96\x81" "a\": 262, \"ab\": 263";
  return R"({"added_tokens": [
      {"id": 0, "content": "<unk>", "special": true, "normalized": false, "lstrip": false, "rstrip": false, "single_word": false},
      {"id": 1, "content": "<s>", "special": true, "normalized": false, "lstrip": false, "rstrip": false, "single_word": false},
      {"id": 2, "content": "</s>", "special": true, "normalized": false, "lstrip": false, "rstrip": false, "single_word": false}],
    "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
    "pre_tokenizer": null,
    "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
      "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
    "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
    "model": {"type": "BPE", "unk_token": "<unk>", "fuse_unk": true, "byte_fallback": true, "vocab": {)" +
         vocab + R"(}, "merges": ["▁ a", "a b"]}})";
}

const ltri::Tokenizer& byte_level_tokenizer() {
  static const ltri::Tokenizer t = ltri::Tokenizer::from_json(byte_level_json(), "fuzz/byte_level.json");
  return t;
}

const ltri::Tokenizer& sentencepiece_tokenizer() {
  static const ltri::Tokenizer t = ltri::Tokenizer::from_json(sentencepiece_json(), "fuzz/sentencepiece.json");
  return t;
}

void exercise(const ltri::Tokenizer& t, const std::string& text) {
  for (bool parse_special : {true, false}) {
    ltri::EncodeOptions options;
    options.parse_special = parse_special;
    const std::vector<int32_t> ids = t.encode(text, options);
    const std::string decoded = t.decode(ids);
    ltri::StreamDecoder stream(t, /*skip_special=*/true);
    std::string streamed;
    for (int32_t id : ids) streamed += stream.push(id);
    streamed += stream.flush();
    if (!ltri::utf8::is_valid(decoded) || !ltri::utf8::is_valid(streamed)) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  try {
    const ltri::Tokenizer loaded = ltri::Tokenizer::from_json(input, "fuzz/tokenizer.json");
    exercise(loaded, input.substr(0, 512));
    std::vector<int32_t> ids;
    for (int32_t id = -2; id < loaded.vocab_size() + 2 && id < 2000; ++id) ids.push_back(id);
    loaded.decode(ids);
  } catch (const ltri::Error&) {
    // Refusing a bad file is the expected outcome for most inputs.
  }

  exercise(byte_level_tokenizer(), input);
  exercise(sentencepiece_tokenizer(), input);
  // Byte-level BPE covers every byte, so valid text must come back exactly.
  ltri::EncodeOptions plain;
  plain.add_special_tokens = false;
  plain.parse_special = false;
  const std::string valid = ltri::utf8::to_valid_utf8(input);
  const ltri::Tokenizer& t = byte_level_tokenizer();
  if (t.decode(t.encode(valid, plain)) != valid) std::abort();
  return 0;
}
