#pragma once
// Progress of a long evaluation on stderr: how long is left, in words a person reads at a
// glance, estimated from the tokens done so far.
#include <cstdint>
#include <string>

namespace ltri::eval {

// "42 s", "3 min 12 s", "2 h 5 min".
std::string format_seconds(double seconds);

// Text of a model output on one log line: newlines as spaces, cut to `limit` characters.
std::string one_line(const std::string& text, size_t limit = 40);

// Time left, assuming a sample's time grows with its tokens (under full attention faster than
// that, so the estimate is low at first and corrects itself as longer samples finish).
class EtaClock {
 public:
  explicit EtaClock(int64_t total_tokens) : total_tokens_(total_tokens) {}
  // Records that samples with `tokens` more tokens are done, `elapsed_s` after the start.
  void add(int64_t tokens, double elapsed_s) {
    done_tokens_ += tokens;
    elapsed_s_ = elapsed_s;
  }
  double remaining_s() const {
    return done_tokens_ == 0 ? 0.0 : elapsed_s_ / double(done_tokens_) * double(total_tokens_ - done_tokens_);
  }

 private:
  int64_t total_tokens_;
  int64_t done_tokens_ = 0;
  double elapsed_s_ = 0;
};

}  // namespace ltri::eval
