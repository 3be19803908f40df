#include "tokenizer/pattern.hpp"

#include <cstdint>

#include "core/error.hpp"
#include "tokenizer/components.hpp"
#include "tokenizer/utf8.hpp"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

namespace ltri {
namespace {

// Oniguruma (what HF uses) and PCRE2 disagree on a few escapes under Unicode rules:
//  - \s: Oniguruma tests the White_Space property; PCRE2 10.42 with UCP also accepts U+180E
//    (MONGOLIAN VOWEL SEPARATOR, no longer White_Space since Unicode 6.3).
//  - \h: a hex digit in Oniguruma, horizontal space in PCRE2.
//  - \w: Oniguruma's Word property includes marks and connector punctuation; PCRE2 10.42's UCP
//    \w is letters, numbers and '_'.
//  - \uHHHH: Oniguruma only.
constexpr std::string_view kSpace = "\\p{White_Space}";
constexpr std::string_view kNotSpace = "\\P{White_Space}";
constexpr std::string_view kWordClassBody = "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}";
constexpr std::string_view kHexClassBody = "0-9a-fA-F";

std::string pcre2_message(int code) {
  PCRE2_UCHAR buffer[256];
  pcre2_get_error_message(code, buffer, sizeof(buffer));
  return reinterpret_cast<const char*>(buffer);
}

bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

}  // namespace

std::string translate_oniguruma(std::string_view p) {
  std::string out;
  out.reserve(p.size() + 32);
  std::vector<size_t> class_opens;  // positions of the '[' of the classes we are inside
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      const char e = p[i + 1];
      ++i;
      const bool in_class = !class_opens.empty();
      // A set outside a class becomes a class; inside one, its body is spliced in.
      const auto set = [&](std::string_view body, bool negate) {
        if (!in_class) out += negate ? "[^" : "[";
        out += body;
        if (!in_class) out += ']';
      };
      switch (e) {
        case 's': out += kSpace; break;
        case 'S': out += kNotSpace; break;
        case 'h': set(kHexClassBody, false); break;
        case 'w': set(kWordClassBody, false); break;
        // A negated set cannot be spliced into a class.
        case 'H':
        case 'W':
          if (in_class) fail("\\", e, " inside a character class is not supported");
          set(e == 'H' ? kHexClassBody : kWordClassBody, true);
          break;
        case 'u':
          if (i + 4 < p.size() && is_hex(p[i + 1]) && is_hex(p[i + 2]) && is_hex(p[i + 3]) &&
              is_hex(p[i + 4])) {
            out += "\\x{";
            out += p.substr(i + 1, 4);
            out += "}";
            i += 4;
          } else {
            out += "\\u";
          }
          break;
        default:
          out += c;
          out += e;
      }
      continue;
    }
    if (c == '[') {
      // Both engines treat '[' inside a class as opening a nested or POSIX ("[:alpha:]") one.
      class_opens.push_back(i);
    } else if (c == ']' && !class_opens.empty()) {
      // A ']' first in a class ("[]a]", "[^]a]") is a literal in both engines.
      const size_t open = class_opens.back();
      const bool first_in_class = i == open + 1 || (i == open + 2 && p[open + 1] == '^');
      if (!first_in_class) class_opens.pop_back();
    }
    out += c;
  }
  return out;
}

struct Pattern::Compiled {
  pcre2_code* code = nullptr;
  ~Compiled() { pcre2_code_free(code); }
};

namespace {

// Per-thread matching state: a match context and a JIT stack that grows on demand. The match
// limit is raised from PCRE2's 10M steps: a run of n spaces makes \s*[\r\n]+ backtrack n
// times in one match (linear overall, but one call may take many steps). It stays finite so a
// pathological regex in a hostile file ends in an error rather than running for hours.
constexpr uint32_t kMatchLimit = 200'000'000;

struct MatchState {
  pcre2_match_context* context = nullptr;
  pcre2_jit_stack* jit_stack = nullptr;
  size_t jit_stack_size = 0;

  MatchState() {
    context = pcre2_match_context_create(nullptr);
    pcre2_set_match_limit(context, kMatchLimit);
  }
  ~MatchState() {
    if (jit_stack) pcre2_jit_stack_free(jit_stack);
    pcre2_match_context_free(context);
  }
  // Returns false when the stack is already as large as we allow.
  bool grow_jit_stack() {
    constexpr size_t kMaxJitStack = size_t{256} << 20;
    const size_t next = jit_stack_size == 0 ? size_t{1} << 20 : jit_stack_size * 4;
    if (next > kMaxJitStack) return false;
    pcre2_jit_stack* stack = pcre2_jit_stack_create(32 * 1024, next, nullptr);
    if (!stack) return false;
    if (jit_stack) pcre2_jit_stack_free(jit_stack);
    jit_stack = stack;
    jit_stack_size = next;
    pcre2_jit_stack_assign(context, nullptr, jit_stack);
    return true;
  }
};

MatchState& match_state() {
  thread_local MatchState state;
  return state;
}

}  // namespace

Pattern Pattern::literal(std::string text) {
  if (text.empty()) fail("tokenizer: empty string pattern");
  Pattern p;
  p.literal_ = std::move(text);
  return p;
}

Pattern Pattern::regex(const std::string& pattern, const std::string& where) {
  std::string translated;
  try {
    translated = translate_oniguruma(pattern);
  } catch (const Error& e) {
    fail(where, ": regex '", pattern, "': ", e.what());
  }
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  pcre2_code* code =
      pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                    PCRE2_UTF | PCRE2_UCP, &error_code, &error_offset, nullptr);
  if (!code) {
    fail(where, ": regex '", pattern, "' does not compile: ", pcre2_message(error_code),
         " (at offset ", error_offset, " of the PCRE2 form '", translated, "')");
  }
  // JIT makes the pre-tokenizer several times faster; without it pcre2_match interprets.
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  auto compiled = std::make_shared<Compiled>();
  compiled->code = code;
  Pattern p;
  p.compiled_ = std::move(compiled);
  return p;
}

Pattern::Cursor::Cursor(const Pattern& pattern, std::string_view text) : pattern_(pattern), text_(text) {
  if (!pattern.is_literal()) {
    match_data_ = pcre2_match_data_create_from_pattern(pattern.compiled_->code, nullptr);
  }
}

Pattern::Cursor::~Cursor() {
  if (match_data_) pcre2_match_data_free(static_cast<pcre2_match_data*>(match_data_));
}

bool Pattern::Cursor::next(Span& match) {
  if (pattern_.is_literal()) {
    const std::string& needle = pattern_.literal_;
    const size_t pos = search_from_ > text_.size() ? std::string_view::npos : text_.find(needle, search_from_);
    if (pos == std::string_view::npos) return false;
    match = {pos, pos + needle.size()};
    search_from_ = match.end;
    return true;
  }
  pcre2_code* code = pattern_.compiled_->code;
  auto* data = static_cast<pcre2_match_data*>(match_data_);
  MatchState& state = match_state();
  const auto subject = reinterpret_cast<PCRE2_SPTR>(text_.data());
  // The Rust onig crate's FindMatches: search from the end of the previous match; an empty
  // match right where the previous match ended is skipped by stepping one character ahead.
  while (search_from_ <= text_.size()) {
    const auto run = [&](uint32_t options) {
      return pcre2_match(code, subject, text_.size(), search_from_, PCRE2_NO_UTF_CHECK | options, data,
                         state.context);
    };
    int rc = run(0);
    while (rc == PCRE2_ERROR_JIT_STACKLIMIT && state.grow_jit_stack()) rc = run(0);
    // The interpreter keeps its backtracking frames on the heap.
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT) rc = run(PCRE2_NO_JIT);
    if (rc == PCRE2_ERROR_NOMATCH) return false;
    if (rc < 0) fail("tokenizer: regex match failed at byte ", search_from_, ": ", pcre2_message(rc));
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(data);
    const size_t begin = ovector[0];
    const size_t end = ovector[1] < begin ? begin : ovector[1];  // \K can put the end first
    if (begin == end && have_last_end_ && last_match_end_ == end) {
      const size_t step = search_from_ < text_.size() ? utf8::valid_sequence_length(text_, search_from_) : 1;
      search_from_ += step == 0 ? 1 : step;
      continue;
    }
    search_from_ = end;
    have_last_end_ = true;
    last_match_end_ = end;
    match = {begin, end};
    return true;
  }
  return false;
}

void Pattern::find_all(std::string_view text, std::vector<Span>& out) const {
  out.clear();
  Cursor cursor(*this, text);
  Span match;
  while (cursor.next(match)) out.push_back(match);
}

bool is_word_char(char32_t c) {
  static const Pattern word = Pattern::regex("\\w", "tokenizer: word-character class");
  const std::string text = utf8::encode(c);
  static thread_local std::vector<Span> spans;
  word.find_all(text, spans);
  return !spans.empty();
}

Pattern make_pattern(const Json& json, const JsonPath& path) {
  as_object(json, path);
  if (json.size() != 1) path.fail("expected {\"String\": ...} or {\"Regex\": ...}");
  if (const Json* s = optional_field(json, "String", path)) {
    std::string text = as_string(*s, path / "String");
    if (text.empty()) (path / "String").fail("empty pattern");
    return Pattern::literal(std::move(text));
  }
  if (const Json* r = optional_field(json, "Regex", path)) {
    const JsonPath regex_path = path / "Regex";
    return Pattern::regex(as_string(*r, regex_path), regex_path.source() + ": " + regex_path.path());
  }
  path.fail("expected {\"String\": ...} or {\"Regex\": ...}, got key '", json.begin().key(), "'");
}

}  // namespace ltri
