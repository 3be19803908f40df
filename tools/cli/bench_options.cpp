#include "bench_options.hpp"

#include <cctype>

#include "core/error.hpp"

namespace ltri::cli {

int64_t repetitions_for(const BenchOptions& options, int64_t n_prompt) {
  if (options.repetitions > 0) return options.repetitions;
  return n_prompt >= kLongPromptTokens ? 1 : kDefaultRepetitions;
}

bool parse_token_count(const std::string& text, int64_t& tokens, std::string& error) {
  size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
  const std::string suffix = text.substr(digits);
  int64_t scale = 1;
  if (suffix == "k" || suffix == "K") {
    scale = int64_t(1) << 10;
  } else if (suffix == "m" || suffix == "M") {
    scale = int64_t(1) << 20;
  } else if (!suffix.empty() || digits == 0) {
    error = cat("'", text, "' is not a token count (an integer, or with k/m: 32k = 32768, 1m = 1048576)");
    return false;
  }
  // 12 digits times 2^20 stays far inside int64; no real prompt comes near it.
  if (digits > 12) {
    error = cat("'", text, "' is too large a token count");
    return false;
  }
  tokens = std::stoll(text.substr(0, digits)) * scale;
  return true;
}

CLI::Validator token_count() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        int64_t tokens = 0;
        std::string error;
        if (!parse_token_count(value, tokens, error)) return error;
        value = std::to_string(tokens);
        return {};
      },
      "N[k|m]");
}

}  // namespace ltri::cli
