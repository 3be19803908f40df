#pragma once
// Every task by name, and the one entry point that draws a sample: a task, a length, a depth
// and a sample index give the same prompt for the same seed on every machine, whatever other
// cells are run.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "haystack.hpp"
#include "niah_task.hpp"
#include "prompt_fit.hpp"
#include "prompt_format.hpp"
#include "word_list.hpp"

namespace ltri::eval {

// Throws ltri::Error "--task: unknown task 'x' (one of: passkey, niah_single_1, ...)".
void check_task_name(std::string_view task);
std::string all_task_names();
bool task_needs_prose(std::string_view task);
bool task_needs_words(std::string_view task);

struct TaskSources {
  const ProseText* prose = nullptr;
  const WordList* words = nullptr;
};

// `count` depths spread evenly over [0, 1]: 1 -> {0.5}, 2 -> {0, 1}, 11 -> {0, 0.1, ..., 1}.
std::vector<double> depth_grid(int64_t count);

// The sample of (task, length, depth, index) for `seed`, sized to `length` tokens.
EvalSample make_sample(std::string_view task, const TaskSources& sources, const PromptFormat& format,
                       uint64_t seed, int64_t length, double depth, int64_t index);

}  // namespace ltri::eval
