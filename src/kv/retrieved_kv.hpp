#pragma once
// The retrieved units of a layer in backend memory: the KV of the units retrieval picked
// (kv/retrieval.hpp), where the attention op can see them.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kv/context_store.hpp"

namespace ltri {

class Backend;

// The retrieved units of one layer, copied into backend memory in store order (so with ordered
// placement their positions follow the original order). Reloading the same list copies nothing.
class RetrievedKv {
 public:
  RetrievedKv() = default;
  RetrievedKv(Backend& backend, int64_t kv_row, int64_t capacity);
  ~RetrievedKv();
  RetrievedKv(RetrievedKv&& o) noexcept;
  RetrievedKv& operator=(RetrievedKv&& o) noexcept;
  RetrievedKv(const RetrievedKv&) = delete;
  RetrievedKv& operator=(const RetrievedKv&) = delete;

  // Makes `units` (store order, at most capacity tokens in all) the visible retrieved set.
  void load(const ContextStore& store, const std::vector<int64_t>& units);
  void clear();

  const float* k() const { return k_; }  // (n_tokens, n_kv_heads, head_dim), backend, pre-RoPE
  const float* v() const { return v_; }
  int64_t n_tokens() const { return n_tokens_; }
  const std::vector<int64_t>& units() const { return units_; }
  size_t bytes() const { return k_ ? size_t(2 * capacity_ * kv_row_) * sizeof(float) : 0; }
  int64_t bytes_uploaded() const { return bytes_uploaded_; }  // host -> backend, cumulative

 private:
  void release();

  Backend* backend_ = nullptr;
  int64_t kv_row_ = 0;
  int64_t capacity_ = 0;  // tokens
  float* k_ = nullptr;    // allocated on first load
  float* v_ = nullptr;
  int64_t n_tokens_ = 0;
  std::vector<int64_t> units_;
  int64_t bytes_uploaded_ = 0;
};

}  // namespace ltri
