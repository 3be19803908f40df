#pragma once
// RULER variable tracking (vt: num_chains 1, num_hops 4), in RULER's wording:
//
//   Memorize and track the chain(s) of variable assignment hidden in the following text.
//
//   The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.
//   ... VAR QXKTB = 48213. ... VAR HRMAL = VAR QXKTB. ... VAR ZPWOE = VAR HRMAL. ...
//   Question: Find all variables that are assigned the value 48213 in the text above. Answer:
//   According to the chain(s) of variable assignment in the text above, 5 variables are
//   assgined the value 48213, they are:
//
// ("assgined" is RULER's own spelling, kept so prompts match the published ones.) Variables are
// 5 random capital letters, the value 5 digits; the haystack is noise blocks, one a line.
// Expected: the 5 variable names, scored by string_match_all. The 5 links go in chain order
// around the requested depth, 5% of the haystack apart (RULER scatters them at random; a depth
// makes the cell comparable with niah's grid).
#include "eval_rng.hpp"
#include "task.hpp"

namespace ltri::eval {

constexpr int kVtHops = 4;
constexpr double kVtLinkSpacing = 0.05;

TaskInstance make_vt(EvalRng& rng, double depth);

}  // namespace ltri::eval
