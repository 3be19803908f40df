#pragma once
// UTF-8 helpers for the tokenizer. Text reaching the regex engine must be valid UTF-8 (PCRE2 is
// run with PCRE2_NO_UTF_CHECK so a 1 MB prompt is not re-validated at every match), so every
// input goes through to_valid_utf8() first; decoders use the same function for their lossy
// byte -> text step, which is why it follows Rust's String::from_utf8_lossy exactly (HF
// `tokenizers` is Rust): each maximal invalid subsequence becomes one U+FFFD.
#include <cstddef>
#include <string>
#include <string_view>

namespace ltri::utf8 {

inline constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Length of the valid UTF-8 sequence starting at s[pos], or 0 when the bytes there are not one.
size_t valid_sequence_length(std::string_view s, size_t pos);

// Decodes the character at s[pos] (which must start a valid sequence); sets *length.
char32_t decode_at(std::string_view s, size_t pos, size_t* length);

bool is_valid(std::string_view s);

// Rust's String::from_utf8_lossy: valid text is returned unchanged, each maximal invalid
// subsequence is replaced by one U+FFFD.
std::string to_valid_utf8(std::string_view bytes);

void append(std::string& out, char32_t code_point);
std::string encode(char32_t code_point);

// Number of characters (code points) in valid UTF-8 text.
size_t count_chars(std::string_view s);

// Unicode White_Space property (what Rust's char::is_whitespace and regex \s test).
bool is_white_space(char32_t c);

}  // namespace ltri::utf8
