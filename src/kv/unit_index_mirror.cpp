#include "kv/unit_index_mirror.hpp"

#include <algorithm>
#include <iterator>
#include <limits>
#include <numeric>

#include "core/error.hpp"
#include "ops/backend.hpp"

namespace ltri {

namespace {
constexpr int64_t kMinCapacity = 256;  // vectors per mirrored KV head, units: first allocation
int64_t grown_capacity(int64_t capacity) { return int64_t(double(capacity) * UnitIndexMirror::kGrowth); }
}  // namespace

UnitIndexMirror::~UnitIndexMirror() { release(); }

UnitIndexMirror::UnitIndexMirror(UnitIndexMirror&& o) noexcept { *this = std::move(o); }

UnitIndexMirror& UnitIndexMirror::operator=(UnitIndexMirror&& o) noexcept {
  if (this != &o) {
    release();
    backend_ = o.backend_;
    n_kv_heads_ = o.n_kv_heads_;
    head_dim_ = o.head_dim_;
    heads_ = std::move(o.heads_);
    dtype_ = o.dtype_;
    vectors_ = o.vectors_;
    vector_capacity_ = o.vector_capacity_;
    n_vectors_ = o.n_vectors_;
    unit_starts_ = o.unit_starts_;
    unit_tokens_ = o.unit_tokens_;
    unit_capacity_ = o.unit_capacity_;
    n_units_ = o.n_units_;
    starts_host_ = std::move(o.starts_host_);
    tokens_host_ = std::move(o.tokens_host_);
    o.vectors_ = o.unit_starts_ = o.unit_tokens_ = nullptr;
    o.vector_capacity_ = o.unit_capacity_ = o.n_vectors_ = o.n_units_ = 0;
    o.heads_.clear();
  }
  return *this;
}

void UnitIndexMirror::release() {
  if (vectors_) backend_->free(vectors_);
  if (unit_starts_) backend_->free(unit_starts_);
  if (unit_tokens_) backend_->free(unit_tokens_);
  vectors_ = unit_starts_ = unit_tokens_ = nullptr;
  vector_capacity_ = unit_capacity_ = n_vectors_ = n_units_ = 0;
}

void UnitIndexMirror::clear() {
  n_vectors_ = 0;
  n_units_ = 0;
}

size_t UnitIndexMirror::bytes() const {
  size_t bytes = 0;
  if (vectors_) bytes += row_bytes(n_slots() * vector_capacity_);
  if (unit_starts_) bytes += size_t(unit_capacity_ + 1) * sizeof(float);
  if (unit_tokens_) bytes += size_t(2 * unit_capacity_) * sizeof(float);
  return bytes;
}

void UnitIndexMirror::grow_vectors(int64_t needed) {
  if (needed <= vector_capacity_) return;
  // By a quarter (kGrowth): the copies of the old rows add up to about four times the rows
  // uploaded. Capacities are multiples of kMinCapacity rows, so every mirrored KV head's rows start on a
  // float (even for bf16).
  const int64_t capacity = (std::max({needed, grown_capacity(vector_capacity_), kMinCapacity}) + kMinCapacity - 1) /
                           kMinCapacity * kMinCapacity;
  float* grown = backend_->alloc((row_bytes(n_slots() * capacity) + sizeof(float) - 1) / sizeof(float));
  for (int64_t s = 0; s < n_slots() && n_vectors_ > 0; ++s) {
    // Rows of even length in bf16 (head_dim is even), so whole floats.
    backend_->copy(reinterpret_cast<float*>(reinterpret_cast<unsigned char*>(grown) + row_bytes(s * capacity)),
                   vector_element(s, 0), row_bytes(n_vectors_) / sizeof(float));
  }
  if (vectors_) backend_->free(vectors_);
  vectors_ = grown;
  vector_capacity_ = capacity;
}

void UnitIndexMirror::grow_units(int64_t needed) {
  if (needed <= unit_capacity_ && unit_starts_) return;
  const int64_t capacity = std::max({needed, grown_capacity(unit_capacity_), kMinCapacity});
  float* grown = backend_->alloc(size_t(capacity + 1));  // zeroed: starts[0] = 0
  // int32 entries moved as raw 4-byte words (copy is a byte copy on every backend).
  if (unit_starts_) backend_->copy(grown, unit_starts_, size_t(n_units_ + 1));
  if (unit_starts_) backend_->free(unit_starts_);
  unit_starts_ = grown;
  float* tokens = backend_->alloc(size_t(2 * capacity));
  if (unit_tokens_) backend_->copy(tokens, unit_tokens_, size_t(2 * n_units_));
  if (unit_tokens_) backend_->free(unit_tokens_);
  unit_tokens_ = tokens;
  unit_capacity_ = capacity;
}

int64_t UnitIndexMirror::slot(int64_t kv_head) const {
  const auto it = std::lower_bound(heads_.begin(), heads_.end(), kv_head);
  return it != heads_.end() && *it == kv_head ? int64_t(it - heads_.begin()) : -1;
}

void UnitIndexMirror::sync(Backend& backend, const ContextStore& store) {
  std::vector<int64_t> every(size_t(std::max<int64_t>(store.n_kv_heads(), 0)));
  std::iota(every.begin(), every.end(), int64_t(0));
  sync(backend, store, every);
}

void UnitIndexMirror::sync(Backend& backend, const ContextStore& store, const std::vector<int64_t>& kv_heads) {
  if (backend_ != &backend) {
    release();
    backend_ = &backend;
  }
  // A store of another shape (never the case for one layer's mirror, whose store is fixed):
  // nothing held applies to it, the mirrored heads included.
  if (n_kv_heads_ != 0 &&
      (store.n_kv_heads() != n_kv_heads_ || store.head_dim() != head_dim_ || store.index_dtype() != dtype_)) {
    release();
    heads_.clear();
  }
  for (size_t i = 0; i < kv_heads.size(); ++i) {
    if (kv_heads[i] < 0 || kv_heads[i] >= store.n_kv_heads() || (i > 0 && kv_heads[i] <= kv_heads[i - 1])) {
      fail("unit index: KV heads to mirror must be distinct, ascending and below ", store.n_kv_heads());
    }
  }
  if (!std::includes(heads_.begin(), heads_.end(), kv_heads.begin(), kv_heads.end())) {
    // A head more: the buffer's layout changes, so every row goes up again.
    std::vector<int64_t> wider;
    std::set_union(heads_.begin(), heads_.end(), kv_heads.begin(), kv_heads.end(), std::back_inserter(wider));
    if (vectors_) backend_->free(vectors_);
    vectors_ = nullptr;
    vector_capacity_ = n_vectors_ = 0;
    heads_ = std::move(wider);
  }
  n_kv_heads_ = store.n_kv_heads();
  head_dim_ = store.head_dim();
  dtype_ = store.index_dtype();
  if (dtype_ != DType::F32 && head_dim_ % 2 != 0) {
    fail("unit index: bf16 index vectors of an odd head_dim ", head_dim_, " cannot be mirrored in whole floats");
  }
  const std::vector<StoredUnit>& units = store.units();
  const int64_t n_units = int64_t(units.size());
  const int64_t n_vectors = store.n_vectors();
  if (n_units < n_units_ || n_vectors < n_vectors_) clear();  // the store was reset
  if (n_vectors > int64_t(std::numeric_limits<int32_t>::max())) {
    fail("unit index: ", n_vectors, " index vectors in one layer exceed the int32 unit boundaries");
  }
  if (store.end_token() > int64_t(std::numeric_limits<int32_t>::max())) {
    fail("unit index: token ", store.end_token(), " is past the int32 token ranges of the units");
  }

  if (n_vectors > n_vectors_) {
    grow_vectors(n_vectors);
    // One upload per KV head and contiguous run of the store's index (a run ends at an index
    // block: one or two runs per chunk's worth of new vectors). The store's index blocks are
    // written once per request, like its slabs, so the copies need not wait for the stream.
    for (int64_t s = 0; s < n_slots(); ++s) {
      for (int64_t v0 = n_vectors_; v0 < n_vectors;) {
        const int64_t rows = std::min(store.contiguous_vectors(v0), n_vectors - v0);
        backend_->upload_bytes_stable(vector_element(s, v0), store.index_data(heads_[size_t(s)], v0), row_bytes(rows));
        v0 += rows;
      }
    }
    n_vectors_ = n_vectors;
  }
  if (n_units > n_units_ || !unit_starts_) {
    grow_units(n_units);
    // starts[u + 1] = the end of unit u; units are contiguous in vector order.
    starts_host_.clear();
    tokens_host_.clear();
    for (int64_t u = n_units_; u < n_units; ++u) {
      const StoredUnit& unit = units[size_t(u)];
      starts_host_.push_back(int32_t(unit.first_vector + unit.n_vectors));
      tokens_host_.push_back(int32_t(unit.first_token));
      tokens_host_.push_back(int32_t(unit.length));
    }
    // starts_host_ and tokens_host_ are next changed by the next sync(), after the scoring that
    // follows this one has synchronised the backend (its download of the scores or of the
    // choice): the copies need not be waited for.
    if (!starts_host_.empty()) {
      backend_->upload_bytes_stable(unit_starts_ + n_units_ + 1, starts_host_.data(), starts_host_.size() * sizeof(int32_t));
      backend_->upload_bytes_stable(unit_tokens_ + 2 * n_units_, tokens_host_.data(), tokens_host_.size() * sizeof(int32_t));
    }
    n_units_ = n_units;
  }
}

}  // namespace ltri
