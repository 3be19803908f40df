// --lengths parsing and the benchmark scorers, on hand-written cases.
#include <gtest/gtest.h>

#include "core/error.hpp"
#include "eval/length_list.hpp"
#include "eval/scoring.hpp"
#include "eval/task.hpp"

namespace ltri::eval {
namespace {

std::string error_of(const std::string& list) {
  try {
    parse_lengths(list);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Lengths, SuffixesAreBinaryThousandsAndPlainNumbersAreTokens) {
  EXPECT_EQ(parse_lengths("4k,8k,16k,32k,64k,128k"),
            (std::vector<int64_t>{4096, 8192, 16384, 32768, 65536, 131072}));
  EXPECT_EQ(parse_lengths("1k"), std::vector<int64_t>{1024});
  EXPECT_EQ(parse_lengths("1000, 2K"), (std::vector<int64_t>{1000, 2048}));
  EXPECT_EQ(parse_lengths("1m"), std::vector<int64_t>{1048576});
  EXPECT_EQ(parse_lengths("4k,4096,8k"), (std::vector<int64_t>{4096, 8192}));  // duplicates dropped
}

TEST(Lengths, BadItemsNameTheFlagAndTheItem) {
  EXPECT_EQ(error_of("12q"), "--lengths: '12q' is not a length like 4k or 4096");
  EXPECT_EQ(error_of("4k,x"), "--lengths: 'x' is not a length like 4k or 4096");
  EXPECT_EQ(error_of("k"), "--lengths: 'k' is not a length like 4k or 4096");
  EXPECT_EQ(error_of("-4k"), "--lengths: '-4k' is not a length like 4k or 4096");
  EXPECT_EQ(error_of("1.5k"), "--lengths: '1.5k' is not a length like 4k or 4096");
  EXPECT_NE(error_of("4k,,8k").find("empty item"), std::string::npos);
  EXPECT_NE(error_of("0").find("at least 1"), std::string::npos);
  EXPECT_NE(error_of("99999999999k").find("too long"), std::string::npos);
}

TEST(Lengths, FormatUsesTheShortFormWhenExact) {
  EXPECT_EQ(format_length(4096), "4k");
  EXPECT_EQ(format_length(131072), "128k");
  EXPECT_EQ(format_length(1048576), "1m");
  EXPECT_EQ(format_length(1000), "1000");
  EXPECT_EQ(format_length(1536), "1536");
}

TEST(Scoring, PasskeyIsTheFirstNumberInTheOutput) {
  EXPECT_EQ(score_first_number(" 71432.", "71432"), 1.0);
  EXPECT_EQ(score_first_number("The pass key is 71432. Remember it.", "71432"), 1.0);
  EXPECT_EQ(score_first_number("71432 is the pass key, not 12", "71432"), 1.0);
  EXPECT_EQ(score_first_number(" 9 71432", "71432"), 0.0);      // an earlier number wins
  EXPECT_EQ(score_first_number(" 7143 2.", "71432"), 0.0);      // split digits
  EXPECT_EQ(score_first_number(" 714320.", "71432"), 0.0);      // longer number
  EXPECT_EQ(score_first_number(" 1432.", "71432"), 0.0);
  EXPECT_EQ(score_first_number(" I do not know.", "71432"), 0.0);
  EXPECT_EQ(score_first_number("", "71432"), 0.0);
  EXPECT_EQ(first_number("abc-12x34"), "12");
}

TEST(Scoring, StringMatchAllIsTheShareOfValuesFoundIgnoringCase) {
  EXPECT_EQ(score_string_match_all(" 4817263.", {"4817263"}), 1.0);
  EXPECT_EQ(score_string_match_all(" 4817264.", {"4817263"}), 0.0);
  EXPECT_EQ(score_string_match_all("The answer: 8C7B1C9E-2F1A-4d3b-9a6e-0c5d2b7f4e21 I think",
                                   {"8c7b1c9e-2f1a-4d3b-9a6e-0c5d2b7f4e21"}), 1.0);
  EXPECT_EQ(score_string_match_all(" 111, 222 and 333.", {"111", "222", "333", "444"}), 0.75);
  EXPECT_EQ(score_string_match_all(" 2220", {"111", "222"}), 0.5);  // a substring counts, as in RULER
  EXPECT_EQ(score_string_match_all("", {"111"}), 0.0);
  EXPECT_EQ(score_string_match_all("anything", {}), 0.0);
}

TEST(Scoring, StringMatchPartIsOneIfAnyValueIsFound) {
  // RULER's qa scorer: max over references of (reference.lower() in prediction.lower()).
  EXPECT_EQ(score_string_match_part(" Paris, France.", {"paris", "Lyon"}), 1.0);
  EXPECT_EQ(score_string_match_part(" LYON", {"paris", "lyon"}), 1.0);
  EXPECT_EQ(score_string_match_part(" Marseille", {"paris", "lyon"}), 0.0);
  EXPECT_EQ(score_string_match_part(" 111, 222", {"111", "222", "333", "444"}), 1.0);  // no partial credit
  EXPECT_EQ(score_string_match_part("anything", {}), 0.0);
}

TEST(Scoring, ExactWordIsInfiniteBenchKvRetrieval) {
  const std::string v = "9c41e3b5-08aa-4f2e-b1d7-5d1c77f02a8d";
  EXPECT_EQ(score_exact_word(" " + v + ".", v), 1.0);
  EXPECT_EQ(score_exact_word(" \"" + v + "\"}", v), 1.0);          // quotes and braces split
  EXPECT_EQ(score_exact_word("value:" + v + "\nmore", v), 1.0);      // ':' and newline split
  EXPECT_EQ(score_exact_word(" " + v + "x", v), 0.0);                // a longer word
  EXPECT_EQ(score_exact_word(" x" + v, v), 0.0);
  EXPECT_EQ(score_exact_word(" 9C41E3B5-08AA-4F2E-B1D7-5D1C77F02A8D", v), 0.0);  // case-sensitive
  EXPECT_EQ(score_exact_word(" 9c41e3b5-08aa", v), 0.0);             // half a value
  EXPECT_EQ(score_exact_word("", v), 0.0);
}

TEST(Scoring, DispatchAndNames) {
  EXPECT_EQ(score_output(Scoring::FirstNumber, " 12345 and 99999", {"12345"}), 1.0);
  EXPECT_EQ(score_output(Scoring::StringMatchAll, " 99999 and 12345", {"12345", "99999"}), 1.0);
  EXPECT_EQ(parse_scoring(scoring_name(Scoring::FirstNumber)), Scoring::FirstNumber);
  EXPECT_EQ(parse_scoring(scoring_name(Scoring::StringMatchAll)), Scoring::StringMatchAll);
  EXPECT_EQ(parse_scoring("string_match_part"), Scoring::StringMatchPart);
  EXPECT_EQ(parse_scoring("exact_word"), Scoring::ExactWord);
  EXPECT_EQ(score_output(Scoring::ExactWord, " abc.", {"abc"}), 1.0);
  EXPECT_EQ(score_output(Scoring::StringMatchPart, " ABC", {"x", "abc"}), 1.0);
  EXPECT_THROW(parse_scoring("exact"), Error);
}

TEST(Task, AnswersJoinLikeTheTrainingDataAndBudgetTokensForThem) {
  EXPECT_EQ(join_values({"a"}), "a");
  EXPECT_EQ(join_values({"a", "b"}), "a and b");
  EXPECT_EQ(join_values({"a", "b", "c"}), "a, b and c");
  EXPECT_EQ(default_max_new_tokens({"71432"}), 12);  // tasks.py: int(len(" 71432.") / 1.5) + 8
  EXPECT_EQ(default_max_new_tokens({"8c7b1c9e-2f1a-4d3b-9a6e-0c5d2b7f4e21"}), 33);
  // The answer's own token count, when known and larger, plus the same slack; at most 96.
  EXPECT_EQ(default_max_new_tokens({"8c7b1c9e-2f1a-4d3b-9a6e-0c5d2b7f4e21"}, 31), 39);
  EXPECT_EQ(default_max_new_tokens({"71432"}, 3), 12);
  EXPECT_EQ(default_max_new_tokens({"71432"}, 200), 96);
}

}  // namespace
}  // namespace ltri::eval
