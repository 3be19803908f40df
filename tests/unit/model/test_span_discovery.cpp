// Span discovery on constructed attention maps: planted triangles are found exactly, the spans
// always partition the stretch, and the score matches its definition.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "core/error.hpp"
#include "kv/span_discovery.hpp"

namespace ltri {
namespace {

// A band (n, width) whose rows attend brightly inside their own block and dimly elsewhere.
struct PlantedMap {
  std::vector<float> values;
  int64_t n = 0;
  int64_t width = 0;
  AttentionBand band() const { return {values.data(), nullptr, n, width}; }
};

PlantedMap block_diagonal(const std::vector<int64_t>& blocks, int64_t width, float bright,
                          float dark, float noise, uint32_t seed) {
  PlantedMap m;
  for (int64_t b : blocks) m.n += b;
  m.width = width;
  m.values.assign(size_t(m.n * width), 0.0f);
  std::vector<int64_t> block_of(size_t(m.n));
  int64_t t = 0;
  for (size_t b = 0; b < blocks.size(); ++b) {
    for (int64_t k = 0; k < blocks[b]; ++k) block_of[size_t(t++)] = int64_t(b);
  }
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> jitter(-noise, noise);
  for (int64_t i = 0; i < m.n; ++i) {
    for (int64_t d = 0; d < width && i - d >= 0; ++d) {
      const bool same = block_of[size_t(i)] == block_of[size_t(i - d)];
      m.values[size_t(i * width + d)] = std::max(0.0f, (same ? bright : dark) + jitter(rng));
    }
  }
  return m;
}

void expect_partition(const std::vector<Span>& spans, int64_t n, int64_t span_max) {
  int64_t next = 0;
  for (const Span& s : spans) {
    EXPECT_EQ(s.start, next);
    EXPECT_GE(s.length, 1);
    EXPECT_LE(s.length, span_max);
    next = s.start + s.length;
  }
  EXPECT_EQ(next, n);
}

TEST(SpanDiscovery, planted_blocks_are_recovered_exactly) {
  const std::vector<int64_t> blocks = {12, 30, 7, 50, 20, 5, 64};
  const PlantedMap m = block_diagonal(blocks, 96, 1.0f, 0.05f, 0.03f, 7);
  SpanParams params;  // theta 0.6, phi 0.3, span_min 4, span_max 256
  const std::vector<Span> spans = find_spans(m.band(), params);
  ASSERT_EQ(spans.size(), blocks.size());
  int64_t start = 0;
  for (size_t b = 0; b < blocks.size(); ++b) {
    EXPECT_EQ(spans[b].start, start) << "block " << b;
    EXPECT_EQ(spans[b].length, blocks[b]) << "block " << b;
    EXPECT_GT(spans[b].score, 0.0f);
    start += blocks[b];
  }
}

TEST(SpanDiscovery, blocks_are_found_under_uneven_row_scales) {
  // Each row's softmax mass differs (a row that spreads attention has a lower peak); row-max
  // normalisation must make the triangles comparable.
  const std::vector<int64_t> blocks = {16, 9, 40, 24};
  PlantedMap m = block_diagonal(blocks, 64, 1.0f, 0.05f, 0.02f, 11);
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> row_scale(0.01f, 0.5f);
  for (int64_t i = 0; i < m.n; ++i) {
    const float s = row_scale(rng);
    for (int64_t d = 0; d < m.width; ++d) m.values[size_t(i * m.width + d)] *= s;
  }
  const std::vector<Span> spans = find_spans(m.band(), SpanParams{});
  ASSERT_EQ(spans.size(), blocks.size());
  for (size_t b = 0; b < blocks.size(); ++b) EXPECT_EQ(spans[b].length, blocks[b]);
}

TEST(SpanDiscovery, long_blocks_are_cut_at_span_max) {
  const PlantedMap m = block_diagonal({100}, 128, 1.0f, 0.05f, 0.0f, 1);
  SpanParams params;
  params.span_max = 40;
  const std::vector<Span> spans = find_spans(m.band(), params);
  expect_partition(spans, 100, 40);
  for (const Span& s : spans) EXPECT_LE(s.length, 40);
}

TEST(SpanDiscovery, spans_partition_random_maps_exactly) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  for (int trial = 0; trial < 20; ++trial) {
    const int64_t n = 1 + int64_t(rng() % 300);
    const int64_t width = 1 + int64_t(rng() % 80);
    std::vector<float> values(size_t(n * width));
    for (float& v : values) v = u(rng) * u(rng);
    SpanParams params;
    params.theta = 0.1f + 0.8f * u(rng);
    params.phi = u(rng);
    params.span_min = 1 + int64_t(rng() % 6);
    params.span_max = params.span_min + int64_t(rng() % 60);
    const std::vector<Span> spans = find_spans({values.data(), nullptr, n, width}, params);
    expect_partition(spans, n, params.span_max);
  }
}

TEST(SpanDiscovery, dark_map_gives_gap_spans_only) {
  // theta above every normalised cell but the diagonal: no triangle of length >= 2 scores > 0.
  const int64_t n = 50, width = 16;
  std::vector<float> values(size_t(n * width), 0.1f);
  for (int64_t i = 0; i < n; ++i) values[size_t(i * width)] = 1.0f;  // diagonal brightest
  SpanParams params;
  params.theta = 0.9f;
  params.span_min = 2;
  params.span_max = 8;
  const std::vector<Span> spans = find_spans({values.data(), nullptr, n, width}, params);
  expect_partition(spans, n, 8);
  for (const Span& s : spans) EXPECT_EQ(s.score, 0.0f);
}

TEST(SpanDiscovery, triangle_score_matches_its_definition) {
  // 3x3 stretch, width 3, row maxima 1: S(0,2) = sum over the 6 lower cells of (a - theta).
  const std::vector<float> values = {1.0f, 0, 0,  // row 0: a00
                                     0.5f, 1.0f, 0,  // row 1: a11, a10
                                     1.0f, 0.2f, 0.4f};  // row 2: a22, a21, a20
  const AttentionBand band{values.data(), nullptr, 3, 3};
  const double expected = (1.0 + 0.5 + 1.0 + 1.0 + 0.2 + 0.4) - 6 * 0.5;
  EXPECT_NEAR(triangle_score(band, 0, 2, 0.5f), expected, 1e-6);
  EXPECT_NEAR(triangle_score(band, 1, 2, 0.5f), (0.5 + 1.0 + 0.2) - 3 * 0.5, 1e-6);
}

TEST(SpanDiscovery, bad_parameters_are_rejected_with_their_name) {
  SpanParams p;
  p.theta = 1.5f;
  EXPECT_THROW(validate_span_params(p), Error);
  p = SpanParams{};
  p.span_min = 0;
  try {
    validate_span_params(p);
    FAIL() << "span_min 0 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("span_min"), std::string::npos);
  }
  p = SpanParams{};
  p.span_max = 2;
  EXPECT_THROW(validate_span_params(p), Error);
}

}  // namespace
}  // namespace ltri
