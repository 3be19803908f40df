#include "runtime/sampler.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "core/error.hpp"

namespace ltri {
namespace {

// NaN logits sort as -inf, so a broken row cannot violate the comparator's strict weak order.
inline float key(float logit) { return std::isnan(logit) ? -std::numeric_limits<float>::infinity() : logit; }

}  // namespace

Sampler::Sampler(int64_t vocab_size, const SamplingParams& params)
    : vocab_size_(vocab_size), params_(params), rng_(params.seed) {
  if (vocab_size < 1) fail("sampler: vocabulary size must be >= 1, got ", vocab_size);
  if (!std::isfinite(params.temperature)) fail("--temp: must be a finite number, got ", params.temperature);
  // top_p = 0 would keep no token at all: (0, 1], as the CLI's --top-p check.
  if (!(params.top_p > 0.0f && params.top_p <= 1.0f)) {
    fail("--top-p: must be in (0, 1], got ", params.top_p);
  }
  ids_.resize(size_t(vocab_size));
  probs_.resize(size_t(vocab_size));
}

int32_t Sampler::argmax(const float* logits, int64_t vocab_size) {
  // NaNs are skipped (not ranked as -inf), so a NaN never beats even a -inf logit; a row that
  // is all NaN gives 0.
  int32_t best = -1;
  for (int64_t i = 0; i < vocab_size; ++i) {
    if (std::isnan(logits[i])) continue;
    if (best < 0 || logits[i] > logits[best]) best = int32_t(i);
  }
  return best < 0 ? 0 : best;
}

double Sampler::uniform01() { return double(rng_() >> 11) * 0x1.0p-53; }

size_t Sampler::prepare(const float* logits) {
  if (params_.temperature <= 0.0f) {
    ids_[0] = argmax(logits, vocab_size_);
    probs_[0] = 1.0;
    n_candidates_ = 1;
    return n_candidates_;
  }
  const size_t vocab = size_t(vocab_size_);
  const size_t k = (params_.top_k > 0 && size_t(params_.top_k) < vocab) ? size_t(params_.top_k) : vocab;
  const bool nucleus = params_.top_p < 1.0f;
  std::iota(ids_.begin(), ids_.end(), 0);
  // Most likely first; equal logits in id order, so the candidate order is reproducible.
  const auto more_likely = [logits](int32_t a, int32_t b) {
    const float ka = key(logits[a]), kb = key(logits[b]);
    return ka > kb || (ka == kb && a < b);
  };
  if (k < vocab) {
    std::nth_element(ids_.begin(), ids_.begin() + std::ptrdiff_t(k - 1), ids_.end(), more_likely);
    if (nucleus) std::sort(ids_.begin(), ids_.begin() + std::ptrdiff_t(k), more_likely);
  } else if (nucleus) {
    std::sort(ids_.begin(), ids_.end(), more_likely);
  }
  n_candidates_ = k;

  // softmax(logits / T) over the candidates, in double: exp of (l - max) / T never overflows.
  float max_logit = key(logits[ids_[0]]);
  for (size_t i = 1; i < n_candidates_; ++i) max_logit = std::max(max_logit, key(logits[ids_[i]]));
  const double inv_t = 1.0 / double(params_.temperature);
  double sum = 0.0;
  for (size_t i = 0; i < n_candidates_; ++i) {
    const double p = std::exp((double(key(logits[ids_[i]])) - double(max_logit)) * inv_t);
    probs_[i] = p;
    sum += p;
  }
  if (!(sum > 0.0) || !std::isfinite(sum)) {  // every logit -inf/NaN: fall back to the argmax
    ids_[0] = argmax(logits, vocab_size_);
    probs_[0] = 1.0;
    n_candidates_ = 1;
    return n_candidates_;
  }
  for (size_t i = 0; i < n_candidates_; ++i) probs_[i] /= sum;

  if (nucleus) {
    // The smallest prefix (most likely first) whose mass reaches top_p, never empty: a token is
    // kept while the mass before it is still below p, as transformers' TopPLogitsWarper does.
    double before = 0.0;
    size_t keep = 0;
    while (keep < n_candidates_ && (keep == 0 || before < double(params_.top_p))) before += probs_[keep++];
    n_candidates_ = keep;
    for (size_t i = 0; i < n_candidates_; ++i) probs_[i] /= before;
  }
  return n_candidates_;
}

int32_t Sampler::sample(const float* logits) {
  if (params_.temperature <= 0.0f) return argmax(logits, vocab_size_);
  prepare(logits);
  const double u = uniform01();
  double cumulative = 0.0;
  for (size_t i = 0; i < n_candidates_; ++i) {
    cumulative += probs_[i];
    if (u < cumulative) return ids_[i];
  }
  return ids_[n_candidates_ - 1];  // u within rounding of 1
}

}  // namespace ltri
