#include "ops/backend.hpp"

#include "core/error.hpp"

namespace ltri {

void Backend::matmul_weight(const float* x, WeightRef w, int64_t n, int64_t k, int64_t m, float* out) {
  if (w.dtype != DType::F32) fail("matmul: the ", name(), " backend has no ", dtype_name(w.dtype), " weights");
  matmul(x, static_cast<const float*>(w.data), n, k, m, out);
}

void Backend::embed_weight(WeightRef table, const int32_t* ids, int64_t n, int64_t dim, float* out) {
  if (table.dtype != DType::F32) fail("embed: the ", name(), " backend has no ", dtype_name(table.dtype), " weights");
  embed(static_cast<const float*>(table.data), ids, n, dim, out);
}

}  // namespace ltri
