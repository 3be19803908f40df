#include "scoring.hpp"

#include <algorithm>

#include "core/error.hpp"

namespace ltri::eval {

const char* scoring_name(Scoring scoring) {
  switch (scoring) {
    case Scoring::FirstNumber: return "first_number";
    case Scoring::StringMatchAll: return "string_match_all";
    case Scoring::StringMatchPart: return "string_match_part";
    case Scoring::ExactWord: return "exact_word";
  }
  return "string_match_all";
}

Scoring parse_scoring(std::string_view name) {
  for (Scoring s : {Scoring::FirstNumber, Scoring::StringMatchAll, Scoring::StringMatchPart, Scoring::ExactWord}) {
    if (name == scoring_name(s)) return s;
  }
  fail("scoring: expected first_number, string_match_all, string_match_part or exact_word, got '", name, "'");
}

std::string first_number(std::string_view text) {
  const auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
  const auto begin = std::find_if(text.begin(), text.end(), is_digit);
  const auto end = std::find_if_not(begin, text.end(), is_digit);
  return std::string(begin, end);
}

double score_first_number(std::string_view output, std::string_view key) {
  return first_number(output) == key ? 1.0 : 0.0;
}

namespace {

std::string lower_ascii(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
  }
  return out;
}

}  // namespace

double score_string_match_all(std::string_view output, const std::vector<std::string>& expected) {
  if (expected.empty()) return 0.0;
  const std::string haystack = lower_ascii(output);
  size_t found = 0;
  for (const std::string& value : expected) {
    if (haystack.find(lower_ascii(value)) != std::string::npos) ++found;
  }
  return double(found) / double(expected.size());
}

double score_string_match_part(std::string_view output, const std::vector<std::string>& expected) {
  const std::string haystack = lower_ascii(output);
  for (const std::string& value : expected) {
    if (haystack.find(lower_ascii(value)) != std::string::npos) return 1.0;
  }
  return 0.0;
}

double score_exact_word(std::string_view output, std::string_view value) {
  std::string text(output);
  for (char& c : text) {
    if (std::string_view("\n:\"'.,?!{}").find(c) != std::string_view::npos) c = ' ';
  }
  // Python's str.split(): any run of whitespace separates words.
  const auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; };
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && is_space(text[i])) ++i;
    size_t end = i;
    while (end < text.size() && !is_space(text[end])) ++end;
    if (end > i && std::string_view(text).substr(i, end - i) == value) return 1.0;
    i = end;
  }
  return 0.0;
}

double score_output(Scoring scoring, std::string_view output, const std::vector<std::string>& expected) {
  switch (scoring) {
    case Scoring::FirstNumber:
    case Scoring::ExactWord:
      if (expected.empty()) fail("score: ", scoring_name(scoring), " needs an expected value");
      return scoring == Scoring::FirstNumber ? score_first_number(output, expected[0])
                                             : score_exact_word(output, expected[0]);
    case Scoring::StringMatchPart: return score_string_match_part(output, expected);
    case Scoring::StringMatchAll: break;
  }
  return score_string_match_all(output, expected);
}

}  // namespace ltri::eval
