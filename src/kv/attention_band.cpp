#include "kv/attention_band.hpp"

#include <algorithm>

#include "core/error.hpp"
#include "ops/backend.hpp"

namespace ltri {

TokenRows::TokenRows(int64_t width, int64_t capacity)
    : width_(width), capacity_(std::max<int64_t>(capacity, 1)), data_(size_t(capacity_ * width)) {}

void TokenRows::push(int64_t count) {
  if (end_ + count - begin_ > capacity_) {
    fail("token rows: ", end_ + count - begin_, " tokens exceed the capacity of ", capacity_);
  }
  for (int64_t t = end_; t < end_ + count; ++t) std::fill(row(t), row(t) + width_, 0.0f);
  end_ += count;
}

void TokenRows::drop_until(int64_t token) { begin_ = std::min(std::max(begin_, token), end_); }

BandCollector::BandCollector(int64_t n_heads, int64_t n_kv_heads, int64_t head_dim, int64_t width)
    : n_heads_(n_heads), n_kv_heads_(n_kv_heads), head_dim_(head_dim), width_(width) {}

PendingBand::~PendingBand() {
  discard();
  if (out_) backend_.free_host(out_);
}

void PendingBand::discard() {
  if (!ready_) return;
  try {
    ready_->wait();
  } catch (...) {  // the rows are not read again; a device error surfaces at the next op
  }
  ready_.reset();
}

void PendingBand::apply(TokenRows& votes, TokenRows* seg) {
  if (!ready_) return;
  ready_->wait();
  ready_.reset();
  for (int64_t j = 0; j < n_keys_; ++j) {
    float* row = votes.row(first_key_ + j);
    const float* add = out_ + j * n_kv_heads_;
    for (int64_t g = 0; g < n_kv_heads_; ++g) row[g] += add[g];
  }
  if (!seg_ || !seg) return;
  const float* rows = out_ + std::max<int64_t>(n_keys_, 0) * n_kv_heads_;
  for (int64_t i = 0; i < n_; ++i) std::copy(rows + i * width_, rows + (i + 1) * width_, seg->row(first_query_ + i));
}

AttentionBandArgs BandCollector::band_args(const float* q, int64_t n, int64_t first_query, const float* keys,
                                           int64_t first_key, int64_t seg_head) const {
  AttentionBandArgs args;
  args.q = q;
  args.keys = keys;
  args.n = n;
  args.first_query = first_query;
  args.first_key = first_key;
  args.n_heads = n_heads_;
  args.n_kv_heads = n_kv_heads_;
  args.head_dim = head_dim_;
  args.width = width_;
  args.seg_head = seg_head;
  return args;
}

bool BandCollector::start(Backend& backend, const float* q, int64_t n, int64_t first_query, const float* keys,
                          int64_t first_key, const RopeTable& rope, int64_t seg_head, bool want_seg,
                          PendingBand& pending) {
  if (!backend.has_attention_band_async()) return false;
  if (pending.pending()) fail("attention band: a band is still pending for these rows");
  const AttentionBandArgs args = band_args(q, n, first_query, keys, first_key, seg_head);
  const int64_t n_keys = std::max<int64_t>(args.n_keys(), 0);
  const size_t floats = size_t(n_keys * n_kv_heads_ + (want_seg ? n * width_ : 0));
  if (floats > pending.capacity_) {
    if (pending.out_) backend.free_host(pending.out_);
    pending.out_ = nullptr;  // (alloc_host may throw)
    pending.out_ = backend.alloc_host(floats);
    pending.capacity_ = floats;
  }
  pending.ready_ = backend.attention_band_async(args, rope, pending.out_, want_seg);
  pending.n_ = n;
  pending.first_query_ = first_query;
  pending.first_key_ = first_key;
  pending.n_keys_ = n_keys;
  pending.n_kv_heads_ = n_kv_heads_;
  pending.width_ = width_;
  pending.seg_ = want_seg;
  return true;
}

void BandCollector::compute(Backend& backend, const float* q, int64_t n, int64_t first_query, const float* keys,
                            int64_t first_key, const RopeTable& rope, int64_t seg_head, TokenRows* seg,
                            TokenRows& votes) {
  const int64_t n_keys = first_query + n - first_key;
  if (n_keys <= 0) return;  // only sinks so far: nothing local to attend to
  // The op adds to a contiguous (n_keys, n_kv_heads) block; TokenRows is a ring, so the keys'
  // rows go out and back through votes_ (a copy of a few KB, and the sums stay those of
  // adding each head's vote to the row in place).
  if (votes_.size() < size_t(n_keys * n_kv_heads_)) votes_.resize(size_t(n_keys * n_kv_heads_));
  if (seg && seg_.size() < size_t(n * width_)) seg_.resize(size_t(n * width_));
  for (int64_t j = 0; j < n_keys; ++j) {
    const float* row = votes.row(first_key + j);
    std::copy(row, row + n_kv_heads_, votes_.data() + j * n_kv_heads_);
  }

  const AttentionBandArgs args = band_args(q, n, first_query, keys, first_key, seg_head);
  backend.attention_band(args, rope, votes_.data(), seg ? seg_.data() : nullptr);

  for (int64_t j = 0; j < n_keys; ++j) {
    const float* row = votes_.data() + j * n_kv_heads_;
    std::copy(row, row + n_kv_heads_, votes.row(first_key + j));
  }
  if (!seg) return;
  for (int64_t i = 0; i < n; ++i) {
    const float* row = seg_.data() + i * width_;
    std::copy(row, row + width_, seg->row(first_query + i));
  }
}

}  // namespace ltri
