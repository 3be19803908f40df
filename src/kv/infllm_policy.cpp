#include "kv/infllm_policy.hpp"

#include <algorithm>
#include <numeric>

#include "core/phase_profile.hpp"
#include "core/timer.hpp"
#include "ops/profile_scope.hpp"

namespace ltri {

InfllmPolicy::InfllmPolicy(Backend& backend, const ModelConfig& config, const StreamingShape& shape,
                           const InfllmParams& params)
    : StreamingPolicyBase(backend, config, shape),
      params_(params),
      head_weights_(size_t(shape.n_heads), 1.0f / float(shape.n_heads)) {}

namespace {

// Adds the blocks of `e` to the store, each represented by the mean of its `repr` most-voted
// keys per KV head: the store step of an eviction, possibly on a worker thread (EvictStep).
void store_blocks(int64_t block_size, int64_t repr, int64_t n_kv_heads, int64_t hd, const TokenRows& votes,
                  EvictedTokens& e, ContextStore& store) {
  const bool profile = PhaseProfile::enabled();
  const Timer timer;
  const int64_t kv_row = n_kv_heads * hd;
  e.vectors.resize(size_t(kv_row));  // (n_kv_heads, 1, head_dim)
  for (int64_t b = 0; b < e.count / block_size; ++b) {
    const int64_t block_first = e.first + b * block_size;
    for (int64_t g = 0; g < n_kv_heads; ++g) {
      // The block's most-voted keys of this KV head (ties: the earlier token).
      e.tokens.resize(size_t(block_size));
      std::iota(e.tokens.begin(), e.tokens.end(), block_first);
      std::partial_sort(e.tokens.begin(), e.tokens.begin() + repr, e.tokens.end(), [&](int64_t a, int64_t c) {
        const float va = votes.row(a)[g], vc = votes.row(c)[g];
        return va != vc ? va > vc : a < c;
      });
      float* out = e.vectors.data() + g * hd;
      std::fill(out, out + hd, 0.0f);
      for (int64_t r = 0; r < repr; ++r) {
        const float* key = e.k + (e.tokens[size_t(r)] - e.first) * kv_row + g * hd;
        for (int64_t c = 0; c < hd; ++c) out[c] += key[c] / float(repr);
      }
    }
    store.add_unit(e.k + b * block_size * kv_row, e.v + b * block_size * kv_row, block_size,
                   e.vectors.data(), 1);
  }
  if (profile) PhaseProfile::add("policy/evict/store", timer.elapsed_ms());
}

}  // namespace

void InfllmPolicy::evict(int64_t layer) {
  const int64_t bs = params_.block_size;
  const int64_t n_blocks = (window().size(layer) - shape_.n_local) / bs;
  if (n_blocks <= 0) return;  // a partial block waits in the window
  const int64_t repr = std::min(params_.block_repr, bs);
  const int64_t n_kv_heads = shape_.n_kv_heads, hd = shape_.head_dim;
  // The votes stay as they are until the layer's next plan(), which waits for this job.
  const TokenRows* token_votes = &votes(layer);
  evict_async(layer, n_blocks * bs, [bs, repr, n_kv_heads, hd, token_votes](EvictedTokens& e, ContextStore& store) {
    store_blocks(bs, repr, n_kv_heads, hd, *token_votes, e, store);
    return e.count;  // every candidate: whole blocks
  });
}

void InfllmPolicy::choose(int64_t layer, const float* q, int64_t n, std::vector<int64_t>& units) {
  const ContextStore& s = store(layer);
  if (device_choice()) {
    // The same scores and selection in backend memory, from the chunk's mean query averaged
    // and rotated there: only the picked list comes down.
    const float* mean = query_means_device(q, n, n);
    scores_dev_.reserve(backend(), s.units().size());
    picked_dev_.reserve(backend(), size_t(1 + params_.budget));
    {
      ProfileScope phase(backend(), "policy/choose/score");
      backend().score_units_device(s, index_mirror(layer), mean, 1, shape_.n_local, rope_, head_weights_,
                                   scores_dev_.data());
    }
    ProfileScope phase(backend(), "policy/choose/select");
    backend().select_by_budget_device(index_mirror(layer), scores_dev_.data(), nullptr, false, params_.budget,
                                      shortest_unit(s), reinterpret_cast<int32_t*>(picked_dev_.data()));
    download_unit_list(picked_dev_, params_.budget, units);
    return;
  }
  const float* qbar = query_means(q, n, n);  // the chunk's mean query (n_heads, head_dim)
  score_stored_units(layer, qbar, 1, true, head_weights_, scores_);
  ProfileScope phase(backend(), "policy/choose/select");
  select_by_budget(s.units(), scores_, nullptr, nullptr, params_.budget, units, order_, &s.unit_summary());
}

size_t InfllmPolicy::kv_bytes() const {
  return StreamingPolicyBase::kv_bytes() + (scores_dev_.size() + picked_dev_.size()) * sizeof(float);
}

}  // namespace ltri
