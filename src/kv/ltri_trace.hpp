#pragma once
// Debugging aid for ltri's retrieval: what happened to the spans over one token range (a
// needle's) on their way from eviction to decoding. Off unless LTRI_TRACE_TOKENS is set:
//
//   LTRI_TRACE_TOKENS=first,last[,prompt]  the range [first, last); prompt = the prompt's length
//                                          (`ltri eval` sets all three per sample when run
//                                          with LTRI_TRACE_NEEDLE=1: the target needle's range)
//   LTRI_TRACE_HEADS=1                     also each query head's own ranking of the spans for
//                                          the chunk that ends the prompt (the question's)
//   LTRI_TRACE_DUMP=DIR                    and every unit's per-head scores for that chunk,
//                                          DIR/needle<first>_L<layer>.txt ("first length s_0 ..")
//
// Lines on stderr, each starting with "trace " (docs/kv-policies.md, "Tracing a needle"):
// stored spans near the range (length, index vectors, which tokens are index vectors when not
// all are), per prefill chunk and layer the rank of each span over the range (own top, loaded),
// the persistent set after the question's chunk (votes, pinned), and per decode step whether
// the span was visible. The variables are read at each use, so one process may trace several
// samples (the eval changes them between samples).
#include <cstdint>
#include <vector>

#include "kv/context_store.hpp"

namespace ltri {

struct LtriTrace {
  int64_t first = 0, last = 0;  // the traced tokens [first, last)
  int64_t prompt = -1;          // the prompt's length, -1 if not given

  // The range from LTRI_TRACE_TOKENS; false when unset or not "first,last[,prompt]".
  static bool from_env(LtriTrace& out);
  bool overlaps(int64_t token, int64_t length) const { return token < last && token + length > first; }
  // Per-head ranks wanted for a chunk of n tokens starting at `at` (the prompt's last chunk).
  bool wants_heads(int64_t at, int64_t n) const;
};

// A span of `length` tokens from first_token stored with n_vectors index vectors; printed if
// it lies within 64 tokens of the range.
void trace_stored_span(const LtriTrace& t, int64_t layer, int64_t first_token, int64_t length, int64_t n_vectors);
// The tokens (ids, count of them) whose keys of KV head g index a span over the range, when
// fewer than all of its tokens do.
void trace_index_tokens(const LtriTrace& t, int64_t layer, int64_t first_token, int64_t length, int64_t g,
                        const int64_t* tokens, int64_t count);

// One layer's retrieval for a chunk of n tokens at `at`: each unit over the range, its score and
// rank among `scores`, whether it is in the layer's own top and among the loaded `chosen`
// (both sorted). head_scores: (n_heads, units) each head's own scores, or empty.
void trace_choice(const LtriTrace& t, bool decoding, int64_t at, int64_t n, int64_t layer,
                  const std::vector<StoredUnit>& units, const std::vector<float>& scores,
                  const std::vector<int64_t>& top, const std::vector<int64_t>& chosen,
                  const std::vector<std::vector<float>>& head_scores);

// One layer's persistent set: each unit over the range with its vote (votes: nullptr without
// voting), its question score rank, whether it is pinned; then the layer's 8 best-scoring units.
void trace_persistent(const LtriTrace& t, int64_t layer, const std::vector<StoredUnit>& units,
                      const std::vector<float>* votes, const std::vector<float>& scores,
                      const std::vector<uint8_t>& pinned, int64_t pinned_tokens);

}  // namespace ltri
