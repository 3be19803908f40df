#pragma once
// A heat map picture: a grid of values in [0, 100] (accuracy %), one row per y label (needle
// depth, 0% at the top) and one column per x label (context length), each cell coloured on
// color_ramp and labelled with its value; a title, axis labels and a colour-scale legend.
#include <string>
#include <vector>

#include "analysis/png_writer.hpp"

namespace ltri::eval {

struct HeatMap {
  std::string title;
  std::string x_label;
  std::string y_label;
  std::string scale_label;  // beside the colour bar, e.g. "accuracy %"
  std::vector<std::string> x_labels;
  std::vector<std::string> y_labels;
  std::vector<double> values;  // (y_labels.size(), x_labels.size()), row-major; NaN = not run
};

RgbImage render_heatmap(const HeatMap& map);

}  // namespace ltri::eval
