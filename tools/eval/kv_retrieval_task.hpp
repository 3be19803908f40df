#pragma once
// InfiniteBench kv_retrieval (Retrieve.KV), in the benchmark's words (template of src/prompt.py
// around the data of construct_synthetic_dataset.py):
//
//   Extract the value corresponding to the specified key in the JSON object below.
//
//   JSON data:
//   {"2a8d...": "9c41...", "77f0...": "e3b5...", ..., "5d1c...": "08aa..."}
//
//   Key: "77f0..."
//   The value associated with the specified key is:
//
// Keys and values are uuids (version-4 form). The haystack is the other pairs; the asked pair
// sits at the requested depth. The InfLLM variant names the key in the first line ("... the
// specified key 77f0... in the JSON object below."), as InfLLM's benchmark config does. Scored
// by exact_word (get_score_one_kv_retrieval). The benchmark's prompt ends "is: " with a space;
// ours ends at the colon (a trailing space is a token no text ends with).
#include <string>

#include "eval_rng.hpp"
#include "task.hpp"

namespace ltri::eval {

TaskInstance make_kv_retrieval(EvalRng& rng, double depth);

// A cut-off pair '"ab' / '"ab": "cd' made well-formed: '"ab": "",' / '"ab": "cd",'.
std::string complete_kv_pair(const std::string& partial);

}  // namespace ltri::eval
