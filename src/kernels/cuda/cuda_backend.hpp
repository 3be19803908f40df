#pragma once
// The CUDA backend: the op table (ops/backend.hpp) on one GPU, f32 activations and KV. Memory is
// device memory; every op is enqueued on one compute stream owned by the backend (download_async's
// copies, the asynchronous band's kernels and the early attention pass on streams of their own,
// ordered after the compute stream's work by events), and upload/download synchronise with it,
// so callers see the same ordering as on the CPU. matmul is one cuBLAS
// SGEMM (TF32 tensor cores off unless allow_tf32(true): f32 parity with the CPU backend is the
// default). Weights may also be bf16 (matmul_weight, embed_weight): the activations are rounded
// to bf16 in a scratch buffer and one cublasGemmEx multiplies bf16 x bf16 with f32 accumulation
// and f32 output, so an 8B model's weights take 16 GB instead of 32. The element-wise ops and
// attention are our kernels (cuda_elementwise.cu, cuda_bf16.cu, cuda_attention.cu). Tested op
// by op against CpuBackend in tests/kernels/.
//
// This header names no CUDA type (the stream and the cuBLAS handle are opaque pointers), so
// engine code and tests include it without the CUDA headers.
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "ops/allocation_counter.hpp"
#include "kernels/cuda/cuda_op_timer.hpp"
#include "ops/backend.hpp"

struct CUstream_st;    // cudaStream_t
struct CUevent_st;     // cudaEvent_t
struct CUmemPoolHandle_st;  // cudaMemPool_t
struct cublasContext;  // cublasHandle_t

namespace ltri {

namespace cuda {
struct AttentionArgs;  // kernels/cuda/cuda_kernels.hpp
}

// Number of CUDA devices usable now; 0 when there is no GPU or no driver (never throws).
int cuda_device_count();

class CudaBackend : public Backend {
 public:
  // Throws ltri::Error ("--device cuda: no CUDA device found (...)") when there is no GPU.
  explicit CudaBackend(int device);
  ~CudaBackend() override;
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;
  const char* name() const override { return "cuda"; }

  float* alloc(size_t n_floats) override;
  void free(float* p) override;
  void upload(float* dst, const float* host_src, size_t n) override;
  void download(float* host_dst, const float* src, size_t n) override;
  // On the copy stream, after an event of the compute stream: the compute stream goes on
  // while the copy engine moves the rows (evicted window tokens) to page-locked host memory.
  void download_async(float* host_dst, const float* src, size_t n) override;
  // An event recorded on the copy stream; wait() synchronises with it from any thread.
  std::shared_ptr<BackendFence> download_fence() override;
  // memmove semantics: the streaming window shifts itself down within one buffer.
  void copy(float* dst, const float* src, size_t n) override;
  void upload_bytes(void* dst, const void* host_src, size_t bytes) override;
  // Page-locked host memory (mmap'd huge pages registered with CUDA, or cudaHostAlloc under
  // LTRI_HOST_PIN=alloc; host_pinning.hpp): uploads from it run at the link's full rate and
  // need no staging copy. Where the system refuses to pin more, it falls back to pageable memory
  // (one warning), so a store that outgrows the pinnable memory still works, only slower.
  float* alloc_host(size_t n_floats) override;
  void free_host(float* p) override;
  // Uploads the bf16 bits into a device staging buffer (half the bytes over the link), then
  // one kernel widens them into dst (cuda_bf16.cu).
  void upload_bf16(float* dst, const uint16_t* host_src, size_t n) override;
  void upload_stable(float* dst, const float* host_src, size_t n) override;
  void upload_bf16_stable(float* dst, const uint16_t* host_src, size_t n) override;
  void upload_bytes_stable(void* dst, const void* host_src, size_t bytes) override;
  // bf16 and int8: one kernel for every run (cuda_gather.cu), reading runs from page-locked
  // memory the device maps (the context store's slabs) in place and the others from a
  // page-locked staging (table of runs, then their bytes) uploaded in one copy; f32: the
  // default, per run.
  void gather_rows_stable(const std::vector<GatherRun>& runs, DType host_dtype, int64_t scale_width) override;
  // Uploads the int8 values and their scales into a device staging buffer, then one kernel
  // dequantises them into dst (cuda_int8.cu); no synchronisation, as upload_bf16_stable.
  void upload_int8_stable(float* dst, const int8_t* values, const float* scales, size_t n_rows, size_t width) override;
  // cudaMemGetInfo's free bytes on this device plus what its memory pool holds unused (which
  // only alloc() can use: it trims the pool when an allocation fails; cuBLAS's own workspace
  // cannot, so this slightly overstates what any allocation could get).
  std::optional<size_t> device_free_bytes() const override;
  // Every upload/download and every alloc/free, scratch buffers included.
  BackendStats stats() const override { return allocations_.stats(); }
  void reset_peak() override { allocations_.reset_peak(); }

  void embed(const float* table, const int32_t* ids, int64_t n, int64_t dim, float* out) override;
  void rmsnorm(const float* x, const float* weight, int64_t n, int64_t dim, float eps,
               float* out) override;
  void matmul(const float* x, const float* w, int64_t n, int64_t k, int64_t m,
              float* out) override;
  bool supports_weight_dtype(DType dtype) const override { return dtype == DType::F32 || dtype == DType::BF16; }
  void matmul_weight(const float* x, WeightRef w, int64_t n, int64_t k, int64_t m, float* out) override;
  void matmul_weights(const float* x, int64_t n, int64_t k, std::span<const Projection> projections) override;
  void swiglu_matmul_weight(float* gate, const float* up, WeightRef w, int64_t n, int64_t k, int64_t m,
                            float* out) override;
  void mlp(const float* x, const MlpWeights& w, int64_t n, int64_t hidden, int64_t ffn, float* scratch,
           float* out) override;
  void norm_matmul_weights(const ResidualNorm& norm, int64_t n, int64_t dim,
                           std::span<const Projection> projections) override;
  void norm_mlp(const ResidualNorm& norm, int64_t n, int64_t dim, const MlpWeights& w, int64_t ffn, float* scratch,
                float* out) override;
  void embed_weight(WeightRef table, const int32_t* ids, int64_t n, int64_t dim, float* out) override;
  void add_bias(float* x, const float* bias, int64_t n, int64_t m) override;
  void add(float* x, const float* y, int64_t n) override;
  void add_rmsnorm(float* x, const float* h, const float* weight, int64_t n, int64_t dim, float eps,
                   float* out) override;
  void swiglu(float* gate, const float* up, int64_t n) override;
  void rope(float* x, int64_t n, int64_t heads, int64_t first_position,
            const RopeTable& table) override;
  void attention(const float* q, int64_t n, int64_t n_heads, int64_t n_kv_heads,
                 int64_t head_dim, const AttentionPlan& plan, const RopeTable& table,
                 float* out) override;
  // Two-pass attention on the wgmma kernel (bf16 prefill chunks on compute capability 9.0,
  // unless LTRI_ATTENTION_EARLY=0): attention_early queues the early part on a stream of its
  // own, at a priority between the compute stream's and the band's, on fewer blocks than the GPU
  // holds (kEarlyFreeEighths eighths of its block slots stay free: 99 of 264 on an H200, the
  // best of 24 / 64 / 96 / 128 / 160 at 128K, docs/performance.md), so the policy's choice, the
  // retrieved KV's gather and the band run beside it; attention() attends the rest on the compute stream and merges
  // the two parts' softmaxes. Where the wgmma kernel does not take the arguments, attention_early
  // only notes the call and attention() attends the whole plan in one pass.
  bool has_attention_early(int64_t n) const override;
  void attention_early(const float* q, int64_t n, int64_t n_heads, int64_t n_kv_heads, int64_t head_dim,
                       const AttentionPlan& part, const RopeTable& table) override;
  static constexpr int kEarlyFreeEighths = 3;
  // The band on the GPU (cuda_band.cu); one download of the votes and seg rows.
  void attention_band(const AttentionBandArgs& args, const RopeTable& table, float* votes, float* seg) override;
  // The same kernel; its output goes to the host on the copy stream (download_async).
  bool has_attention_band_async() const override { return true; }
  std::shared_ptr<BackendFence> attention_band_async(const AttentionBandArgs& args, const RopeTable& table, float* out,
                                                     bool want_seg) override;
  // Unit scoring on the GPU (cuda_score.cu): syncs the store's mirror (new vectors only),
  // uploads the active heads' queries, downloads the n_units scores. Always f32 (no TF32).
  void score_units(const ContextStore& store, UnitIndexMirror& mirror, const float* q, int64_t n_q, bool mean_query,
                   const std::vector<float>& head_weights, std::vector<float>& scores) override;
  // The choice on the GPU (cuda_select.cu): scores stay on the device, one radix sort and a
  // one-block walk pick the units, votes are summed per unit and cast per token there.
  bool has_device_choice() const override { return true; }
  void score_units_device(const ContextStore& store, UnitIndexMirror& mirror, const float* q, int64_t n_q,
                          int64_t position, const RopeTable& table, const std::vector<float>& head_weights,
                          float* scores) override;
  void select_by_budget_device(const UnitIndexMirror& mirror, const float* rank, const float* tie,
                               bool tie_is_last_rank, int64_t budget, int64_t shortest, int32_t* picked) override;
  void unit_votes_device(const UnitIndexMirror& mirror, const float* token_votes, int64_t n_votes, int64_t first_token,
                         const int32_t* top, int64_t top_capacity, float weight, float* rank) override;
  void cast_votes_device(const UnitIndexMirror& mirror, const int32_t* top, int64_t top_capacity, float weight,
                         float* token_votes, int64_t first_token) override;
  void fill_zero(float* x, size_t n) override;
  // Row block means on the GPU (cuda_row_means.cu); downloads only the (n_blocks, row) means.
  void row_block_means(const float* x, int64_t n, int64_t row, int64_t block, float* host_out) override;
  void row_block_means_device(const float* x, int64_t n, int64_t row, int64_t block, float* out) override;

  // Lets cuBLAS use TF32 tensor cores for matmul (~8x the f32 rate, ~1e-3 relative error).
  void allow_tf32(bool allow);
  // BF16: attention over chunks of at least kMmaMinQueries queries runs on tensor cores
  // (cuda_attention_wgmma.cu on compute capability 9.0 in an sm_90a build, unless
  // LTRI_ATTENTION_KERNEL=mma; else cuda_attention_mma.cu, which needs 8.0, else F32 stays);
  // F32: the f32 kernel.
  void set_attention_precision(DType dtype) override;
  // Whether bf16 prefill attention runs on the wgmma kernel (for tests and the bench's A/B).
  bool uses_wgmma_attention() const { return wgmma_attention_; }
  static constexpr int64_t kMmaMinQueries = 16;
  // Waits for every op enqueued so far.
  void synchronize() override;
  // Runs of gather_rows_stable whose host values the kernel read in place so far (for tests).
  int64_t gather_runs_in_place() const { return gather_runs_in_place_; }
  int device() const { return device_; }

 private:
  // Device copy of `table`'s cos/sin rows, re-uploaded when the table grew past it or has other
  // frequencies (a row is a pure function of inv_freq and the position, so that is the key).
  void sync_rope_table(const RopeTable& table);
  // Checks args and queues the band kernel; returns its output in device memory ([votes | seg],
  // *out_floats floats), or null when there is nothing to compute (no queries or no local keys).
  // side_stream: the kernels after the rotation run on band_stream_ (band_done_ recorded after
  // them); else all on the compute stream.
  float* queue_band(const AttentionBandArgs& args, const RopeTable& table, bool want_seg, bool side_stream,
                    size_t* out_floats);
  // Queues the scores of the store's units (syncing the mirror) into `out`, or into the score
  // scratch if out is null; returns where they are, or null when there is nothing to score (no
  // units, vectors, queries or head with a weight), with the mirror then not synced. q: host
  // queries already rotated when `rotate` is null; else query means in device memory that the
  // scored heads' rows are rotated from, to rotate->position.
  struct DeviceQueries {
    int64_t position = 0;
    const RopeTable* table = nullptr;
  };
  const float* score_on_device(const ContextStore& store, UnitIndexMirror& mirror, const float* q, int64_t n_q,
                               const std::vector<float>& head_weights, float* out, const DeviceQueries* rotate);
  // Checks a plan against the op's contract and the RoPE table (uploading the table) and lays
  // its segments out for the kernels: every segment, or (not_early) those not marked early.
  // `op` names the op in errors. A plan without visible keys fails unless allow_empty.
  struct AttentionCall {
    const float* q;
    int64_t n, n_heads, n_kv_heads, head_dim;
  };
  void make_attention_args(const char* op, const AttentionCall& call, const AttentionPlan& plan, const RopeTable& table,
                           bool not_early, bool allow_empty, float* out, cuda::AttentionArgs& args);
  // attention() of a plan whose early segments attention_early attended on the GPU: the others
  // as part 1, then the merge into out.
  void attention_after_early(const AttentionCall& call, const AttentionPlan& plan, const RopeTable& table, float* out);
  // Waits for the compute stream only: what upload and download need (download_async's copies
  // and the asynchronous band are waited for through their fences).
  void wait_for_compute();
  // Device scratch of at least n floats (grown geometrically, contents not kept).
  float* scratch(float*& buffer, size_t& capacity, size_t n);
  // Records [p, p + bytes) of alloc_host as readable by kernels where CUDA maps it (else not).
  void note_device_readable(void* p, size_t bytes);
  // The device address of host bytes [p, p + bytes) if they lie in one allocation kernels can
  // read in place (device_readable_host_), else null.
  const void* device_view(const void* p, size_t bytes);
  // The bf16 copy of an (n, k) activation that a GEMM reads (bf16_scratch_, grown as needed).
  uint16_t* activation_bf16_scratch(int64_t n, int64_t k);
  // out (n, m) = x_bf16 (n, k) . w^T, w (m, k) bf16: one cuBLAS GEMM, f32 sums, out f32 (or bf16
  // bits, rounded to nearest even, with bf16_out).
  void gemm_bf16(const uint16_t* x_bf16, WeightRef w, int64_t n, int64_t k, int64_t m, void* out,
                 bool bf16_out = false);
  // Whether mlp takes its bf16 path: more than one row, gate_up fused and down in bf16.
  static bool bf16_mlp(const MlpWeights& w, int64_t n);
  // The bf16 path of mlp from its input already in bf16 (n, hidden).
  void mlp_from_bf16(const uint16_t* x_bf16, const MlpWeights& w, int64_t n, int64_t hidden, int64_t ffn,
                     float* scratch, float* out);
  // norm's add and rmsnorm written as bf16 into the activation scratch (norm.normed untouched).
  const uint16_t* norm_to_bf16(const ResidualNorm& norm, int64_t n, int64_t dim);

  int device_ = 0;
  int sm_count_ = 0;
  bool wgmma_attention_ = false;  // set_attention_precision's choice of tensor-core kernel
  DType attention_precision_ = DType::F32;
  CUstream_st* stream_ = nullptr;
  CUstream_st* copy_stream_ = nullptr;  // download_async: device -> host copies beside the compute
  CUstream_st* band_stream_ = nullptr;  // attention_band_async's kernels after the rotation, low priority
  CUevent_st* copy_after_ = nullptr;    // recorded on stream_ before each download_async
  CUmemPoolHandle_st* pool_ = nullptr;  // the device's default stream-ordered pool (alloc / free)
  cublasContext* cublas_ = nullptr;
  std::unique_ptr<CudaOpTimer> op_timer_;  // GPU time per op under LTRI_PROFILE=gpu (else idle)
  AllocationCounter allocations_;
  // alloc_host's fallback allocations, freed with delete[]; alloc_host/free_host may be called
  // from several threads at once (the context stores' background slab allocations).
  std::unordered_set<float*> pageable_host_;
  // alloc_host's memory under LTRI_HOST_PIN=register (host_pinning.hpp): pointer -> mapped bytes.
  std::unordered_map<float*, size_t> registered_host_;
  // Every page-locked allocation of alloc_host that the device can read in place: host address
  // of its first byte -> (bytes, device address of its first byte).
  std::map<uintptr_t, std::pair<size_t, uintptr_t>> device_readable_host_;
  std::mutex pageable_host_mutex_;  // guards the three

  // RopeTable on the device: rope_positions_ rows of (head_dim / 2) cos and sin values.
  float* rope_cos_ = nullptr;
  float* rope_sin_ = nullptr;
  size_t rope_capacity_ = 0;  // floats in each of rope_cos_, rope_sin_
  int64_t rope_positions_ = 0;
  std::vector<double> rope_inv_freq_;  // of the table uploaded

  float* copy_scratch_ = nullptr;  // overlapping copies go through it
  size_t copy_scratch_capacity_ = 0;
  float* attention_scratch_ = nullptr;  // split-key partial softmaxes; bf16 K/V of the tensor-core kernel
  size_t attention_scratch_capacity_ = 0;
  float* bf16_scratch_ = nullptr;  // (n, k) activations rounded to bf16, two per float
  size_t bf16_scratch_capacity_ = 0;
  float* bf16_upload_scratch_ = nullptr;  // upload_bf16's staging: n bf16 values, two per float
  size_t bf16_upload_scratch_capacity_ = 0;
  float* int8_upload_scratch_ = nullptr;  // upload_int8_stable's staging: the scales, then the int8 values
  size_t int8_upload_scratch_capacity_ = 0;
  // Two-pass attention: the early pass's stream, its events and buffers, and what it was given.
  CUstream_st* early_stream_ = nullptr;
  CUevent_st* early_ready_ = nullptr;  // on stream_ at attention_early: the early pass waits for it
  CUevent_st* early_done_ = nullptr;   // on early_stream_ after the early pass: the merge waits for it
  float* early_tiles_ = nullptr;       // the early pass's bf16 K/Vt tiles
  size_t early_tiles_capacity_ = 0;
  float* early_partials_ = nullptr;    // both parts' (o | (m, l)), the early pass's as part 0
  size_t early_partials_capacity_ = 0;
  float* early_work_ = nullptr;        // one int: the early kernel's next item
  bool early_enabled_ = true;          // LTRI_ATTENTION_EARLY != "0"
  struct EarlyPass {
    const float* q = nullptr;
    int64_t n = 0;
    size_t segments = 0;    // segments of the part it was given
    bool pending = false;   // given, and attention() has not completed it yet
    bool on_gpu = false;    // queued on early_stream_ (else attention() attends everything)
  };
  EarlyPass early_;
  float* band_scratch_ = nullptr;  // attention_band: its output, then the (n_heads, n, width) band
  size_t band_scratch_capacity_ = 0;
  std::vector<float> band_host_;  // attention_band's output downloaded: votes, then seg rows
  // Recorded on the copy stream after attention_band_async's copy out of band_scratch_: the
  // next band waits for it before writing the scratch again.
  CUevent_st* band_copied_ = nullptr;
  CUevent_st* band_rotated_ = nullptr;  // on stream_ after the band's rotation: band_stream_ waits for it
  CUevent_st* band_done_ = nullptr;     // on band_stream_ after the band's kernels: the copy waits for it
  float* score_input_ = nullptr;  // score_units: (n_active, n_q, head_dim) queries, (n_active) weights, [(n_active) int32 heads]
  size_t score_input_capacity_ = 0;
  float* score_scratch_ = nullptr;  // score_units: scores, best dot per vector, one pass's dots
  size_t score_scratch_capacity_ = 0;
  float* select_scratch_ = nullptr;  // select_by_budget_device: sort keys and ids, CUB's temporary storage
  size_t select_scratch_capacity_ = 0;
  // The last select_by_budget_device call: its order stays in select_scratch_ for the next.
  struct LastSelect {
    const UnitIndexMirror* mirror = nullptr;
    const float* rank = nullptr;
    int64_t n_units = -1;
    bool had_tie = false;
  } last_select_;
  std::vector<float> score_host_;  // score_input_'s host staging
  // gather_rows_stable's page-locked host staging, two taking turns: a buffer is refilled only
  // once the upload that read it last is done (its event), which by then it nearly always is.
  struct GatherStaging {
    unsigned char* host = nullptr;
    size_t capacity = 0;
    CUevent_st* uploaded = nullptr;  // recorded after the upload from `host`
  };
  GatherStaging gather_staging_[2];
  int gather_turn_ = 0;
  float* gather_scratch_ = nullptr;  // the staging's bytes on the device
  std::vector<const void*> gather_mapped_;  // per run of a gather: its values' device view, or null
  int64_t gather_runs_in_place_ = 0;
  size_t gather_scratch_capacity_ = 0;
  std::vector<int64_t> score_heads_, score_kv_heads_;  // the active heads and their KV heads (then mirror slots)
  std::vector<int64_t> mirrored_heads_;                // the KV heads score_units asks the mirror for
  float* row_means_scratch_ = nullptr;  // row_block_means: the (n_blocks, row) means
  size_t row_means_scratch_capacity_ = 0;
};

}  // namespace ltri
