#pragma once
// The store of evicted KV of one layer, in host memory: every token that left the local window
// (except the init tokens), in order, grouped in units (InfLLM's fixed blocks or Ltri's spans),
// each unit with its index vectors (keys chosen to represent it for retrieval).
//
// Units are added with their tokens, so the units partition the stored tokens exactly and in
// order by construction: unit u covers tokens [first_token, first_token + length), and the next
// unit starts where it ends.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace ltri {

struct StoredUnit {
  int64_t first_token = 0;   // token id (position in the original stream)
  int64_t length = 0;
  int64_t first_vector = 0;  // its index vectors in ContextStore::index(g)
  int64_t n_vectors = 0;     // the same count for every KV head
};

class ContextStore {
 public:
  ContextStore() = default;
  // first_token: id of the first token the store will hold (the first token after the init).
  ContextStore(int64_t n_kv_heads, int64_t head_dim, int64_t first_token);

  // Adds the next `length` tokens as one unit. k, v: (length, n_kv_heads, head_dim), pre-RoPE,
  // host. vectors: (n_kv_heads, n_vectors, head_dim), the unit's index vectors per KV head.
  void add_unit(const float* k, const float* v, int64_t length, const float* vectors,
                int64_t n_vectors);

  int64_t n_kv_heads() const { return n_kv_heads_; }
  int64_t head_dim() const { return head_dim_; }
  int64_t first_token() const { return first_token_; }
  int64_t n_tokens() const { return n_tokens_; }
  int64_t end_token() const { return first_token_ + n_tokens_; }  // one past the last stored
  const std::vector<StoredUnit>& units() const { return units_; }
  // (n_tokens, n_kv_heads, head_dim) rows of token `token`.
  const float* k(int64_t token) const { return k_.data() + (token - first_token_) * row(); }
  const float* v(int64_t token) const { return v_.data() + (token - first_token_) * row(); }
  // Index vectors of KV head g: (n_vectors, head_dim).
  const float* index(int64_t g) const { return index_[size_t(g)].data(); }
  int64_t n_vectors() const { return n_vectors_; }

  size_t bytes() const;  // host bytes reserved
  void reset(int64_t first_token);

 private:
  int64_t row() const { return n_kv_heads_ * head_dim_; }

  int64_t n_kv_heads_ = 0, head_dim_ = 0;
  int64_t first_token_ = 0;
  int64_t n_tokens_ = 0;
  int64_t n_vectors_ = 0;
  std::vector<float> k_;  // (n_tokens, n_kv_heads, head_dim), pre-RoPE
  std::vector<float> v_;  // (n_tokens, n_kv_heads, head_dim)
  std::vector<std::vector<float>> index_;  // per KV head: (n_vectors, head_dim), pre-RoPE keys
  std::vector<StoredUnit> units_;
};

}  // namespace ltri
