#include "ops/backend.hpp"

#include <algorithm>
#include <vector>

#include "core/error.hpp"

namespace ltri {

struct Backend::BandFallback {
  AttentionBandHost band;
  std::vector<float> q;     // (n, n_heads, head_dim), host copy of args.q
  std::vector<float> keys;  // (n_keys, n_kv_heads, head_dim), host copy of args.keys
};

Backend::Backend() = default;
Backend::~Backend() = default;

void Backend::matmul_weight(const float* x, WeightRef w, int64_t n, int64_t k, int64_t m, float* out) {
  if (w.dtype != DType::F32) fail("matmul: the ", name(), " backend has no ", dtype_name(w.dtype), " weights");
  matmul(x, static_cast<const float*>(w.data), n, k, m, out);
}

void Backend::embed_weight(WeightRef table, const int32_t* ids, int64_t n, int64_t dim, float* out) {
  if (table.dtype != DType::F32) fail("embed: the ", name(), " backend has no ", dtype_name(table.dtype), " weights");
  embed(static_cast<const float*>(table.data), ids, n, dim, out);
}

void Backend::attention_band(const AttentionBandArgs& args, const RopeTable& table, float* votes, float* seg) {
  check_attention_band_args(args, "attention_band");
  if (!band_fallback_) band_fallback_ = std::make_unique<BandFallback>();
  BandFallback& f = *band_fallback_;
  const size_t q_floats = size_t(args.n * args.n_heads * args.head_dim);
  const size_t key_floats = size_t(std::max<int64_t>(args.n_keys(), 0) * args.n_kv_heads * args.head_dim);
  if (f.q.size() < q_floats) f.q.resize(q_floats);
  if (f.keys.size() < key_floats) f.keys.resize(key_floats);
  download(f.q.data(), args.q, q_floats);
  download(f.keys.data(), args.keys, key_floats);
  AttentionBandArgs host = args;
  host.q = f.q.data();
  host.keys = f.keys.data();
  f.band.compute(host, table, votes, seg);
}

}  // namespace ltri
