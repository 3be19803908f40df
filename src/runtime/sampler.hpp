#pragma once
// Picks the next token from a row of logits: greedy, or temperature + top-k + top-p sampling
// with a seeded generator, in Hugging Face's order (temperature, then top-k, then top-p), so a
// given seed and settings give the same tokens on every run and machine.
#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace ltri {

struct SamplingParams {
  float temperature = 0.8f;  // <= 0: greedy (argmax)
  int32_t top_k = 40;        // keep the k most likely tokens; <= 0 or >= vocab: no cut
  float top_p = 0.95f;       // keep the smallest set whose probability reaches p, in (0, 1]; 1: no cut
  uint64_t seed = 0;
};

class Sampler {
 public:
  // Throws ltri::Error on a vocabulary < 1 or a non-finite / out-of-range parameter.
  Sampler(int64_t vocab_size, const SamplingParams& params);

  // The next token for `logits` (vocab_size f32). Allocates nothing.
  int32_t sample(const float* logits);

  // Builds the candidate set sample() draws from and returns its size: candidate_ids() and
  // candidate_probs() then hold the kept tokens, most likely first (except when no cut needs
  // an order), and their renormalised probabilities. Exposed so tests can check what top-k and
  // top-p keep.
  size_t prepare(const float* logits);
  std::span<const int32_t> candidate_ids() const { return {ids_.data(), n_candidates_}; }
  std::span<const double> candidate_probs() const { return {probs_.data(), n_candidates_}; }

  // The id of the largest logit (the lowest id among equal maxima; NaN never wins).
  static int32_t argmax(const float* logits, int64_t vocab_size);

  const SamplingParams& params() const { return params_; }

 private:
  double uniform01();  // [0, 1) from 53 random bits: the same on every standard library

  int64_t vocab_size_;
  SamplingParams params_;
  std::mt19937_64 rng_;
  std::vector<int32_t> ids_;   // (vocab_size): candidate ids, scratch reused by every call
  std::vector<double> probs_;  // (vocab_size): their probabilities
  size_t n_candidates_ = 0;
};

}  // namespace ltri
