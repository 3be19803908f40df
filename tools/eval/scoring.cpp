#include "scoring.hpp"

#include <algorithm>

#include "core/error.hpp"

namespace ltri::eval {

const char* scoring_name(Scoring scoring) {
  return scoring == Scoring::FirstNumber ? "first_number" : "string_match_all";
}

Scoring parse_scoring(std::string_view name) {
  if (name == "first_number") return Scoring::FirstNumber;
  if (name == "string_match_all") return Scoring::StringMatchAll;
  fail("scoring: expected first_number or string_match_all, got '", name, "'");
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

double score_output(Scoring scoring, std::string_view output, const std::vector<std::string>& expected) {
  if (scoring == Scoring::FirstNumber) {
    if (expected.empty()) fail("score: first_number needs an expected value");
    return score_first_number(output, expected[0]);
  }
  return score_string_match_all(output, expected);
}

}  // namespace ltri::eval
