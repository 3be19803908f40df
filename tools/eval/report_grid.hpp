#pragma once
// The grid of `ltri eval report`: every (task, length, depth, sample, policy) it runs, which of
// them a results file already holds (so a rerun continues where an interrupted one stopped),
// and the check that a results file was made with the same settings before it is continued.
#include <cstdint>
#include <string>
#include <vector>

#include "eval_report.hpp"

namespace ltri::eval {

struct GridCell {
  std::string task;
  int64_t length = 0;
  double depth = 0;  // kNoDepth for tasks without one
  int64_t index = 0;
  std::string policy;
};

// Every sample of the grid in run order: lengths shortest first (so every policy has short
// results early), then tasks, depths and sample indices, and for each prompt the policies one
// after another (the prompt is built once and run under each).
std::vector<GridCell> grid_cells(const EvalConfig& config);

// Whether `result` is the sample of `cell`.
bool is_sample_of(const SampleResult& result, const GridCell& cell);

// The cells of `cells` with no sample in `done`, in order.
std::vector<GridCell> pending_cells(const std::vector<GridCell>& cells, const std::vector<SampleResult>& done);

// Throws ltri::Error if `previous` (read from `path`) differs from `current` in anything that
// changes the results (everything but the thread count and the wall time), naming the first
// field that differs and both values.
void check_same_settings(const EvalConfig& previous, const EvalConfig& current, const std::string& path);

// Adds to `report` the samples of `part` (another run's results, read from `path`) that are
// cells of `cells` and not yet in `report`, and returns how many it added. Parts of one grid run
// in separate processes or machines (other tasks, lengths, depths or policies) are merged this
// way; anything else that changes results must be the same (else ltri::Error naming the field).
int64_t import_samples(EvalReport& report, const EvalReport& part, const std::vector<GridCell>& cells,
                       const std::string& path);

}  // namespace ltri::eval
