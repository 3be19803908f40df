#pragma once
// The prefill progress line on stderr: "prefill: 12288/65536 tokens, 1843 tok/s, ETA 29 s".
// Short prefills print nothing; after `delay_s` the line appears, rewritten in place with '\r'
// on a terminal, or as a new line every `interval_s` when stderr goes to a file or pipe (so a
// log is not flooded with carriage returns).
#include <cstdint>
#include <cstdio>
#include <string>

#include "core/timer.hpp"

namespace ltri {

class PrefillProgress {
 public:
  // `out` is usually stderr; `tty` says whether it is a terminal (see stream_is_tty).
  PrefillProgress(std::FILE* out, bool tty, double delay_s = 2.0, double interval_s = 5.0);

  // Starts the clock for a prefill of `total` tokens.
  void start(int64_t total);
  // After each chunk: tokens done so far.
  void update(int64_t done);
  // Ends the line if one was printed.
  void finish();

  // The line for a state, without '\r' or '\n' (for tests).
  static std::string format(int64_t done, int64_t total, double elapsed_s);

 private:
  std::FILE* out_;
  bool tty_;
  double delay_s_, interval_s_;
  Timer timer_;
  int64_t total_ = 0;
  double last_print_s_ = -1.0;  // elapsed time of the last line; < 0: none yet
  size_t last_width_ = 0;       // characters of the last in-place line, to blank leftovers
};

bool stream_is_tty(std::FILE* stream);

}  // namespace ltri
