#include "kv/full_policy.hpp"

#include <algorithm>

#include "core/error.hpp"
#include "ops/backend.hpp"

namespace ltri {

FullPolicy::FullPolicy(Backend& backend, int64_t n_layers, int64_t n_kv_heads, int64_t head_dim,
                       int64_t max_context)
    : backend_(backend),
      n_layers_(n_layers),
      row_(n_kv_heads * head_dim),
      max_context_(max_context),
      k_(size_t(n_layers), nullptr),
      v_(size_t(n_layers), nullptr) {
  plan_.segments.resize(2);
}

FullPolicy::~FullPolicy() {
  for (float* p : k_) if (p) backend_.free(p);
  for (float* p : v_) if (p) backend_.free(p);
}

void FullPolicy::grow(int64_t capacity) {
  for (int64_t l = 0; l < n_layers_; ++l) {
    float* k = backend_.alloc(size_t(capacity * row_));
    float* v = backend_.alloc(size_t(capacity * row_));
    if (k_[size_t(l)]) {  // growth happens O(log n) times per session
      backend_.copy(k, k_[size_t(l)], size_t(n_past_ * row_));
      backend_.copy(v, v_[size_t(l)], size_t(n_past_ * row_));
      backend_.free(k_[size_t(l)]);
      backend_.free(v_[size_t(l)]);
    }
    k_[size_t(l)] = k;
    v_[size_t(l)] = v;
  }
  capacity_ = capacity;
}

void FullPolicy::begin_chunk(int64_t n) {
  const int64_t need = n_past_ + n;
  if (need > max_context_) {
    fail("prompt of ", need, " tokens exceeds the context limit of ", max_context_, " (-c)");
  }
  if (need > capacity_) grow(std::min(max_context_, std::max<int64_t>({need, 2 * capacity_, 256})));
}

const AttentionPlan& FullPolicy::plan(int64_t layer, const float* /*q*/, const float* k, const float* v,
                                      int64_t n) {
  float* k_dst = k_[size_t(layer)] + n_past_ * row_;
  float* v_dst = v_[size_t(layer)] + n_past_ * row_;
  backend_.copy(k_dst, k, size_t(n * row_));
  backend_.copy(v_dst, v, size_t(n * row_));
  // Earlier tokens, all visible, at their true positions; then the chunk itself, causal.
  plan_.segments[0] = {k_[size_t(layer)], v_[size_t(layer)], n_past_, 0, 1, false, -1};
  plan_.segments[1] = {k_dst, v_dst, n, n_past_, 1, true, -1};
  plan_.query_first_position = n_past_;
  return plan_;
}

void FullPolicy::end_chunk(int64_t n) { n_past_ += n; }

size_t FullPolicy::kv_bytes() const {
  return size_t(2 * n_layers_ * capacity_ * row_) * sizeof(float);
}

}  // namespace ltri
