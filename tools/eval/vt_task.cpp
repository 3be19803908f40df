#include "vt_task.hpp"

#include <algorithm>

#include "core/error.hpp"

namespace ltri::eval {

namespace {

std::string random_variable(EvalRng& rng) {
  std::string name;
  for (int i = 0; i < 5; ++i) name += char('A' + rng.below(26));
  return name;
}

}  // namespace

TaskInstance make_vt(EvalRng& rng, double depth) {
  std::vector<std::string> names;
  while (names.size() < size_t(kVtHops + 1)) {
    std::string name = random_variable(rng);
    if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(std::move(name));
  }
  const std::string value = cat(rng.between(10000, 99998));  // numpy randint(10000, 99999)

  TaskInstance t;
  t.task = "vt";
  t.expected = names;
  t.scoring = Scoring::StringMatchAll;
  t.haystack = noise_units('\n');
  t.max_new_tokens = 30;  // RULER's tokens_to_generate for vt
  for (int i = 0; i <= kVtHops; ++i) {
    const std::string text = i == 0 ? cat("VAR ", names[0], " = ", value, ".")
                                    : cat("VAR ", names[size_t(i)], " = VAR ", names[size_t(i - 1)], ".");
    // Centred on the requested depth; clamping keeps the chain's order (equal depths share a
    // boundary and keep the order given).
    const double d = std::clamp(depth + kVtLinkSpacing * (i - kVtHops / 2.0), 0.0, 1.0);
    t.needles.push_back({text, d, true});
  }
  t.parts.before = "Memorize and track the chain(s) of variable assignment hidden in the following text.\n\n";
  t.parts.after = "\n";
  t.parts.question = cat("Question: Find all variables that are assigned the value ", value, " in the text above.");
  t.parts.answer_prefix = cat("Answer: According to the chain(s) of variable assignment in the text above, ",
                              kVtHops + 1, " variables are assgined the value ", value, ", they are:");
  return t;
}

}  // namespace ltri::eval
