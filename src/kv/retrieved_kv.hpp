#pragma once
// The retrieved units of a layer in backend memory: the KV of the units retrieval picked
// (kv/retrieval.hpp), where the attention op can see them.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kv/context_store.hpp"
#include "ops/gather_run.hpp"

namespace ltri {

class Backend;

// The retrieved units of one layer, copied into backend memory in store order (so with ordered
// placement their positions follow the original order), always f32 (a bf16 store's rows are
// widened on load, an int8 store's dequantised). Reloading the same list copies nothing.
//
// Two buffers take turns (ping-pong): a new list is built in the idle one, its units that the
// current list already holds copied within backend memory, only the others uploaded from the
// store; then the buffers swap. Successive picks overlap heavily (the chunks of a prompt look
// for much the same context, decode steps even more), so most of a reload never crosses the
// host link, at the price of twice the buffer memory.
class RetrievedKv {
 public:
  RetrievedKv() = default;
  RetrievedKv(Backend& backend, int64_t kv_row, int64_t capacity);
  ~RetrievedKv();
  RetrievedKv(RetrievedKv&& o) noexcept;
  RetrievedKv& operator=(RetrievedKv&& o) noexcept;
  RetrievedKv(const RetrievedKv&) = delete;
  RetrievedKv& operator=(const RetrievedKv&) = delete;

  // Makes `units` (store order, at most capacity tokens in all) the visible retrieved set. The
  // store only grows between loads (or is reset, with clear() here), so a unit already held is
  // still what the store has.
  void load(const ContextStore& store, const std::vector<int64_t>& units);
  void clear();

  // (n_tokens, n_kv_heads, head_dim), backend, pre-RoPE: the picked units, contiguous.
  const float* k() const { return k_[current_]; }
  const float* v() const { return v_[current_]; }
  int64_t n_tokens() const { return n_tokens_; }
  const std::vector<int64_t>& units() const { return units_; }
  size_t bytes() const { return k_[0] ? size_t(2 * 2 * capacity_ * kv_row_) * sizeof(float) : 0; }  // both buffers
  // Host -> backend bytes, cumulative: as the store holds them (2 per value from a bf16 store,
  // 1 per value plus a 4-byte scale per head_dim values from an int8 one).
  int64_t bytes_uploaded() const { return bytes_uploaded_; }

 private:
  void release();

  Backend* backend_ = nullptr;
  int64_t kv_row_ = 0;
  int64_t capacity_ = 0;  // tokens
  float* k_[2] = {nullptr, nullptr};  // (capacity, n_kv_heads, head_dim) each; allocated on first load
  float* v_[2] = {nullptr, nullptr};
  int current_ = 0;  // the buffer holding units_
  int64_t n_tokens_ = 0;
  std::vector<int64_t> units_;
  // held_at_[u]: the token offset of store unit u in the current buffer, -1 if it is not held;
  // sized to the store's units as they come.
  std::vector<int64_t> held_at_;
  int64_t bytes_uploaded_ = 0;
  std::vector<GatherRun> gather_;  // load's batch of copies and uploads
};

}  // namespace ltri
