#include "tokenizer/added_tokens.hpp"

#include <algorithm>
#include <unordered_map>

#include "tokenizer/components.hpp"
#include "tokenizer/utf8.hpp"

namespace ltri {
namespace {

// The character ending just before byte `end` (text valid UTF-8, end > 0).
char32_t char_before(std::string_view text, size_t end) {
  size_t start = end - 1;
  while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
  size_t n = 0;
  return utf8::decode_at(text, start, &n);
}

// Start of the run of whitespace that ends at `end` (Rust regex \s*$ on text[..end]).
size_t whitespace_run_start(std::string_view text, size_t end) {
  while (end > 0) {
    size_t start = end - 1;
    while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
    size_t n = 0;
    if (!utf8::is_white_space(utf8::decode_at(text, start, &n))) break;
    end = start;
  }
  return end;
}

// End of the run of whitespace that starts at `begin` (Rust regex ^\s* on text[begin..]).
size_t whitespace_run_end(std::string_view text, size_t begin) {
  while (begin < text.size()) {
    size_t n = 0;
    if (!utf8::is_white_space(utf8::decode_at(text, begin, &n))) break;
    begin += n;
  }
  return begin;
}

}  // namespace

std::vector<AddedToken> parse_added_tokens(const Json& list, const JsonPath& path,
                                           const Normalizer* normalizer) {
  as_array(list, path);
  std::vector<AddedToken> tokens;
  std::unordered_map<std::string, int32_t> id_of_content;
  std::unordered_map<int32_t, std::string> content_of_id;
  for (size_t i = 0; i < list.size(); ++i) {
    const JsonPath p = path[i];
    const Json& item = as_object(list[i], p);
    AddedToken t;
    const int64_t id = int_field(item, "id", p);
    if (id < 0 || id >= (int64_t{1} << 24)) (p / "id").fail("id ", id, " is out of range");
    t.id = static_cast<int32_t>(id);
    t.content = string_field(item, "content", p);
    t.special = bool_field(item, "special", p, false);
    t.single_word = bool_field(item, "single_word", p, false);
    t.lstrip = bool_field(item, "lstrip", p, false);
    t.rstrip = bool_field(item, "rstrip", p, false);
    t.normalized = bool_field(item, "normalized", p, !t.special);
    if (t.content.empty()) continue;  // HF ignores empty added tokens
    if (const auto it = id_of_content.find(t.content); it != id_of_content.end()) {
      p.fail("content '", t.content, "' is already added with id ", it->second);
    }
    if (const auto it = content_of_id.find(t.id); it != content_of_id.end()) {
      p.fail("id ", t.id, " is already used by added token '", it->second, "'");
    }
    id_of_content.emplace(t.content, t.id);
    content_of_id.emplace(t.id, t.content);
    t.match_text = t.content;
    if (t.normalized && normalizer) normalizer->normalize(t.match_text);
    tokens.push_back(std::move(t));
  }
  return tokens;
}

AddedTokenMatcher::AddedTokenMatcher(const std::vector<AddedToken>& tokens, bool normalized_tokens)
    : tokens_(&tokens) {
  nodes_.emplace_back();  // root
  for (size_t i = 0; i < tokens.size(); ++i) {
    const AddedToken& t = tokens[i];
    if (t.normalized != normalized_tokens || t.match_text.empty()) continue;
    int32_t node = 0;
    for (unsigned char b : t.match_text) {
      auto& children = nodes_[static_cast<size_t>(node)].children;
      const auto it = std::find_if(children.begin(), children.end(), [b](const auto& c) { return c.first == b; });
      if (it != children.end()) {
        node = it->second;
      } else {
        const int32_t child = static_cast<int32_t>(nodes_.size());
        children.emplace_back(b, child);
        nodes_.emplace_back();  // invalidates `children`; not used after this
        node = child;
      }
    }
    nodes_[static_cast<size_t>(node)].token = static_cast<int32_t>(i);
    starts_token_[static_cast<unsigned char>(t.match_text[0])] = true;
  }
}

int32_t AddedTokenMatcher::longest_at(std::string_view text, size_t pos, size_t* length) const {
  int32_t best = -1;
  int32_t node = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    const auto& children = nodes_[static_cast<size_t>(node)].children;
    const unsigned char b = static_cast<unsigned char>(text[i]);
    const auto it = std::find_if(children.begin(), children.end(), [b](const auto& c) { return c.first == b; });
    if (it == children.end()) break;
    node = it->second;
    if (nodes_[static_cast<size_t>(node)].token >= 0) {
      best = nodes_[static_cast<size_t>(node)].token;
      *length = i + 1 - pos;
    }
  }
  return best;
}

void AddedTokenMatcher::split(std::string_view text, bool skip_special,
                              std::vector<TextSegment>& out) const {
  out.clear();
  if (empty()) {
    out.push_back({0, text.size(), -1});
    return;
  }
  size_t start_offset = 0;  // end of the last token cut out
  size_t pos = 0;           // where the automaton resumes: the end of the last match
  while (pos < text.size()) {
    if (!starts_token_[static_cast<unsigned char>(text[pos])]) {
      ++pos;
      continue;
    }
    size_t length = 0;
    const int32_t index = longest_at(text, pos, &length);
    if (index < 0) {
      ++pos;
      continue;
    }
    size_t begin = pos;
    size_t end = pos + length;
    pos = end;
    const AddedToken& t = (*tokens_)[static_cast<size_t>(index)];
    if (skip_special && t.special) continue;
    if (t.single_word) {
      const bool space_before = begin == 0 || !is_word_char(char_before(text, begin));
      size_t n = 0;
      const bool space_after = end == text.size() || !is_word_char(utf8::decode_at(text, end, &n));
      if (!space_before || !space_after) continue;
    }
    if (t.lstrip) begin = std::max(whitespace_run_start(text, begin), start_offset);
    if (t.rstrip) end = whitespace_run_end(text, end);
    if (start_offset < begin) out.push_back({start_offset, begin, -1});
    out.push_back({begin, end, index});
    start_offset = end;
  }
  if (start_offset != text.size()) out.push_back({start_offset, text.size(), -1});
}

}  // namespace ltri
