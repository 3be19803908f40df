#pragma once
// Errors: every failure the user can cause (a bad file, a bad flag, a prompt over a limit) is
// thrown as ltri::Error with one line that says what, where, expected and actual. The CLI
// catches it, prints "error: <message>" to stderr and exits 1. Nothing else should escape.
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace ltri {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Concatenate anything streamable into one string: cat("tensor '", name, "': got ", n).
template <class... Args>
std::string cat(Args&&... args) {
  std::ostringstream out;
  (out << ... << std::forward<Args>(args));
  return out.str();
}

// Throw an ltri::Error built from the pieces.
template <class... Args>
[[noreturn]] void fail(Args&&... args) {
  throw Error(cat(std::forward<Args>(args)...));
}

}  // namespace ltri
