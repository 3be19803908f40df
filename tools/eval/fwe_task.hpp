#pragma once
// RULER frequent words extraction (fwe: alpha 2.0, coded words of 6 letters), in RULER's
// wording:
//
//   Read the following coded text and track the frequency of each coded word. Find the three
//   most frequently appeared coded words. ... ... qzmcvd ... xbrtle qzmcvd ... ulkajw ...
//   Question: Do not provide any explanation. Please ignore the dots '....'. What are the three
//   most frequently appeared words in the above coded text? Answer: According to the coded text
//   above, the three most frequently appeared words are:
//
// A vocabulary of length / 50 random 6-letter words is ranked at random; word k (1-based)
// appears floor(n * k^-2 / zeta(2)) times in a shuffled text of n words, and the most frequent
// "word" is the noise "..." (RULER's vocab[0]), which also fills the text up to exactly n words
// (RULER leaves the text at the floors' sum; topping up with noise lets the length be met to a
// token or two and changes only the noise's share, ~66% instead of ~61% at 4K). Expected: the words of ranks 2, 3 and 4,
// scored by string_match_all. No depth: the answer is spread over the whole text.
#include <cstdint>

#include "eval_rng.hpp"
#include "task.hpp"

namespace ltri::eval {

TaskInstance make_fwe(EvalRng& rng, int64_t length);

// Occurrences of the word of rank k (1-based) in a text of about n words: floor(n k^-2 / zeta(2)).
int64_t fwe_count(int64_t n, int64_t rank);

}  // namespace ltri::eval
