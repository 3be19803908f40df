#include "runtime/stop_matcher.hpp"

#include <algorithm>
#include <utility>

namespace ltri {
namespace {

// Length of the longest suffix of `text` that is a proper prefix of `stop`.
size_t partial_match_length(const std::string& text, const std::string& stop) {
  const size_t longest = std::min(text.size(), stop.size() - 1);
  for (size_t n = longest; n > 0; --n) {
    if (text.compare(text.size() - n, n, stop, 0, n) == 0) return n;
  }
  return 0;
}

}  // namespace

StopMatcher::StopMatcher(std::vector<std::string> stop_strings) {
  for (std::string& s : stop_strings) {
    if (!s.empty()) stops_.push_back(std::move(s));
  }
}

std::string StopMatcher::push(std::string_view piece) {
  if (stopped_) return {};
  pending_.append(piece);
  if (stops_.empty()) return std::exchange(pending_, {});

  // A complete stop string: release what comes before the earliest one and stop.
  size_t first = std::string::npos;
  for (const std::string& stop : stops_) {
    const size_t at = pending_.find(stop);
    if (at < first) {
      first = at;
      matched_ = stop;
    }
  }
  if (first != std::string::npos) {
    stopped_ = true;
    std::string out = pending_.substr(0, first);
    pending_.clear();
    return out;
  }
  // Otherwise hold back the longest tail that could still grow into a stop string. A stop
  // string starts with a whole UTF-8 character, so the cut falls on a character boundary.
  size_t hold = 0;
  for (const std::string& stop : stops_) hold = std::max(hold, partial_match_length(pending_, stop));
  std::string out = pending_.substr(0, pending_.size() - hold);
  pending_.erase(0, pending_.size() - hold);
  return out;
}

std::string StopMatcher::flush() {
  if (stopped_) return {};
  return std::exchange(pending_, {});
}

}  // namespace ltri
