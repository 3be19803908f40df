#pragma once
// passkey (InfiniteBench passkey / Landmark Attention, the LongLLaMA wording), as
// tools/train_demo/tasks.py builds it and the bundled model was trained on:
//
//   There is an important info hidden inside a lot of irrelevant text. Find it and memorize it.
//   I will quiz you about the important information there.
//
//   The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. ...
//   The pass key is 71432. Remember it. 71432 is the pass key. The grass is green. ...
//
//   What is the pass key? The pass key is
//
// The key has 5 digits; the haystack is noise blocks; scored by the first number in the output.
#include "eval_rng.hpp"
#include "task.hpp"

namespace ltri::eval {

TaskInstance make_passkey(EvalRng& rng, double depth);

}  // namespace ltri::eval
