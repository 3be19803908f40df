#pragma once
// The attention band's results kept by the streaming policies (LTRI_SPEC.md, Prefill step 4):
// per token, until it leaves the local window, the votes it received (per KV head) and its
// segmentation map row. The band itself is a backend op (Backend::attention_band; semantics and
// host reference in ops/attention_band_host.hpp), computed where the queries and keys live;
// BandCollector hands it a chunk and files its results into the policy's TokenRows.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "ops/attention_band_host.hpp"

namespace ltri {

class Backend;
class BackendFence;
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

// A band queued with Backend::attention_band_async whose results are not yet in the policy's
// rows: apply() files them, as BandCollector::compute would have (the same sums bit for bit).
// One per layer; its host buffer (from alloc_host) is reused chunk after chunk.
class PendingBand {
 public:
  explicit PendingBand(Backend& backend) : backend_(backend) {}
  ~PendingBand();  // waits for a copy still in flight into the buffer, then frees it
  PendingBand(const PendingBand&) = delete;
  PendingBand& operator=(const PendingBand&) = delete;

  bool pending() const { return ready_ != nullptr; }
  // Waits for the results, adds the chunk's votes to votes' rows and writes seg's rows (when
  // the band was queued with them); afterwards nothing is pending. Any thread.
  void apply(TokenRows& votes, TokenRows* seg);
  // Waits for a copy in flight and forgets it (a reset: nobody reads those rows again).
  void discard();

 private:
  friend class BandCollector;
  Backend& backend_;
  float* out_ = nullptr;  // host: [votes (n_keys, n_kv_heads) | seg (n, width)]
  size_t capacity_ = 0;   // floats
  std::shared_ptr<BackendFence> ready_;
  int64_t n_ = 0, first_query_ = 0, first_key_ = 0, n_keys_ = 0, n_kv_heads_ = 0, width_ = 0;
  bool seg_ = false;
};

class BandCollector {
 public:
  BandCollector() = default;
  BandCollector(int64_t n_heads, int64_t n_kv_heads, int64_t head_dim, int64_t width);

  // Kinds of segmentation map: one head's rows, or the mean over heads.
  static constexpr int64_t kMeanOfHeads = kBandMeanOfHeads;

  // q: (n, n_heads, head_dim), backend memory, pre-RoPE: queries of tokens [first_query,
  // first_query + n). keys: (first_query + n - first_key, n_kv_heads, head_dim), backend memory,
  // pre-RoPE: the local keys the band may use, tokens [first_key, first_query + n) (no sinks,
  // nothing evicted). `rope` must cover first_query + n - first_key positions.
  // Adds each key's received attention to votes.row(key)[kv head]; when `seg` is given, writes
  // seg->row(t) (width cells, distance d at [d]) for every query token t, from head
  // `seg_head` or the mean of heads (kMeanOfHeads). Rows of both must already exist.
  void compute(Backend& backend, const float* q, int64_t n, int64_t first_query, const float* keys,
               int64_t first_key, const RopeTable& rope, int64_t seg_head, TokenRows* seg, TokenRows& votes);

  // compute() without the host waiting for the band, where the backend can
  // (Backend::attention_band_async): queues it into `pending`, whose apply() later files its
  // results into the rows (which must still exist then). Returns false, queuing nothing, when
  // the backend has no asynchronous band (Backend::has_attention_band_async): call compute().
  // `pending` must have nothing pending.
  bool start(Backend& backend, const float* q, int64_t n, int64_t first_query, const float* keys, int64_t first_key,
             const RopeTable& rope, int64_t seg_head, bool want_seg, PendingBand& pending);

  int64_t width() const { return width_; }

 private:
  AttentionBandArgs band_args(const float* q, int64_t n, int64_t first_query, const float* keys, int64_t first_key,
                              int64_t seg_head) const;

  int64_t n_heads_ = 0, n_kv_heads_ = 0, head_dim_ = 0, width_ = 0;
  std::vector<float> votes_;  // (n_keys, n_kv_heads): the keys' rows of TokenRows, contiguous
  std::vector<float> seg_;    // (n, width): the chunk's segmentation rows
};

}  // namespace ltri
