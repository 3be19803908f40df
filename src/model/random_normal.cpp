#include "model/random_normal.hpp"

#include <cmath>

#include "core/dtype.hpp"

namespace ltri {

namespace {

// splitmix64's finaliser: a bijection on 64 bits whose output bits each depend on every input
// bit, so consecutive counters give independent-looking words.
inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Samples 2j and 2j + 1 of a stream from one 64-bit word: two 24-bit uniforms, u1 in (0, 1]
// (never 0: log(0)) and u2 in [0, 1), turned into two independent normals by Box-Muller in
// float (double costs 3x the time at 8B parameters). 24-bit uniforms bound |z| by
// sqrt(-2 ln 2^-24) = 5.8, beyond what random weights need.
inline void normal_pair(uint64_t stream_key, uint64_t j, float* z0, float* z1) {
  const uint64_t bits = mix64(stream_key + j * 0x9e3779b97f4a7c15ull);
  const float u1 = float((bits >> 40) + 1) * 0x1p-24f;
  const float u2 = float((bits >> 8) & 0xffffffull) * 0x1p-24f;
  const float r = std::sqrt(-2.0f * std::log(u1));
  const float angle = 6.28318530718f * u2;
  *z0 = r * std::cos(angle);
  *z1 = r * std::sin(angle);
}

template <class Store>
void fill(uint64_t seed, uint64_t stream, float stddev, size_t n, Store store) {
  // Two rounds of mixing keep streams of nearby (seed, stream) pairs apart.
  const uint64_t key = mix64(mix64(seed + 0x632be59bd9b4e019ull) ^ (stream * 0xd1b54a32d192ed03ull + 1));
  const int64_t pairs = int64_t((n + 1) / 2);
#pragma omp parallel for schedule(static) if (pairs > (1 << 14))
  for (int64_t j = 0; j < pairs; ++j) {
    float z0, z1;
    normal_pair(key, uint64_t(j), &z0, &z1);
    const size_t i = size_t(j) * 2;
    store(i, z0 * stddev);
    if (i + 1 < n) store(i + 1, z1 * stddev);
  }
}

}  // namespace

void fill_random_normal(uint64_t seed, uint64_t stream, float stddev, float* out, size_t n) {
  fill(seed, stream, stddev, n, [out](size_t i, float v) { out[i] = v; });
}

void fill_random_normal_bf16(uint64_t seed, uint64_t stream, float stddev, uint16_t* out, size_t n) {
  fill(seed, stream, stddev, n, [out](size_t i, float v) { out[i] = f32_to_bf16(v); });
}

}  // namespace ltri
