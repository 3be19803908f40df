#include "kv/span_discovery.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>

#include "core/error.hpp"

namespace ltri {

namespace {

struct Candidate {
  double score;
  int32_t start;
  int32_t end;  // inclusive
};

// The order in which NMS visits candidates: highest score first, ties by position, so the
// result is deterministic. A strict total order (no two candidates share start and end), so
// any algorithm that visits candidates in this order sees the same sequence.
struct RanksBefore {
  bool operator()(const Candidate& a, const Candidate& b) const {
    if (a.score != b.score) return a.score > b.score;
    if (a.start != b.start) return a.start < b.start;
    return a.end < b.end;
  }
};

double interval_iou(const Candidate& a, const Candidate& b) {
  const int64_t inter = int64_t(std::min(a.end, b.end)) - std::max(a.start, b.start) + 1;
  if (inter <= 0) return 0.0;
  const int64_t uni = int64_t(a.end - a.start + 1) + (b.end - b.start + 1) - inter;
  return double(inter) / double(uni);
}

// Row i's scale: 1 / (its maximum), so normalised cells lie in [0, 1].
void row_scales(const AttentionBand& band, std::vector<float>& scale) {
  scale.assign(size_t(band.n), 0.0f);
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
}

// The kept spans of greedy NMS, findable by position: a candidate can only be suppressed by a
// kept span it intersects, and kept spans are at most `longest` long, so only kept spans that
// start in [c.start - longest + 1, c.end] need an IoU test. Starts are marked in a bitmap (a
// candidate's range is a handful of words) with a chain of kept spans per start.
class KeptSpans {
 public:
  void reset(int64_t n, int64_t longest, float phi) {
    longest_ = longest;
    phi_ = phi;
    spans_.clear();
    next_same_start_.clear();
    start_bits_.assign(size_t((n + 63) / 64), 0);
    first_at_start_.assign(size_t(n), -1);
    hint_at_start_.assign(size_t(n), -1);
  }

  const std::vector<Candidate>& spans() const { return spans_; }  // in the order kept

  // Whether some kept span has IoU > phi with c. The answer does not depend on which kept span
  // is tried first, so the last one that suppressed a candidate with c's start is tried first:
  // on attention maps it usually suppresses c too.
  bool suppresses(const Candidate& c) {
    const int32_t hint = hint_at_start_[size_t(c.start)];
    if (hint >= 0 && interval_iou(c, spans_[size_t(hint)]) > phi_) return true;
    const int64_t lo = std::max<int64_t>(0, int64_t(c.start) - longest_ + 1);
    const int64_t hi = c.end;
    for (int64_t word = lo / 64; word <= hi / 64; ++word) {
      uint64_t bits = start_bits_[size_t(word)];
      if (word == lo / 64) bits &= ~uint64_t(0) << (lo % 64);
      if (word == hi / 64 && hi % 64 != 63) bits &= (uint64_t(1) << (hi % 64 + 1)) - 1;
      while (bits) {
        const int64_t start = word * 64 + std::countr_zero(bits);
        bits &= bits - 1;
        for (int32_t k = first_at_start_[size_t(start)]; k >= 0; k = next_same_start_[size_t(k)]) {
          if (interval_iou(c, spans_[size_t(k)]) > phi_) {
            hint_at_start_[size_t(c.start)] = k;
            return true;
          }
        }
      }
    }
    return false;
  }

  void keep(const Candidate& c) {
    const int32_t k = int32_t(spans_.size());
    spans_.push_back(c);
    next_same_start_.push_back(first_at_start_[size_t(c.start)]);
    first_at_start_[size_t(c.start)] = k;
    start_bits_[size_t(c.start / 64)] |= uint64_t(1) << (c.start % 64);
  }

 private:
  int64_t longest_ = 1;
  double phi_ = 0.0;
  std::vector<Candidate> spans_;
  std::vector<int32_t> next_same_start_;  // (kept) the next kept span with the same start, or -1
  std::vector<uint64_t> start_bits_;      // (ceil(n / 64)) bit t: some kept span starts at t
  std::vector<int32_t> first_at_start_;   // (n) a kept span starting at t, or -1
  std::vector<int32_t> hint_at_start_;    // (n) last kept span that suppressed a candidate at t
};

// find_spans runs per layer per chunk on bands of ~1K rows; keeping its buffers per thread
// saves allocating and zeroing megabytes of candidates each call.
struct SpanScratch {
  std::vector<float> scale;            // (n)
  std::vector<double> open_scores;     // (n) S(x, y) of the candidates starting at x, as y grows
  std::vector<Candidate> generated;    // (n * longest) capacity; the first n_candidates are used
  std::vector<int32_t> first_covered;  // (n) smallest start of a candidate ending at y, or y + 1
  std::vector<Candidate> ordered;      // (n_candidates) grouped by score bucket, best first
  std::vector<size_t> bucket_begin;    // (buckets + 1) see bucket_by_score
  KeptSpans kept;
  std::vector<int32_t> owner;  // (n) index into kept, or -1
};

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

// Every candidate [x, y] with length in [span_min, longest] and S(x, y) > 0, in no particular
// order; returns how many (they fill s.generated from the front), and sets s.first_covered[y]
// to the smallest x of a candidate ending at y (or y + 1 if none).
// S(x, y) = S(x, y-1) + (sum of row y over columns x..y) - theta * (y - x + 1), accumulated in
// double with y increasing: each score is the same sums in the same order as the definition's
// prefix-sum form, so scores (and with them the NMS order) are reproducible bit for bit.
size_t positive_candidates(const AttentionBand& band, const SpanParams& params, int64_t longest,
                           SpanScratch& s) {
  const int64_t n = band.n, w = band.width;
  const size_t capacity = size_t(n * longest);
  if (s.generated.size() < capacity) s.generated.resize(capacity);
  s.open_scores.assign(size_t(n), 0.0);
  s.first_covered.resize(size_t(n));
  const double theta = params.theta;
  size_t count = 0;
  for (int64_t y = 0; y < n; ++y) {
    const int64_t reach = std::min(longest, y + 1);
    const float* row = band.values + y * w;
    const float scale = s.scale[size_t(y)];
    double* open = s.open_scores.data();
    double row_sum = 0.0;  // sum of normalised row y over distances 0..d, i.e. columns y-d..y
    for (int64_t d = 0; d < reach; ++d) {
      row_sum += double(row[d]) * scale;
      open[y - d] += row_sum - theta * double(d + 1);
    }
    // Written unconditionally, kept only if positive: no branch to mispredict. x falls as d
    // grows, so the last one kept has the smallest x.
    const size_t row_first = count;
    for (int64_t d = params.span_min - 1; d < reach; ++d) {
      const double score = open[y - d];
      s.generated[count] = {score, int32_t(y - d), int32_t(y)};
      count += score > 0.0;
    }
    s.first_covered[size_t(y)] = count > row_first ? s.generated[count - 1].start : int32_t(y + 1);
  }
  return count;
}

// Orders candidates for NMS without a full comparison sort: a counting pass groups them into
// buckets by the high bits of their score (for positive doubles the bit pattern grows with the
// value, so buckets come out in score order, best first), then each bucket is sorted with
// RanksBefore just before NMS reaches it. Fills s.ordered and s.bucket_begin (bucket b is
// [bucket_begin[b], bucket_begin[b+1]) ).
void bucket_by_score(size_t n_candidates, SpanScratch& s) {
  constexpr uint64_t kMaxBuckets = 4096;
  const Candidate* gen = s.generated.data();
  uint64_t lo = std::numeric_limits<uint64_t>::max(), hi = 0;
  for (size_t i = 0; i < n_candidates; ++i) {
    const uint64_t bits = std::bit_cast<uint64_t>(gen[i].score);
    lo = std::min(lo, bits);
    hi = std::max(hi, bits);
  }
  int shift = 0;
  while ((hi >> shift) - (lo >> shift) >= kMaxBuckets) ++shift;
  const size_t n_buckets = n_candidates == 0 ? 0 : size_t((hi >> shift) - (lo >> shift) + 1);
  const auto bucket_of = [&](const Candidate& c) {
    return size_t((hi >> shift) - (std::bit_cast<uint64_t>(c.score) >> shift));
  };
  s.bucket_begin.assign(n_buckets + 1, 0);
  for (size_t i = 0; i < n_candidates; ++i) ++s.bucket_begin[bucket_of(gen[i]) + 1];
  for (size_t b = 0; b < n_buckets; ++b) s.bucket_begin[b + 1] += s.bucket_begin[b];
  s.ordered.resize(n_candidates);
  std::vector<size_t>& fill = s.bucket_begin;  // advanced while scattering, restored after
  for (size_t i = 0; i < n_candidates; ++i) s.ordered[fill[bucket_of(gen[i])]++] = gen[i];
  for (size_t b = n_buckets; b > 0; --b) fill[b] = fill[b - 1];
  if (n_buckets > 0) fill[0] = 0;
}

// Tokens that some candidate covers. Tokens are owned in score order, so once all of them are
// owned no later candidate can own anything and NMS can stop.
int64_t count_coverable(int64_t n, const SpanScratch& s) {
  int64_t coverable = 0;
  int64_t first = n;  // smallest start of a candidate ending at or after t
  for (int64_t t = n - 1; t >= 0; --t) {
    first = std::min<int64_t>(first, s.first_covered[size_t(t)]);
    coverable += first <= t;
  }
  return coverable;
}

// Greedy NMS in RanksBefore order and the partition's owners: each token goes to the first
// kept span (the highest score) that covers it. Kept spans that own no token do not appear in
// the partition, so NMS stops once every coverable token is owned.
void keep_and_own(int64_t n, int64_t coverable, SpanScratch& s) {
  s.owner.assign(size_t(n), -1);
  int64_t owned = 0;
  for (size_t b = 0; b + 1 < s.bucket_begin.size() && owned < coverable; ++b) {
    Candidate* first = s.ordered.data() + s.bucket_begin[b];
    Candidate* last = s.ordered.data() + s.bucket_begin[b + 1];
    // Most candidates are already suppressed by spans kept from earlier buckets (which all rank
    // before this one, and the kept set only grows): they are settled without being sorted.
    last = std::remove_if(first, last, [&](const Candidate& c) { return s.kept.suppresses(c); });
    std::sort(first, last, RanksBefore{});
    for (const Candidate* c = first; c != last && owned < coverable; ++c) {
      if (s.kept.suppresses(*c)) continue;
      const int32_t k = int32_t(s.kept.spans().size());
      s.kept.keep(*c);
      for (int32_t t = c->start; t <= c->end; ++t) {
        if (s.owner[size_t(t)] < 0) {
          s.owner[size_t(t)] = k;
          ++owned;
        }
      }
    }
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
  std::vector<float> scale;
  row_scales(band, scale);
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
  if (band.n > std::numeric_limits<int32_t>::max()) {
    fail("attention band of ", band.n, " rows is longer than span discovery supports");
  }
  const int64_t n = band.n;
  const int64_t longest = std::min(params.span_max, band.width);
  thread_local SpanScratch s;
  row_scales(band, s.scale);
  const size_t n_candidates = positive_candidates(band, params, longest, s);
  const int64_t coverable = count_coverable(n, s);
  bucket_by_score(n_candidates, s);
  s.kept.reset(n, longest, params.phi);
  keep_and_own(n, coverable, s);

  // Runs of one owner become spans, unowned runs are gaps.
  const std::vector<Candidate>& kept = s.kept.spans();
  std::vector<Span> spans;
  int64_t run_start = 0;
  for (int64_t t = 1; t <= n; ++t) {
    if (t == n || s.owner[size_t(t)] != s.owner[size_t(run_start)]) {
      const int32_t who = s.owner[size_t(run_start)];
      const float score = who < 0 ? 0.0f : float(kept[size_t(who)].score);
      push_cut(spans, run_start, t - run_start, score, params.span_max);
      run_start = t;
    }
  }
  return spans;
}

}  // namespace ltri
