#include "kv/context_store.hpp"

namespace ltri {

ContextStore::ContextStore(int64_t n_kv_heads, int64_t head_dim, int64_t first_token)
    : n_kv_heads_(n_kv_heads),
      head_dim_(head_dim),
      first_token_(first_token),
      index_(size_t(n_kv_heads)) {}

void ContextStore::add_unit(const float* k, const float* v, int64_t length, const float* vectors,
                            int64_t n_vectors) {
  // std::vector growth is geometric, so the store's cost per token is amortised O(1).
  k_.insert(k_.end(), k, k + length * row());
  v_.insert(v_.end(), v, v + length * row());
  for (int64_t g = 0; g < n_kv_heads_; ++g) {
    const float* src = vectors + g * n_vectors * head_dim_;
    index_[size_t(g)].insert(index_[size_t(g)].end(), src, src + n_vectors * head_dim_);
  }
  units_.push_back({first_token_ + n_tokens_, length, n_vectors_, n_vectors});
  n_tokens_ += length;
  n_vectors_ += n_vectors;
}

size_t ContextStore::bytes() const {
  size_t floats = k_.capacity() + v_.capacity();
  for (const auto& ix : index_) floats += ix.capacity();
  return floats * sizeof(float) + units_.capacity() * sizeof(StoredUnit);
}

void ContextStore::reset(int64_t first_token) {
  first_token_ = first_token;
  n_tokens_ = 0;
  n_vectors_ = 0;
  k_.clear();
  v_.clear();
  for (auto& ix : index_) ix.clear();
  units_.clear();
}

}  // namespace ltri
