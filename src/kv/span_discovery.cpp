#include "kv/span_discovery.hpp"

#include <algorithm>
#include <cmath>

#include "core/error.hpp"

namespace ltri {

namespace {

struct Candidate {
  int64_t start;
  int64_t end;  // inclusive
  double score;
};

// Row i's scale: 1 / (its maximum), so normalised cells lie in [0, 1].
std::vector<float> row_scales(const AttentionBand& band) {
  std::vector<float> scale(size_t(band.n), 0.0f);
  for (int64_t i = 0; i < band.n; ++i) {
    float m = 0.0f;
    if (band.row_max) {
      m = band.row_max[i];
    } else {
      const int64_t visible = std::min(band.width, i + 1);
      for (int64_t d = 0; d < visible; ++d) m = std::max(m, band.values[i * band.width + d]);
    }
    scale[size_t(i)] = m > 0.0f ? 1.0f / m : 0.0f;  // an all-zero row stays dark
  }
  return scale;
}

double interval_iou(const Candidate& a, const Candidate& b) {
  const int64_t inter = std::min(a.end, b.end) - std::max(a.start, b.start) + 1;
  if (inter <= 0) return 0.0;
  const int64_t uni = (a.end - a.start + 1) + (b.end - b.start + 1) - inter;
  return double(inter) / double(uni);
}

// Appends [start, start+length) to `spans`, cut into pieces of at most span_max.
void push_cut(std::vector<Span>& spans, int64_t start, int64_t length, float score,
              int64_t span_max) {
  while (length > 0) {
    const int64_t piece = std::min(length, span_max);
    spans.push_back({start, piece, score});
    start += piece;
    length -= piece;
  }
}

}  // namespace

void validate_span_params(const SpanParams& p) {
  if (!(p.theta >= 0.0f && p.theta <= 1.0f)) fail("span theta must be in [0, 1], got ", p.theta);
  if (!(p.phi >= 0.0f && p.phi <= 1.0f)) fail("span phi must be in [0, 1], got ", p.phi);
  if (p.span_min < 1) fail("span_min must be >= 1, got ", p.span_min);
  if (p.span_max < p.span_min) {
    fail("span_max (", p.span_max, ") must be >= span_min (", p.span_min, ")");
  }
}

double triangle_score(const AttentionBand& band, int64_t x, int64_t y, float theta) {
  const std::vector<float> scale = row_scales(band);
  double s = 0.0;
  for (int64_t i = x; i <= y; ++i) {
    for (int64_t j = x; j <= i; ++j) {
      const int64_t d = i - j;
      const float a = d < band.width ? band.values[i * band.width + d] * scale[size_t(i)] : 0.0f;
      s += double(a) - double(theta);
    }
  }
  return s;
}

std::vector<Span> find_spans(const AttentionBand& band, const SpanParams& params) {
  validate_span_params(params);
  if (band.n <= 0) return {};
  if (band.width < 1) fail("attention band width must be >= 1, got ", band.width);
  const int64_t n = band.n;
  const int64_t w = band.width;
  const int64_t longest = std::min(params.span_max, w);
  const std::vector<float> scale = row_scales(band);

  // prefix[i*w + d] = sum of normalised row i over distances 0..d, i.e. over columns i-d..i.
  std::vector<double> prefix(size_t(n * w), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    double acc = 0.0;
    const int64_t visible = std::min(w, i + 1);
    for (int64_t d = 0; d < w; ++d) {
      if (d < visible) acc += double(band.values[i * w + d]) * scale[size_t(i)];
      prefix[size_t(i * w + d)] = acc;
    }
  }

  // S(x, y) = S(x, y-1) + (sum of row y over columns x..y) - theta * (y - x + 1).
  std::vector<Candidate> candidates;
  for (int64_t x = 0; x < n; ++x) {
    double s = 0.0;
    for (int64_t y = x; y < n && y - x + 1 <= longest; ++y) {
      const int64_t len = y - x + 1;
      s += prefix[size_t(y * w + (y - x))] - double(params.theta) * double(len);
      if (len >= params.span_min && s > 0.0) candidates.push_back({x, y, s});
    }
  }
  // Highest score first; ties broken by position so the result is deterministic.
  std::sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) {
    if (a.score != b.score) return a.score > b.score;
    if (a.start != b.start) return a.start < b.start;
    return a.end < b.end;
  });

  // Greedy NMS. Kept spans are few (at most n / span_min non-nested ones in practice), and a
  // candidate only needs the kept spans it intersects.
  std::vector<Candidate> kept;
  for (const Candidate& c : candidates) {
    bool suppressed = false;
    for (const Candidate& k : kept) {
      if (interval_iou(c, k) > params.phi) {
        suppressed = true;
        break;
      }
    }
    if (!suppressed) kept.push_back(c);
  }

  // Partition: each token goes to the highest-scoring kept span covering it (kept is in score
  // order, so the first writer wins); runs of one owner become spans, unowned runs are gaps.
  std::vector<int64_t> owner(size_t(n), -1);
  for (size_t k = 0; k < kept.size(); ++k) {
    for (int64_t t = kept[k].start; t <= kept[k].end; ++t) {
      if (owner[size_t(t)] < 0) owner[size_t(t)] = int64_t(k);
    }
  }
  std::vector<Span> spans;
  int64_t run_start = 0;
  for (int64_t t = 1; t <= n; ++t) {
    if (t == n || owner[size_t(t)] != owner[size_t(run_start)]) {
      const int64_t who = owner[size_t(run_start)];
      const float score = who < 0 ? 0.0f : float(kept[size_t(who)].score);
      push_cut(spans, run_start, t - run_start, score, params.span_max);
      run_start = t;
    }
  }
  return spans;
}

}  // namespace ltri
