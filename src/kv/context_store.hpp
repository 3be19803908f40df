#pragma once
// The store of evicted KV of one layer, in host memory: every token that left the local window
// (except the init tokens), in order, grouped in units (InfLLM's fixed blocks or Ltri's spans),
// each unit with its index vectors (keys chosen to represent it for retrieval).
//
// Units are added with their tokens, so the units partition the stored tokens exactly and in
// order by construction: unit u covers tokens [first_token, first_token + length), and the next
// unit starts where it ends.
//
// K and V live in slabs allocated as the store grows: adding never moves what is stored (a
// growing std::vector re-copied the whole store, 256 MB per layer at 32K tokens of an 8B model,
// and first-touched fresh pages each time), and the memory comes from the backend's alloc_host
// (pinned on CUDA, so retrieval uploads run at full speed). Each slab holds twice the tokens of
// the one before, up to max_slab_tokens: pinning memory has a cost per call, and fixed slabs of
// 2048 tokens made a 32K-token prompt of an 8B model 512 calls of cudaHostAlloc; doubling makes
// it a handful per layer, while the memory reserved but unused stays below one slab. A run of
// tokens may therefore cross a slab boundary: readers copy per contiguous piece
// (contiguous_tokens).
//
// Pinning also costs per byte (~35 ms for a 128 MB slab with cudaHostAlloc on the H200 host).
// With LTRI_STORE_ALLOC_AHEAD=1, once the store has filled half of its last slab, the next slab
// (its size is known) is allocated on a background thread (BackgroundHostAlloc), and add_unit
// waits only if that thread is behind; the memory reserved ahead is at most one slab, and a
// store destroyed with the allocation in flight waits for it and frees it. It is off by
// default: on the GPU the background page-locking slowed the main thread's CUDA calls more
// than it saved (docs/performance.md, sixth run); the CUDA backend's cheaper pinning
// (kernels/cuda/host_pinning.hpp) took most of the cost away instead.
//
// The index vectors live in fixed-size blocks, each holding index_block_vectors vectors of
// every KV head, allocated when the store reaches them and never moved: one growing
// std::vector per KV head re-copied itself and faulted in fresh pages at each doubling (30 us
// per add_unit at 32K tokens of an 8B model, where short spans keep nearly every key). The
// vectors of one KV head are contiguous within a block: readers take them per contiguous run
// (contiguous_vectors), like the K/V rows. The block size is a multiple of kIndexBlockMultiple
// vectors, so retrieval's scoring tiles of 1024 vectors never straddle a block and score exactly
// as over one contiguous matrix (bit for bit). Huge pages for the blocks (madvise
// MADV_HUGEPAGE) made add_unit no faster on a 2-core VM, where first writes cost the zeroing of
// the pages, not the number of faults; not used. The blocks come from the backend's alloc_host
// like the slabs: on CUDA they are page-locked, so the index mirror's uploads of new vectors are
// asynchronous copies at full speed instead of staged pageable ones.
//
// Index vectors are held in f32, or in bf16 (index_dtype BF16, --attn-index-dtype): half the
// host memory and half the device mirror's (at random 8B weights, where spans are a few tokens
// long and keep nearly every key, the index is as large as the keys themselves). Scoring then
// multiplies bf16 vectors by bf16-rounded queries and sums in f32 (retrieval.hpp), on the CPU
// as on the GPU's tensor cores.
//
// The store may be driven from any thread, one thread at a time (it keeps no thread-bound
// state); the backend's alloc_host/free_host must be thread-safe, since slabs are allocated on
// a thread of their own.
//
// K/V are held in f32, or in bf16 (kv_dtype BF16, --attn-host-kv bf16): half the host memory
// (an 8B model's store at 1M tokens: 128 GiB instead of 256), each value rounded to nearest
// even once when stored; or in int8 (kv_dtype I8, --attn-host-kv int8): each (token, KV head)
// row of head_dim values quantised with one f32 scale, absmax / 127 (q = round(x / scale), so
// q * scale is within scale / 2 of x), 1 + 4 / head_dim bytes per value (an 8B model's store at
// 1M tokens: 66 GiB). Retrieval converts back to f32 on load (RetrievedKv).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <vector>

#include "core/dtype.hpp"
#include "kv/background_host_alloc.hpp"

namespace ltri {

class Backend;

struct StoredUnit {
  int64_t first_token = 0;   // token id (position in the original stream)
  int64_t length = 0;
  int64_t first_vector = 0;  // its first index vector, ContextStore::index_vector(g, first_vector)
  int64_t n_vectors = 0;     // the same count for every KV head
};

// What select_by_budget needs of a store's units besides their order, kept as units are added so
// that a selection need not pass over every unit to find it (ContextStore::unit_summary).
struct UnitSummary {
  int64_t count = 0;     // units
  int64_t tokens = 0;    // their summed lengths
  int64_t shortest = std::numeric_limits<int64_t>::max();  // the shortest unit's length
};

class ContextStore {
 public:
  // Tokens of the first slab and the most of any slab unless the constructor is told
  // otherwise: the first slab is 16 MB of K and V at 8 KV heads x 128 dims in f32, the largest
  // 128 MB, so a 32K-token layer takes 5 slabs (2K, 4K, 8K, 16K, 16K tokens).
  static constexpr int64_t kFirstSlabTokens = 2048;
  static constexpr int64_t kMaxSlabTokens = 16384;
  // Index blocks hold a multiple of this many vectors: retrieval scores the index in tiles of
  // 1024 vectors, and a tile cut in two by a block boundary would score differently in the last
  // bits (cblas_sgemm's results depend on how columns are tiled).
  static constexpr int64_t kIndexBlockMultiple = 1024;
  // Vectors per KV head in one index block unless the constructor is told otherwise: 2 MiB per
  // KV head at 128 dims (16 MiB a block for 8 KV heads), a few blocks per layer at 32K tokens of
  // an 8B model and the unused reserve below one block.
  static constexpr int64_t kIndexBlockVectors = 4 * kIndexBlockMultiple;

  ContextStore() = default;
  // first_token: id of the first token the store will hold (the first token after the init).
  // host_memory: the backend whose alloc_host/free_host hold the slabs; null = plain new/delete
  // (tests, tools). It must outlive the store. kv_dtype: F32, BF16 or I8, how K/V rows are held.
  // Slab j holds min(first_slab_tokens * 2^j, max_slab_tokens) tokens (max_slab_tokens is
  // raised to first_slab_tokens if below it; equal values give fixed-size slabs).
  // index_block_vectors: vectors per KV head in one index block, a multiple of
  // kIndexBlockMultiple; 0 = the default. index_dtype: F32 or BF16, how index vectors are held.
  ContextStore(int64_t n_kv_heads, int64_t head_dim, int64_t first_token, Backend* host_memory = nullptr,
               DType kv_dtype = DType::F32, int64_t first_slab_tokens = kFirstSlabTokens,
               int64_t max_slab_tokens = kMaxSlabTokens, int64_t index_block_vectors = 0,
               DType index_dtype = DType::F32);

  // Adds the next `length` tokens as one unit. k, v: (length, n_kv_heads, head_dim) f32 (rounded
  // to bf16 in a BF16 store, quantised in an I8 one), pre-RoPE, host. vectors: (n_kv_heads, n_vectors, head_dim) f32,
  // the unit's index vectors per KV head (rounded to bf16 with a BF16 index).
  void add_unit(const float* k, const float* v, int64_t length, const float* vectors,
                int64_t n_vectors);

  int64_t n_kv_heads() const { return n_kv_heads_; }
  int64_t head_dim() const { return head_dim_; }
  int64_t first_token() const { return first_token_; }
  int64_t n_tokens() const { return n_tokens_; }
  int64_t end_token() const { return first_token_ + n_tokens_; }  // one past the last stored
  int64_t first_slab_tokens() const { return first_slab_tokens_; }
  int64_t max_slab_tokens() const { return max_slab_tokens_; }
  DType kv_dtype() const { return kv_dtype_; }
  DType index_dtype() const { return index_dtype_; }
  const std::vector<StoredUnit>& units() const { return units_; }
  const UnitSummary& unit_summary() const { return summary_; }  // of units()
  // The (n_kv_heads, head_dim) K or V row of stored token `token`, in kv_dtype (bf16 as raw
  // bits, int8 as int8_t); the rows of the tokens after it follow in memory for
  // contiguous_tokens(token) tokens, not necessarily further.
  const void* k_data(int64_t token) const {
    const int64_t at = token - first_token_;
    const size_t j = slab_index(at);
    return slabs_[j].base() + (at - slabs_[j].begin) * row_bytes();
  }
  const void* v_data(int64_t token) const {
    const int64_t at = token - first_token_;
    const size_t j = slab_index(at);
    return slabs_[j].base() + (slabs_[j].tokens + at - slabs_[j].begin) * row_bytes();
  }
  // The same rows as f32, for an F32 store only (fails on another).
  const float* k(int64_t token) const { return static_cast<const float*>(check_f32(k_data(token))); }
  const float* v(int64_t token) const { return static_cast<const float*>(check_f32(v_data(token))); }
  // An I8 store's scales of the same rows: (n_kv_heads) f32, KV head g's values times
  // scales[g] are the row's values; the scales of the tokens after it follow for
  // contiguous_tokens(token) tokens. Fails on another store.
  const float* k_scales(int64_t token) const { return scales(token, false); }
  const float* v_scales(int64_t token) const { return scales(token, true); }
  // Bytes one token's K (or V) takes in the store: its row, plus its scales in an I8 store.
  int64_t stored_row_bytes() const { return row_bytes() + (kv_dtype_ == DType::I8 ? n_kv_heads_ * 4 : 0); }
  // How many stored tokens from `token` on (itself included) have their rows in one piece of
  // memory: up to the end of its slab or of the store.
  int64_t contiguous_tokens(int64_t token) const;
  // Index vector i (0 <= i < n_vectors()) of KV head g: head_dim values in index_dtype (bf16 as
  // raw bits); the vectors after it of the same KV head follow in memory for
  // contiguous_vectors(i) vectors, not necessarily further. Vectors are numbered in the order
  // they were added, units' in unit order.
  const void* index_data(int64_t g, int64_t i) const {
    const int64_t block = i / index_block_vectors_;
    return index_blocks_[size_t(block)].get() +
           (g * index_block_vectors_ + i - block * index_block_vectors_) * head_dim_ * int64_t(dtype_size(index_dtype_));
  }
  // The same vector as f32, for an F32 index only (fails on a BF16 one).
  const float* index_vector(int64_t g, int64_t i) const;
  // How many vectors from i on (itself included) are in one piece, per KV head: up to the end of
  // its index block or of the stored vectors.
  int64_t contiguous_vectors(int64_t i) const {
    return std::min(index_block_vectors_ - i % index_block_vectors_, n_vectors_ - i);
  }
  int64_t n_vectors() const { return n_vectors_; }
  int64_t index_block_vectors() const { return index_block_vectors_; }

  // Host bytes reserved: slabs (the one being allocated ahead included), index blocks, unit table.
  size_t bytes() const;
  // Forgets every unit; the slabs and index blocks stay allocated for the next request (bytes()
  // is unchanged), a slab being allocated ahead included.
  void reset(int64_t first_token);
  // Whether the next slab is page-locked on a background thread once the last one is half
  // full (allocates_ahead(): LTRI_STORE_ALLOC_AHEAD, off by default); the tests turn it on.
  void set_allocate_ahead(bool on) { allocate_ahead_ = on; }
  // LTRI_STORE_ALLOC_AHEAD: 1 on, 0 or unset off; another value is an error naming it.
  static bool allocates_ahead();

 private:
  // Frees a slab through the backend that allocated it (or delete[] without one).
  struct SlabFree {
    Backend* backend = nullptr;
    void operator()(float* p) const { free_host_memory(backend, p); }
  };

  // K rows (tokens of them), then V rows (tokens), for the store offsets [begin, begin + tokens).
  struct Slab {
    std::unique_ptr<float[], SlabFree> memory;
    int64_t begin = 0;   // store offset (token - first_token) of its first row
    int64_t tokens = 0;  // rows of K, and of V, it holds
    unsigned char* base() const { return reinterpret_cast<unsigned char*>(memory.get()); }
  };

  int64_t row() const { return n_kv_heads_ * head_dim_; }
  int64_t row_bytes() const { return row() * int64_t(dtype_size(kv_dtype_)); }
  // The slab holding store offset `at` (0 <= at < the slabs' capacity), by binary search over
  // the slabs' begins (a few dozen slabs even at 1M tokens).
  size_t slab_index(int64_t at) const;
  size_t slab_floats(int64_t tokens) const;  // memory of a slab of `tokens` rows of K and of V
  int64_t slab_tokens(size_t j) const;        // rows of slab j: doubling from the first, capped
  // Appends slab number slabs_.size(): the one allocated ahead if there is one (waiting for it),
  // else allocated now.
  void take_next_slab();
  // Starts allocating the slab after the last one once the store has filled half of it (only
  // with LTRI_STORE_ALLOC_AHEAD=1).
  void allocate_ahead();
  size_t index_block_floats() const;  // floats of memory for one index block: (n_kv_heads, index_block_vectors, head_dim)
  void copy_index_vectors(const float* vectors, int64_t n_vectors);
  const void* check_f32(const void* row) const;
  // Where an I8 slab of `tokens` rows keeps its scales: after the K and V values, 4-aligned.
  int64_t scales_offset(int64_t tokens) const { return (2 * tokens * row_bytes() + 3) / 4 * 4; }
  const float* scales(int64_t token, bool of_v) const;

  int64_t n_kv_heads_ = 0, head_dim_ = 0;
  int64_t first_token_ = 0;
  int64_t n_tokens_ = 0;
  int64_t n_vectors_ = 0;
  Backend* host_memory_ = nullptr;
  DType kv_dtype_ = DType::F32;
  int64_t first_slab_tokens_ = kFirstSlabTokens, max_slab_tokens_ = kMaxSlabTokens;
  std::vector<Slab> slabs_;  // in store order, contiguous; more may be allocated than used
  BackgroundHostAlloc next_slab_;  // slab number slabs_.size(), when being allocated ahead
  bool allocate_ahead_ = allocates_ahead();
  int64_t index_block_vectors_ = kIndexBlockVectors;
  // Index vectors, pre-RoPE keys: block b holds (n_kv_heads, index_block_vectors, head_dim),
  // vectors [b * index_block_vectors, (b + 1) * index_block_vectors); more may be allocated
  // than used.
  // From alloc_host (page-locked on CUDA: UnitIndexMirror uploads them), in index_dtype.
  struct IndexBlock {
    std::unique_ptr<float[], SlabFree> memory;
    unsigned char* get() const { return reinterpret_cast<unsigned char*>(memory.get()); }
  };
  std::vector<IndexBlock> index_blocks_;
  DType index_dtype_ = DType::F32;
  std::vector<StoredUnit> units_;
  UnitSummary summary_;
};

}  // namespace ltri
