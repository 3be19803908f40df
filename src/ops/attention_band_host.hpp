#pragma once
// The attention band of a chunk (LTRI_SPEC.md, Prefill step 4): for each of the chunk's query
// rows, the softmax attention to the local keys within `width` tokens of the diagonal. The
// streaming policies keep two things from it, per token, until the token leaves the local window:
//  - votes: the attention each key received from later queries (InfLLM's "local score"),
//    per KV head, which picks the keys that represent a block or span for retrieval;
//  - the segmentation map row: A_ij scaled so the row's largest cell is 1, which span
//    discovery cuts into triangles.
//
// The attention op does not emit probabilities, so the band is recomputed from the chunk's
// queries and the window's keys (cost chunk x width x head_dim per head, a few percent of the
// attention itself for width 256): Backend::attention_band. This file holds its contract
// (AttentionBandArgs) and the host reference (AttentionBandHost), which the CPU backend runs
// and the CUDA kernels (src/kernels/cuda/cuda_band.cu) are tested against. Two documented
// approximations follow:
//  - the segmentation row is scaled by its maximum over the band, not over the whole local
//    window: A_ij / max_j A_ij = exp(s_ij - max_j s_ij), so the softmax normaliser cancels and
//    only the band's raw scores s_ij are needed;
//  - votes are the softmax over the band alone (the full row's normaliser would need every
//    visible key).
// Sinks (init tokens) are not local columns and get neither votes nor band cells.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace ltri {

class RopeTable;

// Kinds of segmentation map: one head's rows (a head index), or the mean over heads.
constexpr int64_t kBandMeanOfHeads = -1;

// One chunk's band. Keys and queries are rotated at their true relative distances (positions
// t - first_key), so the RopeTable must cover n_keys() positions. Scores are q.k / sqrt(head_dim);
// query t sees keys [max(first_key, t - width + 1), t] (distance d = t - key at cell [d]).
struct AttentionBandArgs {
  const float* q = nullptr;     // (n, n_heads, head_dim), pre-RoPE: tokens [first_query, first_query + n)
  const float* keys = nullptr;  // (n_keys(), n_kv_heads, head_dim), pre-RoPE: tokens [first_key, first_query + n),
                                // the local keys the band may use (no sinks, nothing evicted)
  int64_t n = 0;
  int64_t first_query = 0;
  int64_t first_key = 0;  // rows of query tokens before it (sinks) have no band
  int64_t n_heads = 0, n_kv_heads = 0, head_dim = 0;
  int64_t width = 0;
  int64_t seg_head = kBandMeanOfHeads;  // the segmentation map's head, or kBandMeanOfHeads

  int64_t n_keys() const { return first_query + n - first_key; }
};

// Checks the shape fields of `args` (one-line ltri::Error naming the field); `op` names the caller.
void check_attention_band_args(const AttentionBandArgs& args, const char* op);

// The band on the host; scratch grows to its largest size once and is reused. It runs on the
// calling thread except for OpenMP over heads: its work per call is small, and OpenMP regions
// this small cost more in synchronisation than they save on a loaded machine.
class AttentionBandHost {
 public:
  // args.q and args.keys are host memory here. Adds each key's received attention, summed over
  // the query heads of its KV head, to votes (n_keys(), n_kv_heads) (one float add per query
  // head, in head order). When seg is not null, writes seg (n, width): row i is token
  // first_query + i's map (zero for sink rows), from head seg_head with its max cell 1, or the
  // mean of the heads' such rows re-scaled so its max is 1 again.
  void compute(const AttentionBandArgs& args, const RopeTable& rope, float* votes, float* seg);

 private:
  std::vector<float> q_rot_;   // (n, n_heads, head_dim), rotated
  std::vector<float> k_rot_;   // (n_keys, n_kv_heads, head_dim), rotated
  std::vector<float> scores_;  // per thread: (query tile, tile + width - 1) raw scores
  std::vector<float> probs_;   // (n_heads, n, width): exp(score - row max), distance d at [d]
  std::vector<float> inv_sum_; // (n_heads, n): 1 / row sum, so probs_ * inv_sum_ is the softmax
};

}  // namespace ltri
