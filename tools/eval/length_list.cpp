#include "length_list.hpp"

#include <algorithm>
#include <cctype>

#include "core/error.hpp"

namespace ltri::eval {

namespace {

// Largest length accepted: far beyond any context, small enough that arithmetic on token
// counts cannot overflow.
constexpr int64_t kMaxLength = int64_t(1) << 40;

int64_t parse_one(std::string_view item, std::string_view flag) {
  const auto bad = [&]() { fail(flag, ": '", item, "' is not a length like 4k or 4096"); };
  if (item.empty()) fail(flag, ": empty item in the list (write lengths like 4k,8k or 4096)");
  int64_t multiplier = 1;
  std::string_view digits = item;
  const char suffix = char(std::tolower(static_cast<unsigned char>(item.back())));
  if (suffix == 'k') multiplier = 1024;
  if (suffix == 'm') multiplier = 1024 * 1024;
  if (multiplier != 1) digits.remove_suffix(1);
  if (digits.empty() || digits.size() > 12) bad();
  int64_t value = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') bad();
    value = value * 10 + (c - '0');
  }
  value *= multiplier;
  if (value < 1) fail(flag, ": '", item, "' must be at least 1 token");
  if (value > kMaxLength) fail(flag, ": '", item, "' is too long (at most ", kMaxLength, " tokens)");
  return value;
}

}  // namespace

std::vector<int64_t> parse_lengths(std::string_view list, std::string_view flag) {
  std::vector<int64_t> lengths;
  size_t start = 0;
  while (true) {
    const size_t comma = list.find(',', start);
    std::string_view item = list.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    const int64_t value = parse_one(item, flag);
    if (std::find(lengths.begin(), lengths.end(), value) == lengths.end()) lengths.push_back(value);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return lengths;
}

std::string format_length(int64_t tokens) {
  if (tokens >= 1024 * 1024 && tokens % (1024 * 1024) == 0) return cat(tokens / (1024 * 1024), "m");
  if (tokens >= 1024 && tokens % 1024 == 0) return cat(tokens / 1024, "k");
  return cat(tokens);
}

}  // namespace ltri::eval
