#pragma once
// The op table: every op the Llama-family forward pass needs, behind one backend-neutral
// interface. Model code (src/model) calls only this; the CPU backend (src/kernels/cpu) is the
// reference implementation and a CUDA backend (src/kernels/cuda) implements the same table, so
// a new backend never touches model or policy code.
//
// Conventions: every pointer handed to an op lives in that backend's memory (allocated through
// alloc()); matrices are row-major f32; shapes are given in the comments.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "core/dtype.hpp"
#include "ops/gather_run.hpp"
#include "kv/kv_policy.hpp"
#include "ops/attention_band_host.hpp"
#include "ops/rope_table.hpp"

namespace ltri {

class ContextStore;
class UnitIndexMirror;

// Memory traffic and footprint of one backend (Backend::stats()), for benchmarks and reports.
struct BackendStats {
  uint64_t h2d_bytes = 0;  // host -> backend bytes copied by upload() since creation
  uint64_t d2h_bytes = 0;  // backend -> host bytes copied by download() since creation
  size_t device_bytes = 0;       // bytes allocated through alloc() and not yet freed
  size_t device_peak_bytes = 0;  // most device_bytes since creation or the last reset_peak()
};

// A point in a backend's queue of downloads (Backend::download_fence): wait() returns once
// every download_async issued before it has landed in host memory. Any thread may wait; an
// error of the copies is thrown from wait() as the backend's usual ltri::Error.
class BackendFence {
 public:
  virtual ~BackendFence() = default;
  virtual void wait() = 0;
};

// A weight matrix (matmul weight, embedding table) in backend memory and the dtype it is held
// in there: F32 everywhere, BF16 on backends whose supports_weight_dtype says so (CUDA).
struct WeightRef {
  const void* data = nullptr;
  DType dtype = DType::F32;
};

class Backend {
 public:
  Backend();  // out of line, with the destructor: band_fallback_'s type is complete only there
  virtual ~Backend();
  virtual const char* name() const = 0;

  // Memory in this backend (host for CPU, device for CUDA), zero-initialised.
  virtual float* alloc(size_t n_floats) = 0;
  virtual void free(float* p) = 0;
  // Copies n floats from host memory into backend memory.
  virtual void upload(float* dst, const float* host_src, size_t n) = 0;
  // Copies n floats from backend memory to host memory.
  virtual void download(float* host_dst, const float* src, size_t n) = 0;
  // Copies n floats from backend memory to host memory without the host waiting: the copy
  // follows every op queued before it, and host_dst (memory from alloc_host, so a device can
  // write it directly) holds the values once a download_fence() taken after this call has
  // passed. src must stay unchanged until then. Default: download(), done on return.
  virtual void download_async(float* host_dst, const float* src, size_t n) { download(host_dst, src, n); }
  // A fence after every download_async so far. Default: one that has already passed.
  virtual std::shared_ptr<BackendFence> download_fence();
  // Copies n floats within backend memory.
  virtual void copy(float* dst, const float* src, size_t n) = 0;
  // Copies `bytes` raw bytes from host memory (any alignment) into backend memory: weights in a
  // 16-bit dtype, stored two elements per float of an alloc()'d buffer.
  virtual void upload_bytes(void* dst, const void* host_src, size_t bytes) = 0;
  // Host memory for data that will be uploaded often (the context store's K/V slabs), not
  // initialised: the caller writes before it reads. Default: new[]/delete[]; a device backend
  // gives page-locked memory, whose uploads run several times faster than pageable ones.
  // Thread-safe in every backend: the context store allocates its next slab on a thread of its
  // own while the forward pass goes on (BackgroundHostAlloc).
  virtual float* alloc_host(size_t n_floats);
  virtual void free_host(float* p);
  // Copies n bf16 values (raw bits) from host memory into backend memory as f32 (dst: n floats):
  // K/V of a bf16 context store, half the bytes over the link. Default: converted on the host
  // in pieces, then upload(); a device backend uploads the bf16 bits and converts there.
  virtual void upload_bf16(float* dst, const uint16_t* host_src, size_t n);
  // upload / upload_bf16 from host memory that stays unchanged until the backend is next
  // synchronised (a download, synchronize(), free_host): the context store's slabs, written once
  // per request. The copy may then be asynchronous: a device backend does not wait for it (nor
  // for the ops queued before it), so the host goes on issuing work. Default: upload / upload_bf16.
  virtual void upload_stable(float* dst, const float* host_src, size_t n) { upload(dst, host_src, n); }
  virtual void upload_bf16_stable(float* dst, const uint16_t* host_src, size_t n) { upload_bf16(dst, host_src, n); }
  // All of `runs` (ops/gather_run.hpp) as one batch: a retrieved-KV load is a few hundred short runs per layer and
  // chunk (RetrievedKv::load). Default: one copy / upload_stable / upload_bf16_stable /
  // upload_int8_stable per run; a device backend packs the host runs into one upload and
  // widens, dequantises and places every run in one kernel, the values bit for bit the same.
  virtual void gather_rows_stable(const std::vector<GatherRun>& runs, DType host_dtype, int64_t scale_width);
  // upload_bytes from host memory that stays unchanged until the next synchronisation (the
  // context store's index blocks), as upload_stable. Default: upload_bytes.
  virtual void upload_bytes_stable(void* dst, const void* host_src, size_t bytes) { upload_bytes(dst, host_src, bytes); }
  // Copies n_rows rows of `width` int8 values with one f32 scale each (an int8 context store's
  // (token, KV head) rows) into backend memory as f32: dst[r * width + i] = float(values[r *
  // width + i]) * scales[r], one rounding, the same on every backend. The source stays unchanged
  // until the backend is next synchronised, as for upload_stable. Default: dequantised on the
  // host in pieces, then upload(); a device backend uploads the int8 values and the scales
  // (about a quarter of the f32 bytes) and dequantises there.
  virtual void upload_int8_stable(float* dst, const int8_t* values, const float* scales, size_t n_rows, size_t width);
  // Waits until every op enqueued so far has finished: a device backend's ops may run
  // asynchronously (upload/download wait by themselves). The CPU backend's ops are synchronous.
  virtual void synchronize() {}
  // Bytes of device memory free now, where the backend has a device of its own (CUDA:
  // cudaMemGetInfo); nullopt for host memory.
  virtual std::optional<size_t> device_free_bytes() const { return std::nullopt; }
  // Bytes of host memory that can still be allocated (MemAvailable of /proc/meminfo); 0 when
  // unknown. Virtual so tests can pose as a smaller host.
  virtual size_t host_available_bytes() const;

  // Bytes moved and held so far. CUDA counts every upload/download and every alloc/free; the
  // CPU backend counts alloc/free (host memory held for weights, KV, activations) and leaves
  // h2d/d2h at 0 (its upload/download are copies within host memory). Default: all zero.
  virtual BackendStats stats() const { return {}; }
  // Restarts device_peak_bytes from the bytes allocated now.
  virtual void reset_peak() {}

  // out (n, dim) = table[ids[i]] rows; table (vocab, dim).
  virtual void embed(const float* table, const int32_t* ids, int64_t n, int64_t dim,
                     float* out) = 0;
  // out (n, dim) = x / sqrt(mean(x^2) + eps) * weight; x may alias out.
  virtual void rmsnorm(const float* x, const float* weight, int64_t n, int64_t dim, float eps,
                       float* out) = 0;
  // out (n, m) = x (n, k) . w^T, w (m, k) as stored by nn.Linear; one GEMM over all n rows.
  virtual void matmul(const float* x, const float* w, int64_t n, int64_t k, int64_t m,
                      float* out) = 0;
  // Whether matmul_weight / embed_weight take weights held in `dtype` (F32: every backend).
  virtual bool supports_weight_dtype(DType dtype) const { return dtype == DType::F32; }
  // matmul with w (m, k) in w.dtype. Backends computing bf16 weights round x to bf16 and
  // accumulate in f32. The default takes F32 weights only (through matmul).
  virtual void matmul_weight(const float* x, WeightRef w, int64_t n, int64_t k, int64_t m, float* out);
  // One output of matmul_weights: out (n, m) = x . w^T, w (m, k).
  struct Projection {
    WeightRef w;
    int64_t m = 0;
    float* out = nullptr;
  };
  // matmul_weight of the same x (n, k) by each projection's weight (q/k/v, gate/up), the same
  // results as one call each. Default: one call each; the CUDA backend rounds x to bf16 once for
  // all of them instead of once a GEMM. No projection's out may alias x.
  virtual void matmul_weights(const float* x, int64_t n, int64_t k, std::span<const Projection> projections);
  // out (n, m) = (silu(gate) * up) (n, k) . w^T: the MLP's activation and down projection in one
  // op, the same results as swiglu then matmul_weight. gate (n, k) is scratch: unspecified after
  // the call. Default: those two ops; the CUDA backend writes the activation straight in bf16
  // for its GEMM (no f32 product written and read back).
  virtual void swiglu_matmul_weight(float* gate, const float* up, WeightRef w, int64_t n, int64_t k, int64_t m,
                                    float* out);
  // A layer's MLP weights: gate and up (ffn, hidden), down (hidden, ffn); gate_up is gate over up
  // in one (2 * ffn, hidden) matrix where the loader fused them (bf16 on CUDA), else null.
  struct MlpWeights {
    WeightRef gate, up, gate_up, down;
  };
  // out (n, hidden) = down(silu(gate(x)) * up(x)), x (n, hidden): a layer's MLP. scratch: n * 2 *
  // ffn floats, unspecified after the call; out may alias x. Default: gate and up into scratch
  // (one GEMV of gate_up for one row), then swiglu_matmul_weight. The CUDA backend, for more than
  // one row of bf16 weights, runs one GEMM of gate_up whose results are bf16 (as PyTorch's bf16
  // Linear's are), takes the activation from those and writes it in bf16 for down: gate and up
  // are rounded once more than in the default, so results agree to bf16 rounding, not bit for bit.
  virtual void mlp(const float* x, const MlpWeights& w, int64_t n, int64_t hidden, int64_t ffn, float* scratch,
                   float* out);
  // The residual add and RMSNorm in front of a layer's projections: x (n, dim) += add (skipped
  // when add is null), then normed (n, dim) = rmsnorm(x, weight). normed may alias add, not x.
  struct ResidualNorm {
    float* x = nullptr;
    const float* add = nullptr;
    const float* weight = nullptr;
    float eps = 0.0f;
    float* normed = nullptr;
  };
  // norm, then matmul_weights(norm.normed, n, dim, projections). Default: those ops. The CUDA
  // backend, for more than one row of bf16 weights, writes the norm straight in bf16 for its GEMMs
  // (the rounding matmul_weights does, bit for bit) and leaves norm.normed unspecified.
  virtual void norm_matmul_weights(const ResidualNorm& norm, int64_t n, int64_t dim,
                                   std::span<const Projection> projections);
  // norm, then mlp(norm.normed, w, n, dim, ffn, scratch, out); out may alias norm.normed. Default:
  // those ops; the CUDA backend folds the norm into the MLP's input as norm_matmul_weights does.
  virtual void norm_mlp(const ResidualNorm& norm, int64_t n, int64_t dim, const MlpWeights& w, int64_t ffn,
                        float* scratch, float* out);
  // embed with table (vocab, dim) in table.dtype; out is f32. Default: F32 only (through embed).
  virtual void embed_weight(WeightRef table, const int32_t* ids, int64_t n, int64_t dim, float* out);
  // The precision attention computes in where the backend has a choice, set by the model from
  // its weights' dtype: F32 (the default; parity with the CPU backend) or BF16 (CUDA: prefill on
  // tensor cores, q, k, v rounded to bf16, f32 sums). Backends without a choice ignore it.
  virtual void set_attention_precision(DType) {}
  // x (n, m) += bias (m) on every row.
  virtual void add_bias(float* x, const float* bias, int64_t n, int64_t m) = 0;
  // x (n) += y (n): the residual stream.
  virtual void add(float* x, const float* y, int64_t n) = 0;
  // x (n, dim) += h (n, dim), then out (n, dim) = rmsnorm(x, weight) (out may alias h, not x): a
  // residual add and the norm after it as one op. Default: add, then rmsnorm; a device backend
  // fuses them into one kernel (one launch less per norm in decode, where launches add up).
  virtual void add_rmsnorm(float* x, const float* h, const float* weight, int64_t n, int64_t dim, float eps,
                           float* out);
  // gate (n) = silu(gate) * up, in place.
  virtual void swiglu(float* gate, const float* up, int64_t n) = 0;
  // Rotates x (n, heads, head_dim) in place, row i at position first_position + i.
  virtual void rope(float* x, int64_t n, int64_t heads, int64_t first_position,
                    const RopeTable& table) = 0;
  // Attention of the chunk's queries over the visible KV segments, one softmax across all of
  // them. q (n, n_heads, head_dim) pre-RoPE; out (n, n_heads, head_dim). Keys are rotated to
  // the positions the plan assigns and queries to plan.query_first_position + i.
  // Segments marked `early` were handed to attention_early (below) with the same q and n just
  // before: the backend folds that pass in rather than attending them again.
  virtual void attention(const float* q, int64_t n, int64_t n_heads, int64_t n_kv_heads,
                         int64_t head_dim, const AttentionPlan& plan, const RopeTable& table,
                         float* out) = 0;
  // Two-pass attention (KvPolicy::plan_early): whether the model should hand a chunk of n
  // queries' early segments to attention_early before the policy chooses the rest. A device
  // backend attends them while the host chooses; the result is the one softmax over the whole
  // plan either way, up to rounding. Default: no.
  virtual bool has_attention_early(int64_t /*n*/) const { return false; }
  // Starts attention of q over `part` (the segments plan_early returned); the next attention()
  // of the same q and n, whose plan marks these segments `early`, completes it. A backend may
  // also do nothing here and attend the whole plan in attention() (the CPU backend: one pass,
  // the same numbers as without plan_early). Default: nothing.
  virtual void attention_early(const float* /*q*/, int64_t /*n*/, int64_t /*n_heads*/, int64_t /*n_kv_heads*/,
                               int64_t /*head_dim*/, const AttentionPlan& /*part*/, const RopeTable& /*table*/) {}
  // The attention band of a chunk (ops/attention_band_host.hpp, LTRI_SPEC.md Prefill step 4):
  // args.q and args.keys in backend memory; votes (args.n_keys(), n_kv_heads) and seg
  // (args.n, width, or null) on the HOST: the chunk's votes are added to votes, seg is
  // overwritten. The default downloads q and keys and runs AttentionBandHost (the CPU backend's
  // op, bit for bit); a device backend computes it there and downloads only votes and seg.
  virtual void attention_band(const AttentionBandArgs& args, const RopeTable& table, float* votes, float* seg);
  // Whether attention_band_async is there. Not on the CPU backend, whose band adds each head's
  // vote to the running sums in place (sums a separate pass would round differently).
  virtual bool has_attention_band_async() const { return false; }
  // attention_band without the host waiting: queues the band and the copy of its results to
  // `out` (host memory from alloc_host): [the chunk's own votes (args.n_keys(), n_kv_heads),
  // not added to anything | seg (args.n, width) if want_seg], there once the returned fence has
  // passed. Adding those votes to the running ones gives attention_band's sums bit for bit.
  // Default: an error (see has_attention_band_async).
  virtual std::shared_ptr<BackendFence> attention_band_async(const AttentionBandArgs& args, const RopeTable& table,
                                                             float* out, bool want_seg);
  // Retrieval scores of a layer's stored units (LTRI_SPEC.md "Retrieval", kv/retrieval.hpp):
  // scores[u] = sum over query heads h with head_weights[h] != 0 of head_weights[h] * max over
  // the n_q queries i and unit u's index vectors k (of h's KV head) of <q_ih, k>.
  // q (n_q, n_heads, head_dim), already averaged and rotated, head_weights (n_heads) and scores
  // (resized to the store's units) are on the HOST: the queries are a few averaged rows. The
  // index vectors are the store's (host) or their copy in backend memory, `mirror`, which the
  // caller owns next to the store and the op keeps in step with it. The default reads the
  // store on the host and leaves the mirror empty (the CPU backend's op): score_units when
  // mean_query (n_q == 1, the chunk's mean query), else score_units_per_query; the two round
  // differently (matrix-vector vs matrix product), so mean_query keeps each caller's numbers.
  // A device backend syncs the mirror (only new vectors go up, of the KV heads it scores with;
  // a head not asked for before sends the mirror up again), scores there and downloads the
  // scores only; it ignores mean_query.
  virtual void score_units(const ContextStore& store, UnitIndexMirror& mirror, const float* q, int64_t n_q,
                           bool mean_query, const std::vector<float>& head_weights, std::vector<float>& scores);
  // --- Retrieval's choice in backend memory (LtriPolicy's prefill: kv/ltri_policy.cpp) ---
  // Units are scored, ranked, voted on and picked where the index is, and only the picked ids
  // come to the host. A "unit list" is int32 [count, unit ids...] in backend memory. Whether
  // the ops below are there (CUDA); without them a policy scores with score_units and chooses
  // on the host (kv/retrieval.hpp), the same choice from the same scores.
  virtual bool has_device_choice() const { return false; }
  // score_units with the queries and the scores in backend memory: q (n_q, n_heads, head_dim)
  // are query means BEFORE RoPE (row_block_means_device), and the op rotates the rows of the
  // heads it scores to `position` with table's rows, as rope_rotate_host does, rounding for
  // rounding; so its scores are score_units' from the same means rotated on the host, and no
  // query crosses to the host. The scores (the store's units, after the mirror's sync) are
  // left at `scores`. Default: an error (has_device_choice).
  virtual void score_units_device(const ContextStore& store, UnitIndexMirror& mirror, const float* q, int64_t n_q,
                                  int64_t position, const RopeTable& table, const std::vector<float>& head_weights,
                                  float* scores);
  // select_by_budget (kv/retrieval.hpp, no skip) over the mirror's units with rank and tie
  // (or null) in backend memory; shortest: the shortest unit's length. picked: a unit list with
  // room for budget ids, in pick order (not store order). tie_is_last_rank: tie is the rank of
  // this backend's previous call, which had no tie, over the same units, unchanged since (the
  // backend may reuse that call's order). Default: an error.
  virtual void select_by_budget_device(const UnitIndexMirror& mirror, const float* rank, const float* tie,
                                       bool tie_is_last_rank, int64_t budget, int64_t shortest, int32_t* picked);
  // Cross-layer votes (LtriPolicy): token_votes (n_votes) holds the votes of tokens first_token
  // + i. rank[u] = the mean vote of the mirror's unit u (summed in double), then + weight for
  // each unit of `top` (a unit list with room for top_capacity ids). Default: an error.
  virtual void unit_votes_device(const UnitIndexMirror& mirror, const float* token_votes, int64_t n_votes,
                                 int64_t first_token, const int32_t* top, int64_t top_capacity, float weight,
                                 float* rank);
  // token_votes[t - first_token] += weight for every token t of the units of `top`, which must
  // lie within the votes' range. Default: an error.
  virtual void cast_votes_device(const UnitIndexMirror& mirror, const int32_t* top, int64_t top_capacity, float weight,
                                 float* token_votes, int64_t first_token);
  // x (n) = 0 in backend memory. Default: a copy from a host buffer of zeros.
  virtual void fill_zero(float* x, size_t n);

  // Means of blocks of rows of x (n, row), in backend memory, into host_out (n_blocks, row) on
  // the HOST, n_blocks = ceil(n / block): block b holds rows [max(0, n - (b + 1) * block),
  // n - b * block), counted back from the last row, so the last block may be shorter; block >= n
  // gives the mean of all rows. For the KV policies' query means (the chunk's mean query, means
  // of query blocks). Each column's rows are added in row order in double, then divided once;
  // a device backend does the same arithmetic, so the means agree bit for bit. The default
  // downloads x and sums on the host; a device backend sums where x is and downloads only the
  // means. Fails when n, row or block is below 1.
  virtual void row_block_means(const float* x, int64_t n, int64_t row, int64_t block, float* host_out);
  // row_block_means with the means left in backend memory at out (n_blocks, row), for the
  // choice in backend memory. Default: an error (has_device_choice).
  virtual void row_block_means_device(const float* x, int64_t n, int64_t row, int64_t block, float* out);

 protected:
  // The add (when norm.add is set) and rmsnorm of `norm`, in f32 into norm.normed.
  void apply_norm(const ResidualNorm& norm, int64_t n, int64_t dim);

 private:
  struct BandFallback;  // the default attention_band's host scratch, made on first use
  std::unique_ptr<BandFallback> band_fallback_;
  struct ScoreScratch;  // the default score_units' host scratch, made on first use
  std::unique_ptr<ScoreScratch> score_scratch_;
  std::vector<float> bf16_staging_;  // the default upload_bf16's and upload_int8_stable's f32 pieces
  struct RowMeansScratch;  // the default row_block_means' host scratch, made on first use
  std::unique_ptr<RowMeansScratch> row_means_scratch_;
};

// n_blocks of Backend::row_block_means, ceil(n / block); fails (naming `op`) when n, row or
// block is below 1.
int64_t row_block_count(int64_t n, int64_t row, int64_t block, const char* op);

// The CPU backend (OpenMP + OpenBLAS); threads 0 = all cores.
std::unique_ptr<Backend> make_cpu_backend(int threads);
#ifdef LTRI_HAVE_CUDA
// The CUDA backend on GPU `device` (src/kernels/cuda); exists only in builds with
// LTRI_HAVE_CUDA. Throws ltri::Error with one line when no such GPU is present.
std::unique_ptr<Backend> make_cuda_backend(int device);
#endif

// RAII for one backend allocation.
class BackendBuffer {
 public:
  BackendBuffer() = default;
  BackendBuffer(Backend& backend, size_t n) : backend_(&backend), data_(backend.alloc(n)), n_(n) {}
  BackendBuffer(BackendBuffer&& o) noexcept { *this = std::move(o); }
  BackendBuffer& operator=(BackendBuffer&& o) noexcept {
    if (this != &o) {
      release();
      backend_ = o.backend_;
      data_ = o.data_;
      n_ = o.n_;
      o.data_ = nullptr;
      o.n_ = 0;
    }
    return *this;
  }
  BackendBuffer(const BackendBuffer&) = delete;
  BackendBuffer& operator=(const BackendBuffer&) = delete;
  ~BackendBuffer() { release(); }

  float* data() const { return data_; }
  size_t size() const { return n_; }
  // At least n floats of `backend`'s memory: when smaller, a new zeroed buffer (a quarter
  // larger at least), the contents dropped.
  void reserve(Backend& backend, size_t n) {
    if (n_ < n) *this = BackendBuffer(backend, std::max(n, n_ + n_ / 4));
  }

 private:
  void release() {
    if (data_) backend_->free(data_);
    data_ = nullptr;
  }
  Backend* backend_ = nullptr;
  float* data_ = nullptr;
  size_t n_ = 0;
};

}  // namespace ltri
