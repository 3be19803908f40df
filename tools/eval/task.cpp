#include "task.hpp"

#include <algorithm>

namespace ltri::eval {

std::string join_values(const std::vector<std::string>& values) {
  std::string out;
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += i + 1 == values.size() ? " and " : ", ";
    out += values[i];
  }
  return out;
}

int64_t default_max_new_tokens(const std::vector<std::string>& expected) {
  const size_t answer_chars = join_values(expected).size() + 2;  // " " + values + "."
  return std::min<int64_t>(96, int64_t(double(answer_chars) / 1.5) + 8);
}

}  // namespace ltri::eval
