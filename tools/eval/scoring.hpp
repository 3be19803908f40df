#pragma once
// Scorers, as the public benchmarks define them.
//
// first_number (InfiniteBench passkey and number_string: get_score_one_passkey /
// get_score_one_number_string): the first run of digits in the output must equal the expected
// value; "12345." and "The key is 12345" score, "1234 5" and "9 12345" do not.
// exact_word (InfiniteBench kv_retrieval, get_score_one_kv_retrieval): the output's characters
// \n : " ' . , ? ! { } become spaces, and the expected value must be one of the resulting
// whitespace-separated words, exactly (case-sensitive): ' "3f2a-...".' scores, "3f2a-...x" does not.
// string_match_all (RULER niah, vt, cwe, fwe): the share of expected values that occur in the
// output as case-insensitive substrings; 2 of 4 values found scores 0.5.
// string_match_part (RULER qa): 1 if any expected value occurs (case-insensitive substring).
// A task's accuracy is the mean of its samples' scores.
#include <string>
#include <string_view>
#include <vector>

namespace ltri::eval {

enum class Scoring { FirstNumber, StringMatchAll, StringMatchPart, ExactWord };

// "first_number", "string_match_all", "string_match_part", "exact_word"
const char* scoring_name(Scoring scoring);
Scoring parse_scoring(std::string_view name);  // throws ltri::Error for an unknown name

// The first run of ASCII digits in `text`, or "" if there is none.
std::string first_number(std::string_view text);

// 1 or 0: whether the first number in `output` is `key`.
double score_first_number(std::string_view output, std::string_view key);

// Share of `expected` found in `output` (ASCII case-insensitive); 0 for an empty list.
double score_string_match_all(std::string_view output, const std::vector<std::string>& expected);

// 1 if any of `expected` is found in `output` (ASCII case-insensitive), else 0.
double score_string_match_part(std::string_view output, const std::vector<std::string>& expected);

// 1 or 0: whether `value` is a whole word of `output` after InfiniteBench's punctuation split.
double score_exact_word(std::string_view output, std::string_view value);

// Dispatches on `scoring` (first_number and exact_word use expected[0]).
double score_output(Scoring scoring, std::string_view output, const std::vector<std::string>& expected);

}  // namespace ltri::eval
