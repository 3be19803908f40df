#include "task.hpp"

#include <algorithm>

#include "core/error.hpp"

namespace ltri::eval {

std::string join_values(const std::vector<std::string>& values) {
  std::string out;
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += i + 1 == values.size() ? " and " : ", ";
    out += values[i];
  }
  return out;
}

const char* question_placement_name(QuestionPlacement placement) {
  return placement == QuestionPlacement::AfterContext ? "after_context" : "before_and_after_context";
}

QuestionPlacement parse_question_placement(std::string_view flag_value) {
  if (flag_value == "after" || flag_value == "after_context") return QuestionPlacement::AfterContext;
  if (flag_value == "both" || flag_value == "before_and_after_context") return QuestionPlacement::BeforeAndAfterContext;
  fail("--question: expected after or both, got '", flag_value, "'");
}

void apply_question_placement(PromptParts& parts, QuestionPlacement placement) {
  if (placement == QuestionPlacement::AfterContext) return;
  if (!parts.before_with_question.empty()) {
    parts.before = parts.before_with_question;
    return;
  }
  // Keep the instructions' own separator between the question and the context.
  size_t cut = parts.before.size();
  while (cut > 0 && (parts.before[cut - 1] == '\n' || parts.before[cut - 1] == ' ')) --cut;
  const std::string separator = parts.before.substr(cut);
  parts.before = parts.before.substr(0, cut) + (cut > 0 ? separator : "") + parts.question +
                 (separator.empty() ? " " : separator);
}

int64_t default_max_new_tokens(const std::vector<std::string>& expected, int64_t answer_tokens) {
  const size_t answer_chars = join_values(expected).size() + 2;  // " " + values + "."
  return std::min<int64_t>(96, std::max(int64_t(double(answer_chars) / 1.5), answer_tokens) + 8);
}

}  // namespace ltri::eval
