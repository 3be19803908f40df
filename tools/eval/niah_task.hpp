#pragma once
// RULER needle-in-a-haystack tasks, in the wording of tools/train_demo/tasks.py (which the
// bundled model was trained on) and EVAL.md:
//
//   Some special magic numbers are hidden within the following text. Make sure to memorize it.
//   I will quiz you about the numbers afterwards.
//   <haystack ... One of the special magic numbers for quaint-lathe is: 4817263. ...>
//   What is the special magic number for quaint-lathe mentioned in the provided text? The
//   special magic number for quaint-lathe mentioned in the provided text is
//
// With several values or keys the question reads "What are all the special magic numbers for
// A, B and C ...? ... are" (RULER itself always asks "What are all ..."; the singular for one
// value is tasks.py's and EVAL.md's). Keys are two held-out dictionary words joined by '-'
// (uuids for multikey_3); numbers have 7 digits. Scored by string_match_all.
//
// | task            | haystack          | key  | value  | needles                           |
// |-----------------|-------------------|------|--------|-----------------------------------|
// | niah_single_1   | noise blocks      | word | number | 1                                 |
// | niah_single_2   | held-out prose    | word | number | 1                                 |
// | niah_single_3   | held-out prose    | word | uuid   | 1                                 |
// | niah_multikey_1 | held-out prose    | word | number | 1 + 3 distractor keys             |
// | niah_multikey_2 | other needles     | word | number | 1 (the haystack is all needles)   |
// | niah_multikey_3 | other needles     | uuid | uuid   | 1 (the haystack is all needles)   |
// | niah_multivalue | held-out prose    | word | number | 4 values of one key               |
// | niah_multiquery | held-out prose    | word | number | 4 keys asked together             |
//
// Target needles sit around the requested depth (0.1 apart when there are several);
// distractors at random depths.
#include <string>
#include <string_view>
#include <vector>

#include "eval_rng.hpp"
#include "haystack.hpp"
#include "task.hpp"
#include "word_list.hpp"

namespace ltri::eval {

enum class NiahHaystack { Noise, Prose, Needles };
enum class NiahKey { Word, Uuid };
enum class NiahValue { Number, Uuid, Word };

struct NiahSpec {
  std::string name;
  NiahHaystack haystack = NiahHaystack::Prose;
  NiahKey key = NiahKey::Word;
  NiahValue value = NiahValue::Number;
  int distractors = 0;  // needles of other keys, not asked about
  int values = 1;       // values per asked key
  int queries = 1;      // keys asked about
};

// Every niah task, in RULER's order.
const std::vector<NiahSpec>& niah_specs();
// The spec called `name`; throws ltri::Error "--task: unknown task 'x' (one of: ...)".
const NiahSpec& find_niah_spec(std::string_view name);
// "niah_single_1, niah_single_2, ..."
std::string niah_task_names();

// What a niah task draws from; a field may be null when the spec does not need it.
struct NiahSources {
  const ProseText* prose = nullptr;  // needed for NiahHaystack::Prose
  const WordList* words = nullptr;   // needed for word keys or word values
};
bool niah_needs_prose(const NiahSpec& spec);
bool niah_needs_words(const NiahSpec& spec);

// Draws one instance; throws ltri::Error if a source it needs is missing.
TaskInstance make_niah(const NiahSpec& spec, const NiahSources& sources, EvalRng& rng, double depth);

// A random version-4 uuid ("8c7b1c9e-2f1a-4d3b-9a6e-0c5d2b7f4e21").
std::string random_uuid(EvalRng& rng);

}  // namespace ltri::eval
