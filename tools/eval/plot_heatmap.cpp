#include "plot_heatmap.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/error.hpp"
#include "plot_canvas.hpp"

namespace ltri::eval {

RgbImage render_heatmap(const HeatMap& map) {
  const int64_t cols = int64_t(map.x_labels.size()), rows = int64_t(map.y_labels.size());
  if (int64_t(map.values.size()) != cols * rows || cols == 0 || rows == 0) {
    fail("heat map '", map.title, "': ", map.values.size(), " values for ", rows, " x ", cols, " cells");
  }
  int64_t label_w = 0;
  for (const std::string& l : map.y_labels) label_w = std::max(label_w, Canvas::text_width(l));
  int64_t widest_x = 0;
  for (const std::string& l : map.x_labels) widest_x = std::max(widest_x, Canvas::text_width(l));
  // Cells at least big enough for their labels, the grid at least as long as its axis labels.
  const int64_t cell_w = std::max<int64_t>({44, widest_x + 8, (Canvas::text_width(map.x_label) + 8) / cols + 1});
  const int64_t cell_h = std::max<int64_t>(24, (Canvas::text_width(map.y_label) + 8) / rows + 1);
  const int64_t left = 16 + 12 + label_w + 8;  // y-axis label, tick labels
  const int64_t top = 40;
  const int64_t grid_w = cols * cell_w, grid_h = rows * cell_h;
  const int64_t legend_x = left + grid_w + 24;
  const int64_t content_w = legend_x + 16 + 8 + Canvas::text_width("100") + 24 + 12;
  const int title_scale = Canvas::text_width(map.title, 2) + 32 <= content_w ? 2 : 1;
  const int64_t width = std::max(content_w, Canvas::text_width(map.title, title_scale) + 32);
  const int64_t height = top + std::max<int64_t>(grid_h, 100) + 48;
  Canvas c(width, height);

  c.text_centered(width / 2, 12, map.title, kBlack, title_scale);
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t y = top + r * cell_h;
    c.text_right(left - 6, y + (cell_h - 7) / 2, map.y_labels[size_t(r)], kBlack);
    for (int64_t col = 0; col < cols; ++col) {
      const int64_t x = left + col * cell_w;
      const double v = map.values[size_t(r * cols + col)];
      if (std::isnan(v)) {
        c.fill_rect(x, y, x + cell_w, y + cell_h, kLightGrey);
        continue;
      }
      const Rgb fill = color_ramp(v / 100.0);
      c.fill_rect(x, y, x + cell_w, y + cell_h, fill);
      char text[16];
      std::snprintf(text, sizeof text, "%.0f", v);
      // Dark text on the light end of the ramp, white on the dark end.
      const double luma = 0.299 * fill.r + 0.587 * fill.g + 0.114 * fill.b;
      c.text_centered(x + cell_w / 2, y + (cell_h - 7) / 2, text, luma > 140 ? kBlack : kWhite);
    }
  }
  c.frame_rect(left - 1, top - 1, left + grid_w + 1, top + grid_h + 1, kGrey);
  for (int64_t col = 0; col < cols; ++col) {
    c.text_centered(left + col * cell_w + cell_w / 2, top + grid_h + 6, map.x_labels[size_t(col)], kBlack);
  }
  c.text_centered(left + grid_w / 2, top + grid_h + 24, map.x_label, kBlack);
  c.text_vertical(8, top + grid_h / 2, map.y_label, kBlack);

  // Colour bar: 100 at the top, 0 at the bottom, ticks every 25.
  const int64_t bar_top = top, bar_bottom = top + std::max<int64_t>(grid_h, 100);
  for (int64_t y = bar_top; y < bar_bottom; ++y) {
    const double t = 1.0 - double(y - bar_top) / double(bar_bottom - bar_top - 1);
    c.fill_rect(legend_x, y, legend_x + 16, y + 1, color_ramp(t));
  }
  c.frame_rect(legend_x - 1, bar_top - 1, legend_x + 17, bar_bottom + 1, kGrey);
  for (int v = 0; v <= 100; v += 25) {
    const int64_t y = bar_bottom - 1 - int64_t(std::lround(v / 100.0 * double(bar_bottom - bar_top - 1)));
    c.fill_rect(legend_x + 16, y, legend_x + 20, y + 1, kBlack);
    c.text(legend_x + 22, y - 3, std::to_string(v), kBlack);
  }
  c.text_vertical(legend_x + 22 + Canvas::text_width("100") + 6, (bar_top + bar_bottom) / 2, map.scale_label, kBlack);
  return c.image();
}

}  // namespace ltri::eval
