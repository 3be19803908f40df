#pragma once
// The launchers of the CUDA kernels (cuda_elementwise.cu, cuda_bf16.cu, cuda_int8.cu, cuda_gemv.cu, cuda_row_means.cu,
// cuda_attention.cu, cuda_attention_mma.cu), called by CudaBackend (cuda_backend.cpp). Plain
// functions over device pointers and POD arguments, so the .cu files need nothing of the C++20
// engine headers. Every launcher enqueues on `stream` and checks the launch; none synchronises.
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace ltri::cuda {

// out (n, dim) = table[ids[i]] rows; table (vocab, dim); ids (n) int32 on the device.
void launch_embed(const float* table, const int32_t* ids, int64_t n, int64_t dim, float* out, cudaStream_t stream);
// out (n, dim) = x / sqrt(mean(x^2) + eps) * weight, sum of squares in double as on the CPU.
void launch_rmsnorm(const float* x, const float* weight, int64_t n, int64_t dim, float eps, float* out,
                    cudaStream_t stream);
// x (n, dim) += h, then out (n, dim) = rmsnorm(x) as launch_rmsnorm (bit for bit add + rmsnorm);
// out may alias h, not x.
void launch_add_rmsnorm(float* x, const float* h, const float* weight, int64_t n, int64_t dim, float eps, float* out,
                        cudaStream_t stream);
// launch_rmsnorm and launch_add_rmsnorm with out rounded to bf16 (n, dim) as they write it: the
// f32 op then launch_f32_to_bf16, bit for bit, without the f32 rows written and read back.
void launch_rmsnorm_bf16(const float* x, const float* weight, int64_t n, int64_t dim, float eps, uint16_t* out,
                         cudaStream_t stream);
void launch_add_rmsnorm_bf16(float* x, const float* h, const float* weight, int64_t n, int64_t dim, float eps,
                             uint16_t* out, cudaStream_t stream);
// x (n, m) += bias (m) on every row.
void launch_add_bias(float* x, const float* bias, int64_t n, int64_t m, cudaStream_t stream);
// x (n) += y (n).
void launch_add(float* x, const float* y, int64_t n, cudaStream_t stream);
// gate (n) = silu(gate) * up.
void launch_swiglu(float* gate, const float* up, int64_t n, cudaStream_t stream);
// Rotates x (n, heads, head_dim) in place, row i at position first_position + i; cos, sin:
// (positions, head_dim / 2) on the device (RopeTable's layout).
void launch_rope(float* x, int64_t n, int64_t heads, int64_t head_dim, int64_t first_position, const float* cos,
                 const float* sin, cudaStream_t stream);

// --- bf16 (cuda_bf16.cu) ---
// out (n) = x rounded to bf16 (nearest even), as core/dtype.hpp's f32_to_bf16; bf16 as raw bits.
void launch_f32_to_bf16(const float* x, uint16_t* out, int64_t n, cudaStream_t stream);
// out (n) = silu(gate) * up rounded to bf16: launch_swiglu then launch_f32_to_bf16, bit for bit,
// without writing the f32 product.
void launch_swiglu_to_bf16(const float* gate, const float* up, uint16_t* out, int64_t n, cudaStream_t stream);
// out (n, ffn) = silu(gate) * up rounded to bf16, gate_up (n, 2 * ffn) bf16 rows [gate | up]:
// launch_bf16_to_f32, launch_swiglu and launch_f32_to_bf16 on the two halves, bit for bit.
void launch_swiglu_rows_bf16(const uint16_t* gate_up, int64_t n, int64_t ffn, uint16_t* out, cudaStream_t stream);
// out (n) f32 = x (n) bf16 bits widened (exact), as core/dtype.hpp's bf16_to_f32.
void launch_bf16_to_f32(const uint16_t* x, float* out, int64_t n, cudaStream_t stream);
// out (n, dim) f32 = table[ids[i]] rows; table (vocab, dim) bf16 bits.
void launch_embed_bf16(const uint16_t* table, const int32_t* ids, int64_t n, int64_t dim, float* out,
                       cudaStream_t stream);

// --- int8 (cuda_int8.cu) ---
// out (n_rows, width) f32 = float(values[r, i]) * scales[r]: an int8 host store's rows,
// dequantised as Backend::upload_int8_stable's host default does (one multiply, bit for bit).
void launch_int8_dequantize(const int8_t* values, const float* scales, int64_t n_rows, int64_t width, float* out,
                            cudaStream_t stream);

// --- batched retrieved-KV load (cuda_gather.cu) ---
// How the staged host values of a gather are held.
enum class GatherSource : int { BF16, I8 };
// One run of a gather as the kernel reads it (16-byte aligned in the staging bytes).
struct alignas(16) GatherEntry {
  float* dst;                // n_values f32 written here
  const float* device_src;   // read from here (device, f32) if set, else from the staged bytes
  int64_t n_values;
  int64_t values_offset;     // bytes from the staging base to the run's staged values
  int64_t scales_offset;     // I8: bytes to its f32 scales, one per scale_width values
  // The run's host values where the device can read them itself (page-locked host memory
  // mapped into its address space), if set: the kernel reads them there, 16 bytes a thread,
  // instead of from the staging (an I8 run's scales, 1/64 of its bytes at head_dim 128, are
  // still staged). Set only when the values and dst are 16-byte aligned and n_values fills whole
  // 16-byte vectors (and for I8 each vector lies in one scale's row).
  const void* mapped_values;
};
constexpr int64_t kGatherVectorBytes = 16;  // what a thread reads at once from mapped values
// Writes every run of table[0, n_runs) (device memory, like `staged`); max_values: the
// longest run's n_values, to size the grid.
void launch_gather_rows(const unsigned char* staged, const GatherEntry* table, int64_t n_runs, int64_t max_values,
                        GatherSource host_dtype, int64_t scale_width, cudaStream_t stream);

// --- decode GEMV (cuda_gemv.cu) ---
// out (m) f32 = w (m, k) bf16 bits . x (k) f32 rounded to bf16, sums in f32: the products of
// launch_f32_to_bf16 + a bf16 GEMM, in one launch for one row of x.
void launch_gemv_bf16(const uint16_t* w, const float* x, int64_t k, int64_t m, float* out, cudaStream_t stream);

// --- row block means (cuda_row_means.cu) ---
// out (ceil(n / block), row) on the device = the means of x (n, row)'s blocks of rows counted
// back from the last row (block b = rows [max(0, n - (b + 1) * block), n - b * block)), each
// column's rows added in row order in double, as Backend::row_block_means on the host.
void launch_row_block_means(const float* x, int64_t n, int64_t row, int64_t block, float* out, cudaStream_t stream);

// --- attention (cuda_attention.cu) ---
constexpr int kMaxAttentionSegments = 8;  // plans have at most 4 today (init, retrieved, window, chunk)

// KvSegment (kv/kv_policy.hpp) as the kernel reads it.
struct AttentionSegment {
  const float* k = nullptr;  // (n, n_kv_heads, head_dim), pre-RoPE, device
  const float* v = nullptr;  // (n, n_kv_heads, head_dim), device
  int64_t n = 0;
  int64_t first_position = 0;
  int64_t position_stride = 1;
  int64_t query_position = -1;  // -1: query i at query_first_position + i
  int causal = 0;
};

struct AttentionArgs {
  const float* q = nullptr;  // (n, n_heads, head_dim), pre-RoPE, device
  float* out = nullptr;      // (n, n_heads, head_dim), device
  int64_t n = 0;
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t query_first_position = 0;
  const float* cos = nullptr;  // (positions, head_dim / 2), device
  const float* sin = nullptr;
  int n_segments = 0;
  AttentionSegment segments[kMaxAttentionSegments];
};

// Head dims the attention kernel is compiled for.
bool attention_supports_head_dim(int64_t head_dim);
// How many parts the visible keys are split into (flash-decoding), given the GPU's SM count:
// enough blocks to fill the GPU when there are few queries, 1 when the queries alone do.
int attention_splits(const AttentionArgs& args, int sm_count);
// --- split-key merge (cuda_attention_merge.cu) ---
constexpr int kMaxAttentionSplits = 256;  // key parts a row may be split into (attention_splits' cap)
// out (rows, head_dim) = the parts' outputs combined: partial_o (splits, rows, head_dim)
// unnormalised, partial_ml (splits, rows, 2) each part's running max m and sum l (m in log2
// units when log2_units); a row no part saw anything of gets zeros.
void launch_attention_merge(const float* partial_o, const float* partial_ml, int splits, int64_t rows, int64_t head_dim,
                            bool log2_units, float* out, cudaStream_t stream);

// Device floats of scratch launch_attention needs for `splits` parts (0 when splits == 1).
size_t attention_scratch_floats(const AttentionArgs& args, int splits);
void launch_attention(const AttentionArgs& args, int splits, float* scratch, cudaStream_t stream);

// --- attention for one query token (cuda_attention_decode.cu) ---
// The same contract as launch_attention for n == 1: a warp per few keys, the head dimension over
// its lanes, every head of a KV head's group scored from registers (decode steps).
// Whether it takes these arguments: n == 1, head_dim 64 or 128, at most 8 query heads per KV head.
bool attention_decode_supports(const AttentionArgs& args);
// Parts the visible keys are split into (flash-decoding), given the GPU's SM count.
int attention_decode_splits(const AttentionArgs& args, int sm_count);
// Device floats of scratch launch_attention_decode needs for `splits` parts (0 when splits == 1).
size_t attention_decode_scratch_floats(const AttentionArgs& args, int splits);
void launch_attention_decode(const AttentionArgs& args, int splits, float* scratch, cudaStream_t stream);

// --- attention on tensor cores (cuda_attention_mma.cu) ---
// The same contract as launch_attention, computed with q, k, v and p rounded to bf16 and f32
// accumulation (mma.sync); for prefill of models whose weights are bf16 (CudaBackend chooses).
// Whether it takes these arguments: head_dim 64 or 128, and 16-byte aligned q, out, K, V and
// RoPE rows (it reads them as float4 / float2).
bool attention_mma_supports(const AttentionArgs& args);
// Parts the visible keys are split into: the fewest that keep the SMs busy (its blocks hold 128
// rows, four times the f32 kernel's).
int attention_mma_splits(const AttentionArgs& args, int sm_count);
// Device floats of scratch launch_attention_mma needs for `splits` parts: the visible keys
// (rotated) and values as bf16, plus the partial softmaxes when splits > 1. Never 0.
size_t attention_mma_scratch_floats(const AttentionArgs& args, int splits);
// Needs a device of compute capability 8.0 or later and 16-byte aligned scratch.
void launch_attention_mma(const AttentionArgs& args, int splits, float* scratch, cudaStream_t stream);

// --- attention on Hopper's warpgroup tensor-core instructions (cuda_attention_wgmma.cu) ---
// The contract and precision of launch_attention_mma, with wgmma (sm_90a); CudaBackend prefers
// it where available. Whether this build has wgmma code and the current GPU runs it (compute
// capability 9.0): asks the device once per call, so callers cache it.
bool attention_wgmma_available();
// Whether it takes these arguments: head_dim 64 or 128, 16-byte aligned q, out, K, V, RoPE rows.
bool attention_wgmma_supports(const AttentionArgs& args);
int attention_wgmma_splits(const AttentionArgs& args, int sm_count);
// Device floats of scratch: the keys and transposed values as bf16, each segment padded to 64
// keys, plus the partial softmaxes when splits > 1. Never 0.
size_t attention_wgmma_scratch_floats(const AttentionArgs& args, int splits);
void launch_attention_wgmma(const AttentionArgs& args, int splits, float* scratch, cudaStream_t stream);
// One pass of two-pass attention (CudaBackend::attention_early): the same kernel over args'
// segments, one key part, its rows' unnormalised o and (m, l) written as part `part` of
// partial_o (parts, n * n_heads, head_dim) and partial_ml (parts, n * n_heads, 2) for
// launch_attention_merge, args.out untouched. tiles: attention_wgmma_tiles_floats(args) floats,
// 16-byte aligned. With `work` (one device int, zeroed here on `stream`) at most max_blocks
// blocks run, each taking (128 rows, KV head) items until none is left, so the SMs beyond them
// stay free for other streams; without, one block an item.
size_t attention_wgmma_tiles_floats(const AttentionArgs& args);
// Blocks of the wgmma kernel one SM holds at once (head_dim 64 or 128).
int attention_wgmma_resident_blocks(int64_t head_dim);
void launch_attention_wgmma_part(const AttentionArgs& args, float* tiles, float* partial_o, float* partial_ml, int part,
                                 int* work, int max_blocks, cudaStream_t stream);

}  // namespace ltri::cuda
