#pragma once
// --lengths: context lengths in model tokens, written "4k,8k,128k" or "4096,1000" (k = 1024,
// m = 1024 * 1024), and the short form used in tables ("4k", "1000").
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ltri::eval {

// Parses a comma-separated list; throws ltri::Error
// "--lengths: '12q' is not a length like 4k or 4096" for a bad item. Duplicates are dropped,
// the order is kept.
std::vector<int64_t> parse_lengths(std::string_view list, std::string_view flag = "--lengths");

// 4096 -> "4k", 1048576 -> "1m", 1000 -> "1000".
std::string format_length(int64_t tokens);

}  // namespace ltri::eval
