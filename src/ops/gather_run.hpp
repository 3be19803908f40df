#pragma once
// One run of Backend::gather_rows_stable: the copies and uploads of a retrieved-KV load
// (kv/retrieved_kv.hpp), handed to the backend as one batch.
#include <cstdint>

namespace ltri {

// n_values f32 values written at dst (backend memory), read from device_src (backend memory,
// f32) when set, else from host_src (host memory unchanged until the backend's next
// synchronisation, as for Backend::upload_stable) in the batch's host dtype: f32, bf16 bits, or
// int8 with host_scales (one f32 scale per scale_width values).
struct GatherRun {
  float* dst = nullptr;
  int64_t n_values = 0;
  const float* device_src = nullptr;
  const void* host_src = nullptr;
  const float* host_scales = nullptr;
};

}  // namespace ltri
