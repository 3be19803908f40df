#pragma once
// What the analysis subcommands (heads, calibrate, attn) share: where the haystack prose is,
// the model's shape, and the command line recorded in the files they write.
#include <cstdint>
#include <string>
#include <vector>

#include "analysis/needle_prompts.hpp"

namespace ltri::cli {

// The held-out Austen novels next to the bundled model (data/heldout in the source tree).
std::string default_haystack_path();

// The needle value kind of sample i for --values number|uuid|mixed (mixed alternates).
NeedleValue needle_value_kind(const std::string& values, int64_t sample);

// "1024,2048" style list for messages and recorded commands.
std::string join_numbers(const std::vector<int64_t>& values, const char* separator = ",");

// Each length must be in [min_tokens, max_tokens]; the message names the flag.
void check_lengths(const std::vector<int64_t>& lengths, int64_t max_tokens, const char* flag);

}  // namespace ltri::cli
