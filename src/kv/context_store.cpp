#include "kv/context_store.hpp"

#include <algorithm>

#include "core/error.hpp"
#include "ops/backend.hpp"

namespace ltri {

namespace {

// Copies n f32 values to dst in `dtype` (F32 or BF16, rounded to nearest even).
void store_values(const float* src, int64_t n, DType dtype, unsigned char* dst) {
  if (dtype == DType::F32) {
    std::copy(src, src + n, reinterpret_cast<float*>(dst));
    return;
  }
  uint16_t* out = reinterpret_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) out[i] = f32_to_bf16(src[i]);
}

}  // namespace

void ContextStore::SlabFree::operator()(float* p) const {
  if (backend) {
    backend->free_host(p);
  } else {
    delete[] p;
  }
}

ContextStore::ContextStore(int64_t n_kv_heads, int64_t head_dim, int64_t first_token, Backend* host_memory,
                           DType kv_dtype, int64_t slab_tokens)
    : n_kv_heads_(n_kv_heads),
      head_dim_(head_dim),
      first_token_(first_token),
      host_memory_(host_memory),
      kv_dtype_(kv_dtype),
      slab_tokens_(slab_tokens),
      index_(size_t(n_kv_heads)) {
  if (slab_tokens < 1) fail("context store: slabs of ", slab_tokens, " tokens; need at least 1");
  if (kv_dtype != DType::F32 && kv_dtype != DType::BF16) {
    fail("context store: K/V in ", dtype_name(kv_dtype), "; expected F32 or BF16");
  }
}

void ContextStore::add_unit(const float* k, const float* v, int64_t length, const float* vectors,
                            int64_t n_vectors) {
  const int64_t r = row(), rb = row_bytes();
  // Copy the unit in pieces that end at slab boundaries; a new slab is taken when the store
  // reaches the end of the last one (after reset() the old ones are reused first).
  for (int64_t done = 0; done < length;) {
    const int64_t at = n_tokens_ + done;  // store offset of the next token
    const size_t slab = size_t(at / slab_tokens_);
    if (slab == slabs_.size()) {
      const size_t floats = (size_t(2 * slab_tokens_ * rb) + sizeof(float) - 1) / sizeof(float);
      float* p = host_memory_ ? host_memory_->alloc_host(floats) : new float[floats];
      slabs_.push_back(Slab(p, SlabFree{host_memory_}));
    }
    const int64_t offset = at % slab_tokens_;
    const int64_t piece = std::min(length - done, slab_tokens_ - offset);
    unsigned char* base = reinterpret_cast<unsigned char*>(slabs_[slab].get());
    store_values(k + done * r, piece * r, kv_dtype_, base + offset * rb);
    store_values(v + done * r, piece * r, kv_dtype_, base + (slab_tokens_ + offset) * rb);
    done += piece;
  }
  for (int64_t g = 0; g < n_kv_heads_; ++g) {
    const float* src = vectors + g * n_vectors * head_dim_;
    index_[size_t(g)].insert(index_[size_t(g)].end(), src, src + n_vectors * head_dim_);
  }
  units_.push_back({first_token_ + n_tokens_, length, n_vectors_, n_vectors});
  n_tokens_ += length;
  n_vectors_ += n_vectors;
}

const void* ContextStore::check_f32(const void* row) const {
  if (kv_dtype_ != DType::F32) fail("context store: f32 rows asked of a ", dtype_name(kv_dtype_), " store");
  return row;
}

int64_t ContextStore::contiguous_tokens(int64_t token) const {
  return std::min(slab_tokens_ - offset_in_slab(token), end_token() - token);
}

size_t ContextStore::bytes() const {
  const size_t slab_floats = (size_t(2 * slab_tokens_ * row_bytes()) + sizeof(float) - 1) / sizeof(float);
  size_t floats = slabs_.size() * slab_floats;
  for (const auto& ix : index_) floats += ix.capacity();
  return floats * sizeof(float) + units_.capacity() * sizeof(StoredUnit);
}

void ContextStore::reset(int64_t first_token) {
  first_token_ = first_token;
  n_tokens_ = 0;
  n_vectors_ = 0;
  for (auto& ix : index_) ix.clear();
  units_.clear();
}

}  // namespace ltri
