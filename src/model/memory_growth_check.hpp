#pragma once
// The refusals of a prompt whose streaming KV would outgrow the memory left for it
// (KvPolicy::device_growth, host_growth): one line that names what grows, by how much a token,
// and what is free, thrown before the prefill or as soon as the growth is measured, instead of
// an allocation failure (or the kernel's OOM killer) minutes into the prompt. Pure functions,
// tested without a GPU; LlamaSession::forward calls them.
#include <cstddef>
#include <cstdint>

#include "kv/kv_policy.hpp"

namespace ltri {

// Throws ltri::Error when growth.bytes exceeds free_bytes of GPU `device`:
// "--device cuda: the ltri span index would outgrow GPU memory: the 2084352 prompt tokens left
// (of 2097152) need about 120.6 GiB more (48.5 KB a token, measured) but GPU 0 has 120.0 GiB free
// (...)".
void check_gpu_growth(const KvPolicy::MemoryGrowth& growth, const char* policy, int64_t tokens_left,
                      int64_t prompt_tokens, size_t free_bytes, int device);

// Throws ltri::Error when growth.bytes exceeds available_bytes of host memory (MemAvailable):
// "the ltri store would outgrow host memory: the 4194304 prompt tokens left (of 4194304) need
// about 372.1 GiB more (93.0 KB a token, at least) but the host has 120.2 GiB available (...)".
void check_host_growth(const KvPolicy::MemoryGrowth& growth, const char* policy, int64_t tokens_left,
                       int64_t prompt_tokens, size_t available_bytes);

}  // namespace ltri
