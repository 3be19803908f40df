#pragma once
// A copy of a ContextStore's index vectors and unit boundaries in backend memory, for a backend
// that scores units where its memory is (Backend::score_units; CUDA). The policy owns one per
// layer next to the store and hands both to the op; the op decides whether it needs the
// mirror: the default (host) op reads the store and never touches it, so on the CPU backend
// it stays empty and costs nothing. sync() appends only what the store gained since the last
// call, into buffers that grow by a quarter, so a chunk uploads only its new vectors. It holds
// only the KV heads the scoring asks for: with one retrieval head per layer (--attn-score-heads
// retrieval) one KV head's vectors of n_kv_heads, 8x less at 8B shape. (Doubling
// left up to half of the largest buffers empty: at 8B shape the mirror grows ~16-33 KB a
// token, and what the GPU holds at 1M tokens is bounded by it. A quarter costs more copies of
// old rows, device-to-device, about four times the final size in all: milliseconds.)
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kv/context_store.hpp"

namespace ltri {

class Backend;

class UnitIndexMirror {
 public:
  // Capacity after a growth: this times the old one, or what is needed if more (rounded up to
  // 256 rows), so a mirror never holds more than kGrowth times its vectors plus the rounding;
  // StreamingPolicyBase::device_growth counts on that bound.
  static constexpr double kGrowth = 1.25;

  UnitIndexMirror() = default;
  ~UnitIndexMirror();
  UnitIndexMirror(UnitIndexMirror&& o) noexcept;
  UnitIndexMirror& operator=(UnitIndexMirror&& o) noexcept;
  UnitIndexMirror(const UnitIndexMirror&) = delete;
  UnitIndexMirror& operator=(const UnitIndexMirror&) = delete;

  // Makes the mirror equal to `store`: uploads the vectors and units added since the last
  // sync (everything after clear()). The store only grows between resets, so a store with
  // fewer units than mirrored was reset and is mirrored again from the start; a store reset
  // and refilled past the mirror between two syncs is not detectable here: the owner calls
  // clear() whenever it resets the store.
  // kv_heads: the KV heads the caller will score, sorted and distinct. A KV head not mirrored
  // yet widens the mirror to the union of both sets, uploaded again from the start (a scorer
  // asks for the same heads every time; a debug trace that scores head by head widens it once).
  void sync(Backend& backend, const ContextStore& store, const std::vector<int64_t>& kv_heads);
  void sync(Backend& backend, const ContextStore& store);  // every KV head
  // Forgets the contents and keeps the memory.
  void clear();

  // Index vectors: (heads().size(), capacity, head_dim) in dtype() (the store's index dtype,
  // bf16 as raw bits); the mirrored KV head g = heads()[s] from element s * head_stride(); rows
  // [0, n_vectors()) of it are the store's index_data(g, i), i = 0, 1, ... Backend memory.
  const void* vectors() const { return vectors_; }
  const std::vector<int64_t>& heads() const { return heads_; }  // mirrored KV heads, ascending
  int64_t slot(int64_t kv_head) const;  // s with heads()[s] == kv_head, or -1
  DType dtype() const { return dtype_; }
  int64_t head_stride() const { return vector_capacity_ * head_dim_; }
  int64_t n_vectors() const { return n_vectors_; }
  // (n_units + 1) int32, backend memory: unit u owns vectors [starts[u], starts[u + 1]).
  const int32_t* unit_starts() const { return reinterpret_cast<const int32_t*>(unit_starts_); }
  // (n_units, 2) int32, backend memory: unit u's first token id and length (the choice on the
  // backend reads them: Backend::select_by_budget_device and the vote ops).
  const int32_t* unit_tokens() const { return reinterpret_cast<const int32_t*>(unit_tokens_); }
  int64_t n_units() const { return n_units_; }
  size_t bytes() const;  // backend bytes held

 private:
  void release();
  void grow_vectors(int64_t needed);
  void grow_units(int64_t needed);

  // Bytes of `rows` rows of head_dim values in dtype_.
  size_t row_bytes(int64_t rows) const { return size_t(rows * head_dim_) * dtype_size(dtype_); }
  float* vector_element(int64_t slot, int64_t row) const {  // where row `row` of heads_[slot] starts
    return reinterpret_cast<float*>(reinterpret_cast<unsigned char*>(vectors_) + row_bytes(slot * vector_capacity_ + row));
  }
  int64_t n_slots() const { return int64_t(heads_.size()); }

  Backend* backend_ = nullptr;  // the backend of the memory held, set by the first sync
  int64_t n_kv_heads_ = 0, head_dim_ = 0;  // the store's
  std::vector<int64_t> heads_;    // the mirrored KV heads, ascending
  DType dtype_ = DType::F32;
  float* vectors_ = nullptr;      // (heads_.size(), vector_capacity, head_dim) in dtype_
  int64_t vector_capacity_ = 0;   // rows per KV head
  int64_t n_vectors_ = 0;
  float* unit_starts_ = nullptr;  // int32 (unit_capacity + 1), in a float allocation
  float* unit_tokens_ = nullptr;  // int32 (unit_capacity, 2), in a float allocation
  int64_t unit_capacity_ = 0;
  int64_t n_units_ = 0;
  std::vector<int32_t> starts_host_, tokens_host_;  // staging for the new units' starts and token ranges
};

}  // namespace ltri
