#pragma once
// Patterns of tokenizer.json ({"String": ...} or {"Regex": ...}) and how they find matches.
// HF `tokenizers` runs its regexes with Oniguruma; we run them with PCRE2 (UTF + UCP, JIT when
// available) after translating the few escapes whose meaning differs between the two engines
// (see translate_oniguruma in pattern.cpp), and we walk the matches exactly as the Rust `onig`
// crate's find_iter does, so splits are identical.
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace ltri {

struct Span {
  size_t begin = 0;  // byte offsets into the searched text
  size_t end = 0;
};

class Pattern {
 public:
  // A fixed string, matched literally (non-overlapping, left to right). Must not be empty.
  static Pattern literal(std::string text);
  // An Oniguruma-syntax regex. `where` names the file and field for the error if it does not
  // compile ("tokenizer.json: pre_tokenizer.pretokenizers[0].pattern.Regex").
  static Pattern regex(const std::string& pattern, const std::string& where);

  // Walks the matches in `text` (valid UTF-8) left to right without collecting them, so a
  // 1 MB text does not need a match list. Empty matches are reported the way Oniguruma's
  // find_iter reports them. The text must outlive the cursor.
  class Cursor {
   public:
    Cursor(const Pattern& pattern, std::string_view text);
    ~Cursor();
    Cursor(const Cursor&) = delete;
    Cursor& operator=(const Cursor&) = delete;
    // The next match, or false when there is none.
    bool next(Span& match);

   private:
    const Pattern& pattern_;
    std::string_view text_;
    void* match_data_ = nullptr;  // pcre2_match_data*, regex patterns only
    size_t search_from_ = 0;
    bool have_last_end_ = false;
    size_t last_match_end_ = 0;
  };

  // Every match, as Cursor gives them, into `out` (cleared first).
  void find_all(std::string_view text, std::vector<Span>& out) const;

  bool is_literal() const { return compiled_ == nullptr; }

 private:
  struct Compiled;
  std::string literal_;
  std::shared_ptr<const Compiled> compiled_;
};

// Rewrites an Oniguruma pattern into PCRE2 syntax with the same meaning for the escapes that
// differ (\s \S \h \H \w \W \uHHHH). Exposed for the unit tests.
std::string translate_oniguruma(std::string_view pattern);

// Whether the character is a "word" character for Rust's regex \w (used by single_word added
// tokens): Alphabetic, Mark, Decimal_Number, Connector_Punctuation or Join_Control.
bool is_word_char(char32_t c);

}  // namespace ltri
