#pragma once
// A small raster canvas for the report's pictures: filled rectangles, lines (solid or dashed),
// text in the built-in 5x7 font (plot_font.hpp), horizontal or turned a quarter left for a
// vertical axis label, and the colour ramp of the heat maps. Pixels outside are ignored.
#include <cstdint>
#include <string_view>

#include "analysis/png_writer.hpp"

namespace ltri::eval {

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
};

constexpr Rgb kWhite{255, 255, 255};
constexpr Rgb kBlack{0, 0, 0};
constexpr Rgb kGrey{128, 128, 128};
constexpr Rgb kLightGrey{220, 220, 220};

class Canvas {
 public:
  Canvas(int64_t width, int64_t height, Rgb background = kWhite);

  int64_t width() const { return image_.width; }
  int64_t height() const { return image_.height; }
  const RgbImage& image() const { return image_; }

  void pixel(int64_t x, int64_t y, Rgb c) { image_.set(x, y, c.r, c.g, c.b); }
  // Pixels [x0, x1) x [y0, y1).
  void fill_rect(int64_t x0, int64_t y0, int64_t x1, int64_t y1, Rgb c);
  // Outline of [x0, x1) x [y0, y1), one pixel wide.
  void frame_rect(int64_t x0, int64_t y0, int64_t x1, int64_t y1, Rgb c);
  // A line `thickness` pixels wide; dash > 0 draws dash pixels on, dash pixels off.
  void line(double x0, double y0, double x1, double y1, Rgb c, int thickness = 1, int dash = 0);

  // Text with its top-left corner at (x, y), each font pixel drawn as scale x scale pixels.
  void text(int64_t x, int64_t y, std::string_view s, Rgb c, int scale = 1);
  // Text centred horizontally on cx.
  void text_centered(int64_t cx, int64_t y, std::string_view s, Rgb c, int scale = 1);
  // Text ending at x (right-aligned).
  void text_right(int64_t x, int64_t y, std::string_view s, Rgb c, int scale = 1);
  // Text turned 90 degrees counter-clockwise (reads bottom to top), left edge at x, centred
  // vertically on cy.
  void text_vertical(int64_t x, int64_t cy, std::string_view s, Rgb c, int scale = 1);

  static int64_t text_width(std::string_view s, int scale = 1);
  static int64_t text_height(int scale = 1);

 private:
  RgbImage image_;
};

// The heat-map ramp: t in [0, 1] from dark purple (0) through blue and green to yellow (1),
// perceptually ordered like viridis (piecewise linear between five stops).
Rgb color_ramp(double t);

// Distinct colours for the lines of a chart, in order.
Rgb series_color(size_t index);

}  // namespace ltri::eval
