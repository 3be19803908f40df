#pragma once
// The GPT-2 byte <-> unicode alphabet used by byte-level BPE (Llama-3, Qwen2, GPT-2): every byte
// is shown as one printable character, so a vocabulary of strings can hold arbitrary bytes.
// Printable Latin-1 bytes ('!'..'~', 0xA1..0xAC, 0xAE..0xFF) map to themselves; the other 68
// bytes map, in byte order, to U+0100, U+0101, ... (so ' ' becomes 'Ġ' U+0120, '\n' 'Ċ').
#include <string>
#include <string_view>

namespace ltri::byte_level {

// The UTF-8 text of the character that stands for byte b.
const std::string& char_for_byte(unsigned char b);

// Maps every byte of `bytes` to its character.
std::string encode(std::string_view bytes);

// Maps the characters of `token` back to bytes, appending them to `out`. Returns false (and
// appends nothing) if some character is not in the alphabet, e.g. an added token "<|eot_id|>"
// written in plain text; HF then keeps the token's own UTF-8 bytes.
bool decode(std::string_view token, std::string& out);

}  // namespace ltri::byte_level
