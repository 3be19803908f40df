#pragma once
// ltri eval report: the evaluation grid (task x length x depth x policy) in one run, resumable,
// written as one JSON file, a Markdown summary and PNG pictures (docs/eval.md).
#include <CLI/CLI.hpp>

#include <functional>

namespace ltri::cli {

struct EvalReportCommand {
  CLI::App* app = nullptr;
  std::function<int()> execute;
};

// Registers `report` under the `eval` subcommand.
EvalReportCommand add_eval_report_subcommand(CLI::App* eval);

}  // namespace ltri::cli
