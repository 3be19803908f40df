#include "kv/context_store.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/error.hpp"
#include "core/phase_profile.hpp"
#include "core/timer.hpp"
#include "ops/backend.hpp"

namespace ltri {

namespace {

// std::nearbyint in the default rounding mode (to nearest, ties to even) for |t| <= 2^22, and
// NaN for NaN: adding 1.5 * 2^23 leaves no fraction bits, so the sum is rounded to an integer,
// and subtracting it back is exact. Unlike nearbyint, which is a library call unless the build
// targets SSE4.1, it vectorises. Values here are at most 127 in magnitude (x / (absmax / 127)).
inline float round_half_even(float t) {
  constexpr float kShift = 12582912.0f;  // 1.5 * 2^23
  return (t + kShift) - kShift;
}

// max |x[i]| (0 for n = 0; NaNs are skipped, as std::max(m, NaN) keeps m), in eight independent
// lanes so the loop vectorises: one running maximum is a chain of dependent instructions.
float abs_max(const float* x, int64_t n) {
  constexpr int64_t kLanes = 8;
  float lane[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int64_t j = 0; j < kLanes; ++j) lane[j] = std::max(lane[j], std::fabs(x[i + j]));
  }
  float m = 0.0f;
  for (const float v : lane) m = std::max(m, v);
  for (; i < n; ++i) m = std::max(m, std::fabs(x[i]));
  return m;
}

// Quantises n_rows rows of `width` f32 values to int8, one scale per row: scale = absmax / 127,
// q = round(x / scale) to nearest (ties to even), so q * scale is within scale / 2 of x. An
// all-zero row gets scale 0 and zeros; a NaN value becomes 0.
// Branch-free and vectorised (on the 2-core development VM, one 7-token span's K at 8 KV heads
// x 128: 46 us with nearbyint and one running maximum, 17 us so); the same values bit for bit.
void quantize_rows(const float* src, int64_t n_rows, int64_t width, int8_t* values, float* scales) {
  for (int64_t r = 0; r < n_rows; ++r) {
    const float* x = src + r * width;
    const float scale = abs_max(x, width) / 127.0f;
    scales[r] = scale;
    int8_t* q = values + r * width;
    if (!(scale > 0.0f)) {
      std::fill(q, q + width, int8_t(0));
      continue;
    }
    for (int64_t i = 0; i < width; ++i) {
      float t = round_half_even(x[i] / scale);
      t = t == t ? t : 0.0f;  // NaN -> 0
      t = t > 127.0f ? 127.0f : t;
      t = t < -127.0f ? -127.0f : t;
      q[i] = int8_t(int(t));
    }
  }
}

// Copies n f32 values to dst in `dtype` (F32 or BF16, rounded to nearest even; I8 goes through
// quantize_rows).
void store_values(const float* src, int64_t n, DType dtype, unsigned char* dst) {
  if (dtype == DType::F32) {
    std::copy(src, src + n, reinterpret_cast<float*>(dst));
    return;
  }
  uint16_t* out = reinterpret_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) out[i] = f32_to_bf16(src[i]);
}

}  // namespace

ContextStore::ContextStore(int64_t n_kv_heads, int64_t head_dim, int64_t first_token, Backend* host_memory,
                           DType kv_dtype, int64_t first_slab_tokens, int64_t max_slab_tokens,
                           int64_t index_block_vectors, DType index_dtype)
    : n_kv_heads_(n_kv_heads),
      head_dim_(head_dim),
      first_token_(first_token),
      host_memory_(host_memory),
      kv_dtype_(kv_dtype),
      first_slab_tokens_(first_slab_tokens),
      max_slab_tokens_(std::max(first_slab_tokens, max_slab_tokens)),
      index_block_vectors_(index_block_vectors == 0 ? kIndexBlockVectors : index_block_vectors),
      index_dtype_(index_dtype) {
  if (first_slab_tokens < 1) fail("context store: slabs of ", first_slab_tokens, " tokens; need at least 1");
  if (index_block_vectors_ < 1 || index_block_vectors_ % kIndexBlockMultiple != 0) {
    fail("context store: index blocks of ", index_block_vectors, " vectors; need a positive multiple of ",
         kIndexBlockMultiple, " (0: the default)");
  }
  if (kv_dtype != DType::F32 && kv_dtype != DType::BF16 && kv_dtype != DType::I8) {
    fail("context store: K/V in ", dtype_name(kv_dtype), "; expected F32, BF16 or I8");
  }
  if (index_dtype != DType::F32 && index_dtype != DType::BF16) {
    fail("context store: index vectors in ", dtype_name(index_dtype), "; expected F32 or BF16");
  }
}

size_t ContextStore::slab_floats(int64_t tokens) const {
  // I8: the K and V values, then one f32 scale per (token, KV head) of K and of V.
  const int64_t bytes = kv_dtype_ == DType::I8 ? scales_offset(tokens) + 2 * tokens * n_kv_heads_ * 4
                                               : 2 * tokens * row_bytes();
  return (size_t(bytes) + sizeof(float) - 1) / sizeof(float);
}

size_t ContextStore::slab_index(int64_t at) const {
  const auto after = std::upper_bound(slabs_.begin(), slabs_.end(), at,
                                      [](int64_t offset, const Slab& slab) { return offset < slab.begin; });
  return size_t(after - slabs_.begin()) - 1;
}

int64_t ContextStore::slab_tokens(size_t j) const {
  int64_t tokens = first_slab_tokens_;
  for (size_t i = 0; i < j && tokens < max_slab_tokens_; ++i) tokens = std::min(2 * tokens, max_slab_tokens_);
  return tokens;
}

void ContextStore::take_next_slab() {
  const int64_t begin = slabs_.empty() ? 0 : slabs_.back().begin + slabs_.back().tokens;
  const int64_t tokens = slab_tokens(slabs_.size());
  Timer wait;  // page-locking costs per byte on CUDA: the time add_unit still waits for it
  float* p = next_slab_.pending() ? next_slab_.take() : alloc_host_memory(host_memory_, slab_floats(tokens));
  std::unique_ptr<float[], SlabFree> memory(p, SlabFree{host_memory_});
  if (PhaseProfile::enabled()) PhaseProfile::add("policy/evict/store/add_unit/slab_alloc", wait.elapsed_ms());
  slabs_.push_back({std::move(memory), begin, tokens});
}

bool ContextStore::allocates_ahead() {
  // Off by default: on the GPU machine (8B shape, ltri, 32K prompt) page-locking slabs on a
  // second thread made the prefill slower (19.85 s against 15.52 s) and took 4 GiB more host
  // memory, the allocations contending with the main thread's CUDA calls. LTRI_STORE_ALLOC_AHEAD=1
  // turns it on, for measuring it again. Read at every store's construction (a few per layer).
  const char* env = std::getenv("LTRI_STORE_ALLOC_AHEAD");
  if (env == nullptr || *env == '\0') return false;
  const std::string value(env);
  if (value != "0" && value != "1") fail("LTRI_STORE_ALLOC_AHEAD=", value, ": expected 0 or 1");
  return value == "1";
}

void ContextStore::allocate_ahead() {
  if (!allocate_ahead_ || next_slab_.pending() || slabs_.empty()) return;
  const Slab& last = slabs_.back();
  if (n_tokens_ < last.begin + last.tokens / 2) return;
  next_slab_ = BackgroundHostAlloc(host_memory_, slab_floats(slab_tokens(slabs_.size())));
}

size_t ContextStore::index_block_floats() const {
  const size_t bytes = size_t(n_kv_heads_ * index_block_vectors_ * head_dim_) * dtype_size(index_dtype_);
  return (bytes + sizeof(float) - 1) / sizeof(float);
}

const float* ContextStore::index_vector(int64_t g, int64_t i) const {
  if (index_dtype_ != DType::F32) fail("context store: f32 index vectors asked of a ", dtype_name(index_dtype_), " index");
  return static_cast<const float*>(index_data(g, i));
}

void ContextStore::copy_index_vectors(const float* vectors, int64_t n_vectors) {
  const int64_t b = index_block_vectors_, hd = head_dim_;
  const int64_t value_bytes = int64_t(dtype_size(index_dtype_));
  for (int64_t done = 0; done < n_vectors;) {
    const int64_t at = n_vectors_ + done;  // number of the next vector
    const size_t block = size_t(at / b);
    if (block == index_blocks_.size()) {
      index_blocks_.push_back({std::unique_ptr<float[], SlabFree>(alloc_host_memory(host_memory_, index_block_floats()),
                                                                  SlabFree{host_memory_})});
    }
    const int64_t offset = at - int64_t(block) * b;
    const int64_t piece = std::min(n_vectors - done, b - offset);
    for (int64_t g = 0; g < n_kv_heads_; ++g) {
      store_values(vectors + (g * n_vectors + done) * hd, piece * hd, index_dtype_,
                   index_blocks_[block].get() + (g * b + offset) * hd * value_bytes);
    }
    done += piece;
  }
}

void ContextStore::add_unit(const float* k, const float* v, int64_t length, const float* vectors,
                            int64_t n_vectors) {
  const int64_t r = row(), rb = row_bytes();
  // Copy the unit in pieces that end at slab boundaries; a new slab is taken when the store
  // reaches the end of the last one (after reset() the old ones are reused first). The slab
  // of the next token is the last one touched or the one after it.
  size_t slab = n_tokens_ == 0 ? 0 : slab_index(n_tokens_ - 1);
  for (int64_t done = 0; done < length;) {
    const int64_t at = n_tokens_ + done;  // store offset of the next token
    if (slab < slabs_.size() && at >= slabs_[slab].begin + slabs_[slab].tokens) ++slab;
    if (slab == slabs_.size()) take_next_slab();
    const Slab& into = slabs_[slab];
    const int64_t offset = at - into.begin;
    const int64_t piece = std::min(length - done, into.tokens - offset);
    if (kv_dtype_ == DType::I8) {
      // (token, KV head) rows of head_dim values, each with its scale.
      float* scales = reinterpret_cast<float*>(into.base() + scales_offset(into.tokens));
      quantize_rows(k + done * r, piece * n_kv_heads_, head_dim_, reinterpret_cast<int8_t*>(into.base() + offset * rb),
                    scales + offset * n_kv_heads_);
      quantize_rows(v + done * r, piece * n_kv_heads_, head_dim_,
                    reinterpret_cast<int8_t*>(into.base() + (into.tokens + offset) * rb),
                    scales + (into.tokens + offset) * n_kv_heads_);
    } else {
      store_values(k + done * r, piece * r, kv_dtype_, into.base() + offset * rb);
      store_values(v + done * r, piece * r, kv_dtype_, into.base() + (into.tokens + offset) * rb);
    }
    done += piece;
  }
  Timer index_timer;  // profiled apart: the index vectors' copy (and their pages' first touch)
  copy_index_vectors(vectors, n_vectors);
  if (PhaseProfile::enabled()) PhaseProfile::add("policy/evict/store/add_unit/index", index_timer.elapsed_ms());
  units_.push_back({first_token_ + n_tokens_, length, n_vectors_, n_vectors});
  summary_.count += 1;
  summary_.tokens += length;
  summary_.shortest = std::min(summary_.shortest, length);
  n_tokens_ += length;
  n_vectors_ += n_vectors;
  allocate_ahead();
}

const void* ContextStore::check_f32(const void* row) const {
  if (kv_dtype_ != DType::F32) fail("context store: f32 rows asked of a ", dtype_name(kv_dtype_), " store");
  return row;
}

const float* ContextStore::scales(int64_t token, bool of_v) const {
  if (kv_dtype_ != DType::I8) fail("context store: int8 scales asked of a ", dtype_name(kv_dtype_), " store");
  const int64_t at = token - first_token_;
  const Slab& slab = slabs_[slab_index(at)];
  const float* all = reinterpret_cast<const float*>(slab.base() + scales_offset(slab.tokens));
  return all + ((of_v ? slab.tokens : 0) + at - slab.begin) * n_kv_heads_;
}

int64_t ContextStore::contiguous_tokens(int64_t token) const {
  const Slab& slab = slabs_[slab_index(token - first_token_)];
  return std::min(first_token_ + slab.begin + slab.tokens, end_token()) - token;
}

size_t ContextStore::bytes() const {
  size_t floats = 0;
  for (const Slab& slab : slabs_) floats += slab_floats(slab.tokens);
  if (next_slab_.pending()) floats += next_slab_.n_floats();
  floats += index_blocks_.size() * index_block_floats();
  return floats * sizeof(float) + units_.capacity() * sizeof(StoredUnit);
}

void ContextStore::reset(int64_t first_token) {
  first_token_ = first_token;
  n_tokens_ = 0;
  n_vectors_ = 0;
  units_.clear();
  summary_ = {};
}

}  // namespace ltri
