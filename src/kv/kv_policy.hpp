#pragma once
// The KV-policy seam (DESIGN.md): a policy decides WHICH keys/values a query chunk sees and at
// WHICH positions; one shared attention op (Backend::attention) does the attending. Policies
// store keys before RoPE, so they are free to re-assign positions (streaming methods place
// retrieved tokens at a fixed distance, and keep angles small at a million tokens).
#include <cstddef>
#include <cstdint>
#include <vector>

namespace ltri {

// A run of visible keys/values. Key t of the segment sits at position
// first_position + t * position_stride (stride 0: every key at first_position).
struct KvSegment {
  const float* k = nullptr;  // (n, n_kv_heads, head_dim), pre-RoPE, backend memory
  const float* v = nullptr;  // (n, n_kv_heads, head_dim), backend memory
  int64_t n = 0;
  int64_t first_position = 0;
  int64_t position_stride = 1;
  // The chunk's own keys: key t is visible to chunk query i only when t <= i.
  bool causal = false;
  // -1: chunk query i sits at AttentionPlan::query_first_position + i (true relative
  // distances). >= 0: against this segment every query of the chunk is rotated to this one
  // position, so with keys at position 0 (stride 0) each query sees each key at the same fixed
  // distance: InfLLM's placement of init and retrieved tokens "n_local before every query".
  int64_t query_position = -1;
  // Already attended by Backend::attention_early (two-pass attention, plan_early below): the
  // backend folds that pass into this plan's softmax instead of attending the segment again.
  bool early = false;
};

struct AttentionPlan {
  std::vector<KvSegment> segments;  // attended under one softmax, in this order
  int64_t query_first_position = 0;  // chunk query i sits at query_first_position + i
};

class KvPolicy {
 public:
  virtual ~KvPolicy() = default;
  virtual const char* name() const = 0;
  // Prepares for a chunk of n tokens (reserving memory up front so decode never allocates).
  virtual void begin_chunk(int64_t n) = 0;
  // Stores the chunk's pre-RoPE keys/values of `layer` — k, v: (n, n_kv_heads, head_dim) — and
  // returns what the chunk's queries of that layer see. q: (n, n_heads, head_dim), pre-RoPE,
  // for policies that score stored KV against the chunk's queries (retrieval). Pointers in the
  // plan stay valid until the next call for this layer.
  virtual const AttentionPlan& plan(int64_t layer, const float* q, const float* k, const float* v,
                                    int64_t n) = 0;
  // The first of two steps for a caller that attends in two passes (Backend::attention_early):
  // stores the chunk's K,V as plan() would and returns the segments known before the policy's
  // choice of retrieved KV (init, window, chunk), so the backend can attend them while the
  // policy chooses. nullptr when the layer's plan has no later part (nothing to retrieve yet,
  // or positions that depend on the choice). Either way the caller then calls plan() with the
  // same arguments, which skips what was done here; after a non-null return its segments that
  // this plan held are marked `early`. Default: nullptr, and nothing done.
  virtual const AttentionPlan* plan_early(int64_t /*layer*/, const float* /*q*/, const float* /*k*/,
                                          const float* /*v*/, int64_t /*n*/) {
    return nullptr;
  }
  // All layers have processed the chunk.
  virtual void end_chunk(int64_t n) = 0;
  // After the last chunk of a prompt (a forward of more than one token): what the decode steps
  // after it need from the whole prompt can be prepared now, as part of the prompt's time
  // (ltri: the persistent spans). A policy that is not told builds it at its first decode step.
  virtual void end_prompt() {}
  virtual int64_t n_past() const = 0;
  // One past the largest RoPE position a plan for the next chunk of n tokens may use (the
  // session sizes its RoPE table with it: streaming policies keep positions window-relative,
  // so this stays bounded however long the stream grows).
  virtual int64_t positions_needed(int64_t n) const = 0;
  // Bytes of KV memory in the backend (accelerator side: init, window, retrieved copies).
  virtual size_t kv_bytes() const = 0;
  // Memory the policy will add for `tokens` more tokens of the stream (a prompt still to come),
  // so that a session can refuse a prompt that cannot fit before it runs out of memory halfway.
  struct MemoryGrowth {
    size_t bytes = 0;              // more than held now, growth slack included
    double bytes_per_token = 0.0;  // what one more token adds, over all layers
    bool measured = false;         // the index part measured on the stored tokens (else the policy's floor)
    const char* what = "";         // what grows, for messages: "span index", "block index", "store"
  };
  // Backend memory: 0 where everything is sized up front. infllm and ltri mirror their block /
  // span index in device memory (Backend::score_units), which grows with every stored token;
  // see StreamingPolicyBase::device_growth.
  virtual MemoryGrowth device_growth(int64_t /*tokens*/) const { return {}; }
  // Host memory: infllm's and ltri's store of evicted K/V and its index
  // (StreamingPolicyBase::host_growth); 0 for the others.
  virtual MemoryGrowth host_growth(int64_t /*tokens*/) const { return {}; }
  // Bytes held in host memory by streaming policies (the store of evicted KV, its index and
  // the attention rows kept for segmentation); 0 for policies that keep everything in kv_bytes.
  virtual size_t host_bytes() const { return 0; }
  // Tokens at the end of a prompt (a forward of more than one token) that the session runs as a
  // chunk of their own, so that the chunk computing the first answer token holds only the
  // question (ltri: its retrieval is then ranked by the question alone); 0 = no such split.
  virtual int64_t prompt_tail_chunk() const { return 0; }
  virtual void reset() = 0;
};

}  // namespace ltri
