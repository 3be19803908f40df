// The merge of split-key attention (flash-decoding): the parts of a row's visible keys were
// attended apart, each leaving its unnormalised output o_s and its running max m_s and sum l_s;
// with M = max m_s, out = sum_s o_s e^(m_s - M) / sum_s l_s e^(m_s - M) (2^ instead of e^ when
// the kernel kept m in log2 units, as the tensor-core one does). Shared by cuda_attention.cu and
// cuda_attention_mma.cu.
//
// One block per output row (query, head), one thread per element of head_dim. The first warp
// reads the parts' (m, l) in parallel (lanes take parts s, s + 32, ...) and leaves each part's
// weight in shared memory; then every thread sums its element over the parts with the loads
// unrolled. (A loop over the parts in every thread, one dependent load per step, made decode's
// merge of 64-256 parts cost tens of microseconds of memory round trips.)
// Checked through both attention kernels' tests (tests/kernels/test_cuda_attention*.cpp).
#include <algorithm>
#include <cmath>

#include "kernels/cuda/cuda_check.hpp"
#include "kernels/cuda/cuda_kernels.hpp"

namespace ltri::cuda {

namespace {

template <bool Log2>
__global__ void merge_kernel(const float* partial_o, const float* partial_ml, int splits, int64_t rows,
                             int64_t head_dim, float* out) {
  __shared__ float weight[kMaxAttentionSplits];  // per part; 0 for a part that held no visible key
  __shared__ float inv_total;
  const int64_t row = blockIdx.x;
  if (threadIdx.x < 32) {
    const int lane = threadIdx.x;
    float m_max = -INFINITY;
    for (int s = lane; s < splits; s += 32) m_max = fmaxf(m_max, partial_ml[2 * (s * rows + row)]);
    for (int offset = 16; offset > 0; offset >>= 1) m_max = fmaxf(m_max, __shfl_xor_sync(0xffffffffu, m_max, offset));
    float total = 0.0f;
    for (int s = lane; s < splits; s += 32) {
      const float m = partial_ml[2 * (s * rows + row)];
      const float w = m == -INFINITY ? 0.0f : (Log2 ? exp2f(m - m_max) : expf(m - m_max));
      weight[s] = w;
      total += w * partial_ml[2 * (s * rows + row) + 1];
    }
    for (int offset = 16; offset > 0; offset >>= 1) total += __shfl_xor_sync(0xffffffffu, total, offset);
    if (lane == 0) inv_total = total > 0.0f ? 1.0f / total : 0.0f;
  }
  __syncthreads();
  for (int64_t d = threadIdx.x; d < head_dim; d += blockDim.x) {
    float acc = 0.0f;
#pragma unroll 8
    for (int s = 0; s < splits; ++s) {
      const float o = partial_o[(s * rows + row) * head_dim + d];
      acc += weight[s] == 0.0f ? 0.0f : weight[s] * o;  // an empty part's o is never read into the sum
    }
    out[row * head_dim + d] = acc * inv_total;
  }
}

}  // namespace

void launch_attention_merge(const float* partial_o, const float* partial_ml, int splits, int64_t rows, int64_t head_dim,
                            bool log2_units, float* out, cudaStream_t stream) {
  if (splits < 1 || splits > kMaxAttentionSplits) {
    fail("attention merge: ", splits, " key splits; it takes 1 to ", kMaxAttentionSplits);
  }
  if (rows <= 0) return;
  const unsigned threads = unsigned(std::min<int64_t>(head_dim, 1024));
  if (log2_units) {
    merge_kernel<true><<<unsigned(rows), threads, 0, stream>>>(partial_o, partial_ml, splits, rows, head_dim, out);
  } else {
    merge_kernel<false><<<unsigned(rows), threads, 0, stream>>>(partial_o, partial_ml, splits, rows, head_dim, out);
  }
  LTRI_CUDA_CHECK_LAUNCH("attention_merge");
}

}  // namespace ltri::cuda
