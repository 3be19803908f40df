#include "analysis/attention_picture.hpp"

#include <algorithm>
#include <cmath>

#include "core/error.hpp"

namespace ltri {

namespace {

struct Rgb {
  uint8_t r, g, b;
};

// A perceptually ordered dark-to-bright ramp (our own stops, in the spirit of "inferno").
Rgb ramp(double v) {
  static const double stops[][3] = {{0, 0, 4}, {70, 12, 110}, {180, 50, 90}, {245, 130, 20}, {252, 250, 170}};
  constexpr int kLast = 4;
  v = std::clamp(v, 0.0, 1.0) * kLast;
  const int i = std::min(int(v), kLast - 1);
  const double t = v - i;
  auto mix = [&](int c) { return uint8_t(std::lround(stops[i][c] * (1 - t) + stops[i + 1][c] * t)); };
  return {mix(0), mix(1), mix(2)};
}

}  // namespace

RgbImage render_attention(const float* map, const float* row_max, int64_t n,
                          const std::vector<Span>& spans, const PictureOptions& o) {
  if (n < 1) fail("attention picture: empty window");
  // Pixels per token: a whole number when tokens are few (crisp cells), else a fraction and
  // each pixel shows the brightest cell it covers (a lone bright cell must not vanish).
  const double px_per_token =
      n * o.max_cell_px <= o.target_px ? double(o.max_cell_px)
      : n <= o.target_px               ? std::floor(double(o.target_px) / double(n))
                                       : double(o.target_px) / double(n);
  const int64_t side = std::max<int64_t>(1, int64_t(std::ceil(double(n) * px_per_token)));
  RgbImage image(side, side, 230, 230, 230);

  for (int64_t y = 0; y < side; ++y) {
    const int64_t r0 = std::min(n - 1, int64_t(double(y) / px_per_token));
    const int64_t r1 = std::min(n, std::max(r0 + 1, int64_t(double(y + 1) / px_per_token)));
    for (int64_t x = 0; x < side; ++x) {
      const int64_t c0 = std::min(n - 1, int64_t(double(x) / px_per_token));
      const int64_t c1 = std::min(n, std::max(c0 + 1, int64_t(double(x + 1) / px_per_token)));
      if (c0 > r1 - 1) continue;  // wholly above the diagonal
      double v = 0.0;
      for (int64_t r = r0; r < r1; ++r) {
        const double scale = row_max[r] > 0.0f ? 1.0 / double(row_max[r]) : 0.0;
        for (int64_t c = c0; c < c1 && c <= r; ++c) v = std::max(v, double(map[r * n + c]) * scale);
      }
      const Rgb colour = ramp(std::pow(std::min(v, 1.0), o.gamma));
      image.set(x, y, colour.r, colour.g, colour.b);
    }
  }

  // Span outlines: left leg (column = span start) and bottom leg (row = span end), thick
  // enough to see at any scale.
  const int64_t thick = std::max<int64_t>(2, int64_t(std::lround(px_per_token * 0.6)));
  for (const Span& s : spans) {
    const Rgb colour = s.score > 0.0f ? Rgb{0, 230, 255} : Rgb{90, 255, 90};
    const int64_t a = int64_t(std::floor(double(s.start) * px_per_token));
    const int64_t b = std::max(a + 1, int64_t(std::ceil(double(s.start + s.length) * px_per_token)));
    for (int64_t y = a; y < b; ++y) {
      for (int64_t t = 0; t < thick; ++t) image.set(a + t, y, colour.r, colour.g, colour.b);
    }
    for (int64_t x = a; x < b; ++x) {
      for (int64_t t = 0; t < thick; ++t) image.set(x, b - 1 - t, colour.r, colour.g, colour.b);
    }
  }
  if (o.mark_begin >= 0 && o.mark_end > o.mark_begin) {
    const int64_t a = int64_t(std::floor(double(o.mark_begin) * px_per_token));
    const int64_t b = std::max(a + 1, int64_t(std::ceil(double(std::min(o.mark_end, n)) * px_per_token)));
    const int64_t bar = std::max<int64_t>(4, side / 128);
    for (int64_t p = a; p < b; ++p) {
      for (int64_t t = 0; t < bar; ++t) {
        image.set(p, t, 255, 0, 200);
        image.set(side - 1 - t, p, 255, 0, 200);
      }
    }
  }
  return image;
}

}  // namespace ltri
