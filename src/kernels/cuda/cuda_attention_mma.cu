// Attention on tensor cores: the contract of launch_attention (cuda_attention.cu) computed with
// bf16 inputs and f32 accumulation, for prefill on models whose weights are held in bf16. out =
// softmax(q k^T / sqrt(d)) v under ONE softmax across every segment of the plan, keys rotated to
// the positions the plan gives them (pre-RoPE f32 keys in memory), queries to
// query_first_position + i or to a segment's fixed query_position, GQA rows R = i * group + j, the
// chunk's own segment causal (key t visible to query i only when t <= i).
//
// Two kernels per call:
// 1. kv_to_bf16_kernel writes every visible key, rotated to its plan position
//    (first_position + t * position_stride; keys never depend on the query), and every value as
//    bf16 into scratch, (n_kv_heads, visible, head_dim) each, segments concatenated in plan order.
//    The KV cache stays f32; converting once per call instead of once per block matters because
//    a 512-query chunk at 32 heads / 8 KV heads has 16 row blocks per KV head, each of which would
//    otherwise rotate and round every key again, and the main loop then reads 2 bytes per element
//    instead of 4. A tile of one KV head is one contiguous run of kKeys * head_dim bf16.
// 2. attention_mma_kernel: one block of 4 warps takes kRows = 128 rows of one KV head g (grid.y),
//    32 rows a warp (two 16-row mma tiles), and walks its tiles of kKeys = 64 keys (one segment's
//    keys per tile). Tiles are copied from the bf16 scratch into shared memory with cp.async, two
//    stages: tile j + 1 is in flight while tile j is computed, and one barrier a tile both waits
//    for tile j and frees the stage tile j + 1 goes into. Rows are padded by 8 bf16 so the 8 rows
//    an ldmatrix phase reads fall in distinct banks. Each warp writes its 32 queries, rotated and
//    rounded to bf16 once per query placement (a segment with query_position >= 0 gets them
//    rotated to that position, the others to query_first_position + i), into its own rows of a
//    shared query tile, and computes its 32 x 64 scores S = Q K^T with mma.sync m16n8k16 (Q's
//    fragments read from that tile by ldmatrix, each K fragment used by both row tiles), masks
//    only tiles that need it (the last, partial tile of a range, a partial warp, the causal
//    diagonal), updates the rows' running max m and sum l in f32 (online softmax, in log2 units:
//    the score is scaled by log2(e) / sqrt(d) in the fma that subtracts m, and ex2.approx used
//    throughout), and accumulates O += P V with P taken straight from S's accumulator registers:
//    the C fragment of two adjacent 16 x 8 score blocks is, element for element, the A fragment
//    of a 16 x 16 block of P. V's B fragments come from ldmatrix.trans on the row-major tile, so V
//    needs no transposed copy. A causal segment's tiles past the block's last query are never
//    loaded; a warp skips the tiles past its own last query; row blocks run last-first, so under
//    a causal chunk the longest of each (KV head, key part) start first.
//
// mma.sync m16n8k16 fragments (lane = 4 * gq + tq): A (16 x 16, row major) a0 = (gq, 2tq..2tq+1),
// a1 = (gq + 8, 2tq..), a2 = (gq, 2tq + 8..), a3 = (gq + 8, 2tq + 8..); B (16 x 8, k x n) b0 =
// (k 2tq..2tq+1, n gq), b1 = (k 2tq + 8.., n gq); C (16 x 8) c0, c1 = (gq, 2tq..2tq+1), c2, c3 =
// (gq + 8, 2tq..). A thread therefore owns rows gq and gq + 8 of each of its warp's two 16-row
// tiles, and a row's reductions are two shuffles across the 4 lanes of a quad.
//
// Why this shape (measured on an H200 at the 8B shape, head_dim 128, with bench/attention_bench.cu
// timing this file and copies of it built with other constants; docs/performance.md, "Twelfth
// run"): every warp reads whole K and V tiles from
// shared memory whatever its rows, so 32 rows a warp halve the ldmatrix traffic per mma against
// 16 (3.2 mma per ldmatrix instead of 2). Per tile the softmax costs the same per score but the
// barrier and the O rescale are per tile, so 64-key tiles beat 32-key ones (~315 against ~285
// TFLOP/s); 128 rows a block keep the K/V bytes read from L2 per call, (row blocks) x (visible
// keys) x 4 x head_dim, at half those of 64-row blocks. The cost is registers: O holds 128 of a
// thread's at head_dim 128 and S 64, so ptxas uses all 255 and spills ~50 bytes (measured faster
// than the spill-free 32-key tiles); 2 blocks are resident per SM on sm_90 (8 warps, 2 x 102 KiB
// of shared memory at head_dim 128, 2 x 54 KiB at 64: the launcher opts in above 48 KiB). A GPU
// whose per-block limit is lower (99 KiB on sm_86 / sm_89) cannot run head_dim 128 here:
// attention_mma_supports says no and the backend takes the f32 kernel; sm_80 (163 KiB an SM)
// holds one such block per SM. The previous kernel (8 warps x 16 rows, queries in registers) ran
// at ~237 TFLOP/s on the same shapes.
//
// Split keys: as the f32 kernel, grid.z may split the visible keys into parts when the row
// blocks alone leave SMs idle (attention_mma_splits); each part writes unnormalised o with
// (m, l) to scratch and launch_attention_merge (cuda_attention_merge.cu) combines them, m in log2 units.
//
// Bound: tensor-core issue and the softmax between the two products. Work: 4 * head_dim FLOPs
// per (row, visible key), half of a causal triangle skipped; the pre-pass moves ~12 bytes per
// (key, KV head, dim) (f32 K and V in, bf16 out) once per call (0.4 ms of a 28 ms call at 128K).
// Error: q, k, v and p rounded to bf16 (relative 2^-9 each), sums in f32: ~1e-3 of the output's
// scale for scores of order one (the rounding of q and k grows with |q . k|). Checked against
// CpuBackend::attention in tests/kernels/test_cuda_attention_mma.cpp.
#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "kernels/cuda/cuda_attention_common.cuh"
#include "kernels/cuda/cuda_check.hpp"
#include "kernels/cuda/cuda_kernels.hpp"

namespace ltri::cuda {

namespace {

using namespace attention_common;

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kMTiles = 2;                 // 16-row mma tiles per warp
constexpr int kWarpRows = 16 * kMTiles;    // rows (query, head) per warp
constexpr int kRows = kWarps * kWarpRows;  // rows per block
constexpr int kKeys = 64;                  // keys per tile
constexpr int kPad = 8;                    // bf16 of padding per shared row (16 bytes keep ldmatrix aligned)
constexpr int kStages = 2;                 // tiles in shared memory: the one computed, the one in flight

// Shared memory of one block: the block's rotated queries, and kStages tiles of rotated keys and
// of values, bf16, row major.
template <int D>
struct TileLayout {
  static constexpr int ld = D + kPad;           // bf16 per row; ld / 2 words = 4 (mod 32) for D = 64, 128
  static constexpr int tile = kKeys * ld;       // one (kKeys, ld) tile
  static constexpr int q = 0;                   // (kRows, ld): warp w owns rows w * kWarpRows ..
  static constexpr int k = q + kRows * ld;      // (kStages, kKeys, ld)
  static constexpr int v = k + kStages * tile;  // (kStages, kKeys, ld)
  static constexpr int elements = v + kStages * tile;
  static constexpr size_t bytes = size_t(elements) * sizeof(__nv_bfloat16);
};

// The pre-pass's output: rotated keys and values of every segment, concatenated in plan order.
struct KvBf16 {
  const __nv_bfloat16* k = nullptr;  // (n_kv_heads, visible, head_dim), device
  const __nv_bfloat16* v = nullptr;  // (n_kv_heads, visible, head_dim), device
  int64_t visible = 0;
};

// Which of the plan's tiles a block visits: segment s contributes columns [lo[s], hi[s]) (columns
// of all segments concatenated), its tiles numbered first_tile[s] .. first_tile[s + 1] - 1.
struct TileSchedule {
  int64_t lo[kMaxAttentionSegments];
  int64_t hi[kMaxAttentionSegments];
  int64_t offset[kMaxAttentionSegments];  // first column of the segment
  int first_tile[kMaxAttentionSegments + 1];
};

struct Tile {
  int segment;
  int64_t t0;  // first column
  int n;       // keys in the tile, 1..kKeys
};

#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
// c (16 x 8, f32) += a (16 x 16, bf16) b (16 x 8, bf16), fragments as in the header.
__device__ inline void mma_bf16(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Four 8 x 8 bf16 matrices from shared memory: lane l gives the address of row l % 8 of matrix
// l / 8 (a shared-window byte address: kernels add compile-time offsets to one base per lane, so
// the loops need no address registers); register j receives matrix j, lane (gq, tq) holding its
// row gq, columns 2tq, 2tq + 1 (with .trans: its rows 2tq, 2tq + 1 of column gq). "memory": it
// reads what other threads stored before a barrier, so it must not move above it.
__device__ inline void ldmatrix_x4(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr)
               : "memory");
}
__device__ inline void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr)
               : "memory");
}
#endif

__device__ inline Tile tile_at(const TileSchedule& sched, int j) {
  int s = 0;
  while (j >= sched.first_tile[s + 1]) ++s;  // empty segments have first_tile[s] == first_tile[s + 1]
  Tile t;
  t.segment = s;
  t.t0 = sched.lo[s] + int64_t(j - sched.first_tile[s]) * kKeys;
  t.n = int(imin(kKeys, sched.hi[s] - t.t0));
  return t;
}

#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800
// Tile `t` of KV head g from the bf16 scratch into one stage. Rows past t.n are zero (a p of 0
// times an uninitialised NaN would still be NaN).
template <int D>
__device__ inline void load_tile_async(const KvBf16& kv, int64_t g, const Tile& t, __nv_bfloat16* ks,
                                       __nv_bfloat16* vs) {
  using L = TileLayout<D>;
  constexpr int chunks = D / 8;  // 16-byte pieces of a row
  constexpr int rows_per_pass = kThreads / chunks;  // a pass copies whole rows
  static_assert(kThreads % chunks == 0 && kKeys % rows_per_pass == 0, "every thread copies the same pieces");
  // Thread t copies piece t % chunks of rows t / chunks + pass * rows_per_pass: one base per
  // thread, the passes at fixed offsets from it.
  const int r0 = int(threadIdx.x) / chunks, col = (int(threadIdx.x) % chunks) * 8;
  const __nv_bfloat16* k_src = kv.k + (g * kv.visible + t.t0 + r0) * D + col;
  const __nv_bfloat16* v_src = kv.v + (g * kv.visible + t.t0 + r0) * D + col;
  ks += r0 * L::ld + col;
  vs += r0 * L::ld + col;
#pragma unroll
  for (int pass = 0; pass < kKeys / rows_per_pass; ++pass) {
    const int r = pass * rows_per_pass;
    const bool valid = r0 + r < t.n;
    cp_async_16(ks + r * L::ld, valid ? k_src + r * D : kv.k, valid);
    cp_async_16(vs + r * L::ld, valid ? v_src + r * D : kv.v, valid);
  }
}
#endif

// The rows a thread owns: gq and gq + 8 (rr = 0, 1) of each of its warp's 16-row tiles mt.
struct ThreadRows {
  bool active[kMTiles][2];
  int i[kMTiles][2];  // query index in the chunk (0 for inactive rows); chunks are far below 2^31
};

// The warp's kWarpRows queries, rotated to `placement` (-1: query_first_position + i) and rounded
// to bf16, into its rows of the block's query tile: lane l writes row l (rows past the chunk are
// zero). Rows of one query are its group's heads, adjacent in q, so lanes read nearby memory.
// Only this warp reads these rows (ldmatrix in the QK^T loop), so a warp barrier suffices.
template <int D>
__device__ inline void store_query_rows(const AttentionArgs& a, int64_t warp_r0, int64_t rows_total, int64_t g,
                                        int64_t placement, int lane, __nv_bfloat16* qs) {
  constexpr int half = D / 2;
  const int64_t group = a.n_heads / a.n_kv_heads;
  const int64_t row = warp_r0 + lane;
  const bool active = row < rows_total;
  const int64_t i = active ? row / group : 0;
  const int64_t p = placement >= 0 ? placement : a.query_first_position + i;
  const float* qv = a.q + (i * a.n_heads + g * group + (active ? row % group : 0)) * D;
  __nv_bfloat16* dst = qs + lane * TileLayout<D>::ld;
  __syncwarp();  // every lane done reading the rows of the previous placement
#pragma unroll 4
  for (int d = 0; d < half; d += 4) {
    uint2 r0 = make_uint2(0u, 0u), r1 = make_uint2(0u, 0u);
    if (active) {
      const float4 lo = *reinterpret_cast<const float4*>(qv + d);
      const float4 hi = *reinterpret_cast<const float4*>(qv + d + half);
      const float4 c = *reinterpret_cast<const float4*>(a.cos + p * half + d);
      const float4 sn = *reinterpret_cast<const float4*>(a.sin + p * half + d);
      r0 = make_uint2(pack_bf16(lo.x * c.x - hi.x * sn.x, lo.y * c.y - hi.y * sn.y),
                      pack_bf16(lo.z * c.z - hi.z * sn.z, lo.w * c.w - hi.w * sn.w));
      r1 = make_uint2(pack_bf16(hi.x * c.x + lo.x * sn.x, hi.y * c.y + lo.y * sn.y),
                      pack_bf16(hi.z * c.z + lo.z * sn.z, hi.w * c.w + lo.w * sn.w));
    }
    *reinterpret_cast<uint2*>(dst + d) = r0;
    *reinterpret_cast<uint2*>(dst + d + half) = r1;
  }
  __syncwarp();  // the rows are written before any lane's ldmatrix reads them
}

// One thread per (visible key c, KV head g, item j of D / 8): key dims 4j..4j+3 with their
// RoPE partners 4j + D/2.., and value dims 8j..8j+7. Consecutive threads read consecutive f32 of
// one key row (all KV heads of a key are one row of the cache).
template <int D>
__global__ void kv_to_bf16_kernel(AttentionArgs a, int64_t visible, __nv_bfloat16* kb, __nv_bfloat16* vb) {
  constexpr int half = D / 2;
  constexpr int items = D / 8;
  const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= visible * a.n_kv_heads * items) return;
  const int j = int(idx % items);
  const int64_t g = (idx / items) % a.n_kv_heads;
  const int64_t c = idx / items / a.n_kv_heads;
  int si = 0;
  int64_t t = c;  // key index in segment si
  while (t >= a.segments[si].n) {
    t -= a.segments[si].n;
    ++si;
  }
  const AttentionSegment& seg = a.segments[si];
  const int64_t p = seg.first_position + t * seg.position_stride;
  const int64_t src = (t * a.n_kv_heads + g) * D;
  const int64_t dst = (g * visible + c) * D;
  const int d = 4 * j;
  const float4 lo = __ldg(reinterpret_cast<const float4*>(seg.k + src + d));
  const float4 hi = __ldg(reinterpret_cast<const float4*>(seg.k + src + d + half));
  const float4 cs = __ldg(reinterpret_cast<const float4*>(a.cos + p * half + d));
  const float4 sn = __ldg(reinterpret_cast<const float4*>(a.sin + p * half + d));
  *reinterpret_cast<uint2*>(kb + dst + d) = make_uint2(pack_bf16(lo.x * cs.x - hi.x * sn.x, lo.y * cs.y - hi.y * sn.y),
                                                       pack_bf16(lo.z * cs.z - hi.z * sn.z, lo.w * cs.w - hi.w * sn.w));
  *reinterpret_cast<uint2*>(kb + dst + d + half) =
      make_uint2(pack_bf16(hi.x * cs.x + lo.x * sn.x, hi.y * cs.y + lo.y * sn.y),
                 pack_bf16(hi.z * cs.z + lo.z * sn.z, hi.w * cs.w + lo.w * sn.w));
  const float4 v0 = __ldg(reinterpret_cast<const float4*>(seg.v + src + 8 * j));
  const float4 v1 = __ldg(reinterpret_cast<const float4*>(seg.v + src + 8 * j + 4));
  *reinterpret_cast<uint4*>(vb + dst + 8 * j) =
      make_uint4(pack_bf16(v0.x, v0.y), pack_bf16(v0.z, v0.w), pack_bf16(v1.x, v1.y), pack_bf16(v1.z, v1.w));
}

template <int D>
__global__ void __launch_bounds__(kThreads, 2)
    attention_mma_kernel(AttentionArgs a, KvBf16 kv, int splits, float* partial_o, float* partial_ml) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
  __trap();  // bf16 mma.sync and cp.async need sm_80; the host only launches this on such devices
#else
  using L = TileLayout<D>;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  __nv_bfloat16* smem = reinterpret_cast<__nv_bfloat16*>(smem_raw);
  __shared__ TileSchedule sched;

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int gq = lane / 4, tq = lane % 4;
  // Rows, queries and keys of one call stay far below 2^31 (a chunk's rows, a segment's keys):
  // 32-bit indices keep registers for the tiles; pointer offsets are formed in 64 bits.
  const int group = int(a.n_heads / a.n_kv_heads);
  const int g = int(blockIdx.y);
  const int rows_total = int(a.n) * group;
  // Row blocks in reverse: under a causal chunk the last rows see the most keys, and the GPU
  // starts blocks in index order (x fastest), so within one (KV head, key part) the longest
  // start first and the short ones fill the tail.
  const int r0 = int(gridDim.x - 1 - blockIdx.x) * kRows;
  const int warp_r0 = r0 + warp * kWarpRows;
  const bool warp_active = warp_r0 < rows_total;
  const bool warp_full = warp_r0 + kWarpRows <= rows_total;
  // Last query of the block (bounds every causal range) and first and last of this warp (which
  // tiles it needs to mask, which it skips); all only over rows that exist.
  const int64_t i_last = imin(a.n - 1, (imin(r0 + kRows, rows_total) - 1) / group);
  const int warp_i_first = warp_r0 / group;
  const int warp_i_last = warp_active ? int(imin(a.n - 1, (imin(warp_r0 + kWarpRows, rows_total) - 1) / group)) : -1;
  ThreadRows rows;
#pragma unroll
  for (int mt = 0; mt < kMTiles; ++mt) {
#pragma unroll
    for (int rr = 0; rr < 2; ++rr) {
      const int row = warp_r0 + mt * 16 + gq + 8 * rr;
      rows.active[mt][rr] = row < rows_total;
      rows.i[mt][rr] = rows.active[mt][rr] ? row / group : 0;
    }
  }
  const float scale_log2 = rsqrtf(float(D)) * 1.4426950408889634f;  // 1/sqrt(d) * log2(e)

  // This split's part of the visible keys (all segments concatenated), cut into tiles per segment.
  if (threadIdx.x == 0) {
    const int64_t part = (kv.visible + splits - 1) / splits;
    const int64_t c0 = int64_t(blockIdx.z) * part;
    const int64_t c1 = imin(kv.visible, c0 + part);
    int64_t offset = 0;
    int tiles = 0;
    for (int s = 0; s < a.n_segments; ++s) {
      const AttentionSegment& seg = a.segments[s];
      // Keys of this segment any row of the block may see: a causal one stops at the last query.
      const int64_t seg_len = seg.causal ? imin(seg.n, i_last + 1) : seg.n;
      const int64_t lo = imax(c0, offset);
      const int64_t hi = imax(lo, imin(c1, offset + seg_len));
      sched.lo[s] = lo;
      sched.hi[s] = hi;
      sched.offset[s] = offset;
      sched.first_tile[s] = tiles;
      tiles += int((hi - lo + kKeys - 1) / kKeys);
      offset += seg.n;
    }
    sched.first_tile[a.n_segments] = tiles;
  }
  __syncthreads();
  const int n_tiles = sched.first_tile[a.n_segments];

  float m[kMTiles][2];  // running max of each row, log2 units
  float l[kMTiles][2];  // this thread's share of each row's running sum
  float o[kMTiles][D / 8][4];  // (32 x D) output of the warp: per 16-row tile, C fragments per 8 dims
#pragma unroll
  for (int mt = 0; mt < kMTiles; ++mt) {
    m[mt][0] = m[mt][1] = -INFINITY;
    l[mt][0] = l[mt][1] = 0.0f;
#pragma unroll
    for (int nd = 0; nd < D / 8; ++nd) o[mt][nd][0] = o[mt][nd][1] = o[mt][nd][2] = o[mt][nd][3] = 0.0f;
  }
  __nv_bfloat16* qs = smem + L::q + warp * kWarpRows * L::ld;  // this warp's query rows
  // Byte addresses in the shared window of what this lane gives ldmatrix (header: Q's A
  // fragments, row lane % 16, columns + (lane / 16) * 8; K's B fragments, key lane % 8, dims +
  // (lane / 8) * 8; V's, read transposed, key (lane / 8 % 2) * 8 + lane % 8, dims + lane / 16 * 8).
  // Each loop step adds a compile-time offset.
  constexpr uint32_t kRowBytes = L::ld * sizeof(__nv_bfloat16);
  const uint32_t smem_base = unsigned(__cvta_generic_to_shared(smem));
  const uint32_t q_lane = unsigned(__cvta_generic_to_shared(qs)) + (lane % 16) * kRowBytes + (lane / 16) * 16;
  const uint32_t k_lane = (lane % 8) * kRowBytes + (lane / 8) * 16;
  const uint32_t v_lane = ((lane / 8) % 2 * 8 + lane % 8) * kRowBytes + (lane / 16) * 16;
  int64_t loaded_placement = -2;  // none yet

  // Tiles 0 .. kStages - 2 in flight before the loop; each step then waits for its own tile and
  // issues the one kStages - 1 ahead, into the stage the previous step computed (free: every
  // warp passed this step's barrier, so every warp finished the previous step). One barrier a
  // tile.
#pragma unroll
  for (int st = 0; st < kStages - 1; ++st) {
    if (st < n_tiles) {
      load_tile_async<D>(kv, g, tile_at(sched, st), smem + L::k + st * L::tile, smem + L::v + st * L::tile);
    }
    cp_async_commit();
  }
  for (int j = 0; j < n_tiles; ++j) {
    cp_async_wait<kStages - 2>();  // this thread's copies of tile j have landed (kStages >= 3: not later ones')
    __syncthreads();               // and every thread's; the previous step's stage is free
    if (j + kStages - 1 < n_tiles) {
      const int ahead = (j + kStages - 1) % kStages;
      load_tile_async<D>(kv, g, tile_at(sched, j + kStages - 1), smem + L::k + ahead * L::tile,
                         smem + L::v + ahead * L::tile);
    }
    cp_async_commit();  // an empty group past the last tile keeps the count the wait relies on

    const Tile tile = tile_at(sched, j);
    const AttentionSegment& seg = a.segments[tile.segment];
    if (placement_of(seg) != loaded_placement) {
      loaded_placement = placement_of(seg);  // the warp's own rows: a warp barrier inside
      if (warp_active) store_query_rows<D>(a, warp_r0, rows_total, g, loaded_placement, lane, qs);
    }
    const int k_first = int(tile.t0 - sched.offset[tile.segment]);  // key index in the segment
    const uint32_t stage = (j % kStages) * L::tile * sizeof(__nv_bfloat16);
    const uint32_t ks = smem_base + L::k * sizeof(__nv_bfloat16) + stage + k_lane;
    const uint32_t vs = smem_base + L::v * sizeof(__nv_bfloat16) + stage + v_lane;
    // A warp none of whose rows sees a key of this tile leaves m, l, o as they are.
    if (warp_active && !(seg.causal && k_first > warp_i_last)) {
      // S = Q K^T, per 16-row tile 16 x 64: s[mt][nb] holds keys nb * 8 .. nb * 8 + 7. Each K
      // fragment feeds both row tiles; Q's fragments come from shared memory per 32 dims.
      float s[kMTiles][kKeys / 8][4];
#pragma unroll
      for (int mt = 0; mt < kMTiles; ++mt) {
#pragma unroll
        for (int nb = 0; nb < kKeys / 8; ++nb) s[mt][nb][0] = s[mt][nb][1] = s[mt][nb][2] = s[mt][nb][3] = 0.0f;
      }
#pragma unroll
      for (int kp = 0; kp < D / 32; ++kp) {
        // A fragments of dims kp * 32 .. + 15 and + 16 .. + 31: lane l addresses row l % 16,
        // columns + (l / 16) * 8, so registers 0..3 are a0..a3 of the header.
        uint32_t qa[kMTiles][2][4];
#pragma unroll
        for (int mt = 0; mt < kMTiles; ++mt) {
#pragma unroll
          for (int h2 = 0; h2 < 2; ++h2) {
            ldmatrix_x4(qa[mt][h2], q_lane + mt * 16 * kRowBytes + (kp * 32 + h2 * 16) * 2);
          }
        }
#pragma unroll
        for (int nb = 0; nb < kKeys / 8; ++nb) {
          // Matrices: keys nb * 8 + 0..7 x dims kp * 32 + 8j: b0, b1 of the first 16 dims, then
          // of the second.
          uint32_t b[4];
          ldmatrix_x4(b, ks + nb * 8 * kRowBytes + kp * 32 * 2);
#pragma unroll
          for (int mt = 0; mt < kMTiles; ++mt) {
            mma_bf16(s[mt][nb], qa[mt][0], b[0], b[1]);
            mma_bf16(s[mt][nb], qa[mt][1], b[2], b[3]);
          }
        }
      }

      // Mask where some (row, key) of the tile is not seen: a partial tile, a partial warp, or a
      // causal tile reaching past the warp's first query. Element e of s[mt][nb] is row rr = e / 2
      // of tile mt, key nb * 8 + 2tq + e % 2. The scores stay unscaled here: the scale is
      // positive, so the max of the raw scores times it is the max of the scaled ones, and the
      // scale then goes into one fma with the subtraction of m below.
      const bool all_seen = tile.n == kKeys && warp_full && (!seg.causal || k_first + kKeys - 1 <= warp_i_first);
      float tile_max[kMTiles][2];
#pragma unroll
      for (int mt = 0; mt < kMTiles; ++mt) {
        tile_max[mt][0] = tile_max[mt][1] = -INFINITY;
        if (all_seen) {
#pragma unroll
          for (int nb = 0; nb < kKeys / 8; ++nb) {
#pragma unroll
            for (int e = 0; e < 4; ++e) tile_max[mt][e / 2] = fmaxf(tile_max[mt][e / 2], s[mt][nb][e]);
          }
        } else {
#pragma unroll
          for (int nb = 0; nb < kKeys / 8; ++nb) {
#pragma unroll
            for (int e = 0; e < 4; ++e) {
              const int rr = e / 2;
              const int c = nb * 8 + 2 * tq + e % 2;
              const bool seen =
                  rows.active[mt][rr] && c < tile.n && (!seg.causal || k_first + c <= rows.i[mt][rr]);
              s[mt][nb][e] = seen ? s[mt][nb][e] : -INFINITY;
              tile_max[mt][rr] = fmaxf(tile_max[mt][rr], s[mt][nb][e]);
            }
          }
        }
      }
      // P = exp2(S scale - m) (a masked -inf gives 0), packed into A fragments: keys kk * 16 ..
      // kk * 16 + 15 are score blocks 2kk (registers 0, 1) and 2kk + 1 (registers 2, 3).
      uint32_t pf[kMTiles][kKeys / 16][4];
#pragma unroll
      for (int mt = 0; mt < kMTiles; ++mt) {
        float alpha[2], m_ref[2];
#pragma unroll
        for (int rr = 0; rr < 2; ++rr) {
          float t = tile_max[mt][rr];
          t = fmaxf(t, __shfl_xor_sync(0xffffffffu, t, 1));
          t = fmaxf(t, __shfl_xor_sync(0xffffffffu, t, 2));
          const float m_new = fmaxf(m[mt][rr], t * scale_log2);  // -inf stays -inf
          // A row that has seen nothing yet keeps m = -inf, l = 0, o = 0 (no -inf - -inf): its
          // scores are all -inf, and exp2(-inf - 0) = 0.
          alpha[rr] = m_new == -INFINITY ? 1.0f : fast_exp2(m[mt][rr] - m_new);
          m_ref[rr] = m_new == -INFINITY ? 0.0f : m_new;
          m[mt][rr] = m_new;
        }
        float p_sum[2] = {0.0f, 0.0f};
#pragma unroll
        for (int nb = 0; nb < kKeys / 8; ++nb) {
          const float p0 = fast_exp2(fmaf(s[mt][nb][0], scale_log2, -m_ref[0]));
          const float p1 = fast_exp2(fmaf(s[mt][nb][1], scale_log2, -m_ref[0]));
          const float p2 = fast_exp2(fmaf(s[mt][nb][2], scale_log2, -m_ref[1]));
          const float p3 = fast_exp2(fmaf(s[mt][nb][3], scale_log2, -m_ref[1]));
          p_sum[0] += p0 + p1;
          p_sum[1] += p2 + p3;
          pf[mt][nb / 2][(nb % 2) * 2 + 0] = pack_bf16(p0, p1);
          pf[mt][nb / 2][(nb % 2) * 2 + 1] = pack_bf16(p2, p3);
        }
        l[mt][0] = l[mt][0] * alpha[0] + p_sum[0];
        l[mt][1] = l[mt][1] * alpha[1] + p_sum[1];
        // Deep into a long row the running max rarely moves, and then alpha is exactly 1: the
        // warp skips the D / 2 multiplications per row unless some row of its tile moved.
        if (__any_sync(0xffffffffu, alpha[0] != 1.0f || alpha[1] != 1.0f))
        {
#pragma unroll
          for (int nd = 0; nd < D / 8; ++nd) {
            o[mt][nd][0] *= alpha[0];
            o[mt][nd][1] *= alpha[0];
            o[mt][nd][2] *= alpha[1];
            o[mt][nd][3] *= alpha[1];
          }
        }
      }

      // O += P V: for keys kk * 16.., dims nd2 * 16..: matrices keys +0..7 / +8..15 x dims +0..7,
      // then the same keys x dims +8..15, read transposed (b0, b1 of nd = 2nd2, then 2nd2 + 1);
      // each V fragment feeds both row tiles.
#pragma unroll
      for (int kk = 0; kk < kKeys / 16; ++kk) {
#pragma unroll
        for (int nd2 = 0; nd2 < D / 16; ++nd2) {
          uint32_t b[4];
          ldmatrix_x4_trans(b, vs + kk * 16 * kRowBytes + nd2 * 16 * 2);
#pragma unroll
          for (int mt = 0; mt < kMTiles; ++mt) {
            mma_bf16(o[mt][2 * nd2], pf[mt][kk], b[0], b[1]);
            mma_bf16(o[mt][2 * nd2 + 1], pf[mt][kk], b[2], b[3]);
          }
        }
      }
    }
  }

  if (!warp_active) return;
#pragma unroll
  for (int mt = 0; mt < kMTiles; ++mt) {
#pragma unroll
    for (int rr = 0; rr < 2; ++rr) {
      float sum = l[mt][rr];
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      sum += __shfl_xor_sync(0xffffffffu, sum, 2);
      if (!rows.active[mt][rr]) continue;
      const int row = warp_r0 + mt * 16 + gq + 8 * rr;
      // Row of out (n, n_heads, head_dim): query i, head g * group + row % group.
      const int64_t out_row = int64_t(rows.i[mt][rr]) * a.n_heads + g * group + row % group;
      store_output_row<D>(a, out_row, tq, &o[mt][0][2 * rr], m[mt][rr], sum, int(blockIdx.z), partial_o, partial_ml);
    }
  }
#endif
}

// Scratch layout: [K bf16 (n_kv_heads, visible, D) | V bf16 (same) | partial o (splits, rows, D) |
// partial (m, l) (splits, rows, 2)]; the bf16 part is visible * n_kv_heads * D floats, a
// multiple of 16 bytes, so the partials stay aligned.
size_t kv_bf16_floats(const AttentionArgs& a) { return size_t(visible_keys(a) * a.n_kv_heads * a.head_dim); }

template <int D>
void launch_for_head_dim(const AttentionArgs& a, int splits, float* scratch, cudaStream_t stream) {
  static_assert(TileLayout<D>::bytes <= 227 * 1024, "beyond an sm_90 block's shared memory");
  const int64_t visible = visible_keys(a);
  __nv_bfloat16* kb = reinterpret_cast<__nv_bfloat16*>(scratch);
  __nv_bfloat16* vb = kb + visible * a.n_kv_heads * D;
  const int64_t items = visible * a.n_kv_heads * (D / 8);
  constexpr int kPrepassThreads = 256;
  kv_to_bf16_kernel<D><<<unsigned((items + kPrepassThreads - 1) / kPrepassThreads), kPrepassThreads, 0, stream>>>(
      a, visible, kb, vb);
  LTRI_CUDA_CHECK_LAUNCH("attention_mma_kv_to_bf16");

  const int64_t group = a.n_heads / a.n_kv_heads;
  const int64_t row_blocks = (a.n * group + kRows - 1) / kRows;
  const dim3 grid(unsigned(row_blocks), unsigned(a.n_kv_heads), unsigned(splits));
  const int64_t rows = a.n * a.n_heads;
  float* partials = scratch + kv_bf16_floats(a);
  float* partial_o = splits > 1 ? partials : nullptr;                          // (splits, rows, D)
  float* partial_ml = splits > 1 ? partials + splits * rows * D : nullptr;     // (splits, rows, 2)
  opt_in_shared_memory(attention_mma_kernel<D>, TileLayout<D>::bytes);
  attention_mma_kernel<D><<<grid, kThreads, TileLayout<D>::bytes, stream>>>(a, KvBf16{kb, vb, visible}, splits,
                                                                             partial_o, partial_ml);
  LTRI_CUDA_CHECK_LAUNCH("attention_mma");
  if (splits > 1) launch_attention_merge(partial_o, partial_ml, splits, rows, D, true, a.out, stream);
}

// Whether the current device can run attention_mma_kernel<D> at all: bf16 mma.sync and cp.async
// need sm_80, and one block's shared memory (the dynamic tiles plus the kernel's own static
// part) must fit the per-block opt-in limit, which sm_86 / sm_89 set at 99 KiB, below head_dim
// 128's 102 KiB. Otherwise cudaFuncSetAttribute would fail at the launch.
template <int D>
bool kernel_fits_device() {
  int device = 0, major = 0, optin = 0;
  cudaFuncAttributes attributes{};
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess ||
      cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device) != cudaSuccess ||
      cudaFuncGetAttributes(&attributes, attention_mma_kernel<D>) != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  return major >= 8 && TileLayout<D>::bytes + attributes.sharedSizeBytes <= size_t(optin);
}

}  // namespace

bool attention_mma_supports(const AttentionArgs& a) {
  if (a.head_dim != 64 && a.head_dim != 128) return false;
  // float4 loads of K, V, q and the RoPE rows, float2 stores of out.
  if (!aligned16(a.cos) || !aligned16(a.sin) || !aligned16(a.q) || !aligned16(a.out)) return false;
  if (!(a.head_dim == 64 ? kernel_fits_device<64>() : kernel_fits_device<128>())) return false;
  for (int s = 0; s < a.n_segments; ++s) {
    if (!aligned16(a.segments[s].k) || !aligned16(a.segments[s].v)) return false;
  }
  return true;
}

int attention_mma_splits(const AttentionArgs& a, int sm_count) {
  const int64_t visible = visible_keys(a);
  const int64_t group = a.n_heads / a.n_kv_heads;
  const int64_t blocks = (a.n * group + kRows - 1) / kRows * a.n_kv_heads;
  const int resident = a.head_dim == 64 ? blocks_per_sm(attention_mma_kernel<64>, kThreads, TileLayout<64>::bytes)
                                        : blocks_per_sm(attention_mma_kernel<128>, kThreads, TileLayout<128>::bytes);
  const int64_t slots = int64_t(sm_count) * resident;
  return key_parts(blocks, slots, visible);
}

size_t attention_mma_scratch_floats(const AttentionArgs& a, int splits) {
  const size_t partials = splits > 1 ? size_t(splits) * size_t(a.n * a.n_heads) * size_t(a.head_dim + 2) : 0;
  return kv_bf16_floats(a) + partials;
}

void launch_attention_mma(const AttentionArgs& a, int splits, float* scratch, cudaStream_t stream) {
  if (a.n <= 0) return;
  if (visible_keys(a) <= 0) fail("attention (bf16 tensor cores): no visible keys");
  // The kernel indexes rows (query, head) and keys in 32 bits.
  if (a.n * a.n_heads >= INT32_MAX || visible_keys(a) >= INT32_MAX) {
    fail("attention (bf16 tensor cores): ", a.n, " queries x ", a.n_heads, " heads over ", visible_keys(a),
         " keys exceed 32-bit row indices");
  }
  if (reinterpret_cast<uintptr_t>(scratch) % 16 != 0) {
    fail("attention (bf16 tensor cores): scratch is not 16-byte aligned");
  }
  if (a.head_dim == 64) {
    launch_for_head_dim<64>(a, splits, scratch, stream);
  } else if (a.head_dim == 128) {
    launch_for_head_dim<128>(a, splits, scratch, stream);
  } else {
    fail("attention (bf16 tensor cores): head_dim ", a.head_dim, " is not compiled in (64, 128)");
  }
}

}  // namespace ltri::cuda
