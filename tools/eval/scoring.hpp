#pragma once
// Scorers, as the public benchmarks define them.
//
// passkey (InfiniteBench, get_score_one_passkey): the first run of digits in the output must
// equal the key; "12345." and "The key is 12345" score, "1234 5" and "9 12345" do not.
// niah (RULER, string_match_all): the share of expected values that occur in the output as
// case-insensitive substrings; a sample with 2 of 4 values scores 0.5, and a task's accuracy
// is the mean of its samples' scores.
#include <string>
#include <string_view>
#include <vector>

namespace ltri::eval {

enum class Scoring { FirstNumber, StringMatchAll };

const char* scoring_name(Scoring scoring);  // "first_number", "string_match_all"
Scoring parse_scoring(std::string_view name);  // throws ltri::Error for an unknown name

// The first run of ASCII digits in `text`, or "" if there is none.
std::string first_number(std::string_view text);

// 1 or 0: whether the first number in `output` is `key`.
double score_first_number(std::string_view output, std::string_view key);

// Share of `expected` found in `output` (ASCII case-insensitive); 0 for an empty list.
double score_string_match_all(std::string_view output, const std::vector<std::string>& expected);

// Dispatches on `scoring` (FirstNumber uses expected[0]).
double score_output(Scoring scoring, std::string_view output, const std::vector<std::string>& expected);

}  // namespace ltri::eval
