#pragma once
// Stop strings over streamed text. Generated text arrives in pieces (one per token), and a stop
// string can straddle pieces ("\n\nUs" + "er:"), so text that could still be the start of a
// stop string is held back until the next piece decides it. The stop string itself, and
// anything after it, is never released.
#include <string>
#include <string_view>
#include <vector>

namespace ltri {

class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stop_strings);  // empty strings are ignored

  // Adds a piece; returns the text that is now certain not to be part of a stop string (may be
  // empty). After a stop string completes, returns the text before it and stopped() is true.
  std::string push(std::string_view piece);
  // The text still held back (call at the end of generation); empty once stopped.
  std::string flush();
  bool stopped() const { return stopped_; }
  // Which stop string ended the text ("" if none).
  const std::string& matched() const { return matched_; }

 private:
  std::vector<std::string> stops_;
  std::string pending_;  // text not yet released: a suffix that may begin a stop string
  std::string matched_;
  bool stopped_ = false;
};

}  // namespace ltri
