#pragma once
// `streaming` (StreamingLLM, arXiv 2309.17453): init tokens (attention sinks) + the local
// window; everything older is dropped. The baseline that shows what retrieval adds.
#include "kv/streaming_base.hpp"

namespace ltri {

class StreamingPolicy : public StreamingPolicyBase {
 public:
  // shape: max_lag 0, no store, no band.
  StreamingPolicy(Backend& backend, const ModelConfig& config, const StreamingShape& shape)
      : StreamingPolicyBase(backend, config, shape) {}
  const char* name() const override { return "streaming"; }

 protected:
  void evict(int64_t layer) override;
};

}  // namespace ltri
