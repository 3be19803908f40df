#pragma once
// RULER common words extraction (cwe: freq_cw 30, freq_ucw 3, num_cw 10), in RULER's wording,
// with RULER's one worked example (ICL) ahead of the question:
//
//   Below is a numbered list of words. In these words, some appear more often than others.
//   Memorize the ones that appear most often.
//   1. lathe 2. meadow 3. lathe 4. harbor ...
//   Question: What are the 10 most common words in the above list? Answer: The top 10 words that
//   appear most often in the list are: 1. lathe 2. meadow ... 10. velvet
//   Below is a numbered list of words. ... (the task itself, answered by the model)
//
// 10 common words appear 30 times each and every other word 3 times (below 4096 tokens: 6 and 1,
// as RULER does for short contexts), shuffled; the list grows with the length (more uncommon
// words). The example has 40 words (10 and 3 times; below 4096 tokens 20 words, 3 and 1).
// Words come from the word list (Debian's wamerican; RULER uses wonderwords' nouns, adjectives
// and verbs). Expected: the 10 common words, scored by string_match_all. No depth: the answer
// is spread over the whole list.
#include <cstdint>

#include "eval_rng.hpp"
#include "task.hpp"
#include "word_list.hpp"

namespace ltri::eval {

TaskInstance make_cwe(const WordList& words, EvalRng& rng, int64_t length);

}  // namespace ltri::eval
