#pragma once
// Retrieval from a layer's ContextStore (LTRI_SPEC.md, "Retrieval"): score every unit against
// the chunk's mean query and pick units by score until a token budget is full (the picked
// units' KV goes to backend memory in kv/retrieved_kv.hpp).
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kv/context_store.hpp"

namespace ltri {

// scores[u] = sum over query heads h with head_weights[h] != 0 of
//   head_weights[h] * max over unit u's index vectors k (of h's KV head) of <qbar_h, k>.
// One-hot weights score with one head (the layer's retrieval head), uniform ones with the mean.
// With a BF16 index (ContextStore::index_dtype) the queries are rounded to bf16 first, so each
// product is of two bf16 values, exact in f32, and only the f32 sums differ from the GPU's
// tensor-core scores. `dots` is scratch.
void score_units(const ContextStore& store, const float* qbar, const std::vector<float>& head_weights,
                 std::vector<float>& scores, std::vector<float>& dots);

// Like score_units, with each unit scored by its best query: scores[u] = sum over heads h of
// head_weights[h] * max over the n queries q_i and u's index vectors k of <q_ih, k>.
// q: (n, n_heads, head_dim) already rotated to the scoring distance. `dots`, `best` are scratch.
void score_units_per_query(const ContextStore& store, const float* q, int64_t n,
                           const std::vector<float>& head_weights, std::vector<float>& scores,
                           std::vector<float>& dots, std::vector<float>& best);

// Picks units in decreasing `rank` (ties: decreasing `tie`, if given, then earlier unit), taking
// each unit that still fits in `budget` tokens (a long unit that does not fit is skipped, a
// shorter one later may still fit). Units with skip[u] != 0 are not considered. `picked`
// receives the unit ids in store order; returns the tokens taken. `order` is scratch. `all`, if
// given, is the summary of `units` (ContextStore::unit_summary()): without a skip and with a
// rank for every unit it saves a pass over all units (a layer's 250K units at 1M tokens take
// ~0.5 ms to walk, twice per layer and chunk); otherwise the pass is made.
int64_t select_by_budget(const std::vector<StoredUnit>& units, const std::vector<float>& rank,
                         const std::vector<float>* tie, const std::vector<uint8_t>* skip,
                         int64_t budget, std::vector<int64_t>& picked, std::vector<int64_t>& order,
                         const UnitSummary* all = nullptr);

}  // namespace ltri
