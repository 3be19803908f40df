#pragma once
// InfiniteBench number_string (Retrieve.Number), in the benchmark's words (its
// construct_synthetic_dataset.py data and the base-model template of src/prompt.py):
//
//   There is an important info hidden inside a lot of irrelevant text. Find it. I will quiz you
//   about the important information there.
//
//   The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.
//   ...
//   The sequence of digits is 3344751299. Remember it. 3344751299 is the sequence of digits.
//   The grass is green. ...
//
//   What is the sequence of digits?
//
//   The sequence of digits is
//
// The 10-digit value is drawn as InfiniteBench draws it: 5 random digits, then 5 times a digit
// at a random place is doubled (so runs of repeated digits are common). Noise blocks one a line.
// Scored by first_number (get_score_one_number_string).
#include "eval_rng.hpp"
#include "task.hpp"

namespace ltri::eval {

TaskInstance make_number_string(EvalRng& rng, double depth);

}  // namespace ltri::eval
