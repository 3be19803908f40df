#include "kernels/cpu/cpu_backend.hpp"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>

#include "core/error.hpp"
#include "ops/host_threads.hpp"

namespace ltri {

// One thread pool: OpenMP's (ops/host_threads.hpp says why).
CpuBackend::CpuBackend(int threads) : threads_(set_host_threads(threads)) {}

std::unique_ptr<Backend> make_cpu_backend(int threads) { return std::make_unique<CpuBackend>(threads); }

float* CpuBackend::alloc(size_t n_floats) {
  // 64-byte alignment for vector loads; rounded up as aligned_alloc requires.
  const size_t bytes = std::max<size_t>(64, (n_floats * sizeof(float) + 63) / 64 * 64);
  void* p = std::aligned_alloc(64, bytes);
  if (!p) fail("out of host memory allocating ", bytes >> 20, " MiB");
  std::memset(p, 0, bytes);
  allocations_.on_alloc(p, bytes);
  return static_cast<float*>(p);
}

void CpuBackend::free(float* p) {
  if (!p) return;
  allocations_.on_free(p);
  std::free(p);
}
// n == 0 is a no-op, as on CUDA: an empty std::vector's data() may be null, which memcpy forbids.
void CpuBackend::upload(float* dst, const float* src, size_t n) {
  if (n > 0) std::memcpy(dst, src, n * 4);
}
void CpuBackend::download(float* dst, const float* src, size_t n) {
  if (n > 0) std::memcpy(dst, src, n * 4);
}
void CpuBackend::copy(float* dst, const float* src, size_t n) {
  if (n > 0) std::memmove(dst, src, n * 4);
}
void CpuBackend::upload_bytes(void* dst, const void* src, size_t bytes) {
  if (bytes > 0) std::memcpy(dst, src, bytes);
}

void CpuBackend::embed(const float* table, const int32_t* ids, int64_t n, int64_t dim,
                       float* out) {
  for (int64_t i = 0; i < n; ++i) {
    std::memcpy(out + i * dim, table + int64_t(ids[i]) * dim, size_t(dim) * 4);
  }
}

void CpuBackend::rmsnorm(const float* x, const float* weight, int64_t n, int64_t dim, float eps,
                         float* out) {
#pragma omp parallel for schedule(static) if (n > 1)
  for (int64_t i = 0; i < n; ++i) {
    const float* xi = x + i * dim;
    double ss = 0.0;  // accumulated in double: dims of 4096+ lose bits in f32
    for (int64_t d = 0; d < dim; ++d) ss += double(xi[d]) * xi[d];
    const float inv = float(1.0 / std::sqrt(ss / double(dim) + double(eps)));
    float* oi = out + i * dim;
    for (int64_t d = 0; d < dim; ++d) oi[d] = weight[d] * (xi[d] * inv);
  }
}

void CpuBackend::matmul(const float* x, const float* w, int64_t n, int64_t k, int64_t m,
                        float* out) {
  // Each thread takes a slice of the output columns (rows of w, whole 16-float vectors), so each
  // weight is read by one thread only: decode (n = 1) is bound by reading w.
  const int64_t parts = std::min<int64_t>(threads_, (m + 15) / 16);
#pragma omp parallel for schedule(static) num_threads(int(parts)) if (parts > 1 && n * m * k >= (1 << 16))
  for (int64_t part = 0; part < parts; ++part) {
    const int64_t begin = (m * part / parts) / 16 * 16;
    const int64_t end = part + 1 == parts ? m : (m * (part + 1) / parts) / 16 * 16;
    if (end <= begin) continue;
    if (n == 1) {
      cblas_sgemv(CblasRowMajor, CblasNoTrans, int(end - begin), int(k), 1.0f, w + begin * k, int(k),
                  x, 1, 0.0f, out + begin, 1);
    } else {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(n), int(end - begin), int(k), 1.0f, x,
                  int(k), w + begin * k, int(k), 0.0f, out + begin, int(m));
    }
  }
}

void CpuBackend::add_bias(float* x, const float* bias, int64_t n, int64_t m) {
  for (int64_t i = 0; i < n; ++i) {
    float* xi = x + i * m;
    for (int64_t j = 0; j < m; ++j) xi[j] += bias[j];
  }
}

void CpuBackend::add(float* x, const float* y, int64_t n) {
#pragma omp parallel for schedule(static) if (n > (1 << 16))
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

void CpuBackend::swiglu(float* gate, const float* up, int64_t n) {
#pragma omp parallel for schedule(static) if (n > (1 << 14))
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    gate[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void rope_rotate_row(float* row, int64_t heads, int64_t head_dim, const float* cos,
                     const float* sin) {
  const int64_t half = head_dim / 2;
  for (int64_t h = 0; h < heads; ++h) {
    float* v = row + h * head_dim;
    for (int64_t i = 0; i < half; ++i) {
      const float a = v[i], b = v[i + half];
      v[i] = a * cos[i] - b * sin[i];
      v[i + half] = b * cos[i] + a * sin[i];
    }
  }
}

void CpuBackend::rope(float* x, int64_t n, int64_t heads, int64_t first_position,
                      const RopeTable& table) {
  const int64_t hd = table.head_dim();
#pragma omp parallel for schedule(static) if (n > 1)
  for (int64_t i = 0; i < n; ++i) {
    const int64_t p = first_position + i;
    rope_rotate_row(x + i * heads * hd, heads, hd, table.cos(p), table.sin(p));
  }
}

}  // namespace ltri
