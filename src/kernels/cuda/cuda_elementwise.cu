// Element-wise CUDA kernels of the op table: embed, rmsnorm, add + rmsnorm, add_bias, add, swiglu,
// rope. Each mirrors its CPU op (kernels/cpu/cpu_backend.cpp) formula for formula, so results
// agree to f32 rounding; all are bound by memory bandwidth (one read and one write of each float, ~3 TB/s on
// an H100) and launched with grid-stride loops over a capped grid.
// Checked against the CPU ops in tests/kernels/test_cuda_ops.cpp.
#include <algorithm>

#include "kernels/cuda/cuda_bf16_round.cuh"
#include "kernels/cuda/cuda_check.hpp"
#include "kernels/cuda/cuda_kernels.hpp"

namespace ltri::cuda {

namespace {

constexpr int kThreads = 256;

// Blocks for a grid-stride loop over `count` items: enough to fill the GPU, no more.
unsigned grid_for(int64_t count) {
  const int64_t blocks = (count + kThreads - 1) / kThreads;
  return unsigned(std::max<int64_t>(1, std::min<int64_t>(blocks, 65535)));
}

__global__ void embed_kernel(const float* table, const int32_t* ids, int64_t n, int64_t dim, float* out) {
  for (int64_t row = blockIdx.x; row < n; row += gridDim.x) {
    const float* src = table + int64_t(ids[row]) * dim;
    float* dst = out + row * dim;
    for (int64_t d = threadIdx.x; d < dim; d += blockDim.x) dst[d] = src[d];
  }
}

// What a norm kernel writes: f32 as is, or rounded to bf16 for a GEMM's input (launch_*_bf16).
__device__ inline void store_out(float* p, float v) { *p = v; }
__device__ inline void store_out(uint16_t* p, float v) { *p = round_to_bf16(v); }

// One block per row: the sum of squares in double (as the CPU op: f32 loses bits over 4096+
// dims), reduced through shared memory. The loops are unrolled so a thread's loads are in flight
// together: a decode step normalises one row, and one memory round trip per loop step made that
// single block take ~13 us.
template <typename Out>
__global__ void rmsnorm_kernel(const float* x, const float* weight, int64_t n, int64_t dim, float eps, Out* out) {
  __shared__ double partial[kThreads];
  __shared__ float inv_rms;
  const int dim_i = int(dim);  // rows are far below 2^31 floats (the launcher checks)
  for (int64_t row = blockIdx.x; row < n; row += gridDim.x) {
    const float* xi = x + row * dim;
    double ss = 0.0;
#pragma unroll 8
    for (int d = threadIdx.x; d < dim_i; d += kThreads) ss += double(xi[d]) * double(xi[d]);
    partial[threadIdx.x] = ss;
    __syncthreads();
    for (int stride = kThreads / 2; stride > 0; stride /= 2) {
      if (int(threadIdx.x) < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
      __syncthreads();
    }
    if (threadIdx.x == 0) inv_rms = float(1.0 / sqrt(partial[0] / double(dim) + double(eps)));
    __syncthreads();
    Out* oi = out + row * dim;  // may alias x: each element is read before it is written
    const float r = inv_rms;
    // Reads of a batch before its writes (out may be x: an element is still read before it is
    // written, and no element is written before another one is read from the same address).
    constexpr int kBatch = 8;
    for (int d0 = threadIdx.x; d0 < dim_i; d0 += kBatch * kThreads) {
      float xv[kBatch], wv[kBatch];
#pragma unroll
      for (int u = 0; u < kBatch; ++u) {
        const int d = d0 + u * kThreads;
        xv[u] = d < dim_i ? xi[d] : 0.0f;
        wv[u] = d < dim_i ? weight[d] : 0.0f;
      }
#pragma unroll
      for (int u = 0; u < kBatch; ++u) {
        const int d = d0 + u * kThreads;
        if (d < dim_i) store_out(oi + d, wv[u] * (xv[u] * r));
      }
    }
    __syncthreads();  // inv_rms and partial are reused by the next row
  }
}

// x += h, then rmsnorm(x) into out, one block per row: the add and rmsnorm_kernel's sums in the
// same order per thread and the same reduction, so the result is bit for bit add + rmsnorm.
// out may alias h: every h element is read (by its thread) before the barrier, written after.
template <typename Out>
__global__ void add_rmsnorm_kernel(float* x, const float* h, const float* weight, int64_t n, int64_t dim, float eps,
                                   Out* out) {
  __shared__ double partial[kThreads];
  __shared__ float inv_rms;
  const int dim_i = int(dim);
  for (int64_t row = blockIdx.x; row < n; row += gridDim.x) {
    float* xi = x + row * dim;
    const float* hi = h + row * dim;
    double ss = 0.0;
    // A batch's reads before its writes: x is written in the loop, and a store to x the
    // compiler cannot prove apart from h's next loads would cost a round trip per element
    // (the first version, one element per step, measured 16.2 us per decode call on the 8B
    // shape, slower than add + rmsnorm's 4.4 + 6.2 us).
    constexpr int kBatch = 8;
    for (int d0 = threadIdx.x; d0 < dim_i; d0 += kBatch * kThreads) {
      float xv[kBatch], hv[kBatch];
#pragma unroll
      for (int u = 0; u < kBatch; ++u) {
        const int d = d0 + u * kThreads;
        xv[u] = d < dim_i ? xi[d] : 0.0f;
        hv[u] = d < dim_i ? hi[d] : 0.0f;
      }
#pragma unroll
      for (int u = 0; u < kBatch; ++u) {
        const int d = d0 + u * kThreads;
        if (d < dim_i) {
          const float v = xv[u] + hv[u];
          xi[d] = v;
          ss += double(v) * double(v);
        }
      }
    }
    partial[threadIdx.x] = ss;
    __syncthreads();
    for (int stride = kThreads / 2; stride > 0; stride /= 2) {
      if (int(threadIdx.x) < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
      __syncthreads();
    }
    if (threadIdx.x == 0) inv_rms = float(1.0 / sqrt(partial[0] / double(dim) + double(eps)));
    __syncthreads();
    Out* oi = out + row * dim;
    const float r = inv_rms;
    // Each thread reads back only the x elements it wrote itself; reads batched as above.
    for (int d0 = threadIdx.x; d0 < dim_i; d0 += kBatch * kThreads) {
      float xv[kBatch], wv[kBatch];
#pragma unroll
      for (int u = 0; u < kBatch; ++u) {
        const int d = d0 + u * kThreads;
        xv[u] = d < dim_i ? xi[d] : 0.0f;
        wv[u] = d < dim_i ? weight[d] : 0.0f;
      }
#pragma unroll
      for (int u = 0; u < kBatch; ++u) {
        const int d = d0 + u * kThreads;
        if (d < dim_i) store_out(oi + d, wv[u] * (xv[u] * r));
      }
    }
    __syncthreads();
  }
}

__global__ void add_bias_kernel(float* x, const float* bias, int64_t total, int64_t m) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    x[i] += bias[i % m];
  }
}

__global__ void add_kernel(float* x, const float* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    x[i] += y[i];
  }
}

__global__ void swiglu_kernel(float* gate, const float* up, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float g = gate[i];
    gate[i] = g / (1.0f + expf(-g)) * up[i];
  }
}

// One item per (row, head, pair i): HF rotate_half pairs dimension i with i + head_dim / 2.
__global__ void rope_kernel(float* x, int64_t n, int64_t heads, int64_t head_dim, int64_t first_position,
                            const float* cos, const float* sin) {
  const int64_t half = head_dim / 2;
  const int64_t total = n * heads * half;
  for (int64_t item = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; item < total;
       item += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = item % half;
    const int64_t row_head = item / half;  // row * heads + head
    const int64_t row = row_head / heads;
    const int64_t p = first_position + row;
    float* v = x + row_head * head_dim;
    const float a = v[i], b = v[i + half];
    const float c = cos[p * half + i], s = sin[p * half + i];
    v[i] = a * c - b * s;
    v[i + half] = b * c + a * s;
  }
}

}  // namespace

void launch_embed(const float* table, const int32_t* ids, int64_t n, int64_t dim, float* out, cudaStream_t stream) {
  if (n <= 0) return;
  embed_kernel<<<unsigned(std::min<int64_t>(n, 65535)), kThreads, 0, stream>>>(table, ids, n, dim, out);
  LTRI_CUDA_CHECK_LAUNCH("embed");
}

namespace {

template <typename Out>
void rmsnorm_rows(const float* x, const float* weight, int64_t n, int64_t dim, float eps, Out* out,
                  cudaStream_t stream) {
  if (n <= 0) return;
  if (dim > (int64_t(1) << 30)) fail("rmsnorm: rows of ", dim, " floats are more than the kernel indexes");
  rmsnorm_kernel<<<unsigned(std::min<int64_t>(n, 65535)), kThreads, 0, stream>>>(x, weight, n, dim, eps, out);
  LTRI_CUDA_CHECK_LAUNCH("rmsnorm");
}

template <typename Out>
void add_rmsnorm_rows(float* x, const float* h, const float* weight, int64_t n, int64_t dim, float eps, Out* out,
                      cudaStream_t stream) {
  if (n <= 0) return;
  if (dim > (int64_t(1) << 30)) fail("add_rmsnorm: rows of ", dim, " floats are more than the kernel indexes");
  add_rmsnorm_kernel<<<unsigned(std::min<int64_t>(n, 65535)), kThreads, 0, stream>>>(x, h, weight, n, dim, eps, out);
  LTRI_CUDA_CHECK_LAUNCH("add_rmsnorm");
}

}  // namespace

void launch_rmsnorm(const float* x, const float* weight, int64_t n, int64_t dim, float eps, float* out,
                    cudaStream_t stream) {
  rmsnorm_rows(x, weight, n, dim, eps, out, stream);
}

void launch_rmsnorm_bf16(const float* x, const float* weight, int64_t n, int64_t dim, float eps, uint16_t* out,
                         cudaStream_t stream) {
  rmsnorm_rows(x, weight, n, dim, eps, out, stream);
}

void launch_add_rmsnorm(float* x, const float* h, const float* weight, int64_t n, int64_t dim, float eps, float* out,
                        cudaStream_t stream) {
  add_rmsnorm_rows(x, h, weight, n, dim, eps, out, stream);
}

void launch_add_rmsnorm_bf16(float* x, const float* h, const float* weight, int64_t n, int64_t dim, float eps,
                             uint16_t* out, cudaStream_t stream) {
  add_rmsnorm_rows(x, h, weight, n, dim, eps, out, stream);
}

void launch_add_bias(float* x, const float* bias, int64_t n, int64_t m, cudaStream_t stream) {
  if (n * m <= 0) return;
  add_bias_kernel<<<grid_for(n * m), kThreads, 0, stream>>>(x, bias, n * m, m);
  LTRI_CUDA_CHECK_LAUNCH("add_bias");
}

void launch_add(float* x, const float* y, int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  add_kernel<<<grid_for(n), kThreads, 0, stream>>>(x, y, n);
  LTRI_CUDA_CHECK_LAUNCH("add");
}

void launch_swiglu(float* gate, const float* up, int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  swiglu_kernel<<<grid_for(n), kThreads, 0, stream>>>(gate, up, n);
  LTRI_CUDA_CHECK_LAUNCH("swiglu");
}

void launch_rope(float* x, int64_t n, int64_t heads, int64_t head_dim, int64_t first_position, const float* cos,
                 const float* sin, cudaStream_t stream) {
  const int64_t total = n * heads * (head_dim / 2);
  if (total <= 0) return;
  rope_kernel<<<grid_for(total), kThreads, 0, stream>>>(x, n, heads, head_dim, first_position, cos, sin);
  LTRI_CUDA_CHECK_LAUNCH("rope");
}

}  // namespace ltri::cuda
