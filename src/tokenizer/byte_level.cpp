#include "tokenizer/byte_level.hpp"

#include <array>

#include "tokenizer/utf8.hpp"

namespace ltri::byte_level {
namespace {

struct Alphabet {
  std::array<std::string, 256> char_of_byte;  // UTF-8 text per byte
  std::array<int, 512> byte_of_char;          // code point (< 512) -> byte, -1 if none

  Alphabet() {
    byte_of_char.fill(-1);
    const auto kept = [](int b) {
      return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    };
    int next_shifted = 256;
    for (int b = 0; b < 256; ++b) {
      const int code_point = kept(b) ? b : next_shifted++;
      char_of_byte[b] = utf8::encode(static_cast<char32_t>(code_point));
      byte_of_char[code_point] = b;
    }
  }
};

const Alphabet& alphabet() {
  static const Alphabet kAlphabet;
  return kAlphabet;
}

}  // namespace

const std::string& char_for_byte(unsigned char b) { return alphabet().char_of_byte[b]; }

std::string encode(std::string_view bytes) {
  const Alphabet& a = alphabet();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) out += a.char_of_byte[static_cast<unsigned char>(c)];
  return out;
}

bool decode(std::string_view token, std::string& out) {
  const Alphabet& a = alphabet();
  const size_t start = out.size();
  size_t pos = 0;
  while (pos < token.size()) {
    const size_t n = utf8::valid_sequence_length(token, pos);
    int byte = -1;
    if (n > 0) {
      size_t len = 0;
      const char32_t c = utf8::decode_at(token, pos, &len);
      if (c < a.byte_of_char.size()) byte = a.byte_of_char[c];
    }
    if (byte < 0) {
      out.resize(start);
      return false;
    }
    out.push_back(static_cast<char>(byte));
    pos += n;
  }
  return true;
}

}  // namespace ltri::byte_level
