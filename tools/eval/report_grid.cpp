#include "report_grid.hpp"

#include <algorithm>
#include <cmath>

#include "core/error.hpp"
#include "task_registry.hpp"

namespace ltri::eval {

std::vector<GridCell> grid_cells(const EvalConfig& config) {
  std::vector<int64_t> lengths = config.lengths;
  std::stable_sort(lengths.begin(), lengths.end());
  std::vector<GridCell> cells;
  for (int64_t length : lengths) {
    for (const std::string& task : config.tasks) {
      for (double depth : task_depths(task, config.depths)) {
        for (int64_t index = 0; index < config.samples; ++index) {
          for (const std::string& policy : config.policies) cells.push_back({task, length, depth, index, policy});
        }
      }
    }
  }
  return cells;
}

bool is_sample_of(const SampleResult& result, const GridCell& cell) {
  return result.policy == cell.policy && result.task == cell.task && result.length == cell.length &&
         std::fabs(result.depth - cell.depth) < 1e-9 && result.index == cell.index;
}

std::vector<GridCell> pending_cells(const std::vector<GridCell>& cells, const std::vector<SampleResult>& done) {
  std::vector<GridCell> pending;
  for (const GridCell& cell : cells) {
    const bool found = std::any_of(done.begin(), done.end(), [&](const SampleResult& r) { return is_sample_of(r, cell); });
    if (!found) pending.push_back(cell);
  }
  return pending;
}

namespace {

// The first path where a and b differ ("attention.n_local"), or "" if they are equal.
std::string first_difference(const nlohmann::json& a, const nlohmann::json& b, const std::string& path) {
  if (a.is_object() && b.is_object()) {
    for (const auto& [key, value] : b.items()) {
      const std::string sub = path.empty() ? key : path + "." + key;
      if (!a.contains(key)) return sub;
      const std::string d = first_difference(a[key], value, sub);
      if (!d.empty()) return d;
    }
    for (const auto& [key, value] : a.items()) {
      if (!b.contains(key)) return path.empty() ? key : path + "." + key;
    }
    return "";
  }
  return a == b ? "" : path;
}

const nlohmann::json* at_path(const nlohmann::json& j, const std::string& path) {
  const nlohmann::json* node = &j;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('.', start);
    if (end == std::string::npos) end = path.size();
    const std::string key = path.substr(start, end - start);
    if (!node->is_object() || !node->contains(key)) return nullptr;
    node = &(*node)[key];
    start = end + 1;
  }
  return node;
}

}  // namespace

void check_same_settings(const EvalConfig& previous, const EvalConfig& current, const std::string& path) {
  nlohmann::json a = config_to_json(previous), b = config_to_json(current);
  a.erase("threads");
  b.erase("threads");
  const std::string diff = first_difference(a, b, "");
  if (diff.empty()) return;
  const nlohmann::json* was = at_path(a, diff);
  const nlohmann::json* now = at_path(b, diff);
  fail(path, ": made with different settings, cannot continue it (", diff, ": ", was ? was->dump() : "absent",
       " in the file, ", now ? now->dump() : "absent", " now); give another -o or the file's settings");
}

}  // namespace ltri::eval
