#pragma once
// The launcher of unit scoring (cuda_score.cu), called by CudaBackend::score_units. Same rules
// as cuda_kernels.hpp: plain function over device pointers and POD arguments, enqueued on
// `stream`, launch checked, no synchronisation.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace ltri::cuda {

// Backend::score_units as the kernels read it: only the heads with a nonzero weight
// ("active" heads), in head order, so their KV heads never decrease.
// With bf16 set, the queries and the index vectors are bf16 (raw bits) and the dot products
// run on the tensor cores with f32 sums; else both are f32.
struct ScoreArgs {
  bool bf16 = false;
  const void* q = nullptr;         // (n_active, n_q, head_dim), device: each active head's queries
  const float* weights = nullptr;  // (n_active), device: the active heads' weights
  const int64_t* kv_head = nullptr;  // (n_active), HOST: index slot of each active head's KV head, non-decreasing
  int64_t n_active = 0, n_q = 0, head_dim = 0;
  // Slot g's vectors (n_vectors, head_dim) start g * index_head_stride elements after index, device
  // (UnitIndexMirror: the slots are the mirrored KV heads)
  const void* index = nullptr;
  int64_t index_head_stride = 0;
  int64_t n_vectors = 0;
  const int32_t* unit_starts = nullptr;  // (n_units + 1), device: unit u owns vectors [starts[u], starts[u + 1])
  int64_t n_units = 0;
  float* scores = nullptr;  // (n_units), device: where the scores go; null = the scratch's start
};

// The queries of a choice that never leave the device (Backend::score_units_device): row
// (a * n_q + i) of out = query mean i of head heads[a], rotated to one position.
struct PackQueriesArgs {
  const float* q = nullptr;  // (n_q, n_heads, head_dim), device: query means before RoPE
  int64_t n_q = 0, n_heads = 0, head_dim = 0;
  const int32_t* heads = nullptr;  // (n_active), device: the active heads, in order
  int64_t n_active = 0;
  const float* cos = nullptr;  // (head_dim / 2), device: the position's row of the RoPE table
  const float* sin = nullptr;
  bool bf16 = false;  // out holds bf16 bits (ScoreArgs::bf16), else f32
  void* out = nullptr;  // (n_active, n_q, head_dim), device: ScoreArgs::q
};
// Writes args.out: each value rotated with rope_rotate_host's arithmetic (every product and
// sum rounded on its own, no fused multiply-add), then rounded to bf16 (to nearest even, as
// f32_to_bf16) when args.bf16: the operand the host would have uploaded, bit for bit.
void launch_pack_score_queries(const PackQueriesArgs& args, cudaStream_t stream);

// Index vectors scored per pass: the (active heads of one KV head, n_q, tile) dot products of a
// pass fit in a bounded scratch however many vectors the layer stores.
int64_t score_tile_vectors(const ScoreArgs& args);
// Device floats launch_score_units needs: the scores first (n_units, what the caller
// downloads), then each active head's best dot per vector, then one pass's dot products.
size_t score_scratch_floats(const ScoreArgs& args);
// Writes args.scores (or scratch[0, n_units)): scores[u] = sum over active heads a, in order, of
// weights[a] * max over the queries and u's vectors of <q_a,i, k>. `cublas` must be bound to
// `stream`; its math mode is used as set (the caller keeps TF32 off for f32 parity).
void launch_score_units(const ScoreArgs& args, float* scratch, cublasHandle_t cublas, cudaStream_t stream);

}  // namespace ltri::cuda
