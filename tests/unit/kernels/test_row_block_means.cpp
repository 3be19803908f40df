// Backend::row_block_means (the CPU backend's op, the default in ops/backend.cpp) against its
// definition: each row joins block (n - 1 - i) / block, counted back from the last row, and a
// block's mean is its rows' sum over its count, computed here in double in reverse row order.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "core/error.hpp"
#include "kernels/cpu/cpu_backend.hpp"

namespace ltri {
namespace {

std::vector<double> reference_block_means(const std::vector<float>& x, int64_t n, int64_t row, int64_t block) {
  const int64_t n_blocks = (n + block - 1) / block;
  std::vector<double> sum(size_t(n_blocks * row), 0.0);
  std::vector<int64_t> count(size_t(n_blocks), 0);
  for (int64_t i = n - 1; i >= 0; --i) {
    const int64_t b = (n - 1 - i) / block;
    ++count[size_t(b)];
    for (int64_t c = 0; c < row; ++c) sum[size_t(b * row + c)] += double(x[size_t(i * row + c)]);
  }
  for (int64_t b = 0; b < n_blocks; ++b) {
    for (int64_t c = 0; c < row; ++c) sum[size_t(b * row + c)] /= double(count[size_t(b)]);
  }
  return sum;
}

TEST(RowBlockMeans, blocks_count_back_from_the_last_row) {
  CpuBackend cpu(1);
  const std::vector<float> x = {1, 10, 2, 20, 3, 30, 4, 40, 5, 50};  // (5, 2)
  std::vector<float> out(10);
  cpu.row_block_means(x.data(), 5, 2, 2, out.data());  // rows {3, 4}, {1, 2}, {0}
  EXPECT_EQ(std::vector<float>(out.begin(), out.begin() + 6), (std::vector<float>{4.5f, 45, 2.5f, 25, 1, 10}));
  cpu.row_block_means(x.data(), 5, 2, 5, out.data());  // block == n: the mean of all rows
  EXPECT_EQ(std::vector<float>(out.begin(), out.begin() + 2), (std::vector<float>{3, 30}));
  cpu.row_block_means(x.data(), 5, 2, 100, out.data());  // block > n: the same
  EXPECT_EQ(std::vector<float>(out.begin(), out.begin() + 2), (std::vector<float>{3, 30}));
  cpu.row_block_means(x.data(), 5, 2, 1, out.data());  // block 1: the rows, last first
  EXPECT_EQ(out, (std::vector<float>{5, 50, 4, 40, 3, 30, 2, 20, 1, 10}));
}

TEST(RowBlockMeans, random_shapes_match_the_definition) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  CpuBackend cpu(1);
  // (n, row, block): a chunk of queries in blocks of 32, its mean, odd n with a short last
  // block, block 1, one row.
  const int64_t cases[][3] = {{512, 384, 32}, {512, 384, 512}, {37, 64, 8}, {37, 64, 1000}, {101, 13, 1}, {1, 384, 32}, {33, 5, 32}};
  for (const auto& s : cases) {
    const int64_t n = s[0], row = s[1], block = s[2];
    std::vector<float> x(size_t(n * row));
    for (float& v : x) v = normal(rng) + 0.5f;
    const int64_t n_blocks = (n + block - 1) / block;
    std::vector<float> out(size_t(n_blocks * row));
    cpu.row_block_means(x.data(), n, row, block, out.data());
    const std::vector<double> want = reference_block_means(x, n, row, block);
    for (size_t i = 0; i < want.size(); ++i) {
      // The op rounds a double mean to f32 once: within half an f32 ulp, plus the two double
      // sums' different orders.
      ASSERT_NEAR(double(out[i]), want[i], 6e-8 * std::fabs(want[i]) + 1e-13)
          << "n " << n << " row " << row << " block " << block << " at " << i;
    }
  }
}

TEST(RowBlockMeans, empty_or_negative_sizes_are_errors) {
  CpuBackend cpu(1);
  std::vector<float> x(4), out(4);
  EXPECT_THROW(cpu.row_block_means(x.data(), 0, 4, 1, out.data()), Error);
  EXPECT_THROW(cpu.row_block_means(x.data(), 1, 0, 1, out.data()), Error);
  EXPECT_THROW(cpu.row_block_means(x.data(), 1, 4, 0, out.data()), Error);
}

}  // namespace
}  // namespace ltri
