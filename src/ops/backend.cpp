#include "ops/backend.hpp"

#include <algorithm>
#include <vector>

#include "core/error.hpp"
#include "core/memory_stats.hpp"
#include "kv/retrieval.hpp"

namespace ltri {

size_t Backend::host_available_bytes() const { return available_memory_bytes(); }

struct Backend::BandFallback {
  AttentionBandHost band;
  std::vector<float> q;     // (n, n_heads, head_dim), host copy of args.q
  std::vector<float> keys;  // (n_keys, n_kv_heads, head_dim), host copy of args.keys
};

struct Backend::ScoreScratch {
  std::vector<float> dots, best;
};

struct Backend::RowMeansScratch {
  std::vector<float> x;     // (n, row), host copy of the rows
  std::vector<double> sum;  // (row)
};

Backend::Backend() = default;
Backend::~Backend() = default;

namespace {

// The fence of a backend whose downloads are done when download_async returns.
class PassedFence final : public BackendFence {
 public:
  void wait() override {}
};

}  // namespace

std::shared_ptr<BackendFence> Backend::download_fence() { return std::make_shared<PassedFence>(); }

float* Backend::alloc_host(size_t n_floats) { return new float[std::max<size_t>(1, n_floats)]; }

void Backend::free_host(float* p) { delete[] p; }

void Backend::upload_bf16(float* dst, const uint16_t* host_src, size_t n) {
  constexpr size_t kPiece = size_t(1) << 16;  // floats per staged piece: 256 KB
  if (bf16_staging_.size() < std::min(n, kPiece)) bf16_staging_.resize(std::min(n, kPiece));
  for (size_t done = 0; done < n;) {
    const size_t piece = std::min(n - done, kPiece);
    for (size_t i = 0; i < piece; ++i) bf16_staging_[i] = bf16_to_f32(host_src[done + i]);
    upload(dst + done, bf16_staging_.data(), piece);
    done += piece;
  }
}

void Backend::gather_rows_stable(const std::vector<GatherRun>& runs, DType host_dtype, int64_t scale_width) {
  if (host_dtype != DType::F32 && host_dtype != DType::BF16 && host_dtype != DType::I8) {
    fail("gather_rows_stable: host rows in ", dtype_name(host_dtype), "; expected F32, BF16 or I8");
  }
  for (const GatherRun& r : runs) {
    const size_t n = size_t(r.n_values);
    if (r.device_src) {
      copy(r.dst, r.device_src, n);
    } else if (host_dtype == DType::F32) {
      upload_stable(r.dst, static_cast<const float*>(r.host_src), n);
    } else if (host_dtype == DType::BF16) {
      upload_bf16_stable(r.dst, static_cast<const uint16_t*>(r.host_src), n);
    } else {
      upload_int8_stable(r.dst, static_cast<const int8_t*>(r.host_src), r.host_scales, n / size_t(scale_width),
                         size_t(scale_width));
    }
  }
}

void Backend::upload_int8_stable(float* dst, const int8_t* values, const float* scales, size_t n_rows, size_t width) {
  const size_t rows_per_piece = std::max<size_t>(1, (size_t(1) << 16) / std::max<size_t>(width, 1));  // ~256 KB of f32
  if (bf16_staging_.size() < std::min(n_rows, rows_per_piece) * width) {
    bf16_staging_.resize(std::min(n_rows, rows_per_piece) * width);
  }
  for (size_t done = 0; done < n_rows;) {
    const size_t rows = std::min(n_rows - done, rows_per_piece);
    for (size_t r = 0; r < rows; ++r) {
      const int8_t* q = values + (done + r) * width;
      const float s = scales[done + r];
      float* out = bf16_staging_.data() + r * width;
      for (size_t i = 0; i < width; ++i) out[i] = float(q[i]) * s;
    }
    upload(dst + done * width, bf16_staging_.data(), rows * width);
    done += rows;
  }
}

void Backend::add_rmsnorm(float* x, const float* h, const float* weight, int64_t n, int64_t dim, float eps,
                          float* out) {
  if (out == x) fail("add_rmsnorm: out must not alias x (the residual stream it updates)");
  add(x, h, n * dim);
  rmsnorm(x, weight, n, dim, eps, out);
}

void Backend::matmul_weight(const float* x, WeightRef w, int64_t n, int64_t k, int64_t m, float* out) {
  if (w.dtype != DType::F32) fail("matmul: the ", name(), " backend has no ", dtype_name(w.dtype), " weights");
  matmul(x, static_cast<const float*>(w.data), n, k, m, out);
}

void Backend::matmul_weights(const float* x, int64_t n, int64_t k, std::span<const Projection> projections) {
  for (const Projection& p : projections) matmul_weight(x, p.w, n, k, p.m, p.out);
}

void Backend::swiglu_matmul_weight(float* gate, const float* up, WeightRef w, int64_t n, int64_t k, int64_t m,
                                   float* out) {
  swiglu(gate, up, n * k);
  matmul_weight(gate, w, n, k, m, out);
}

void Backend::mlp(const float* x, const MlpWeights& w, int64_t n, int64_t hidden, int64_t ffn, float* scratch,
                  float* out) {
  float* gate = scratch;          // (n, ffn)
  float* up = scratch + n * ffn;  // (n, ffn)
  if (n == 1 && w.gate_up.data) {
    matmul_weight(x, w.gate_up, 1, hidden, 2 * ffn, gate);  // one row: [gate | up] side by side
  } else {
    const Projection gate_up[] = {{w.gate, ffn, gate}, {w.up, ffn, up}};
    matmul_weights(x, n, hidden, gate_up);
  }
  swiglu_matmul_weight(gate, up, w.down, n, ffn, hidden, out);
}

void Backend::apply_norm(const ResidualNorm& norm, int64_t n, int64_t dim) {
  if (norm.add) {
    add_rmsnorm(norm.x, norm.add, norm.weight, n, dim, norm.eps, norm.normed);
  } else {
    rmsnorm(norm.x, norm.weight, n, dim, norm.eps, norm.normed);
  }
}

void Backend::norm_matmul_weights(const ResidualNorm& norm, int64_t n, int64_t dim,
                                  std::span<const Projection> projections) {
  apply_norm(norm, n, dim);
  matmul_weights(norm.normed, n, dim, projections);
}

void Backend::norm_mlp(const ResidualNorm& norm, int64_t n, int64_t dim, const MlpWeights& w, int64_t ffn,
                       float* scratch, float* out) {
  apply_norm(norm, n, dim);
  mlp(norm.normed, w, n, dim, ffn, scratch, out);
}

void Backend::embed_weight(WeightRef table, const int32_t* ids, int64_t n, int64_t dim, float* out) {
  if (table.dtype != DType::F32) fail("embed: the ", name(), " backend has no ", dtype_name(table.dtype), " weights");
  embed(static_cast<const float*>(table.data), ids, n, dim, out);
}

std::shared_ptr<BackendFence> Backend::attention_band_async(const AttentionBandArgs&, const RopeTable&, float*, bool) {
  fail("attention_band_async: the ", name(), " backend has no asynchronous band");
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

void Backend::score_units(const ContextStore& store, UnitIndexMirror& /*mirror*/, const float* q, int64_t n_q,
                          bool mean_query, const std::vector<float>& head_weights, std::vector<float>& scores) {
  if (mean_query && n_q != 1) fail("score_units: a mean query is one row, got ", n_q);
  if (!score_scratch_) score_scratch_ = std::make_unique<ScoreScratch>();
  ScoreScratch& s = *score_scratch_;
  if (mean_query) {
    ltri::score_units(store, q, head_weights, scores, s.dots);
  } else {
    score_units_per_query(store, q, n_q, head_weights, scores, s.dots, s.best);
  }
}

namespace {
[[noreturn]] void no_device_choice(const Backend& backend, const char* op) {
  fail(op, ": the ", backend.name(), " backend has no choice in its own memory (has_device_choice)");
}
}  // namespace

void Backend::score_units_device(const ContextStore&, UnitIndexMirror&, const float*, int64_t, int64_t,
                                 const RopeTable&, const std::vector<float>&, float*) {
  no_device_choice(*this, "score_units_device");
}

void Backend::row_block_means_device(const float*, int64_t, int64_t, int64_t, float*) {
  no_device_choice(*this, "row_block_means_device");
}

void Backend::select_by_budget_device(const UnitIndexMirror&, const float*, const float*, bool, int64_t, int64_t,
                                      int32_t*) {
  no_device_choice(*this, "select_by_budget_device");
}

void Backend::unit_votes_device(const UnitIndexMirror&, const float*, int64_t, int64_t, const int32_t*, int64_t, float,
                                float*) {
  no_device_choice(*this, "unit_votes_device");
}

void Backend::cast_votes_device(const UnitIndexMirror&, const int32_t*, int64_t, float, float*, int64_t) {
  no_device_choice(*this, "cast_votes_device");
}

void Backend::fill_zero(float* x, size_t n) {
  const std::vector<float> zeros(std::min<size_t>(n, size_t(1) << 16), 0.0f);
  for (size_t done = 0; done < n; done += zeros.size()) upload(x + done, zeros.data(), std::min(zeros.size(), n - done));
}

int64_t row_block_count(int64_t n, int64_t row, int64_t block, const char* op) {
  if (n < 1 || row < 1 || block < 1) fail(op, ": ", n, " rows of ", row, " floats in blocks of ", block, "; each must be at least 1");
  return (n + block - 1) / block;
}

void Backend::row_block_means(const float* x, int64_t n, int64_t row, int64_t block, float* host_out) {
  const int64_t n_blocks = row_block_count(n, row, block, "row_block_means");
  if (!row_means_scratch_) row_means_scratch_ = std::make_unique<RowMeansScratch>();
  RowMeansScratch& s = *row_means_scratch_;
  if (s.x.size() < size_t(n * row)) s.x.resize(size_t(n * row));
  s.sum.resize(size_t(row));
  download(s.x.data(), x, size_t(n * row));
  // Row by row (the memory order), one double per column: each column's rows are added in
  // row order, as the CUDA kernel does (cuda_row_means.cu).
  for (int64_t b = 0; b < n_blocks; ++b) {
    const int64_t last = n - b * block, first = std::max<int64_t>(0, last - block);
    std::fill(s.sum.begin(), s.sum.end(), 0.0);
    for (int64_t i = first; i < last; ++i) {
      const float* xi = s.x.data() + i * row;
      for (int64_t c = 0; c < row; ++c) s.sum[size_t(c)] += double(xi[c]);
    }
    const double count = double(last - first);
    float* out = host_out + b * row;
    for (int64_t c = 0; c < row; ++c) out[c] = float(s.sum[size_t(c)] / count);
  }
}

}  // namespace ltri
