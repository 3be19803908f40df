#pragma once
// Seeded normal samples for random weights, counter-based: sample i of stream s under seed k is
// a pure function of (k, s, i) (a splitmix64 hash of the three, two uniforms, Box-Muller), so
// a tensor is filled in parallel and comes out the same whatever the thread count, and 8B
// parameters take seconds instead of the minutes a serial std::mt19937_64 took.
#include <cstddef>
#include <cstdint>

namespace ltri {

// out[i] = normal(0, stddev) sample i of stream `stream`, i in [0, n); OpenMP threads.
void fill_random_normal(uint64_t seed, uint64_t stream, float stddev, float* out, size_t n);
// The same samples rounded to bf16 (round to nearest even), for weights held in bf16.
void fill_random_normal_bf16(uint64_t seed, uint64_t stream, float stddev, uint16_t* out, size_t n);

}  // namespace ltri
