#include "passkey_task.hpp"

#include "core/error.hpp"

namespace ltri::eval {

TaskInstance make_passkey(EvalRng& rng, double depth) {
  const std::string key = cat(rng.between(10000, 99999));
  TaskInstance t;
  t.task = "passkey";
  t.parts.before = "There is an important info hidden inside a lot of irrelevant text. Find it and "
                   "memorize it. I will quiz you about the important information there.\n\n";
  t.parts.after = "\n\n";
  t.parts.question = "What is the pass key?";
  t.parts.answer_prefix = "The pass key is";
  t.needles = {{cat("The pass key is ", key, ". Remember it. ", key, " is the pass key."), depth, true}};
  t.expected = {key};
  t.scoring = Scoring::FirstNumber;
  return t;
}

}  // namespace ltri::eval
