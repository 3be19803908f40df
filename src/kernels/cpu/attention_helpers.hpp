#pragma once
// Small helpers shared by the CPU attention's two routes (cpu_attention.cpp: chunks,
// cpu_attention_decode.cpp: one query).
#include <algorithm>
#include <cstdint>
#include <vector>

#include "kv/kv_policy.hpp"

namespace ltri {

// Keys of a segment that chunk query i may see: all of them, or t <= i in a causal segment.
inline int64_t visible_to(const KvSegment& s, int64_t i) { return s.causal ? std::min(s.n, i + 1) : s.n; }

// Grows scratch geometrically (callers do not rely on old contents), so steady decoding
// never allocates.
template <class T>
void ensure_size(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(std::max(n, v.size() * 2));
}

}  // namespace ltri
