#include "analysis_common.hpp"

#include <filesystem>

#include "core/error.hpp"

#ifndef LTRI_DEFAULT_MODEL_DIR
#define LTRI_DEFAULT_MODEL_DIR ""
#endif

namespace ltri::cli {

std::string default_haystack_path() {
  // LTRI_DEFAULT_MODEL_DIR is <source>/models/ltri-demo; the prose is <source>/data/heldout.
  const std::filesystem::path model_dir = LTRI_DEFAULT_MODEL_DIR;
  return (model_dir.parent_path().parent_path() / "data" / "heldout").string();
}

NeedleValue needle_value_kind(const std::string& values, int64_t sample) {
  if (values == "number") return NeedleValue::Number;
  if (values == "uuid") return NeedleValue::Uuid;
  return sample % 2 == 0 ? NeedleValue::Number : NeedleValue::Uuid;
}

std::string join_numbers(const std::vector<int64_t>& values, const char* separator) {
  std::string out;
  for (size_t i = 0; i < values.size(); ++i) out += cat(i ? separator : "", values[i]);
  return out;
}

void check_lengths(const std::vector<int64_t>& lengths, int64_t max_tokens, const char* flag) {
  if (lengths.empty()) fail(flag, ": give at least one length");
  for (int64_t n : lengths) {
    if (n < 128 || n > max_tokens) fail(flag, ": each length must be in [128, ", max_tokens, "] tokens, got ", n);
  }
}

}  // namespace ltri::cli
