// Calibration on constructed maps: the needle F1 follows its definition, and random search over
// θ recovers a planted needle block with F1 ~ 1 where the spec's default θ does not.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <random>
#include <vector>

#include "analysis/calibration.hpp"
#include "core/error.hpp"
#include "test_paths.hpp"

namespace ltri {
namespace {

TEST(Calibration, needle_f1_is_the_best_single_span_match) {
  const std::vector<Span> spans = {{0, 10, 1.0f}, {10, 20, 1.0f}, {30, 10, 0.0f}};
  EXPECT_DOUBLE_EQ(needle_f1(spans, 10, 30), 1.0);
  // Needle [12, 30): span [10, 30) has precision 18/20, recall 1 -> 2*18/(20+18).
  EXPECT_DOUBLE_EQ(needle_f1(spans, 12, 30), 2.0 * 18.0 / 38.0);
  // Needle [5, 15) split over two spans: the better piece, 2*5/(10+10) from either.
  EXPECT_DOUBLE_EQ(needle_f1(spans, 5, 15), 0.5);
  EXPECT_DOUBLE_EQ(needle_f1(spans, 50, 60), 0.0);
}

// A square (n, n) attention map: rows attend brightly to earlier tokens of their own block and
// dimly elsewhere, with noise.
struct PlantedWindow {
  std::vector<float> map, row_max;
  int64_t n = 0;
};

PlantedWindow planted(const std::vector<int64_t>& blocks, uint32_t seed) {
  PlantedWindow w;
  for (int64_t b : blocks) w.n += b;
  std::vector<int64_t> block_of;
  for (size_t b = 0; b < blocks.size(); ++b) block_of.insert(block_of.end(), size_t(blocks[b]), int64_t(b));
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> jitter(-0.05f, 0.05f);
  w.map.assign(size_t(w.n * w.n), 0.0f);
  w.row_max.assign(size_t(w.n), 0.0f);
  for (int64_t i = 0; i < w.n; ++i) {
    for (int64_t j = 0; j <= i; ++j) {
      const bool same = block_of[size_t(i)] == block_of[size_t(j)];
      w.map[size_t(i * w.n + j)] = std::max(0.0f, (same ? 0.8f : 0.05f) + jitter(rng));
    }
    // The row's scale is a brighter cell far outside the window (e.g. the key it retrieves).
    w.row_max[size_t(i)] = 1.0f;
  }
  return w;
}

TEST(Calibration, random_search_recovers_a_planted_needle_block) {
  std::vector<SegmentationWindow> windows;
  const std::vector<std::vector<int64_t>> layouts = {{20, 30, 25, 40, 45}, {12, 50, 18, 33, 47}, {60, 22, 9, 69}};
  const std::vector<size_t> needle_blocks = {2, 2, 1};
  for (size_t s = 0; s < layouts.size(); ++s) {
    const PlantedWindow p = planted(layouts[s], uint32_t(s + 1));
    SegmentationWindow w = band_from_square_map(p.map.data(), p.row_max.data(), p.n, 64);
    for (size_t b = 0; b < needle_blocks[s]; ++b) w.needle_begin += layouts[s][b];
    w.needle_end = w.needle_begin + layouts[s][needle_blocks[s]];
    windows.push_back(std::move(w));
  }
  SpanParams params;  // phi 0.3, span_min 4, span_max 256 (band width 64 bounds candidates)
  const ThetaScore best = best_theta(windows, params, random_thetas(48, 7));
  EXPECT_GT(best.f1, 0.99);
  // Below the dark level every triangle pays off and blocks merge; above the bright level none
  // does and the windows fall into span_max pieces: neither matches the needle.
  for (float theta : {0.02f, 0.97f}) {
    SpanParams p = params;
    p.theta = theta;
    EXPECT_LT(evaluate_theta(windows, p).f1, 0.7) << "theta " << theta;
  }
  // Every window is a partition whose spans average about the planted block length.
  EXPECT_GT(best.mean_span_len, 15.0);
  EXPECT_LT(best.mean_span_len, 45.0);
}

TEST(Calibration, thetas_are_seeded_draws_in_range) {
  const std::vector<double> a = random_thetas(100, 3), b = random_thetas(100, 3), c = random_thetas(100, 4);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  for (double t : a) {
    EXPECT_GE(t, 0.05);
    EXPECT_LE(t, 0.95);
  }
}

TEST(Calibration, calibration_file_round_trips_and_bad_files_are_refused) {
  const std::string path = test::scratch_path("ltri_test_calibration.json");
  CalibrationFile c;
  c.theta = {0.25, 0.5};
  c.f1 = {0.9, 0.8};
  c.mean_span_len = {12.5, 20.0};
  c.segmentation_heads = "retrieval";
  c.heads = {3, 1};
  write_calibration_file(path, c);
  const CalibrationFile back = read_calibration_file(path);
  EXPECT_EQ(back.theta, c.theta);
  EXPECT_EQ(back.f1, c.f1);
  EXPECT_EQ(back.segmentation_heads, "retrieval");
  EXPECT_EQ(back.heads, c.heads);
  std::FILE* f = std::fopen(path.c_str(), "w");
  std::fputs("{\"format\": \"ltri-calibration-1\", \"theta\": [0.5, 1.5]}", f);
  std::fclose(f);
  EXPECT_THROW(read_calibration_file(path), Error);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace ltri
