// Unit scoring for retrieval on the GPU (Backend::score_units; host reference: the CPU op,
// score_units_per_query / score_units in src/kv/retrieval.cpp). The index vectors stay on the
// device (UnitIndexMirror, appended chunk by chunk); per call only the few averaged queries go
// up and n_units scores come down. Per pass over a tile of index vectors:
//  1. per KV head, one cuBLAS GEMM: dots (group's active heads x n_q, tile) = queries . vectors^T
//     (SGEMM for an f32 index, the caller keeps TF32 off; for a bf16 index, bf16 operands with
//     f32 sums on the tensor cores);
//  2. max_over_queries: one thread per (vector, head) keeps each vector's best dot over the
//     queries, reading the dots once, coalesced along the vectors.
// The queries come either from the host (score_units) or, for the choice in device memory,
// from query means already on the device: pack_score_queries rotates and lays out those.
// Then unit_scores: one thread per unit takes the max over its vectors for each active head and
// sums weight x max over the heads in head order with explicit roundings, as the host does.
// Cost at Llama-3-8B shape with 32K tokens stored (~8K vectors per KV head, 32 heads, 16 query
// blocks, head_dim 128): 2 x 32 x 16 x 8K x 128 = 1.1 GFLOP per layer, ~0.05 ms of SGEMM on an
// H200 plus ~16 MB of dots read by step 2 (expected, not measured). Tiles bound the dots
// scratch at 64 MiB whatever n_q and the store size.
// Checked against the CPU op in tests/kernels/test_cuda_score.cpp.
#include <algorithm>
#include <cmath>

#include <cuda_bf16.h>

#include "kernels/cuda/cuda_check.hpp"
#include "kernels/cuda/cuda_score_kernels.hpp"

namespace ltri::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int64_t kDotsBudgetFloats = int64_t(1) << 24;  // one pass's dots: 64 MiB
constexpr int64_t kMinTile = 256;
constexpr size_t kAlignFloats = 64;  // scratch regions start on 256-byte boundaries for cuBLAS

size_t align_up(size_t n) { return (n + kAlignFloats - 1) / kAlignFloats * kAlignFloats; }

// Most active heads that share one KV head: the widest GEMM of a pass.
int64_t max_heads_per_kv(const ScoreArgs& a) {
  int64_t widest = 0;
  for (int64_t first = 0; first < a.n_active;) {
    int64_t end = first;
    while (end < a.n_active && a.kv_head[end] == a.kv_head[first]) ++end;
    widest = std::max(widest, end - first);
    first = end;
  }
  return widest;
}

// best_rows[a * n_vectors + v] = max over i of dots[(a * n_q + i) * cols + v], for the pass's
// heads a (blockIdx.y) and vectors v < cols of the tile.
__global__ void max_over_queries_kernel(const float* dots, int64_t n_q, int64_t cols, int64_t n_vectors,
                                        float* best_rows) {
  const int64_t v = int64_t(blockIdx.x) * kThreads + threadIdx.x;
  const int64_t a = blockIdx.y;
  if (v >= cols) return;
  const float* d = dots + a * n_q * cols + v;
  float m = -INFINITY;
  for (int64_t i = 0; i < n_q; ++i) m = fmaxf(m, d[i * cols]);
  best_rows[a * n_vectors + v] = m;
}

// scores[u] = sum over active heads a, in order, of weights[a] * max over u's vectors of
// best[a][k]; products and sums rounded one by one (no fma), as the host loop.
__global__ void unit_scores_kernel(const float* best, int64_t n_active, int64_t n_vectors, const float* weights,
                                   const int32_t* starts, int64_t n_units, float* scores) {
  const int64_t u = int64_t(blockIdx.x) * kThreads + threadIdx.x;
  if (u >= n_units) return;
  const int64_t first = starts[u], end = starts[u + 1];
  float total = 0.0f;
  for (int64_t a = 0; a < n_active; ++a) {
    const float* row = best + a * n_vectors;
    float m = -INFINITY;
    for (int64_t k = first; k < end; ++k) m = fmaxf(m, row[k]);
    total = __fadd_rn(total, __fmul_rn(weights[a], m));
  }
  scores[u] = total;
}

// One thread per value of out; the rotation of rope_rotate_host: v[e] = a c - b s and
// v[e + half] = b c + a s for the pair (a, b) = (v[e], v[e + half]).
__global__ void pack_score_queries_kernel(PackQueriesArgs a) {
  const int64_t total = a.n_active * a.n_q * a.head_dim, half = a.head_dim / 2;
  for (int64_t idx = int64_t(blockIdx.x) * kThreads + threadIdx.x; idx < total; idx += int64_t(gridDim.x) * kThreads) {
    const int64_t e = idx % a.head_dim, row = idx / a.head_dim;  // row = active * n_q + i
    const int64_t i = row % a.n_q, active = row / a.n_q;
    const float* x = a.q + (i * a.n_heads + a.heads[active]) * a.head_dim;
    float v;
    if (e < half) {
      v = __fsub_rn(__fmul_rn(x[e], a.cos[e]), __fmul_rn(x[e + half], a.sin[e]));
    } else {
      const int64_t j = e - half;
      v = __fadd_rn(__fmul_rn(x[e], a.cos[j]), __fmul_rn(x[j], a.sin[j]));
    }
    if (a.bf16) {
      static_cast<__nv_bfloat16*>(a.out)[idx] = __float2bfloat16_rn(v);
    } else {
      static_cast<float*>(a.out)[idx] = v;
    }
  }
}

}  // namespace

void launch_pack_score_queries(const PackQueriesArgs& a, cudaStream_t stream) {
  const int64_t total = a.n_active * a.n_q * a.head_dim;
  if (total <= 0) return;
  const unsigned blocks = unsigned(std::min<int64_t>((total + kThreads - 1) / kThreads, 4096));
  pack_score_queries_kernel<<<blocks, kThreads, 0, stream>>>(a);
  LTRI_CUDA_CHECK_LAUNCH("pack_score_queries_kernel");
}

int64_t score_tile_vectors(const ScoreArgs& a) {
  const int64_t columns = std::max<int64_t>(1, max_heads_per_kv(a) * a.n_q);
  return std::min(std::max(kMinTile, kDotsBudgetFloats / columns), std::max<int64_t>(a.n_vectors, 1));
}

size_t score_scratch_floats(const ScoreArgs& a) {
  const size_t scores = align_up(size_t(a.n_units));
  const size_t best = align_up(size_t(a.n_active * a.n_vectors));
  const size_t dots = size_t(max_heads_per_kv(a) * a.n_q * score_tile_vectors(a));
  return scores + best + dots;
}

void launch_score_units(const ScoreArgs& a, float* scratch, cublasHandle_t cublas, cudaStream_t stream) {
  if (a.n_units <= 0 || a.n_vectors <= 0 || a.n_active <= 0 || a.n_q <= 0) return;
  float* scores = a.scores ? a.scores : scratch;
  float* best = scratch + align_up(size_t(a.n_units));
  float* dots = best + align_up(size_t(a.n_active * a.n_vectors));
  const int64_t tile = score_tile_vectors(a);
  const int64_t hd = a.head_dim;
  const float alpha = 1.0f, beta = 0.0f;
  for (int64_t v0 = 0; v0 < a.n_vectors; v0 += tile) {
    const int64_t cols = std::min(tile, a.n_vectors - v0);
    for (int64_t first = 0; first < a.n_active;) {
      const int64_t g = a.kv_head[first];
      int64_t end = first;
      while (end < a.n_active && a.kv_head[end] == g) ++end;
      const int64_t rows = (end - first) * a.n_q;  // the group's active heads x queries
      // Column-major: dots (cols x rows, ld cols) = vectors^T (cols x hd) . queries (hd x rows);
      // read row-major it is (rows, cols): row (a, i) holds query i of head a against the tile.
      const size_t value_bytes = a.bf16 ? 2 : 4;
      const void* vectors = static_cast<const char*>(a.index) + size_t(g * a.index_head_stride + v0 * hd) * value_bytes;
      const void* queries = static_cast<const char*>(a.q) + size_t(first * a.n_q * hd) * value_bytes;
      if (a.bf16) {
        // bf16 x bf16 products are exact in f32; the sums are f32 (tensor cores).
        LTRI_CUDA_CHECK(cublasGemmEx(cublas, CUBLAS_OP_T, CUBLAS_OP_N, int(cols), int(rows), int(hd), &alpha, vectors,
                                     CUDA_R_16BF, int(hd), queries, CUDA_R_16BF, int(hd), &beta, dots, CUDA_R_32F,
                                     int(cols), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
      } else {
        LTRI_CUDA_CHECK(cublasSgemm(cublas, CUBLAS_OP_T, CUBLAS_OP_N, int(cols), int(rows), int(hd), &alpha,
                                    static_cast<const float*>(vectors), int(hd), static_cast<const float*>(queries),
                                    int(hd), &beta, dots, int(cols)));
      }
      const dim3 grid(unsigned((cols + kThreads - 1) / kThreads), unsigned(end - first));
      max_over_queries_kernel<<<grid, kThreads, 0, stream>>>(dots, a.n_q, cols, a.n_vectors,
                                                             best + first * a.n_vectors + v0);
      LTRI_CUDA_CHECK_LAUNCH("max_over_queries_kernel");
      first = end;
    }
  }
  const unsigned blocks = unsigned((a.n_units + kThreads - 1) / kThreads);
  unit_scores_kernel<<<blocks, kThreads, 0, stream>>>(best, a.n_active, a.n_vectors, a.weights, a.unit_starts,
                                                      a.n_units, scores);
  LTRI_CUDA_CHECK_LAUNCH("unit_scores_kernel");
}

}  // namespace ltri::cuda
