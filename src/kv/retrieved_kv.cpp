#include "kv/retrieved_kv.hpp"

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
    k_ = o.k_;
    v_ = o.v_;
    n_tokens_ = o.n_tokens_;
    units_ = std::move(o.units_);
    bytes_uploaded_ = o.bytes_uploaded_;
    o.k_ = o.v_ = nullptr;
    o.n_tokens_ = 0;
  }
  return *this;
}

void RetrievedKv::release() {
  if (k_) backend_->free(k_);
  if (v_) backend_->free(v_);
  k_ = v_ = nullptr;
}

void RetrievedKv::load(const ContextStore& store, const std::vector<int64_t>& units) {
  if (units == units_) return;  // decode steps often keep the same set: nothing to copy
  if (!k_ && capacity_ > 0) {
    k_ = backend_->alloc(size_t(capacity_ * kv_row_));
    v_ = backend_->alloc(size_t(capacity_ * kv_row_));
  }
  int64_t offset = 0;
  // Picked units that follow each other in the store (unit u + 1 starts where u ends) go up in
  // one copy per run: on a GPU every upload is a synchronous copy, and neighbouring units are
  // often picked together.
  int64_t run_first = 0, run_length = 0;  // store tokens [run_first, + run_length) not yet copied
  auto flush = [&] {
    if (run_length == 0) return;
    backend_->upload(k_ + offset * kv_row_, store.k(run_first), size_t(run_length * kv_row_));
    backend_->upload(v_ + offset * kv_row_, store.v(run_first), size_t(run_length * kv_row_));
    offset += run_length;
    run_length = 0;
  };
  for (int64_t u : units) {
    const StoredUnit& s = store.units()[size_t(u)];
    if (offset + run_length + s.length > capacity_) {
      fail("retrieved KV: ", offset + run_length + s.length, " tokens exceed the capacity of ", capacity_);
    }
    if (run_length > 0 && s.first_token != run_first + run_length) flush();
    if (run_length == 0) run_first = s.first_token;
    run_length += s.length;
  }
  flush();
  bytes_uploaded_ += 2 * offset * kv_row_ * int64_t(sizeof(float));
  n_tokens_ = offset;
  units_ = units;
}

void RetrievedKv::clear() {
  n_tokens_ = 0;
  units_.clear();
}

}  // namespace ltri
