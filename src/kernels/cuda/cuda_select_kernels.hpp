#pragma once
// The launchers of retrieval's choice on the GPU (cuda_select.cu), called by CudaBackend's
// select_by_budget_device, unit_votes_device and cast_votes_device. Same rules as
// cuda_kernels.hpp: plain functions over device pointers and POD arguments, enqueued on
// `stream`, launches checked, no synchronisation.
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace ltri::cuda {

// A list of units in backend memory as the choice ops write and read it: int32 [count, unit
// ids...], room for `capacity` ids after the count.
struct SelectArgs {
  const float* rank = nullptr;         // (n_units), device
  const float* tie = nullptr;          // (n_units), device, or null: ties go to the earlier unit
  const int32_t* unit_tokens = nullptr;  // (n_units, 2), device: first token, length
  int64_t n_units = 0;
  int64_t budget = 0;
  int64_t shortest = 1;                // the shortest unit's length (>= 1)
  // tie is the rank of the previous launch on the same scratch (which had no tie, over the same
  // units): that launch's order, still in the scratch, is sorted again by rank alone.
  bool tie_in_scratch_order = false;
  int32_t* picked = nullptr;           // out, device: [count, ids in pick order]
};

// Device bytes launch_select_by_budget needs as scratch for n_units units.
size_t select_scratch_bytes(int64_t n_units);
// select_by_budget (kv/retrieval.hpp) over every unit: orders the units by (rank, tie)
// descending, the earlier unit first among equals (one stable radix sort of 64-bit keys, or of
// the rank's 32 bits over the tie's order when the scratch holds it), then one block walks that
// order taking each unit that still fits in the budget, until what is left is shorter than the
// shortest unit.
void launch_select_by_budget(const SelectArgs& args, void* scratch, size_t scratch_bytes, cudaStream_t stream);

// rank[u] = float(sum in double of token_votes[t - first_token] over unit u's tokens t that are
// below first_token + n_votes, / length), then rank[u] += weight for each unit u of `top`
// (a list of at most top_capacity ids, as SelectArgs::picked).
void launch_unit_votes(const float* token_votes, int64_t n_votes, int64_t first_token, const int32_t* unit_tokens,
                       int64_t n_units, const int32_t* top, int64_t top_capacity, float weight, float* rank,
                       cudaStream_t stream);
// token_votes[t - first_token] += weight for every token t of the units of `top` (units are
// disjoint, so every vote is one add in layer order, as on the host).
void launch_cast_votes(const int32_t* unit_tokens, const int32_t* top, int64_t top_capacity, float weight,
                       float* token_votes, int64_t first_token, cudaStream_t stream);

}  // namespace ltri::cuda
