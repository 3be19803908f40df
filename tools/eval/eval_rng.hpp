#pragma once
// The random numbers behind every generated evaluation prompt. Written out here (splitmix64,
// plain rejection sampling) rather than taken from <random>'s distributions, whose output
// differs between standard libraries: a seed must give the same prompts on every machine.
#include <cstdint>
#include <string_view>

namespace ltri::eval {

class EvalRng {
 public:
  explicit EvalRng(uint64_t seed) : state_(seed) {}

  // The next 64 random bits (splitmix64).
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }

  // Uniform in [0, n) without modulo bias; n must be >= 1.
  uint64_t below(uint64_t n) {
    const uint64_t limit = UINT64_MAX - UINT64_MAX % n;  // largest multiple of n, exclusive
    uint64_t x = next();
    while (x >= limit) x = next();
    return x % n;
  }

  // Uniform in [lo, hi], both included.
  int64_t between(int64_t lo, int64_t hi) { return lo + int64_t(below(uint64_t(hi - lo) + 1)); }

  // Uniform in [0, 1) from 53 bits.
  double unit() { return double(next() >> 11) * 0x1.0p-53; }

 private:
  uint64_t state_;
};

// Mixes values into one seed (FNV-1a over the bytes, then a splitmix round), so each
// (seed, task, length, depth, sample) cell draws from its own stream: a cell's prompt does not
// depend on which other cells are run or in what order.
class SeedMixer {
 public:
  explicit SeedMixer(uint64_t seed) { add(seed); }
  SeedMixer& add(uint64_t value) {
    for (int i = 0; i < 8; ++i) byte(uint8_t(value >> (8 * i)));
    return *this;
  }
  SeedMixer& add(std::string_view text) {
    for (char c : text) byte(uint8_t(c));
    byte(0xFF);  // end marker: ("ab", "c") and ("a", "bc") differ
    return *this;
  }
  uint64_t seed() const { return EvalRng(hash_).next(); }

 private:
  void byte(uint8_t b) { hash_ = (hash_ ^ b) * 0x100000001B3ull; }
  uint64_t hash_ = 0xCBF29CE484222325ull;
};

}  // namespace ltri::eval
