// The counter-based random weights: the same (seed, stream) gives the same samples whatever the
// OpenMP thread count, other seeds or streams give other samples, the samples have the normal
// distribution's moments and tail mass, and the bf16 fill is the f32 fill rounded.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <vector>

#include "core/dtype.hpp"
#include "model/random_normal.hpp"

namespace ltri {
namespace {

std::vector<float> sample(uint64_t seed, uint64_t stream, float stddev, size_t n, int threads) {
  const int saved = omp_get_max_threads();
  omp_set_num_threads(threads);
  std::vector<float> v(n);
  fill_random_normal(seed, stream, stddev, v.data(), n);
  omp_set_num_threads(saved);
  return v;
}

TEST(RandomNormal, same_seed_same_samples_with_1_and_4_threads) {
  // Odd length: the last pair is cut in half; large enough that the fill runs in parallel.
  const size_t n = (1 << 16) + 3;
  const auto one = sample(7, 3, 0.5f, n, 1);
  const auto four = sample(7, 3, 0.5f, n, 4);
  EXPECT_EQ(one, four);
  // A prefix is the same samples: sample i does not depend on n.
  const auto prefix = sample(7, 3, 0.5f, 1001, 4);
  EXPECT_TRUE(std::equal(prefix.begin(), prefix.end(), one.begin()));
}

TEST(RandomNormal, other_seed_or_stream_gives_other_samples) {
  const size_t n = 4096;
  const auto base = sample(1, 0, 1.0f, n, 2);
  for (const auto& other : {sample(2, 0, 1.0f, n, 2), sample(1, 1, 1.0f, n, 2)}) {
    size_t same = 0;
    for (size_t i = 0; i < n; ++i) same += base[i] == other[i];
    EXPECT_LT(same, 5u);
    // Nor correlated: the sample correlation of independent normals is ~ 1/sqrt(n) = 0.016.
    double dot = 0.0, a2 = 0.0, b2 = 0.0;
    for (size_t i = 0; i < n; ++i) {
      dot += double(base[i]) * other[i];
      a2 += double(base[i]) * base[i];
      b2 += double(other[i]) * other[i];
    }
    EXPECT_LT(std::fabs(dot / std::sqrt(a2 * b2)), 0.06);
  }
}

TEST(RandomNormal, moments_and_tails_of_a_large_tensor_are_normal) {
  const size_t n = 1 << 22;
  const float stddev = 0.015625f;  // 1/sqrt(4096): a hidden-size fan-in
  const auto v = sample(42, 5, stddev, n, 4);
  double sum = 0.0, sum2 = 0.0, sum4 = 0.0;
  size_t beyond_2sd = 0;
  for (float x : v) {
    const double z = double(x) / stddev;
    sum += z;
    sum2 += z * z;
    sum4 += z * z * z * z;
    beyond_2sd += std::fabs(z) > 2.0;
  }
  const double mean = sum / double(n), var = sum2 / double(n) - mean * mean;
  // Standard errors over 4M samples: mean 1/sqrt(n) = 5e-4, variance sqrt(2/n) = 7e-4,
  // fourth moment (3 for a normal) sqrt(96/n) = 5e-3, P(|z| > 2) = 0.0455 +- 1e-4.
  EXPECT_NEAR(mean, 0.0, 3e-3);
  EXPECT_NEAR(std::sqrt(var), 1.0, 3e-3);
  EXPECT_NEAR(sum4 / double(n), 3.0, 0.03);
  EXPECT_NEAR(double(beyond_2sd) / double(n), 0.0455, 1e-3);
}

TEST(RandomNormal, bf16_fill_is_the_f32_fill_rounded) {
  const size_t n = 100001;
  const auto f32 = sample(9, 2, 0.02f, n, 2);
  std::vector<uint16_t> bf16(n);
  fill_random_normal_bf16(9, 2, 0.02f, bf16.data(), n);
  for (size_t i = 0; i < n; ++i) ASSERT_EQ(bf16[i], f32_to_bf16(f32[i])) << i;
}

}  // namespace
}  // namespace ltri
