#include "number_string_task.hpp"

#include "core/error.hpp"

namespace ltri::eval {

TaskInstance make_number_string(EvalRng& rng, double depth) {
  std::string digits;
  for (int k = 0; k < 5; ++k) digits += char('0' + rng.below(10));
  for (int k = 0; k < 5; ++k) {
    const size_t pos = size_t(rng.below(uint64_t(5 + k)));
    digits.insert(pos, 1, digits[pos]);
  }
  TaskInstance t;
  t.task = "number_string";
  t.parts.before = "There is an important info hidden inside a lot of irrelevant text. Find it. "
                   "I will quiz you about the important information there.\n\n";
  t.parts.after = "\n\n";
  t.parts.question = "What is the sequence of digits?";
  t.parts.answer_separator = "\n\n";
  t.parts.answer_prefix = "The sequence of digits is";
  t.needles = {{cat("The sequence of digits is ", digits, ". Remember it. ", digits, " is the sequence of digits."),
                depth, true}};
  t.expected = {digits};
  t.scoring = Scoring::FirstNumber;
  t.haystack = noise_units('\n');
  return t;
}

}  // namespace ltri::eval
