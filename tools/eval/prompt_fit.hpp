#pragma once
// Sizing a prompt to a length in the model's own tokens: the haystack grows unit by unit (and
// then word by word inside the next unit) until the whole prompt, encoded as the model gets it,
// has the requested number of tokens; needles go to the unit boundary nearest their depth.
#include <cstdint>
#include <string>
#include <vector>

#include "prompt_format.hpp"
#include "scoring.hpp"
#include "task.hpp"

namespace ltri::eval {

// The depth recorded for tasks without one (cwe, fwe: the answer is spread over the context).
constexpr double kNoDepth = -1.0;

// A prompt ready to run, with what is needed to score and report it.
struct EvalSample {
  std::string task;
  int64_t requested_tokens = 0;
  double depth = 0;  // requested depth of the target needles
  std::string prompt;
  std::vector<int32_t> ids;  // the prompt's tokens as the model receives them (BOS included)
  std::vector<std::string> expected;
  Scoring scoring = Scoring::StringMatchAll;
  int64_t max_new_tokens = 0;  // tokens to generate unless -n says otherwise
  // Measured depth of each target needle: haystack tokens before it / haystack tokens.
  std::vector<double> needle_depths;
  int64_t haystack_tokens = 0;
  size_t haystack_units = 0;       // whole units in the haystack
  bool haystack_repeated = false;  // the source text ran out and started again
};

// Builds the prompt of `instance` with `target_tokens` tokens: the result is the closest the
// unit/word steps allow (or, for sized tasks, the size steps), normally within a token or two
// and always within 1%. Tasks without a depth get depth kNoDepth. Throws
// ltri::Error if the task's text without any haystack is already longer than 1.01 x target.
EvalSample fit_prompt(TaskInstance& instance, const PromptFormat& format, int64_t target_tokens, double depth);

}  // namespace ltri::eval
