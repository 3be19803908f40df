// Retrieval's choice on the GPU (host reference: select_by_budget in src/kv/retrieval.cpp and
// LtriPolicy's unit_votes / cast_votes), so that a layer's units are scored, ranked, voted on
// and picked without the scores leaving the device: only the picked ids come down.
//
// The pick order is rank descending, then tie descending, then the earlier unit. Each float
// maps to a uint32 whose unsigned order is the float's (-0 taken as +0, as the host's == does),
// rank in the high half of a 64-bit key and tie in the low half; a stable descending radix
// sort of (key, unit id), the ids in ascending order, then gives exactly the host's order.
// Without a tie only the high 32 bits are sorted. When the tie is the rank of the previous
// choice (the ltri policy's voted choice breaks ties by the layer's own scores, which its first
// choice has just sorted), that choice's order (tie descending, earlier unit first) is still in
// the scratch: a stable sort of it by the rank's 32 bits alone gives the same order, with half
// the radix passes of the 64-bit sort.
//
// The walk is sequential by definition (a unit is taken if it fits in what the units before it
// left), but decides 32 units a step: with `room` left, lane j's unit fits alone if its length
// is at most room; an inclusive scan of the lengths of those that fit gives s_j, and every lane
// before the first one with s_j > room is decided as the host decides it (taken iff it fits
// alone; one that does not fit alone never fits later either). That first lane is skipped and
// the step restarts after it with the room left. A block loads 1024 entries of the order at a
// time into shared memory; one warp walks them.
// Checked against the host op in tests/kernels/test_cuda_select.cpp.
#include <cub/device/device_radix_sort.cuh>

#include <algorithm>

#include "kernels/cuda/cuda_check.hpp"
#include "kernels/cuda/cuda_select_kernels.hpp"

namespace ltri::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kWalkThreads = 1024;
constexpr size_t kAlign = 256;

size_t align_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

__device__ uint32_t ordered_bits(float f) {
  uint32_t b = __float_as_uint(f);
  if (b == 0x80000000u) b = 0;  // -0 ranks as +0
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

__global__ void make_keys_kernel(const float* rank, const float* tie, int64_t n, uint64_t* keys, int32_t* ids) {
  const int64_t u = int64_t(blockIdx.x) * kThreads + threadIdx.x;
  if (u >= n) return;
  const uint64_t low = tie ? ordered_bits(tie[u]) : 0u;
  keys[u] = (uint64_t(ordered_bits(rank[u])) << 32) | low;
  ids[u] = int32_t(u);
}

// As make_keys_kernel without a tie, the units taken in `order` (a previous sort's output).
__global__ void make_keys_in_order_kernel(const float* rank, const int32_t* order, int64_t n, uint64_t* keys,
                                          int32_t* ids) {
  const int64_t i = int64_t(blockIdx.x) * kThreads + threadIdx.x;
  if (i >= n) return;
  const int32_t u = order[i];
  keys[i] = uint64_t(ordered_bits(rank[u])) << 32;
  ids[i] = u;
}

// One block: walks `order` (n unit ids) as described above; picked = [count, ids in pick order].
__global__ void walk_kernel(const int32_t* order, const int32_t* unit_tokens, int64_t n, int64_t budget,
                            int64_t shortest, int32_t* picked) {
  __shared__ int32_t ids[kWalkThreads];
  __shared__ int32_t lengths[kWalkThreads];
  __shared__ int64_t room_left;
  __shared__ int32_t count_so_far;
  __shared__ bool done;
  if (threadIdx.x == 0) {
    room_left = budget;
    count_so_far = 0;
    done = budget < shortest;
  }
  __syncthreads();
  constexpr unsigned kAll = 0xffffffffu;
  for (int64_t base = 0; base < n && !done; base += kWalkThreads) {
    const int64_t i = base + threadIdx.x;
    if (i < n) {
      const int32_t u = order[i];
      ids[threadIdx.x] = u;
      lengths[threadIdx.x] = unit_tokens[2 * int64_t(u) + 1];
    }
    __syncthreads();
    if (threadIdx.x < 32) {
      const int lane = int(threadIdx.x);
      const int tile = n - base < kWalkThreads ? int(n - base) : kWalkThreads;
      int64_t room = room_left;
      int32_t count = count_so_far;
      for (int at = 0; at < tile && room >= shortest;) {
        const int j = at + lane;
        const bool valid = j < tile;
        const int64_t length = valid ? lengths[j] : 0;
        const bool fits = valid && length <= room;
        int64_t s = fits ? length : 0;
        for (int offset = 1; offset < 32; offset <<= 1) {
          const int64_t before = __shfl_up_sync(kAll, s, offset);
          if (lane >= offset) s += before;
        }
        const unsigned over = __ballot_sync(kAll, fits && s > room);
        const int first_over = over ? __ffs(int(over)) - 1 : 32;
        const bool took = fits && lane < first_over;
        const unsigned took_mask = __ballot_sync(kAll, took);
        if (took) picked[1 + count + __popc(took_mask & ((1u << lane) - 1u))] = ids[j];
        count += __popc(took_mask);
        // Tokens taken: the scan just before the first lane over (or at the last lane).
        const int64_t used = __shfl_sync(kAll, over ? s - length : s, over ? first_over : 31);
        room -= used;
        at += over ? first_over + 1 : 32;
      }
      if (lane == 0) {
        room_left = room;
        count_so_far = count;
        done = room < shortest;
      }
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) picked[0] = count_so_far;
}

__global__ void unit_votes_kernel(const float* token_votes, int64_t n_votes, int64_t first_token,
                                  const int32_t* unit_tokens, int64_t n_units, float* rank) {
  const int64_t u = int64_t(blockIdx.x) * kThreads + threadIdx.x;
  if (u >= n_units) return;
  const int64_t from = int64_t(unit_tokens[2 * u]) - first_token, length = unit_tokens[2 * u + 1];
  double sum = 0.0;
  const int64_t end = from + length < n_votes ? from + length : n_votes;
  for (int64_t t = from; t < end; ++t) sum += double(token_votes[t]);
  rank[u] = float(sum / double(length));
}

__global__ void add_to_listed_kernel(const int32_t* list, float weight, float* rank) {
  const int32_t i = int32_t(blockIdx.x) * kThreads + int32_t(threadIdx.x);
  if (i >= list[0]) return;
  const int32_t u = list[1 + i];
  rank[u] = __fadd_rn(rank[u], weight);
}

// One block per listed unit (blocks past the count return).
__global__ void cast_votes_kernel(const int32_t* unit_tokens, const int32_t* list, float weight, float* token_votes,
                                  int64_t first_token) {
  if (int32_t(blockIdx.x) >= list[0]) return;
  const int64_t u = list[1 + blockIdx.x];
  const int64_t from = int64_t(unit_tokens[2 * u]) - first_token, length = unit_tokens[2 * u + 1];
  for (int64_t t = threadIdx.x; t < length; t += blockDim.x) {
    token_votes[from + t] = __fadd_rn(token_votes[from + t], weight);
  }
}

// The scratch's parts for n units: keys and ids, both twice (sort input and output), then
// CUB's own temporary storage for the widest sort.
struct SelectScratch {
  uint64_t* keys_in;
  uint64_t* keys_out;
  int32_t* ids_in;
  int32_t* ids_out;
  void* sort_temp;
  size_t sort_temp_bytes;
};

size_t sort_temp_bytes(int64_t n) {
  size_t bytes = 0;
  LTRI_CUDA_CHECK(cub::DeviceRadixSort::SortPairsDescending(nullptr, bytes, static_cast<const uint64_t*>(nullptr),
                                                            static_cast<uint64_t*>(nullptr),
                                                            static_cast<const int32_t*>(nullptr),
                                                            static_cast<int32_t*>(nullptr), n, 0, 64));
  return bytes;
}

SelectScratch carve(void* scratch, int64_t n) {
  auto* at = static_cast<unsigned char*>(scratch);
  SelectScratch s;
  s.keys_in = reinterpret_cast<uint64_t*>(at);
  at += align_up(size_t(n) * sizeof(uint64_t));
  s.keys_out = reinterpret_cast<uint64_t*>(at);
  at += align_up(size_t(n) * sizeof(uint64_t));
  s.ids_in = reinterpret_cast<int32_t*>(at);
  at += align_up(size_t(n) * sizeof(int32_t));
  s.ids_out = reinterpret_cast<int32_t*>(at);
  at += align_up(size_t(n) * sizeof(int32_t));
  s.sort_temp = at;
  s.sort_temp_bytes = sort_temp_bytes(n);
  return s;
}

}  // namespace

size_t select_scratch_bytes(int64_t n_units) {
  const size_t n = size_t(std::max<int64_t>(n_units, 1));
  return 2 * align_up(n * sizeof(uint64_t)) + 2 * align_up(n * sizeof(int32_t)) +
         align_up(sort_temp_bytes(int64_t(n)));
}

void launch_select_by_budget(const SelectArgs& a, void* scratch, size_t scratch_bytes, cudaStream_t stream) {
  if (a.n_units <= 0) {
    LTRI_CUDA_CHECK(cudaMemsetAsync(a.picked, 0, sizeof(int32_t), stream));
    return;
  }
  if (scratch_bytes < select_scratch_bytes(a.n_units)) fail("select_by_budget_device: scratch too small");
  const SelectScratch s = carve(scratch, a.n_units);
  const unsigned blocks = unsigned((a.n_units + kThreads - 1) / kThreads);
  if (a.tie_in_scratch_order) {
    // The previous launch's order is in ids_out (same units: same layout); read before written.
    make_keys_in_order_kernel<<<blocks, kThreads, 0, stream>>>(a.rank, s.ids_out, a.n_units, s.keys_in, s.ids_in);
    LTRI_CUDA_CHECK_LAUNCH("make_keys_in_order_kernel");
  } else {
    make_keys_kernel<<<blocks, kThreads, 0, stream>>>(a.rank, a.tie, a.n_units, s.keys_in, s.ids_in);
    LTRI_CUDA_CHECK_LAUNCH("make_keys_kernel");
  }
  const bool tie_bits = a.tie && !a.tie_in_scratch_order;
  size_t temp_bytes = s.sort_temp_bytes;
  LTRI_CUDA_CHECK(cub::DeviceRadixSort::SortPairsDescending(s.sort_temp, temp_bytes, s.keys_in, s.keys_out, s.ids_in,
                                                            s.ids_out, a.n_units, tie_bits ? 0 : 32, 64, stream));
  walk_kernel<<<1, kWalkThreads, 0, stream>>>(s.ids_out, a.unit_tokens, a.n_units, a.budget, a.shortest, a.picked);
  LTRI_CUDA_CHECK_LAUNCH("walk_kernel");
}

void launch_unit_votes(const float* token_votes, int64_t n_votes, int64_t first_token, const int32_t* unit_tokens,
                       int64_t n_units, const int32_t* top, int64_t top_capacity, float weight, float* rank,
                       cudaStream_t stream) {
  if (n_units <= 0) return;
  unit_votes_kernel<<<unsigned((n_units + kThreads - 1) / kThreads), kThreads, 0, stream>>>(
      token_votes, n_votes, first_token, unit_tokens, n_units, rank);
  LTRI_CUDA_CHECK_LAUNCH("unit_votes_kernel");
  if (top_capacity <= 0) return;
  add_to_listed_kernel<<<unsigned((top_capacity + kThreads - 1) / kThreads), kThreads, 0, stream>>>(top, weight, rank);
  LTRI_CUDA_CHECK_LAUNCH("add_to_listed_kernel");
}

void launch_cast_votes(const int32_t* unit_tokens, const int32_t* top, int64_t top_capacity, float weight,
                       float* token_votes, int64_t first_token, cudaStream_t stream) {
  if (top_capacity <= 0) return;
  cast_votes_kernel<<<unsigned(top_capacity), 64, 0, stream>>>(unit_tokens, top, weight, token_votes, first_token);
  LTRI_CUDA_CHECK_LAUNCH("cast_votes_kernel");
}

}  // namespace ltri::cuda
