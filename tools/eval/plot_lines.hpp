#pragma once
// A line chart picture: one line with point markers per series (solid or dashed) over a shared
// x axis (context length, spaced by log2 so 4k, 8k, 16k are evenly apart), y from 0 (or the
// given range) with round tick values, a title, axis labels and a legend.
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "analysis/png_writer.hpp"
#include "plot_canvas.hpp"

namespace ltri::eval {

struct Series {
  std::string name;
  std::vector<double> x;  // > 0 for a log2 axis
  std::vector<double> y;
  Rgb color;
  bool dashed = false;
};

struct LineChart {
  std::string title;
  std::string x_label;
  std::string y_label;
  std::vector<Series> series;
  std::vector<double> x_ticks;                        // where to label the x axis
  std::function<std::string(double)> x_tick_label;    // e.g. 4096 -> "4k"
  bool log2_x = true;
  std::optional<double> y_max;                        // fixed top (100 for accuracy); else from the data
};

RgbImage render_line_chart(const LineChart& chart);

// Round tick values covering [0, max]: steps of 1, 2 or 5 times a power of ten, about 5 ticks.
std::vector<double> nice_ticks(double max);

// "950", "12k", "3.5M": short labels for large values.
std::string short_number(double value);

}  // namespace ltri::eval
