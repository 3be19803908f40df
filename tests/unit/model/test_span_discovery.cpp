// Span discovery on constructed attention maps: planted triangles are found exactly, the spans
// always partition the stretch, the score matches its definition, and the fast find_spans gives
// exactly what the plain algorithm (sort every candidate, NMS against every kept span) gives.
#include <gtest/gtest.h>

#include <algorithm>
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

// The algorithm as the spec states it, written plainly: every positive candidate, one full
// sort by (score desc, start, end), NMS against every kept span, first kept span owns a token.
// Scores are summed in the same order as find_spans (row prefix sums, then y increasing), so
// they must agree bit for bit.
std::vector<Span> reference_find_spans(const AttentionBand& band, const SpanParams& params) {
  struct Candidate {
    double score;
    int64_t start, end;
  };
  const int64_t n = band.n, w = band.width;
  if (n <= 0) return {};
  std::vector<float> scale(size_t(n), 0.0f);
  for (int64_t i = 0; i < n; ++i) {
    float m = 0.0f;
    if (band.row_max) {
      m = band.row_max[i];
    } else {
      for (int64_t d = 0; d < std::min(w, i + 1); ++d) m = std::max(m, band.values[i * w + d]);
    }
    scale[size_t(i)] = m > 0.0f ? 1.0f / m : 0.0f;
  }
  std::vector<double> prefix(size_t(n * w));  // row i summed over distances 0..d
  for (int64_t i = 0; i < n; ++i) {
    double acc = 0.0;
    for (int64_t d = 0; d < w; ++d) {
      if (d <= i) acc += double(band.values[i * w + d]) * scale[size_t(i)];
      prefix[size_t(i * w + d)] = acc;
    }
  }
  std::vector<Candidate> candidates;
  const int64_t longest = std::min(params.span_max, w);
  for (int64_t x = 0; x < n; ++x) {
    double s = 0.0;
    for (int64_t y = x; y < n && y - x + 1 <= longest; ++y) {
      s += prefix[size_t(y * w + (y - x))] - double(params.theta) * double(y - x + 1);
      if (y - x + 1 >= params.span_min && s > 0.0) candidates.push_back({s, x, y});
    }
  }
  std::sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) {
    if (a.score != b.score) return a.score > b.score;
    return a.start != b.start ? a.start < b.start : a.end < b.end;
  });
  std::vector<Candidate> kept;
  for (const Candidate& c : candidates) {
    bool suppressed = false;
    for (const Candidate& k : kept) {
      const int64_t inter = std::min(c.end, k.end) - std::max(c.start, k.start) + 1;
      const int64_t uni = (c.end - c.start + 1) + (k.end - k.start + 1) - inter;
      if (inter > 0 && double(inter) / double(uni) > params.phi) suppressed = true;
    }
    if (!suppressed) kept.push_back(c);
  }
  std::vector<int64_t> owner(size_t(n), -1);
  for (size_t k = kept.size(); k-- > 0;) {  // backwards: the best kept span writes last
    for (int64_t t = kept[k].start; t <= kept[k].end; ++t) owner[size_t(t)] = int64_t(k);
  }
  std::vector<Span> spans;
  for (int64_t t = 0; t < n;) {
    int64_t end = t;
    while (end < n && owner[size_t(end)] == owner[size_t(t)]) ++end;
    const float score = owner[size_t(t)] < 0 ? 0.0f : float(kept[size_t(owner[size_t(t)])].score);
    for (int64_t p = t; p < end; p += params.span_max) {
      spans.push_back({p, std::min(params.span_max, end - p), score});
    }
    t = end;
  }
  return spans;
}

// One random band: the kinds of map span discovery meets (planted triangles with noise, plain
// noise, cells on a coarse grid so that many scores tie exactly) with some rows all zero.
struct RandomBand {
  std::vector<float> values, row_max;
  int64_t n = 0, width = 0;
  bool with_row_max = false;
  AttentionBand band() const { return {values.data(), with_row_max ? row_max.data() : nullptr, n, width}; }
};

RandomBand random_band(std::mt19937& rng, int64_t n, int64_t width) {
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  RandomBand r;
  r.n = n;
  r.width = width;
  const int kind = int(rng() % 3);
  if (kind == 0) {
    std::vector<int64_t> blocks;
    for (int64_t left = n; left > 0;) {
      const int64_t b = std::min<int64_t>(left, 1 + int64_t(rng() % 60));
      blocks.push_back(b);
      left -= b;
    }
    r.values = block_diagonal(blocks, width, 0.5f + 0.5f * u(rng), 0.2f * u(rng), 0.3f * u(rng),
                              uint32_t(rng())).values;
  } else {
    r.values.resize(size_t(n * width));
    for (float& v : r.values) v = kind == 1 ? u(rng) * u(rng) : float(rng() % 5) * 0.25f;
  }
  const int64_t dark_rows = int64_t(rng() % 4) == 0 ? n : int64_t(rng() % (n / 8 + 1));
  for (int64_t k = 0; k < dark_rows; ++k) {
    const int64_t i = int64_t(rng() % uint32_t(n));
    std::fill(r.values.begin() + i * width, r.values.begin() + (i + 1) * width, 0.0f);
  }
  r.with_row_max = rng() % 2 == 0;
  r.row_max.resize(size_t(n));
  for (float& m : r.row_max) m = rng() % 8 == 0 ? 0.0f : (kind == 2 ? 1.0f : 0.5f + u(rng));
  return r;
}

// phi up to phi_max: a high phi keeps nearly every candidate, which the plain NMS (every
// candidate against every kept span) only gets through quickly on short stretches.
SpanParams random_params(std::mt19937& rng, float phi_max) {
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  SpanParams p;
  const float grid[] = {0.0f, 0.25f, 0.5f, 1.0f};
  p.theta = rng() % 4 == 0 ? grid[rng() % 4] : 0.05f + 0.8f * u(rng);
  p.phi = std::min(phi_max, rng() % 3 == 0 ? grid[rng() % 4] : u(rng));
  p.span_min = 1 + int64_t(rng() % 8);
  p.span_max = p.span_min + int64_t(rng() % 300);
  return p;
}

void expect_same_spans(const std::vector<Span>& got, const std::vector<Span>& want,
                       const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].start, want[i].start) << what << " span " << i;
    EXPECT_EQ(got[i].length, want[i].length) << what << " span " << i;
    EXPECT_EQ(got[i].score, want[i].score) << what << " span " << i;  // bit for bit, not near
  }
}

TEST(SpanDiscovery, find_spans_equals_the_plain_algorithm_on_random_bands) {
  std::mt19937 rng(2024);
  for (int trial = 0; trial < 300; ++trial) {
    // Short stretches (n < width) and long ones (n > width), narrow and wide bands.
    const bool short_stretch = trial % 2 == 0;
    const int64_t n = 1 + int64_t(rng() % (short_stretch ? 40 : 400));
    const int64_t width = 1 + int64_t(rng() % 300);
    const RandomBand r = random_band(rng, n, width);
    const SpanParams p = random_params(rng, short_stretch ? 1.0f : 0.5f);
    const std::string what = "trial " + std::to_string(trial) + " n " + std::to_string(n) +
                             " width " + std::to_string(width) + " theta " + std::to_string(p.theta) +
                             " phi " + std::to_string(p.phi) + " span " + std::to_string(p.span_min) +
                             ".." + std::to_string(p.span_max);
    expect_same_spans(find_spans(r.band(), p), reference_find_spans(r.band(), p), what);
    if (HasFatalFailure()) return;
  }
}

TEST(SpanDiscovery, find_spans_equals_the_plain_algorithm_at_the_policy_shape) {
  // The ltri policy's call: ~overflow + span_max rows of width span_max = 256, row_max 1,
  // span_min 4, phi 0.3, theta from a low (long spans) to a high (short spans) calibration.
  std::mt19937 rng(7);
  for (const float theta : {0.1f, 0.3f, 0.7f}) {
    const int64_t n = 600 + int64_t(rng() % 300), width = 256;
    std::vector<int64_t> blocks;
    for (int64_t left = n; left > 0;) {
      const int64_t b = std::min<int64_t>(left, 2 + int64_t(rng() % 80));
      blocks.push_back(b);
      left -= b;
    }
    const PlantedMap m = block_diagonal(blocks, width, 0.8f, 0.15f, 0.25f, uint32_t(rng()));
    const std::vector<float> ones(size_t(n), 1.0f);
    const AttentionBand band{m.values.data(), ones.data(), n, width};
    SpanParams p;
    p.theta = theta;
    const std::string what = "theta " + std::to_string(theta);
    expect_same_spans(find_spans(band, p), reference_find_spans(band, p), what);
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
