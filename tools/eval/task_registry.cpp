#include "task_registry.hpp"

#include <cmath>

#include "core/error.hpp"
#include "passkey_task.hpp"

namespace ltri::eval {

std::string all_task_names() { return "passkey, " + niah_task_names(); }

void check_task_name(std::string_view task) {
  if (task == "passkey") return;
  for (const NiahSpec& s : niah_specs()) {
    if (s.name == task) return;
  }
  fail("--task: unknown task '", task, "' (one of: ", all_task_names(), ")");
}

bool task_needs_prose(std::string_view task) {
  return task != "passkey" && niah_needs_prose(find_niah_spec(task));
}

bool task_needs_words(std::string_view task) {
  return task != "passkey" && niah_needs_words(find_niah_spec(task));
}

std::vector<double> depth_grid(int64_t count) {
  if (count < 1) fail("--depths: must be >= 1, got ", count);
  if (count == 1) return {0.5};
  std::vector<double> depths;
  for (int64_t i = 0; i < count; ++i) depths.push_back(double(i) / double(count - 1));
  return depths;
}

EvalSample make_sample(std::string_view task, const TaskSources& sources, const PromptFormat& format,
                       uint64_t seed, int64_t length, double depth, int64_t index) {
  check_task_name(task);
  // The depth enters the seed in millionths, so 0.5 from any grid gives the same draw.
  const uint64_t depth_key = uint64_t(std::llround(depth * 1e6));
  EvalRng rng(SeedMixer(seed).add(task).add(uint64_t(length)).add(depth_key).add(uint64_t(index)).seed());
  TaskInstance instance = task == "passkey"
                              ? make_passkey(rng, depth)
                              : make_niah(find_niah_spec(task), {sources.prose, sources.words}, rng, depth);
  return fit_prompt(instance, format, length, depth);
}

}  // namespace ltri::eval
