#pragma once
// The CPU backend: the reference implementation of the op table (ops/backend.hpp), f32
// throughout. One thread pool, OpenMP's: GEMMs go to single-threaded OpenBLAS calls that the
// OpenMP threads split among themselves (slices of a matmul's outputs, attention's head/query
// tiles); element-wise ops are OpenMP loops. It is the oracle the CUDA kernels are tested
// against, so it stays simple where speed does not matter.
#include <vector>

#include "ops/allocation_counter.hpp"
#include "ops/backend.hpp"

namespace ltri {

class CpuBackend : public Backend {
 public:
  explicit CpuBackend(int threads);
  const char* name() const override { return "cpu"; }

  float* alloc(size_t n_floats) override;
  void free(float* p) override;
  void upload(float* dst, const float* host_src, size_t n) override;
  void download(float* host_dst, const float* src, size_t n) override;
  void copy(float* dst, const float* src, size_t n) override;
  void upload_bytes(void* dst, const void* host_src, size_t bytes) override;
  // alloc/free counted (host memory); h2d/d2h stay 0: upload/download are host copies.
  BackendStats stats() const override { return allocations_.stats(); }
  void reset_peak() override { allocations_.reset_peak(); }

  void embed(const float* table, const int32_t* ids, int64_t n, int64_t dim, float* out) override;
  void rmsnorm(const float* x, const float* weight, int64_t n, int64_t dim, float eps,
               float* out) override;
  void matmul(const float* x, const float* w, int64_t n, int64_t k, int64_t m,
              float* out) override;
  void add_bias(float* x, const float* bias, int64_t n, int64_t m) override;
  void add(float* x, const float* y, int64_t n) override;
  void swiglu(float* gate, const float* up, int64_t n) override;
  void rope(float* x, int64_t n, int64_t heads, int64_t first_position,
            const RopeTable& table) override;
  void attention(const float* q, int64_t n, int64_t n_heads, int64_t n_kv_heads,
                 int64_t head_dim, const AttentionPlan& plan, const RopeTable& table,
                 float* out) override;
  // Two-pass attention is taken and done in one pass: attention_early does nothing and
  // attention() attends every segment, `early` or not. So the policies' two-step plan runs in
  // every CPU test, with the numbers of one step.
  bool has_attention_early(int64_t /*n*/) const override { return true; }

 private:
  // Sizes of one attention call.
  struct AttentionShape {
    int64_t n = 0;          // queries in the chunk
    int64_t n_kv_heads = 0;
    int64_t head_dim = 0;
    int64_t q_row = 0;      // n_heads * head_dim
    int64_t kv_row = 0;     // n_kv_heads * head_dim
    int64_t group = 0;      // query heads per KV head
    int64_t visible = 0;    // keys over all segments
  };
  // Attention of query head h, queries [i0, i0 + rows), over every segment (cpu_attention.cpp).
  void attend_tile(int64_t h, int64_t i0, int64_t rows, const AttentionShape& a,
                   const AttentionPlan& plan, float* scores, float* out) const;
  // Attention of a single query per head, n = 1 (cpu_attention_decode.cpp).
  void attend_decode(const AttentionShape& a, const AttentionPlan& plan, const RopeTable& table,
                     float* out);

  int threads_;
  AllocationCounter allocations_;
  // Attention scratch, grown geometrically and reused (no allocation once warm).
  std::vector<float> keys_;     // (visible, n_kv_heads, head_dim), keys rotated to their positions
  std::vector<int64_t> query_positions_;    // distinct placements: -1 or a fixed query_position
  std::vector<int64_t> segment_placement_;  // (segments): index into query_positions_
  std::vector<int64_t> segment_offsets_;    // (segments): first row of each segment in keys_
  std::vector<float> queries_;  // (placements, n, n_heads, head_dim), rotated per placement
  std::vector<float> scores_;   // (threads, scores_stride_): per thread (tile, visible) + (tile)
  int64_t scores_stride_ = 0;
  std::vector<float> decode_partials_;  // (parts, n_heads x (head_dim + 2)): decode's split softmax
};

// Rotates one row of `heads` vectors (heads, head_dim) by `position`, HF rotate_half layout.
void rope_rotate_row(float* row, int64_t heads, int64_t head_dim, const float* cos,
                     const float* sin);

}  // namespace ltri
