#include "kv/retrieved_kv.hpp"

#include <algorithm>
#include <utility>

#include "core/error.hpp"
#include "ops/backend.hpp"

namespace ltri {

RetrievedKv::RetrievedKv(Backend& backend, int64_t kv_row, int64_t capacity)
    : backend_(&backend), kv_row_(kv_row), capacity_(capacity) {}

RetrievedKv::~RetrievedKv() { release(); }

RetrievedKv::RetrievedKv(RetrievedKv&& o) noexcept { *this = std::move(o); }

RetrievedKv& RetrievedKv::operator=(RetrievedKv&& o) noexcept {
  if (this != &o) {
    release();
    backend_ = o.backend_;
    kv_row_ = o.kv_row_;
    capacity_ = o.capacity_;
    for (int b = 0; b < 2; ++b) {
      k_[b] = std::exchange(o.k_[b], nullptr);
      v_[b] = std::exchange(o.v_[b], nullptr);
    }
    current_ = o.current_;
    n_tokens_ = std::exchange(o.n_tokens_, 0);
    units_ = std::move(o.units_);
    held_at_ = std::move(o.held_at_);
    bytes_uploaded_ = o.bytes_uploaded_;
    gather_ = std::move(o.gather_);
  }
  return *this;
}

void RetrievedKv::release() {
  for (int b = 0; b < 2; ++b) {
    if (k_[b]) backend_->free(k_[b]);
    if (v_[b]) backend_->free(v_[b]);
    k_[b] = v_[b] = nullptr;
  }
}

void RetrievedKv::load(const ContextStore& store, const std::vector<int64_t>& units) {
  if (units == units_) return;  // decode steps often keep the same set: nothing to copy
  if (!k_[0] && capacity_ > 0) {
    for (int b = 0; b < 2; ++b) {
      k_[b] = backend_->alloc(size_t(capacity_ * kv_row_));
      v_[b] = backend_->alloc(size_t(capacity_ * kv_row_));
    }
  }
  const std::vector<StoredUnit>& stored = store.units();
  if (held_at_.size() < stored.size()) held_at_.resize(stored.size(), -1);
  const int next = 1 - current_;
  float* k_dst = k_[next];
  float* v_dst = v_[next];
  const float* k_held = k_[current_];
  const float* v_held = v_[current_];

  // The new list is laid out in runs: units held now that sit next to each other in the current
  // buffer (copied within the backend), or units not held that follow each other in the store
  // (uploaded per contiguous piece of store memory; neighbouring units are often picked
  // together). All runs of K and V go to the backend as one batch (gather_rows_stable): a
  // chunk's load is a few hundred runs, and one device copy or upload per run cost more than
  // the bytes (8B shape, 128K tokens, int8 store: 1.18 ms per layer and chunk, 22% of the
  // prefill). The store's rows stay put until it is reset, so the uploads need not wait for the
  // device.
  int64_t offset = 0;           // tokens of the new buffer written so far
  int64_t tokens_uploaded = 0;  // of them, from the host
  bool run_held = false;        // the pending run comes from the current buffer, else from the store
  int64_t run_source = 0;       // its first token: offset in the current buffer, or store token id
  int64_t run_length = 0;
  const DType dtype = store.kv_dtype();
  const bool int8 = dtype == DType::I8;  // then with one scale per (token, KV head) row of head_dim values
  gather_.clear();
  auto flush = [&] {
    if (run_length == 0) return;
    const int64_t n = run_length * kv_row_;
    if (run_held) {
      gather_.push_back({k_dst + offset * kv_row_, n, k_held + run_source * kv_row_, nullptr, nullptr});
      gather_.push_back({v_dst + offset * kv_row_, n, v_held + run_source * kv_row_, nullptr, nullptr});
    } else {
      for (int64_t done = 0; done < run_length;) {
        const int64_t token = run_source + done;
        const int64_t piece = std::min(run_length - done, store.contiguous_tokens(token));
        gather_.push_back({k_dst + (offset + done) * kv_row_, piece * kv_row_, nullptr, store.k_data(token),
                           int8 ? store.k_scales(token) : nullptr});
        gather_.push_back({v_dst + (offset + done) * kv_row_, piece * kv_row_, nullptr, store.v_data(token),
                           int8 ? store.v_scales(token) : nullptr});
        done += piece;
      }
      tokens_uploaded += run_length;
    }
    offset += run_length;
    run_length = 0;
  };
  for (int64_t u : units) {
    if (u < 0 || u >= int64_t(stored.size())) fail("retrieved KV: unit ", u, " is not in the store (", stored.size(), " units)");
    const StoredUnit& s = stored[size_t(u)];
    if (offset + run_length + s.length > capacity_) {
      fail("retrieved KV: ", offset + run_length + s.length, " tokens exceed the capacity of ", capacity_);
    }
    const bool held = held_at_[size_t(u)] >= 0;
    const int64_t source = held ? held_at_[size_t(u)] : s.first_token;
    if (run_length > 0 && (held != run_held || source != run_source + run_length)) flush();
    if (run_length == 0) {
      run_held = held;
      run_source = source;
    }
    run_length += s.length;
  }
  flush();
  backend_->gather_rows_stable(gather_, dtype, store.head_dim());

  for (int64_t u : units_) held_at_[size_t(u)] = -1;
  int64_t at = 0;
  for (int64_t u : units) {
    held_at_[size_t(u)] = at;
    at += stored[size_t(u)].length;
  }
  bytes_uploaded_ += 2 * tokens_uploaded * store.stored_row_bytes();
  n_tokens_ = offset;
  units_ = units;
  current_ = next;
}

void RetrievedKv::clear() {
  for (int64_t u : units_) held_at_[size_t(u)] = -1;
  n_tokens_ = 0;
  units_.clear();
}

}  // namespace ltri
