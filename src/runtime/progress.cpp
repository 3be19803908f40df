#include "runtime/progress.hpp"

#include <unistd.h>

#include <cmath>

#include "core/error.hpp"

namespace ltri {

bool stream_is_tty(std::FILE* stream) { return isatty(fileno(stream)) == 1; }

PrefillProgress::PrefillProgress(std::FILE* out, bool tty, double delay_s, double interval_s)
    : out_(out), tty_(tty), delay_s_(delay_s), interval_s_(interval_s) {}

void PrefillProgress::start(int64_t total) {
  total_ = total;
  last_print_s_ = -1.0;
  last_width_ = 0;
  timer_.reset();
}

std::string PrefillProgress::format(int64_t done, int64_t total, double elapsed_s) {
  const double rate = elapsed_s > 0.0 ? double(done) / elapsed_s : 0.0;
  std::string line = cat("prefill: ", done, "/", total, " tokens, ", int64_t(std::lround(rate)), " tok/s");
  if (done < total && rate > 0.0) {
    line += cat(", ETA ", int64_t(std::ceil(double(total - done) / rate)), " s");
  }
  return line;
}

void PrefillProgress::update(int64_t done) {
  if (!out_) return;
  const double elapsed = timer_.elapsed_ms() / 1000.0;
  if (elapsed < delay_s_) return;
  // On a terminal the line is cheap to rewrite: refresh it about 4 times a second.
  const double gap = tty_ ? 0.25 : interval_s_;
  const bool last = done >= total_;
  if (last_print_s_ >= 0.0 && elapsed - last_print_s_ < gap && !last) return;
  if (last && !tty_ && last_print_s_ < 0.0) return;  // finished before the first line was due
  const std::string line = format(done, total_, elapsed);
  if (tty_) {
    const size_t pad = last_width_ > line.size() ? last_width_ - line.size() : 0;
    std::fprintf(out_, "\r%s%*s", line.c_str(), int(pad), "");
    last_width_ = line.size();
  } else {
    std::fprintf(out_, "%s\n", line.c_str());
  }
  std::fflush(out_);
  last_print_s_ = elapsed;
}

void PrefillProgress::finish() {
  if (out_ && tty_ && last_print_s_ >= 0.0) {
    std::fputc('\n', out_);
    std::fflush(out_);
  }
  last_print_s_ = -1.0;
}

}  // namespace ltri
