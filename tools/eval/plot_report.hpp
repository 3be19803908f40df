#pragma once
// The pictures of `ltri eval report`, from a results file's samples:
//   <stem>_heatmap_<policy>.png  accuracy by needle depth x length, tasks with a depth averaged
//   <stem>_accuracy.png          accuracy vs length, one line per policy (all tasks averaged)
//   <stem>_prefill.png           prefill tokens/s vs length, one line per policy
//   <stem>_memory.png            peak RSS (solid) and KV cache + host KV store (dashed) vs length
#include <string>
#include <vector>

#include "eval_report.hpp"
#include "plot_heatmap.hpp"
#include "plot_lines.hpp"

namespace ltri::eval {

// Writes the pictures; returns their paths. Throws ltri::Error naming a path it cannot write.
std::vector<std::string> write_report_pictures(const EvalReport& report, const std::string& stem);

// The heat map of one policy: rows are the depth grid, columns the lengths; each cell the mean
// score (%) of the policy's samples there, over the tasks with a depth; NaN where none ran.
HeatMap depth_heatmap(const EvalReport& report, const std::string& policy);

// Accuracy (%) vs length, one series per policy: the mean score of each length's samples.
LineChart accuracy_chart(const EvalReport& report);

}  // namespace ltri::eval
