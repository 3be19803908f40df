#include "kv_retrieval_task.hpp"

#include <algorithm>
#include <limits>
#include <memory>

#include "core/error.hpp"
#include "niah_task.hpp"

namespace ltri::eval {

namespace {

std::string pair_text(const std::string& key, const std::string& value) {
  return cat("\"", key, "\": \"", value, "\",");
}

}  // namespace

std::string complete_kv_pair(const std::string& partial) {
  if (partial.empty()) return partial;
  const size_t quotes = size_t(std::count(partial.begin(), partial.end(), '"'));
  std::string out = partial;
  switch (quotes) {
    case 0: return "\"" + out + "\": \"\",";
    case 1: return out + "\": \"\",";
    case 2:
      while (!out.empty() && (out.back() == ' ' || out.back() == ':')) out.pop_back();
      return out + ": \"\",";
    case 3: return out + "\",";
    default: return out.back() == ',' ? out : out + ",";
  }
}

TaskInstance make_kv_retrieval(EvalRng& rng, double depth) {
  const std::string key = random_uuid(rng);
  const std::string value = random_uuid(rng);
  // The other pairs come from their own stream, so the haystack's length does not change what
  // else is drawn.
  auto hay_rng = std::make_shared<EvalRng>(rng.next());
  TaskInstance t;
  t.task = "kv_retrieval";
  t.needles = {{pair_text(key, value), depth, true}};
  t.expected = {value};
  t.scoring = Scoring::ExactWord;
  t.haystack = UnitStream(
      [hay_rng](size_t) {
        std::string k = random_uuid(*hay_rng);
        return HaystackUnit{pair_text(k, random_uuid(*hay_rng)), ' '};
      },
      std::numeric_limits<size_t>::max());
  const std::string instruction = "Extract the value corresponding to the specified key in the JSON object below.";
  t.parts.before = instruction + "\n\nJSON data:\n{";
  t.parts.before_with_question =
      cat("Extract the value corresponding to the specified key ", key, " in the JSON object below.\n\nJSON data:\n{");
  t.parts.after = "}\n\n";
  t.parts.question = cat("Key: \"", key, "\"");
  t.parts.answer_separator = "\n";
  t.parts.answer_prefix = "The value associated with the specified key is:";
  t.complete_partial_unit = complete_kv_pair;
  t.trim_haystack_suffix = ",";
  return t;
}

}  // namespace ltri::eval
