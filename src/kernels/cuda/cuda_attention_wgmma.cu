// Attention on Hopper's warpgroup tensor-core instructions (wgmma, sm_90a): the contract of
// launch_attention (cuda_attention.cu) with bf16 inputs and f32 sums, as cuda_attention_mma.cu
// computes it with mma.sync (which stays the kernel of every other GPU, and the reference this
// one is tested beside). One softmax across every segment of the plan, keys rotated to the
// positions the plan gives them, queries to query_first_position + i or to a segment's fixed
// query_position, GQA rows R = i * group + j, the chunk's own segment causal.
//
// Why a second kernel: mma.sync issues 16 x 8 x 16 products a warp and reads both operands
// through registers (ldmatrix), which held the mma kernel near 315 TFLOP/s on an H200; wgmma
// issues 64 x N x 16 a warpgroup (4 warps) straight from shared memory. Measured on an H200 at
// the 8B shape (bench/attention_bench.cu, docs/performance.md "Sixteenth run"): 326-351 TFLOP/s
// against the mma kernel's 307-319 on chunks of 2048-16384 queries over ~128K keys; 421-433
// once tiles moved as whole pre-swizzled images (below; "Nineteenth run"). Each warpgroup still
// waits for S before its softmax and for O before the next tile, so the tensor cores idle during
// the softmax unless another warpgroup fills them (two blocks an SM: four warpgroups). Tried and
// not kept (docs/performance.md): a lagged loop at 128 registers (ptxas serialised its wgmmas),
// and a warp-specialised pipeline (one block an SM: a loading thread filling a ring of 4 stages
// by bulk copies on mbarriers, setmaxnreg giving its warpgroup's registers to two computing
// warpgroups that issue tile j's S before tile j - 1's P V), which ran no faster. Keeping each
// probability pair packed as soon as it is computed matters too: holding the tile's 32
// probabilities in f32 first added spills and cost ~10%.
//
// Two kernels per call:
// 1. kv_to_tiles_kernel: every visible key rotated to its plan position and rounded to bf16, and
//    the values TRANSPOSED, so that both products read their B operand K-major (the layout wgmma
//    reads without a transpose flag). Each segment starts at a multiple of 64 columns ("padded"
//    columns; the pad is zero), and every 64 columns of a KV head are written as one tile image
//    (TileImage): the 64 keys (64 x head_dim) then their values (head_dim x 64), each swizzled
//    exactly as the tile lies in shared memory, so a tile moves there as one run of bytes. One
//    block per (tile, KV head); V goes through shared memory to be transposed.
// 2. attention_wgmma_kernel: one block of 2 warpgroups takes kRows = 128 rows of one KV head
//    (grid.y), 64 rows a warpgroup (one wgmma M), and walks 64-key tiles (segment by segment,
//    each from the segment's first key). Tile images go from the scratch into shared memory
//    with cp.async, 16 bytes a thread at a time, two stages, one barrier a tile. Shared tiles use
//    the 128-byte swizzle wgmma's descriptors describe: a tile of R rows x 64 bf16 (128 bytes a
//    row) is one "atom", 16-byte chunk c of row r stored at chunk c ^ (r % 8); head_dim 128 is
//    two atoms side by side. Per tile, a warpgroup computes S (64 x 64) = Q K^T with head_dim /
//    16 wgmma m64n64k16 (Q and K from shared memory), masks, runs the online softmax in f32 (log2
//    units, ex2.approx), and accumulates O (64 x head_dim) += P Vt^T with 4 wgmma m64n{D}k16
//    whose A operand is P in registers: S's accumulator fragment is, element for element, the A
//    fragment of P (both are mma.sync's layouts, warp w holding rows 16w..16w + 15).
//
// Fragments (lane = 4 * gq + tq, warp w of the warpgroup): accumulator element 4 * nb + e is row
// 16w + gq + 8 * (e / 2), column 8 * nb + 2 * tq + e % 2; A fragment register r of a 16-column
// block: rows gq (r = 0, 2) / gq + 8 (r = 1, 3), columns 2tq, 2tq + 1 (+ 8 for r = 2, 3).
//
// Shared memory descriptors (64 bits): start address / 16 (bits 0-13), leading byte offset / 16
// (16-29; unused by a K-major swizzled operand whose 16 columns lie in one atom), stride byte
// offset / 16 (32-45: 1024, from one 8-row group to the next), swizzle mode (62-63: 1 = 128
// bytes). The swizzle is a function of the address bits, so atoms start on 1024-byte boundaries
// and the k-th 16 columns of an atom are addressed by adding 32 * k bytes to the start.
//
// Split keys, as the mma kernel: grid.z may cut a block's tiles into parts (attention_mma's
// choice of parts), each writing unnormalised o and (m, l) for launch_attention_merge.
// Error: as the mma kernel (q, k, v, p rounded to bf16, f32 sums). Checked against
// CpuBackend::attention and beside the mma kernel in tests/kernels/test_cuda_attention_mma.cpp.
#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "kernels/cuda/cuda_attention_common.cuh"
#include "kernels/cuda/cuda_check.hpp"
#include "kernels/cuda/cuda_kernels.hpp"

// wgmma exists only in the architecture-specific sm_90a target; elsewhere the kernel traps and
// attention_wgmma_supports says no.
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define LTRI_WGMMA 1
#else
#define LTRI_WGMMA 0
#endif

namespace ltri::cuda {

namespace {

using namespace attention_common;

constexpr int kGroups = 2;                     // warpgroups a block
constexpr int kThreads = kGroups * 128;
constexpr int kGroupRows = 64;                 // rows (query, head) of a warpgroup: one wgmma M
constexpr int kRows = kGroups * kGroupRows;    // rows of a block
constexpr int kKeys = 64;                      // keys of a tile: one 128-byte row of Vt
constexpr int kStages = 2;                     // tiles in shared memory: the one computed, the one in flight
constexpr int kPrepassThreads = 256;

// A tile as it lies in the scratch and in shared memory, byte for byte: its keys (64 x D) then its
// transposed values (D x 64), both swizzled as wgmma reads them. The pre-pass writes this image,
// so a tile moves into shared memory as one run of bytes.
template <int D>
struct TileImage {
  static constexpr int k_bytes = kKeys * D * 2;
  static constexpr int v_bytes = D * kKeys * 2;
  static constexpr int bytes = k_bytes + v_bytes;
};

// Shared memory of a block (bytes from a 1024-aligned base): each warpgroup's rotated queries
// (64 rows x D, swizzled), then kStages tile images.
template <int D>
struct Smem {
  static constexpr int q_group = kGroupRows * D * 2;  // one warpgroup's queries
  static constexpr int q = 0;
  static constexpr int ring = q + kGroups * q_group;
  static constexpr int bytes = ring + kStages * TileImage<D>::bytes;
  static constexpr size_t dynamic = size_t(bytes) + 1024;  // room to align the base
};

// Columns of the bf16 scratch: segment s starts at padded_start(s), a multiple of kKeys.
__host__ __device__ inline int64_t padded(int64_t n) { return (n + kKeys - 1) / kKeys * kKeys; }
__host__ __device__ inline int64_t padded_columns(const AttentionArgs& a) {
  int64_t c = 0;
  for (int s = 0; s < a.n_segments; ++s) c += padded(a.segments[s].n);
  return c;
}

// The pre-pass's output: per KV head, columns / kKeys tile images (TileImage) in column order.
struct KvTiles {
  const unsigned char* images = nullptr;
  int64_t columns = 0;
};

// A block's tiles: segment s's keys [0, len[s]) in tiles of kKeys (a causal segment stops at the
// block's last query), numbered first[s] .. first[s + 1] - 1 over all segments; this key part
// takes tiles begin .. end - 1.
struct TileSchedule {
  int64_t len[kMaxAttentionSegments];
  int64_t column[kMaxAttentionSegments];  // the segment's first column in the scratch
  int first[kMaxAttentionSegments + 1];
  int begin, end;
};

// Byte offset of 16-byte chunk `c` of row `r` in a swizzled tile of `rows` rows (atom c / 8).
__device__ inline uint32_t swizzled(int rows, int r, int c) {
  return uint32_t((c / 8) * rows * 128 + r * 128 + (((c % 8) ^ (r % 8)) << 4));
}

struct Tile {
  int segment;
  int k_first;     // first key, index in the segment
  int n;           // keys, 1..kKeys
  int64_t column;  // first column in the scratch
};


#if !defined(__CUDA_ARCH__) || LTRI_WGMMA
__device__ inline uint64_t smem_desc(uint32_t addr) {
  return uint64_t((addr & 0x3FFFF) >> 4) | (uint64_t(1) << 16) | (uint64_t(1024 >> 4) << 32) | (uint64_t(1) << 62);
}

__device__ inline Tile tile_at(const TileSchedule& sched, int j) {
  int s = 0;
  while (j >= sched.first[s + 1]) ++s;  // empty segments have first[s] == first[s + 1]
  Tile t;
  t.segment = s;
  t.k_first = (j - sched.first[s]) * kKeys;
  t.n = int(imin(kKeys, sched.len[s] - t.k_first));
  t.column = sched.column[s] + t.k_first;
  return t;
}

// wgmma's ordering primitives. fence: registers and shared memory this thread wrote are
// visible to the next wgmma; commit / wait: the wgmmas issued so far form a group, wait until
// at most N groups are in flight. fence_async_proxy: shared memory written by ordinary stores
// or cp.async (the generic proxy) is visible to wgmma (the async proxy) after a barrier.
__device__ inline void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ inline void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N>
__device__ inline void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
__device__ inline void fence_async_proxy() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }
// Keeps the compiler from moving reads or writes of accumulator registers across a wgmma that
// is still in flight (the asm statements that issue and wait do not tell it they are linked).
template <int N>
__device__ inline void pin_registers(float (&r)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+f"(r[i])::"memory");
}
// A barrier of one warpgroup's 128 threads (ids 1 and 2; 0 is __syncthreads).
// Immediate ids: a register id would make ptxas reserve all 16 of the block's barriers.
__device__ inline void warpgroup_barrier(int wg) {
  if (wg == 0) {
    asm volatile("bar.sync 1, 128;\n" ::: "memory");
  } else {
    asm volatile("bar.sync 2, 128;\n" ::: "memory");
  }
}

// d (64 x 64, f32) = A (64 x 16) B^T (B: 64 x 16) [+ d when accumulate], A and B in shared memory.
__device__ inline void wgmma_ss_n64(float (&d)[32], uint64_t desc_a, uint64_t desc_b, int accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {"
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31"
      "}, %32, %33, p, 1, 1, 0, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
        "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
        "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
        "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
      : "l"(desc_a), "l"(desc_b), "r"(accumulate));
}

// d (64 x 64, f32) += A (64 x 16) B^T (B: 64 x 16), A in registers, B in shared memory.
__device__ inline void wgmma_rs_n64(float (&d)[32], const uint32_t (&a)[4], uint64_t desc_b) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {"
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31"
      "}, {%32, %33, %34, %35}, %36, p, 1, 1, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
        "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
        "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
        "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(1));
}

// d (64 x 128, f32) += A (64 x 16) B^T (B: 128 x 16), A in registers, B in shared memory.
__device__ inline void wgmma_rs_n128(float (&d)[64], const uint32_t (&a)[4], uint64_t desc_b) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {"
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
      "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
      "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"
      "}, {%64, %65, %66, %67}, %68, p, 1, 1, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
        "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
        "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
        "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
        "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
        "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
        "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
        "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(1));
}

template <int D>
__device__ inline void wgmma_pv(float (&o)[D / 2], const uint32_t (&p)[4], uint64_t desc_vt);
template <>
__device__ inline void wgmma_pv<64>(float (&o)[32], const uint32_t (&p)[4], uint64_t desc_vt) {
  wgmma_rs_n64(o, p, desc_vt);
}
template <>
__device__ inline void wgmma_pv<128>(float (&o)[64], const uint32_t (&p)[4], uint64_t desc_vt) {
  wgmma_rs_n128(o, p, desc_vt);
}
#endif

// One block per (kKeys scratch columns, KV head g): the columns' keys rotated and rounded into K,
// their values rounded into shared memory and written transposed into Vt; pad columns (past a
// segment's end) get zeros, so tiles read over them multiply finite numbers only.
template <int D>
__global__ void __launch_bounds__(kPrepassThreads)
    kv_to_tiles_kernel(AttentionArgs a, int64_t columns, unsigned char* images) {
  constexpr int half = D / 2;
  // bf16 per shared row: D + 2 puts the 8 rows a transposing read visits in 4 banks, not 1.
  constexpr int ld = D + 2;
  __shared__ __align__(16) __nv_bfloat16 vs[kKeys * ld];
  const int64_t col0 = int64_t(blockIdx.x) * kKeys;
  const int64_t g = blockIdx.y;
  int s = 0;
  int64_t start = 0;  // the first column of segment s
  while (col0 >= start + padded(a.segments[s].n)) {
    start += padded(a.segments[s].n);
    ++s;
  }
  const AttentionSegment& seg = a.segments[s];
  const int64_t t0 = col0 - start;  // key index (in the segment) of the block's first column
  unsigned char* image = images + (g * (columns / kKeys) + blockIdx.x) * int64_t(TileImage<D>::bytes);

  // K: items (row r, quad d): dims d..d+3 and their RoPE partners d + half...
  for (int item = threadIdx.x; item < kKeys * (half / 4); item += kPrepassThreads) {
    const int r = item / (half / 4), d = 4 * (item % (half / 4));
    const int64_t t = t0 + r;
    uint2 lo_out = make_uint2(0u, 0u), hi_out = make_uint2(0u, 0u);
    if (t < seg.n) {
      const int64_t p = seg.first_position + t * seg.position_stride;
      const float* k = seg.k + (t * a.n_kv_heads + g) * D;
      const float4 lo = __ldg(reinterpret_cast<const float4*>(k + d));
      const float4 hi = __ldg(reinterpret_cast<const float4*>(k + d + half));
      const float4 cs = __ldg(reinterpret_cast<const float4*>(a.cos + p * half + d));
      const float4 sn = __ldg(reinterpret_cast<const float4*>(a.sin + p * half + d));
      lo_out = make_uint2(pack_bf16(lo.x * cs.x - hi.x * sn.x, lo.y * cs.y - hi.y * sn.y),
                          pack_bf16(lo.z * cs.z - hi.z * sn.z, lo.w * cs.w - hi.w * sn.w));
      hi_out = make_uint2(pack_bf16(hi.x * cs.x + lo.x * sn.x, hi.y * cs.y + lo.y * sn.y),
                          pack_bf16(hi.z * cs.z + lo.z * sn.z, hi.w * cs.w + lo.w * sn.w));
    }
    // Dims d..d+3 lie in one 16-byte chunk (d / 8) of row r; d + half likewise.
    *reinterpret_cast<uint2*>(image + swizzled(kKeys, r, d / 8) + (d % 8) * 2) = lo_out;
    *reinterpret_cast<uint2*>(image + swizzled(kKeys, r, (d + half) / 8) + (d % 8) * 2) = hi_out;
  }
  // V: items (row r, dims d..d+7) into shared row r.
  for (int item = threadIdx.x; item < kKeys * (D / 8); item += kPrepassThreads) {
    const int r = item / (D / 8), d = 8 * (item % (D / 8));
    const int64_t t = t0 + r;
    uint32_t w[4] = {0u, 0u, 0u, 0u};
    if (t < seg.n) {
      const float* v = seg.v + (t * a.n_kv_heads + g) * D + d;
      const float4 v0 = __ldg(reinterpret_cast<const float4*>(v));
      const float4 v1 = __ldg(reinterpret_cast<const float4*>(v + 4));
      w[0] = pack_bf16(v0.x, v0.y);
      w[1] = pack_bf16(v0.z, v0.w);
      w[2] = pack_bf16(v1.x, v1.y);
      w[3] = pack_bf16(v1.z, v1.w);
    }
    uint32_t* row = reinterpret_cast<uint32_t*>(vs + r * ld + d);  // 4-byte aligned (ld is even)
#pragma unroll
    for (int e = 0; e < 4; ++e) row[e] = w[e];
  }
  __syncthreads();
  // Vt: items (dim d, keys c..c+7): one 16-byte run of Vt's row d.
  const uint16_t* vbits = reinterpret_cast<const uint16_t*>(vs);
  for (int item = threadIdx.x; item < D * (kKeys / 8); item += kPrepassThreads) {
    const int d = item / (kKeys / 8), c = 8 * (item % (kKeys / 8));
    uint32_t w[4];
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      w[e] = uint32_t(vbits[(c + 2 * e) * ld + d]) | (uint32_t(vbits[(c + 2 * e + 1) * ld + d]) << 16);
    }
    *reinterpret_cast<uint4*>(image + TileImage<D>::k_bytes + swizzled(D, d, c / 8)) = make_uint4(w[0], w[1], w[2], w[3]);
  }
}

#if !defined(__CUDA_ARCH__) || LTRI_WGMMA
// The image of tile `t` of KV head g in the scratch.
template <int D>
__device__ inline const unsigned char* tile_image(const KvTiles& kv, int64_t g, const Tile& t) {
  return kv.images + (g * (kv.columns / kKeys) + t.column / kKeys) * int64_t(TileImage<D>::bytes);
}

// Tile `t` of KV head g into one stage of shared memory by every thread's cp.async chunks.
template <int D>
__device__ inline void load_tile_async(const KvTiles& kv, int64_t g, const Tile& t, unsigned char* stage) {
  const unsigned char* src = tile_image<D>(kv, g, t);
#pragma unroll
  for (int item = threadIdx.x; item < TileImage<D>::bytes / 16; item += kThreads) {
    cp_async_16(stage + item * 16, src + item * 16, true);
  }
}

// A warpgroup's 64 query rows rotated to `placement` (-1: query_first_position + i), rounded to
// bf16 and stored swizzled: warp w writes rows 16w..16w + 15, two lanes a row (each a half of
// the rotation pairs); rows past the chunk are zero. The caller fences and barriers.
template <int D>
__device__ inline void store_queries(const AttentionArgs& a, int wg_r0, int rows_total, int g, int64_t placement,
                                     int warp, int lane, unsigned char* qs) {
  constexpr int half = D / 2;
  constexpr int per_lane = half / 2;
  const int group = int(a.n_heads / a.n_kv_heads);
  const int rw = warp * 16 + lane % 16;
  const int row = wg_r0 + rw;
  const bool active = row < rows_total;
  const int64_t i = active ? row / group : 0;
  const int64_t p = placement >= 0 ? placement : a.query_first_position + i;
  const float* qv = a.q + (i * a.n_heads + g * group + (active ? row % group : 0)) * D;
  const float* c = a.cos + p * half;
  const float* sn = a.sin + p * half;
#pragma unroll
  for (int d = (lane / 16) * per_lane; d < (lane / 16 + 1) * per_lane; d += 8) {
    uint4 lo_out = make_uint4(0u, 0u, 0u, 0u), hi_out = make_uint4(0u, 0u, 0u, 0u);
    if (active) {
      float lo[8], hi[8], cs[8], ss[8];
      *reinterpret_cast<float4*>(lo) = *reinterpret_cast<const float4*>(qv + d);
      *reinterpret_cast<float4*>(lo + 4) = *reinterpret_cast<const float4*>(qv + d + 4);
      *reinterpret_cast<float4*>(hi) = *reinterpret_cast<const float4*>(qv + d + half);
      *reinterpret_cast<float4*>(hi + 4) = *reinterpret_cast<const float4*>(qv + d + half + 4);
      *reinterpret_cast<float4*>(cs) = *reinterpret_cast<const float4*>(c + d);
      *reinterpret_cast<float4*>(cs + 4) = *reinterpret_cast<const float4*>(c + d + 4);
      *reinterpret_cast<float4*>(ss) = *reinterpret_cast<const float4*>(sn + d);
      *reinterpret_cast<float4*>(ss + 4) = *reinterpret_cast<const float4*>(sn + d + 4);
      uint32_t wl[4], wh[4];
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int x = 2 * e, y = 2 * e + 1;
        wl[e] = pack_bf16(lo[x] * cs[x] - hi[x] * ss[x], lo[y] * cs[y] - hi[y] * ss[y]);
        wh[e] = pack_bf16(hi[x] * cs[x] + lo[x] * ss[x], hi[y] * cs[y] + lo[y] * ss[y]);
      }
      lo_out = make_uint4(wl[0], wl[1], wl[2], wl[3]);
      hi_out = make_uint4(wh[0], wh[1], wh[2], wh[3]);
    }
    *reinterpret_cast<uint4*>(qs + swizzled(kGroupRows, rw, d / 8)) = lo_out;
    *reinterpret_cast<uint4*>(qs + swizzled(kGroupRows, rw, (d + half) / 8)) = hi_out;
  }
}
#endif

#if !defined(__CUDA_ARCH__) || LTRI_WGMMA
// Thread 0 of a block: the tiles of the item whose rows are [r0, r0 + kRows), key part z of
// `splits`. The caller makes it visible with a barrier.
__device__ inline void schedule_item(const AttentionArgs& a, int splits, int z, int r0, TileSchedule& sched) {
  const int group = int(a.n_heads / a.n_kv_heads);
  const int rows_total = int(a.n) * group;
  const int64_t i_last = imin(a.n - 1, (imin(r0 + kRows, rows_total) - 1) / group);
  int tiles = 0;
  int64_t column = 0;
  for (int s = 0; s < a.n_segments; ++s) {
    const AttentionSegment& seg = a.segments[s];
    const int64_t len = seg.causal ? imin(seg.n, i_last + 1) : seg.n;  // keys any row of the block sees
    sched.len[s] = len;
    sched.column[s] = column;
    sched.first[s] = tiles;
    tiles += int((len + kKeys - 1) / kKeys);
    column += padded(seg.n);
  }
  sched.first[a.n_segments] = tiles;
  const int per_part = (tiles + splits - 1) / splits;
  sched.begin = min(tiles, z * per_part);
  sched.end = min(tiles, sched.begin + per_part);
}

// What one thread of a warpgroup knows of its rows: the warpgroup (wg) takes rows
// wg_r0 .. wg_r0 + 63 of the item, warp w rows 16w.., this thread rows 16w + gq and 16w + gq + 8
// (rr = 0, 1) of S's and O's fragments.
struct RowFrame {
  int group, rows_total, wg_r0, warp, lane, gq, tq;
  bool wg_active, wg_full;
  int wg_i_first, wg_i_last;
  bool row_active[2];
  int row_i[2];
};

__device__ inline RowFrame row_frame(const AttentionArgs& a, int r0, int wg, int warp, int lane) {
  RowFrame f;
  f.group = int(a.n_heads / a.n_kv_heads);
  f.rows_total = int(a.n) * f.group;
  f.wg_r0 = r0 + wg * kGroupRows;
  f.warp = warp;
  f.lane = lane;
  f.gq = lane / 4;
  f.tq = lane % 4;
  f.wg_active = f.wg_r0 < f.rows_total;
  f.wg_full = f.wg_r0 + kGroupRows <= f.rows_total;
  f.wg_i_first = f.wg_r0 / f.group;
  f.wg_i_last = f.wg_active ? int(imin(a.n - 1, (imin(f.wg_r0 + kGroupRows, f.rows_total) - 1) / f.group)) : -1;
#pragma unroll
  for (int rr = 0; rr < 2; ++rr) {
    const int row = f.wg_r0 + warp * 16 + f.gq + 8 * rr;
    f.row_active[rr] = row < f.rows_total;
    f.row_i[rr] = f.row_active[rr] ? row / f.group : 0;
  }
  return f;
}

// S = Q K^T (64 x 64) of a warpgroup, issued and committed: head_dim / 16 steps of 16 dims, 4 per
// 64-dim atom (32 bytes each). The caller fences before and waits after.
template <int D>
__device__ __forceinline__ void issue_scores(float (&s)[32], uint32_t q_addr, uint32_t k_addr) {
#pragma unroll
  for (int kd = 0; kd < D / 16; ++kd) {
    const uint32_t step = (kd / 4) * (kGroupRows * 128) + (kd % 4) * 32;  // Q and K atoms are both 64 rows
    wgmma_ss_n64(s, smem_desc(q_addr + step), smem_desc(k_addr + step), kd > 0 ? 1 : 0);
  }
  wgmma_commit();
}

// O += P V, issued and committed: 4 steps of 16 keys, 32 bytes apart in Vt's 128-byte rows.
template <int D>
__device__ __forceinline__ void issue_values(float (&o)[D / 2], const uint32_t (&pf)[kKeys / 16][4], uint32_t v_addr) {
#pragma unroll
  for (int kk = 0; kk < kKeys / 16; ++kk) wgmma_pv<D>(o, pf[kk], smem_desc(v_addr + kk * 32));
  wgmma_commit();
}

// The online softmax of one tile's scores S: masks what the thread's rows do not see, moves the
// running max m (log2 units) and sum l, and writes P = exp2(S scale - m) as the A fragments of
// O += P V; alpha is what O must be scaled by before P V is added.
__device__ __forceinline__ void softmax_tile(float (&s)[32], const RowFrame& f, const Tile& tile, bool causal,
                                             float scale_log2, float (&m)[2], float (&l)[2],
                                             uint32_t (&pf)[kKeys / 16][4], float (&alpha)[2]) {
  // Mask where some (row, key) of the tile is not seen: a partial tile, a partial warpgroup,
  // or a causal tile reaching past the warpgroup's first query. Element 4nb + e is row rr = e / 2,
  // key nb * 8 + 2tq + e % 2. Scores stay unscaled until the fma with m (the scale is positive).
  const bool all_seen = tile.n == kKeys && f.wg_full && (!causal || tile.k_first + kKeys - 1 <= f.wg_i_first);
  float tile_max[2] = {-INFINITY, -INFINITY};
  if (all_seen) {
#pragma unroll
    for (int e = 0; e < 32; ++e) tile_max[(e / 2) % 2] = fmaxf(tile_max[(e / 2) % 2], s[e]);
  } else {
#pragma unroll
    for (int e = 0; e < 32; ++e) {
      const int rr = (e / 2) % 2;
      const int c = (e / 4) * 8 + 2 * f.tq + e % 2;
      const bool seen = f.row_active[rr] && c < tile.n && (!causal || tile.k_first + c <= f.row_i[rr]);
      s[e] = seen ? s[e] : -INFINITY;
      tile_max[rr] = fmaxf(tile_max[rr], s[e]);
    }
  }
  float m_ref[2];
#pragma unroll
  for (int rr = 0; rr < 2; ++rr) {
    float t = tile_max[rr];
    t = fmaxf(t, __shfl_xor_sync(0xffffffffu, t, 1));
    t = fmaxf(t, __shfl_xor_sync(0xffffffffu, t, 2));
    const float m_new = fmaxf(m[rr], t * scale_log2);  // -inf stays -inf
    // A row that has seen nothing yet keeps m = -inf, l = 0, o = 0 (no -inf - -inf).
    alpha[rr] = m_new == -INFINITY ? 1.0f : fast_exp2(m[rr] - m_new);
    m_ref[rr] = m_new == -INFINITY ? 0.0f : m_new;
    m[rr] = m_new;
  }
  // Keys 16kk.. are score blocks 2kk (registers 0, 1) and 2kk + 1 (registers 2, 3).
  float p_sum[2] = {0.0f, 0.0f};
#pragma unroll
  for (int nb = 0; nb < kKeys / 8; ++nb) {
    const float p0 = fast_exp2(fmaf(s[4 * nb + 0], scale_log2, -m_ref[0]));
    const float p1 = fast_exp2(fmaf(s[4 * nb + 1], scale_log2, -m_ref[0]));
    const float p2 = fast_exp2(fmaf(s[4 * nb + 2], scale_log2, -m_ref[1]));
    const float p3 = fast_exp2(fmaf(s[4 * nb + 3], scale_log2, -m_ref[1]));
    p_sum[0] += p0 + p1;
    p_sum[1] += p2 + p3;
    pf[nb / 2][(nb % 2) * 2 + 0] = pack_bf16(p0, p1);
    pf[nb / 2][(nb % 2) * 2 + 1] = pack_bf16(p2, p3);
  }
  l[0] = l[0] * alpha[0] + p_sum[0];
  l[1] = l[1] * alpha[1] + p_sum[1];
}

// O *= alpha per row; deep into a long row the max rarely moves and alpha is exactly 1: skip then.
template <int D>
__device__ __forceinline__ void rescale_output(float (&o)[D / 2], const float (&alpha)[2]) {
  if (__any_sync(0xffffffffu, alpha[0] != 1.0f || alpha[1] != 1.0f)) {
#pragma unroll
    for (int e = 0; e < D / 2; ++e) o[e] *= alpha[(e / 2) % 2];
  }
}

// The warpgroup's rows out: o / l into out, or o and (m, l) into part `part` of the partials.
template <int D>
__device__ __forceinline__ void store_rows(const AttentionArgs& a, const RowFrame& f, int g, const float (&o)[D / 2],
                                           const float (&m)[2], const float (&l)[2], int part, float* partial_o,
                                           float* partial_ml) {
#pragma unroll
  for (int rr = 0; rr < 2; ++rr) {
    float sum = l[rr];
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    if (!f.row_active[rr]) continue;
    const int row = f.wg_r0 + f.warp * 16 + f.gq + 8 * rr;
    // Row of out (n, n_heads, head_dim): query i, head g * group + row % group.
    const int64_t out_row = int64_t(f.row_i[rr]) * a.n_heads + g * f.group + row % f.group;
    store_output_row<D>(a, out_row, f.tq, &o[2 * rr], m[rr], sum, part, partial_o, partial_ml);
  }
}

// One work item of attention_wgmma_kernel: rows [r0, r0 + kRows) of KV head g, key part z of
// `splits`, stored as part `part` of the partials (or into out when partial_o is null). Every
// thread of the block calls it and loads tiles (cp.async, two stages, one barrier a tile); it
// returns with the block's shared memory free for the next item once the caller has passed a
// barrier.
template <int D>
__device__ __forceinline__ void attend_rows(const AttentionArgs& a, const KvTiles& kv, int splits, int z, int part,
                                            float* partial_o, float* partial_ml, int g, int r0, unsigned char* smem,
                                            uint32_t base, TileSchedule& sched) {
  using L = Smem<D>;
  const int wg = threadIdx.x / 128;
  const RowFrame f = row_frame(a, r0, wg, (threadIdx.x / 32) % 4, threadIdx.x % 32);
  const float scale_log2 = rsqrtf(float(D)) * 1.4426950408889634f;  // 1/sqrt(d) * log2(e)

  if (threadIdx.x == 0) schedule_item(a, splits, z, r0, sched);
  __syncthreads();
  const int first_tile = sched.begin;
  const int n_tiles = sched.end - sched.begin;

  float m[2] = {-INFINITY, -INFINITY};  // running max of each row, log2 units
  float l[2] = {0.0f, 0.0f};            // this thread's share of each row's running sum
  float o[D / 2];                       // (64 x D) of the warpgroup: accumulator fragments
#pragma unroll
  for (int e = 0; e < D / 2; ++e) o[e] = 0.0f;
  unsigned char* qs = smem + L::q + wg * L::q_group;
  const uint32_t q_addr = base + L::q + wg * L::q_group;
  int64_t loaded_placement = -2;  // none yet

  if (n_tiles > 0) load_tile_async<D>(kv, g, tile_at(sched, first_tile), smem + L::ring);
  cp_async_commit();
  for (int j = 0; j < n_tiles; ++j) {
    cp_async_wait<0>();   // this thread's copies of tile j have landed
    fence_async_proxy();  // and are visible to wgmma
    __syncthreads();      // every thread's; every warpgroup is done with the other stage
    if (j + 1 < n_tiles) {
      const int next = (j + 1) % kStages;
      load_tile_async<D>(kv, g, tile_at(sched, first_tile + j + 1), smem + L::ring + next * TileImage<D>::bytes);
    }
    cp_async_commit();

    const Tile tile = tile_at(sched, first_tile + j);
    const AttentionSegment& seg = a.segments[tile.segment];
    if (!f.wg_active) continue;
    if (placement_of(seg) != loaded_placement) {
      loaded_placement = placement_of(seg);
      // The barrier above also ordered this warpgroup's last wgmma reads of qs before these writes.
      store_queries<D>(a, f.wg_r0, f.rows_total, g, loaded_placement, f.warp, f.lane, qs);
      fence_async_proxy();
      warpgroup_barrier(wg);
    }
    // A warpgroup none of whose rows sees a key of this tile leaves m, l, o as they are.
    if (seg.causal && tile.k_first > f.wg_i_last) continue;

    const uint32_t k_addr = base + L::ring + (j % kStages) * TileImage<D>::bytes;
    const uint32_t v_addr = k_addr + TileImage<D>::k_bytes;
    float s[32];
#pragma unroll
    for (int e = 0; e < 32; ++e) s[e] = 0.0f;
    pin_registers(s);
    wgmma_fence();
    issue_scores<D>(s, q_addr, k_addr);
    wgmma_wait<0>();
    pin_registers(s);

    uint32_t pf[kKeys / 16][4];
    float alpha[2];
    softmax_tile(s, f, tile, seg.causal != 0, scale_log2, m, l, pf, alpha);
    rescale_output<D>(o, alpha);

    pin_registers(o);
    wgmma_fence();
    issue_values<D>(o, pf, v_addr);
    wgmma_wait<0>();
    pin_registers(o);
  }

  if (!f.wg_active) return;
  store_rows<D>(a, f, g, o, m, l, part, partial_o, partial_ml);
}
#endif

// Two blocks an SM (16 warps) cap registers at 128 a thread: head_dim 128 spills ~176 bytes,
// still faster than one block an SM without spills (~350 against ~275 TFLOP/s, H200).
// Persistent false: one item a block, rows (gridDim.x - 1 - blockIdx.x) * kRows (in reverse, as the
// mma kernel: under a causal chunk the longest start first), KV head blockIdx.y, key part
// blockIdx.z (partials as part blockIdx.z when splits > 1). Persistent (`work`: an int zeroed
// before the launch; one key part, partials as part `part`): each block takes items from it until all
// `items` are done, longest first, so a grid of fewer blocks than the GPU holds leaves SMs free
// for other streams' kernels while this one still spreads its rows evenly.
template <int D, bool Persistent = false>
__global__ void __launch_bounds__(kThreads, 2)
    attention_wgmma_kernel(AttentionArgs a, KvTiles kv, int splits, float* partial_o, float* partial_ml, int part,
                           int* work, int items) {
#if defined(__CUDA_ARCH__) && !LTRI_WGMMA
  __trap();  // built without sm_90a; the host only launches this where attention_wgmma_available()
#else
  extern __shared__ unsigned char smem_raw[];
  __shared__ TileSchedule sched;
  __shared__ int next_item;
  // Swizzled atoms must start on 1024-byte boundaries of the shared window.
  const uint32_t raw = unsigned(__cvta_generic_to_shared(smem_raw));
  const uint32_t base = (raw + 1023u) & ~1023u;
  unsigned char* smem = smem_raw + (base - raw);
  if constexpr (!Persistent) {
    const int r0 = int(gridDim.x - 1 - blockIdx.x) * kRows;
    attend_rows<D>(a, kv, splits, int(blockIdx.z), int(blockIdx.z), partial_o, partial_ml, int(blockIdx.y), r0, smem,
                   base, sched);
  } else {
    const int row_blocks = items / int(a.n_kv_heads);
    for (;;) {
      if (threadIdx.x == 0) next_item = atomicAdd(work, 1);
      __syncthreads();
      const int item = next_item;
      if (item >= items) break;
      const int r0 = (row_blocks - 1 - item / int(a.n_kv_heads)) * kRows;
      attend_rows<D>(a, kv, 1, 0, part, partial_o, partial_ml, item % int(a.n_kv_heads), r0, smem, base, sched);
      __syncthreads();  // the item's shared memory (schedule, tiles, queries, next_item) is free again
    }
  }
#endif
}

// Whether this build holds wgmma code at all (compiled for sm_90a): read once from the device.
__global__ void wgmma_compiled_kernel(int* out) { *out = LTRI_WGMMA; }

// Scratch: [K bf16 (n_kv_heads, columns, D) | Vt bf16 (n_kv_heads, D, columns) | partial o |
// partial (m, l)]; columns is a multiple of 64, so the partials stay 16-byte aligned.
size_t tiles_floats(const AttentionArgs& a) { return size_t(padded_columns(a) * a.n_kv_heads * a.head_dim); }

// The pre-pass: the call's K and Vt tiles at the start of `scratch`.
template <int D>
KvTiles queue_kv_tiles(const AttentionArgs& a, float* scratch, cudaStream_t stream) {
  const int64_t columns = padded_columns(a);
  unsigned char* images = reinterpret_cast<unsigned char*>(scratch);
  kv_to_tiles_kernel<D><<<dim3(unsigned(columns / kKeys), unsigned(a.n_kv_heads)), kPrepassThreads, 0, stream>>>(
      a, columns, images);
  LTRI_CUDA_CHECK_LAUNCH("attention_wgmma_kv_to_tiles");
  return KvTiles{images, columns};
}

// Launches the kernel: grid (row blocks, KV heads, key parts), or persistent blocks when work is
// given.
template <int D, bool Persistent>
void launch_kernel(dim3 grid, const AttentionArgs& a, const KvTiles& kv, int splits, float* partial_o,
                   float* partial_ml, int part, int* work, int items, cudaStream_t stream) {
  constexpr size_t bytes = Smem<D>::dynamic;
  static_assert(bytes <= 227 * 1024, "beyond an sm_90 block's shared memory");
  opt_in_shared_memory(attention_wgmma_kernel<D, Persistent>, bytes);
  attention_wgmma_kernel<D, Persistent><<<grid, kThreads, bytes, stream>>>(a, kv, splits, partial_o, partial_ml, part,
                                                                          work, items);
}

int resident_blocks(int64_t head_dim) {
  return head_dim == 64 ? blocks_per_sm(attention_wgmma_kernel<64>, kThreads, Smem<64>::dynamic)
                        : blocks_per_sm(attention_wgmma_kernel<128>, kThreads, Smem<128>::dynamic);
}

template <int D>
void launch_for_head_dim(const AttentionArgs& a, int splits, float* scratch, cudaStream_t stream) {
  const KvTiles kv = queue_kv_tiles<D>(a, scratch, stream);
  const int64_t group = a.n_heads / a.n_kv_heads;
  const int64_t row_blocks = (a.n * group + kRows - 1) / kRows;
  const dim3 grid(unsigned(row_blocks), unsigned(a.n_kv_heads), unsigned(splits));
  const int64_t rows = a.n * a.n_heads;
  float* partials = scratch + tiles_floats(a);
  float* partial_o = splits > 1 ? partials : nullptr;                       // (splits, rows, D)
  float* partial_ml = splits > 1 ? partials + splits * rows * D : nullptr;  // (splits, rows, 2)
  launch_kernel<D, false>(grid, a, kv, splits, partial_o, partial_ml, 0, nullptr, 0, stream);
  LTRI_CUDA_CHECK_LAUNCH("attention_wgmma");
  if (splits > 1) launch_attention_merge(partial_o, partial_ml, splits, rows, D, true, a.out, stream);
}

template <int D>
void launch_part_for_head_dim(const AttentionArgs& a, float* tiles, float* partial_o, float* partial_ml, int part,
                              int* work, int max_blocks, cudaStream_t stream) {
  const KvTiles kv = queue_kv_tiles<D>(a, tiles, stream);
  const int64_t group = a.n_heads / a.n_kv_heads;
  const int64_t items = (a.n * group + kRows - 1) / kRows * a.n_kv_heads;
  if (work == nullptr) {
    const dim3 grid(unsigned(items / a.n_kv_heads), unsigned(a.n_kv_heads), 1u);
    // One key part, so every block's part is `part`: pass it as the kernel's z offset.
    launch_kernel<D, false>(grid, a, kv, 1, partial_o + int64_t(part) * a.n * a.n_heads * D,
                            partial_ml + int64_t(part) * a.n * a.n_heads * 2, 0, nullptr, 0, stream);
  } else {
    LTRI_CUDA_CHECK(cudaMemsetAsync(work, 0, sizeof(int), stream));
    const int blocks = int(std::min<int64_t>(items, std::max(1, max_blocks)));
    launch_kernel<D, true>(dim3(unsigned(blocks)), a, kv, 1, partial_o, partial_ml, part, work, int(items), stream);
  }
  LTRI_CUDA_CHECK_LAUNCH("attention_wgmma_part");
}

}  // namespace

bool attention_wgmma_available() {
  int device = 0, major = 0, minor = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess ||
      cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device) != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  if (major != 9 || minor != 0) return false;  // sm_90a code runs on compute capability 9.0 only
  int* flag = nullptr;
  int compiled = 0;
  bool ok = cudaMalloc(&flag, sizeof(int)) == cudaSuccess;
  if (ok) {
    wgmma_compiled_kernel<<<1, 1>>>(flag);
    ok = cudaGetLastError() == cudaSuccess && cudaMemcpy(&compiled, flag, sizeof(int), cudaMemcpyDeviceToHost) == cudaSuccess;
  }
  if (flag) cudaFree(flag);
  (void)cudaGetLastError();  // a build without a kernel image for this GPU: no wgmma
  return ok && compiled == 1;
}

bool attention_wgmma_supports(const AttentionArgs& a) {
  if (a.head_dim != 64 && a.head_dim != 128) return false;
  // float4 loads of K, V, q and the RoPE rows, float2 stores of out.
  if (!aligned16(a.cos) || !aligned16(a.sin) || !aligned16(a.q) || !aligned16(a.out)) return false;
  for (int s = 0; s < a.n_segments; ++s) {
    if (!aligned16(a.segments[s].k) || !aligned16(a.segments[s].v)) return false;
  }
  return true;
}

int attention_wgmma_splits(const AttentionArgs& a, int sm_count) {
  const int64_t group = a.n_heads / a.n_kv_heads;
  const int64_t blocks = (a.n * group + kRows - 1) / kRows * a.n_kv_heads;
  const int64_t slots = int64_t(sm_count) * resident_blocks(a.head_dim);
  return key_parts(blocks, slots, visible_keys(a));
}

size_t attention_wgmma_tiles_floats(const AttentionArgs& a) { return tiles_floats(a); }

int attention_wgmma_resident_blocks(int64_t head_dim) {
  return resident_blocks(head_dim);
}


void launch_attention_wgmma_part(const AttentionArgs& a, float* tiles, float* partial_o, float* partial_ml, int part,
                                 int* work, int max_blocks, cudaStream_t stream) {
  if (a.n <= 0) return;
  if (visible_keys(a) <= 0) fail("attention (wgmma): no visible keys in the part");
  if (a.n * a.n_heads >= INT32_MAX || padded_columns(a) >= INT32_MAX) {
    fail("attention (wgmma): ", a.n, " queries x ", a.n_heads, " heads over ", visible_keys(a),
         " keys exceed 32-bit row indices");
  }
  if (reinterpret_cast<uintptr_t>(tiles) % 16 != 0 || reinterpret_cast<uintptr_t>(partial_o) % 16 != 0) {
    fail("attention (wgmma): scratch is not 16-byte aligned");
  }
  if (a.head_dim == 64) {
    launch_part_for_head_dim<64>(a, tiles, partial_o, partial_ml, part, work, max_blocks, stream);
  } else if (a.head_dim == 128) {
    launch_part_for_head_dim<128>(a, tiles, partial_o, partial_ml, part, work, max_blocks, stream);
  } else {
    fail("attention (wgmma): head_dim ", a.head_dim, " is not compiled in (64, 128)");
  }
}

size_t attention_wgmma_scratch_floats(const AttentionArgs& a, int splits) {
  const size_t partials = splits > 1 ? size_t(splits) * size_t(a.n * a.n_heads) * size_t(a.head_dim + 2) : 0;
  return tiles_floats(a) + partials;
}

void launch_attention_wgmma(const AttentionArgs& a, int splits, float* scratch, cudaStream_t stream) {
  if (a.n <= 0) return;
  if (visible_keys(a) <= 0) fail("attention (wgmma): no visible keys");
  if (a.n * a.n_heads >= INT32_MAX || padded_columns(a) >= INT32_MAX) {
    fail("attention (wgmma): ", a.n, " queries x ", a.n_heads, " heads over ", visible_keys(a),
         " keys exceed 32-bit row indices");
  }
  if (reinterpret_cast<uintptr_t>(scratch) % 16 != 0) fail("attention (wgmma): scratch is not 16-byte aligned");
  if (a.head_dim == 64) {
    launch_for_head_dim<64>(a, splits, scratch, stream);
  } else if (a.head_dim == 128) {
    launch_for_head_dim<128>(a, splits, scratch, stream);
  } else {
    fail("attention (wgmma): head_dim ", a.head_dim, " is not compiled in (64, 128)");
  }
}

}  // namespace ltri::cuda
