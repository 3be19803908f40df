#pragma once
// Facts about a model derived from its config alone (before any weight is read), and the
// human-readable sizes the reports print.
#include <cstddef>
#include <cstdint>
#include <string>

#include "io/model_config.hpp"

namespace ltri {

// Parameters the config describes (embeddings, every layer, final norm, untied LM head).
int64_t count_parameters(const ModelConfig& config);

// The CPU backend keeps weights as f32 in host memory; throws ltri::Error naming `what` when
// they would not fit in the memory the machine has available now, instead of letting the
// kernel kill the process halfway through loading. Does nothing when the available memory
// cannot be read. For the CPU backend only: the CUDA backend holds one tensor at a time on the
// host (bf16 ones straight from the mapped file) and checks device memory itself
// (model/gpu_memory_estimate.hpp).
void check_weights_fit_in_memory(const ModelConfig& config, const std::string& what);

// "15.7 M", "8.03 B"
std::string format_param_count(int64_t n);
// "63.0 MiB", "29.92 GiB"
std::string format_bytes(double bytes);

}  // namespace ltri
