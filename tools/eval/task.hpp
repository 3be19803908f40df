#pragma once
// One drawn task instance before its haystack is sized: the prompt's fixed parts, the needles
// with their depths, the expected answer and how it is scored. prompt_fit.hpp turns it into a
// prompt of a given token length.
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "haystack.hpp"
#include "scoring.hpp"

namespace ltri::eval {

// The prompt around the haystack. Plain (as the bundled model was trained, and as ltri run
// sends a prompt): before + haystack + after + question + answer_separator + answer_prefix.
// With a chat template the answer prefix opens the assistant's turn instead (RULER's placement).
struct PromptParts {
  std::string before;         // instructions, with the separator up to the haystack
  std::string after;          // separator between the haystack and the question
  std::string question;
  std::string answer_prefix;  // the answer's lead-in, ending just before the answer
  std::string answer_separator = " ";  // between the question and the answer prefix
  // `before` for the InfLLM variant that also states the question ahead of the context; empty:
  // the question is inserted after the instructions (see apply_question_placement).
  std::string before_with_question;
};

// Where the question goes: after the context only (RULER, InfiniteBench), or also before it
// (the InfLLM evaluation's variant, easier for retrieval methods that choose what to keep while
// reading the context; must be labelled when used).
enum class QuestionPlacement { AfterContext, BeforeAndAfterContext };
const char* question_placement_name(QuestionPlacement placement);  // "after_context", ...
// Throws ltri::Error "--question: expected after or both, got 'x'".
QuestionPlacement parse_question_placement(std::string_view flag_value);
// Rewrites parts.before for `placement`: instructions, then the question, then the separator
// that `before` ends with (or parts.before_with_question where the task words it itself).
void apply_question_placement(PromptParts& parts, QuestionPlacement placement);

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
  UnitStream haystack = noise_units();
  // False for tasks whose answer is spread over the whole context (cwe, fwe): no depth grid.
  bool has_depth = true;
  // Optional: makes the cut-off unit at the haystack's end well-formed (kv_retrieval closes a
  // half-written JSON pair); given the unit's first words, returns the text to use.
  std::function<std::string(const std::string&)> complete_partial_unit;
  // Removed from the end of the haystack when present (kv_retrieval: the last pair's comma).
  std::string trim_haystack_suffix;
  // Tokens to generate when -n does not say: 0 = default_max_new_tokens(expected); RULER's
  // tokens_to_generate for answers that are lists (vt 30, cwe 120, fwe 50).
  int64_t max_new_tokens = 0;
  // Tasks whose whole context changes with its size (cwe, fwe: word frequencies scale with the
  // list's length) give the context for a size parameter n >= sized_min instead of units;
  // prompt_fit searches n. Needles are not used then.
  std::function<std::string(int64_t n)> sized_haystack;
  int64_t sized_min = 1;
  int64_t sized_max = 0;  // largest n the source allows
};

// "a", "a and b", "a, b and c": how answers with several values are phrased (tasks.py).
std::string join_values(const std::vector<std::string>& values);

// Tokens to generate when none are asked for: enough for the answer " v1, v2 and v3." with
// slack. tools/train_demo/tasks.py allows len / 1.5 + 8; answer_tokens (the answer's own
// length in the model's tokens, 0 = unknown) + 8 when that is more: the demo tokenizer
// writes a uuid in up to 31 tokens, and 33 cut some answers short. At most 96.
int64_t default_max_new_tokens(const std::vector<std::string>& expected, int64_t answer_tokens = 0);

}  // namespace ltri::eval
