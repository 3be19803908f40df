#pragma once
// One drawn task instance before its haystack is sized: the prompt's fixed parts, the needles
// with their depths, the expected answer and how it is scored. prompt_fit.hpp turns it into a
// prompt of a given token length.
#include <cstdint>
#include <string>
#include <vector>

#include "haystack.hpp"
#include "scoring.hpp"

namespace ltri::eval {

// The prompt around the haystack. Plain (as the bundled model was trained, and as ltri run
// sends a prompt): before + haystack + after + question + " " + answer_prefix. With a chat
// template the answer prefix opens the assistant's turn instead (RULER's placement).
struct PromptParts {
  std::string before;         // instructions, with the separator up to the haystack
  std::string after;          // separator between the haystack and the question
  std::string question;
  std::string answer_prefix;  // the answer's lead-in, ending just before the answer
};

struct Needle {
  std::string text;
  double depth = 0;     // requested, as a fraction of the haystack's tokens in [0, 1]
  bool target = false;  // holds an expected value (false: a distractor)
};

struct TaskInstance {
  std::string task;  // "passkey", "niah_single_2", ...
  PromptParts parts;
  std::vector<Needle> needles;
  std::vector<std::string> expected;  // values the output must contain
  Scoring scoring = Scoring::StringMatchAll;
  UnitStream haystack;
};

// "a", "a and b", "a, b and c": how answers with several values are phrased (tasks.py).
std::string join_values(const std::vector<std::string>& values);

// Tokens to generate when none are asked for: enough for the answer " v1, v2 and v3." with
// slack (uuids take about one token per 1.6 characters), as tools/train_demo/tasks.py.
int64_t default_max_new_tokens(const std::vector<std::string>& expected);

}  // namespace ltri::eval
