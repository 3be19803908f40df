#include "kernels/cpu/fast_exp.hpp"

namespace ltri {

LTRI_VECTOR_CLONES float exp_shifted_sum(float* row, int64_t n, float shift) {
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int64_t c = 0; c < n; ++c) {
    const float e = fast_exp(row[c] - shift);
    row[c] = e;
    sum += e;
  }
  return sum;
}

LTRI_VECTOR_CLONES float row_max(const float* row, int64_t n, float init) {
  float mx = init;
#pragma omp simd reduction(max : mx)
  for (int64_t c = 0; c < n; ++c) mx = row[c] > mx ? row[c] : mx;  // (std::max is not vectorised)
  return mx;
}

}  // namespace ltri
