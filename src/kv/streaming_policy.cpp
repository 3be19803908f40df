#include "kv/streaming_policy.hpp"

namespace ltri {

void StreamingPolicy::evict(int64_t layer) {
  const int64_t overflow = window().size(layer) - shape_.n_local;
  if (overflow > 0) drop_front(layer, overflow);
}

}  // namespace ltri
