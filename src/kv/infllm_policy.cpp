#include "kv/infllm_policy.hpp"

#include <algorithm>
#include <numeric>

#include "ops/profile_scope.hpp"

namespace ltri {

InfllmPolicy::InfllmPolicy(Backend& backend, const ModelConfig& config, const StreamingShape& shape,
                           const InfllmParams& params)
    : StreamingPolicyBase(backend, config, shape),
      params_(params),
      head_weights_(size_t(shape.n_heads), 1.0f / float(shape.n_heads)),
      vectors_(size_t(shape.n_kv_heads * shape.head_dim)) {}

void InfllmPolicy::evict(int64_t layer) {
  const int64_t bs = params_.block_size;
  const int64_t n_blocks = (window().size(layer) - shape_.n_local) / bs;
  if (n_blocks <= 0) return;  // a partial block waits in the window
  const int64_t hd = shape_.head_dim, kv_row = shape_.n_kv_heads * hd;
  const int64_t first = window().begin(layer);
  const int64_t repr = std::min(params_.block_repr, bs);
  fetch_front(layer, n_blocks * bs);
  const TokenRows& votes = this->votes(layer);
  for (int64_t b = 0; b < n_blocks; ++b) {
    const int64_t block_first = first + b * bs;
    for (int64_t g = 0; g < shape_.n_kv_heads; ++g) {
      // The block's most-voted keys of this KV head (ties: the earlier token).
      tokens_.resize(size_t(bs));
      std::iota(tokens_.begin(), tokens_.end(), block_first);
      std::partial_sort(tokens_.begin(), tokens_.begin() + repr, tokens_.end(), [&](int64_t a, int64_t c) {
        const float va = votes.row(a)[g], vc = votes.row(c)[g];
        return va != vc ? va > vc : a < c;
      });
      float* out = vectors_.data() + g * hd;
      std::fill(out, out + hd, 0.0f);
      for (int64_t r = 0; r < repr; ++r) {
        const float* key = host_k() + (tokens_[size_t(r)] - first) * kv_row + g * hd;
        for (int64_t c = 0; c < hd; ++c) out[c] += key[c] / float(repr);
      }
    }
    mutable_store(layer).add_unit(host_k() + b * bs * kv_row, host_v() + b * bs * kv_row, bs,
                                  vectors_.data(), 1);
  }
  drop_front(layer, n_blocks * bs);
}

void InfllmPolicy::choose(int64_t layer, const float* q, int64_t n, std::vector<int64_t>& units) {
  const ContextStore& s = store(layer);
  const float* qbar = query_means(q, n, n);  // the chunk's mean query (n_heads, head_dim)
  score_stored_units(layer, qbar, 1, true, head_weights_, scores_);
  ProfileScope phase(backend(), "policy/choose/select");
  select_by_budget(s.units(), scores_, nullptr, nullptr, params_.budget, units, order_);
}

}  // namespace ltri
