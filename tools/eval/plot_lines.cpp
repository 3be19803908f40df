#include "plot_lines.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace ltri::eval {

std::vector<double> nice_ticks(double max) {
  if (!(max > 0)) max = 1;
  const double raw = max / 5.0;
  const double power = std::pow(10.0, std::floor(std::log10(raw)));
  double step = power;
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    step = m * power;
    if (step >= raw) break;
  }
  std::vector<double> ticks;
  for (double v = 0; v <= max + step * 0.999; v += step) ticks.push_back(v);
  return ticks;
}

std::string short_number(double value) {
  char text[32];
  const double a = std::fabs(value);
  if (a >= 1e6) {
    std::snprintf(text, sizeof text, "%gM", std::round(value / 1e5) / 10.0);
  } else if (a >= 1e4) {
    std::snprintf(text, sizeof text, "%gk", std::round(value / 1e2) / 10.0);
  } else {
    std::snprintf(text, sizeof text, "%g", std::round(value * 100.0) / 100.0);
  }
  return text;
}

RgbImage render_line_chart(const LineChart& chart) {
  double x_min = INFINITY, x_max = -INFINITY, y_top = 0;
  for (const Series& s : chart.series) {
    for (double x : s.x) x_min = std::min(x_min, x), x_max = std::max(x_max, x);
    for (double y : s.y) {
      if (std::isfinite(y)) y_top = std::max(y_top, y);
    }
  }
  for (double x : chart.x_ticks) x_min = std::min(x_min, x), x_max = std::max(x_max, x);
  if (!std::isfinite(x_min)) x_min = 1, x_max = 2;
  const std::vector<double> y_ticks = nice_ticks(chart.y_max.value_or(y_top * 1.05));
  const double y_max = chart.y_max.value_or(y_ticks.back());

  int64_t y_label_w = 0;
  for (double t : y_ticks) y_label_w = std::max(y_label_w, Canvas::text_width(short_number(t)));
  int64_t legend_w = 0;
  for (const Series& s : chart.series) legend_w = std::max(legend_w, Canvas::text_width(s.name) + 30);
  const int64_t plot_w = 480, plot_h = 300;
  const int64_t left = 16 + 12 + y_label_w + 8, top = 44;
  const int64_t legend_x = left + plot_w + 20;
  const int64_t content_w = legend_x + legend_w + 16;
  const int title_scale = Canvas::text_width(chart.title, 2) + 32 <= content_w ? 2 : 1;
  const int64_t width = std::max(content_w, Canvas::text_width(chart.title, title_scale) + 32);
  const int64_t height = top + plot_h + 52;
  Canvas c(width, height);
  c.text_centered(width / 2, 12, chart.title, kBlack, title_scale);

  const auto tx = [&](double x) {
    const double a = chart.log2_x ? std::log2(x) : x, lo = chart.log2_x ? std::log2(x_min) : x_min;
    const double hi = chart.log2_x ? std::log2(x_max) : x_max;
    const double f = hi > lo ? (a - lo) / (hi - lo) : 0.5;
    return double(left) + 16 + f * double(plot_w - 32);  // inset so end points are not on the frame
  };
  const auto ty = [&](double y) { return double(top + plot_h) - std::clamp(y / y_max, 0.0, 1.05) * double(plot_h); };

  for (double t : y_ticks) {
    const int64_t y = int64_t(std::lround(ty(t)));
    c.fill_rect(left, y, left + plot_w, y + 1, kLightGrey);
    c.text_right(left - 6, y - 3, short_number(t), kBlack);
  }
  for (double t : chart.x_ticks) {
    const int64_t x = int64_t(std::lround(tx(t)));
    c.fill_rect(x, top, x + 1, top + plot_h, kLightGrey);
    c.text_centered(x, top + plot_h + 6, chart.x_tick_label ? chart.x_tick_label(t) : short_number(t), kBlack);
  }
  c.frame_rect(left, top, left + plot_w + 1, top + plot_h + 1, kGrey);
  c.text_centered(left + plot_w / 2, top + plot_h + 26, chart.x_label, kBlack);
  c.text_vertical(8, top + plot_h / 2, chart.y_label, kBlack);

  for (size_t k = 0; k < chart.series.size(); ++k) {
    const Series& s = chart.series[k];
    // Points in x order; a missing value (NaN) breaks the line.
    std::vector<size_t> order(s.x.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return s.x[a] < s.x[b]; });
    for (size_t i = 0; i + 1 < order.size(); ++i) {
      const size_t a = order[i], b = order[i + 1];
      if (!std::isfinite(s.y[a]) || !std::isfinite(s.y[b])) continue;
      c.line(tx(s.x[a]), ty(s.y[a]), tx(s.x[b]), ty(s.y[b]), s.color, 2, s.dashed ? 6 : 0);
    }
    for (size_t i : order) {
      if (!std::isfinite(s.y[i])) continue;
      const int64_t x = int64_t(std::lround(tx(s.x[i]))), y = int64_t(std::lround(ty(s.y[i])));
      c.fill_rect(x - 3, y - 3, x + 4, y + 4, s.color);
    }
    const int64_t ly = top + 8 + int64_t(k) * 16;
    c.line(double(legend_x), double(ly + 3), double(legend_x + 20), double(ly + 3), s.color, 2, s.dashed ? 4 : 0);
    c.text(legend_x + 26, ly, s.name, kBlack);
  }
  return c.image();
}

}  // namespace ltri::eval
