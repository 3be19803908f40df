#pragma once
// The attention band of a chunk (LTRI_SPEC.md, Prefill step 4): for each of the chunk's query
// rows, the attention to the local keys within `width` tokens of the diagonal. Two things are
// kept from it, per token, until the token leaves the local window:
//  - votes: the attention each key received from later queries (InfLLM's "local score"),
//    per KV head, which picks the keys that represent a block or span for retrieval;
//  - the segmentation map row: A_ij scaled so the row's largest cell is 1, which span
//    discovery cuts into triangles.
//
// The attention op does not emit probabilities, so the band is recomputed here on the host
// from the chunk's queries and the window's keys (cost chunk x width x head_dim per head, a
// few percent of the attention itself for width 256). It runs on the calling thread: its
// work per call is small, and OpenMP regions this small cost more in synchronisation than
// they save on a loaded machine. Two documented approximations follow:
//  - the segmentation row is scaled by its maximum over the band, not over the whole local
//    window: A_ij / max_j A_ij = exp(s_ij - max_j s_ij), so the softmax normaliser cancels and
//    only the band's raw scores s_ij are needed;
//  - votes are the softmax over the band alone (the full row's normaliser would need every
//    visible key).
// Sinks (init tokens) are not local columns and get neither votes nor band cells.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace ltri {

class RopeTable;

// Fixed-width rows (f32) for a run of consecutive tokens, indexed by token id; a ring whose
// capacity is the most tokens a window holds, so it never reallocates once configured.
class TokenRows {
 public:
  TokenRows() = default;
  TokenRows(int64_t width, int64_t capacity);
  void push(int64_t count);           // appends zeroed rows for tokens [end, end + count)
  void drop_until(int64_t token);     // forgets rows of tokens < token
  float* row(int64_t token) { return data_.data() + (token % capacity_) * width_; }
  const float* row(int64_t token) const { return data_.data() + (token % capacity_) * width_; }
  int64_t begin() const { return begin_; }
  int64_t end() const { return end_; }
  int64_t width() const { return width_; }
  void reset(int64_t first) { begin_ = end_ = first; }
  size_t bytes() const { return data_.capacity() * sizeof(float); }

 private:
  int64_t width_ = 0, capacity_ = 1;
  int64_t begin_ = 0, end_ = 0;
  std::vector<float> data_;  // (capacity, width)
};

class BandCollector {
 public:
  BandCollector() = default;
  BandCollector(int64_t n_heads, int64_t n_kv_heads, int64_t head_dim, int64_t width);

  // Kinds of segmentation map: one head's rows, or the mean over heads.
  static constexpr int kMeanOfHeads = -1;

  // q: (n, n_heads, head_dim), host, pre-RoPE: queries of tokens [first_query, first_query + n).
  // keys: (first_query + n - first_key, n_kv_heads, head_dim), host, pre-RoPE: the local keys
  // the band may use, tokens [first_key, first_query + n) (no sinks, nothing evicted). Keys and
  // queries are rotated at their true relative distances (positions t - first_key); `rope` must
  // cover first_query + n - first_key positions.
  // Adds each key's received attention to votes.row(key)[kv head]; when `seg` is given, writes
  // seg->row(t) (width cells, distance d at [d]) for every query token t, from head
  // `seg_head` or the mean of heads (kMeanOfHeads). Rows of both must already exist.
  void compute(const float* q, int64_t n, int64_t first_query, const float* keys,
               int64_t first_key, const RopeTable& rope, int64_t seg_head, TokenRows* seg,
               TokenRows& votes);

  int64_t width() const { return width_; }

 private:
  int64_t n_heads_ = 0, n_kv_heads_ = 0, head_dim_ = 0, width_ = 0;
  std::vector<float> q_rot_;   // (n, n_heads, head_dim), rotated
  std::vector<float> k_rot_;   // (n_keys, n_kv_heads, head_dim), rotated
  std::vector<float> scores_;  // per thread: (query tile, tile + width - 1) raw scores
  std::vector<float> probs_;   // (n_heads, n, width): exp(score - row max), distance d at [d]
  std::vector<float> inv_sum_; // (n_heads, n): 1 / row sum, so probs_ * inv_sum_ is the softmax
  std::vector<float> seg_;     // (n, width): the segmentation map being built
};

}  // namespace ltri
