// fast_exp and the softmax row kernels against libm's exp in double precision.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "kernels/cpu/fast_exp.hpp"

namespace ltri {
namespace {

// |got - exp(x)| in units of the float spacing at exp(x).
double ulp_error(float got, float x) {
  const double want = std::exp(double(x));
  const float want_f = float(want);
  const double ulp = double(std::nextafter(want_f, std::numeric_limits<float>::infinity())) - want_f;
  return std::abs(double(got) - want) / ulp;
}

// Every 997th bit pattern that is a float in [-87.3, 88] (about 2 million, every exponent and
// both signs), plus random ones near 0.
std::vector<float> sample_domain() {
  std::vector<float> xs;
  for (uint64_t bits = 0; bits < (uint64_t(1) << 32); bits += 997) {
    const float x = std::bit_cast<float>(uint32_t(bits));
    if (x >= -87.3f && x <= 88.0f) xs.push_back(x);
  }
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> small(-1.0f, 1.0f);
  for (int i = 0; i < 100000; ++i) xs.push_back(small(rng));
  return xs;
}

TEST(FastExp, within_two_ulp_of_exp_over_the_whole_float_range) {
  double worst = 0;
  float worst_x = 0;
  for (const float x : sample_domain()) {
    const double e = ulp_error(fast_exp(x), x);
    if (e > worst) worst = e, worst_x = x;
  }
  EXPECT_LE(worst, 2.0) << "at x = " << worst_x;
}

TEST(FastExp, row_kernel_matches_exp_and_sums_the_row) {
  // exp_shifted_sum runs the clone for this CPU (AVX-512 / AVX2+FMA / baseline): same bound.
  std::vector<float> xs = sample_domain();
  std::vector<float> row = xs;
  exp_shifted_sum(row.data(), int64_t(row.size()), 0.0f);
  for (size_t i = 0; i < xs.size(); ++i) ASSERT_LE(ulp_error(row[i], xs[i]), 2.0) << "x = " << xs[i];

  // A softmax-like row: max 0, the sum in f32 lanes against a double sum.
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 4.0f);
  std::vector<float> scores(4099);
  for (float& s : scores) s = normal(rng);
  const float mx = row_max(scores.data(), int64_t(scores.size()), -std::numeric_limits<float>::infinity());
  double want_max = -1e300, want_sum = 0;
  for (float s : scores) want_max = std::max(want_max, double(s));
  for (float s : scores) want_sum += std::exp(double(s) - want_max);
  EXPECT_EQ(double(mx), want_max);
  const float sum = exp_shifted_sum(scores.data(), int64_t(scores.size()), mx);
  EXPECT_NEAR(sum, want_sum, 1e-5 * want_sum);
}

TEST(FastExp, saturates_instead_of_overflowing_or_wrapping) {
  // Below the normal range: a tiny non-negative number, never garbage from a wrapped exponent.
  for (const float x : {-87.4f, -100.0f, -1e4f, -1e30f, -std::numeric_limits<float>::infinity()}) {
    const float y = fast_exp(x);
    EXPECT_GE(y, 0.0f) << x;
    EXPECT_LE(y, 1.3e-38f) << x;
  }
  for (const float x : {88.5f, 1e4f, std::numeric_limits<float>::infinity()}) {
    EXPECT_TRUE(std::isfinite(fast_exp(x))) << x;
    EXPECT_GE(fast_exp(x), fast_exp(88.0f)) << x;
  }
  EXPECT_EQ(fast_exp(0.0f), 1.0f);
}

}  // namespace
}  // namespace ltri
