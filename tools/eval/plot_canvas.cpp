#include "plot_canvas.hpp"

#include <algorithm>
#include <cmath>

#include "plot_font.hpp"

namespace ltri::eval {

Canvas::Canvas(int64_t width, int64_t height, Rgb background)
    : image_(width, height, background.r, background.g, background.b) {}

void Canvas::fill_rect(int64_t x0, int64_t y0, int64_t x1, int64_t y1, Rgb c) {
  for (int64_t y = std::max<int64_t>(y0, 0); y < std::min(y1, height()); ++y) {
    for (int64_t x = std::max<int64_t>(x0, 0); x < std::min(x1, width()); ++x) pixel(x, y, c);
  }
}

void Canvas::frame_rect(int64_t x0, int64_t y0, int64_t x1, int64_t y1, Rgb c) {
  fill_rect(x0, y0, x1, y0 + 1, c);
  fill_rect(x0, y1 - 1, x1, y1, c);
  fill_rect(x0, y0, x0 + 1, y1, c);
  fill_rect(x1 - 1, y0, x1, y1, c);
}

void Canvas::line(double x0, double y0, double x1, double y1, Rgb c, int thickness, int dash) {
  // Steps of at most one pixel along the longer axis; a square pen of `thickness` at each.
  const double length = std::max(std::fabs(x1 - x0), std::fabs(y1 - y0));
  const int64_t steps = std::max<int64_t>(1, int64_t(std::ceil(length)));
  const int half = thickness / 2;
  for (int64_t i = 0; i <= steps; ++i) {
    if (dash > 0 && (i / dash) % 2 == 1) continue;
    const double t = double(i) / double(steps);
    const int64_t x = int64_t(std::lround(x0 + t * (x1 - x0)));
    const int64_t y = int64_t(std::lround(y0 + t * (y1 - y0)));
    fill_rect(x - half, y - half, x - half + thickness, y - half + thickness, c);
  }
}

int64_t Canvas::text_width(std::string_view s, int scale) {
  return s.empty() ? 0 : (int64_t(s.size()) * kGlyphAdvance - 1) * scale;
}

int64_t Canvas::text_height(int scale) { return int64_t(kGlyphHeight) * scale; }

void Canvas::text(int64_t x, int64_t y, std::string_view s, Rgb c, int scale) {
  for (size_t i = 0; i < s.size(); ++i) {
    const int64_t gx = x + int64_t(i) * kGlyphAdvance * scale;
    for (int row = 0; row < kGlyphHeight; ++row) {
      for (int col = 0; col < kGlyphWidth; ++col) {
        if (!glyph_pixel(s[i], col, row)) continue;
        fill_rect(gx + col * scale, y + row * scale, gx + (col + 1) * scale, y + (row + 1) * scale, c);
      }
    }
  }
}

void Canvas::text_centered(int64_t cx, int64_t y, std::string_view s, Rgb c, int scale) {
  text(cx - text_width(s, scale) / 2, y, s, c, scale);
}

void Canvas::text_right(int64_t x, int64_t y, std::string_view s, Rgb c, int scale) {
  text(x - text_width(s, scale), y, s, c, scale);
}

void Canvas::text_vertical(int64_t x, int64_t cy, std::string_view s, Rgb c, int scale) {
  // Turned counter-clockwise: the text's baseline runs upward, glyph rows become columns.
  const int64_t bottom = cy + text_width(s, scale) / 2;
  for (size_t i = 0; i < s.size(); ++i) {
    const int64_t gy = bottom - int64_t(i) * kGlyphAdvance * scale;  // bottom of glyph i
    for (int row = 0; row < kGlyphHeight; ++row) {
      for (int col = 0; col < kGlyphWidth; ++col) {
        if (!glyph_pixel(s[i], col, row)) continue;
        const int64_t px = x + row * scale;
        const int64_t py = gy - (col + 1) * scale;
        fill_rect(px, py, px + scale, py + scale, c);
      }
    }
  }
}

Rgb color_ramp(double t) {
  static constexpr Rgb kStops[] = {{68, 1, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {253, 231, 37}};
  constexpr int n = int(std::size(kStops));
  if (!(t >= 0)) t = 0;  // NaN too
  t = std::min(t, 1.0) * (n - 1);
  const int i = std::min(int(t), n - 2);
  const double f = t - i;
  const auto mix = [f](uint8_t a, uint8_t b) { return uint8_t(std::lround(a + f * (double(b) - double(a)))); };
  return {mix(kStops[i].r, kStops[i + 1].r), mix(kStops[i].g, kStops[i + 1].g), mix(kStops[i].b, kStops[i + 1].b)};
}

Rgb series_color(size_t index) {
  static constexpr Rgb kColors[] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44}, {214, 39, 40},
                                    {148, 103, 189}, {140, 86, 75}, {227, 119, 194}, {127, 127, 127}};
  return kColors[index % std::size(kColors)];
}

}  // namespace ltri::eval
