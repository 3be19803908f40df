#include "runtime/model_info.hpp"

#include <cstdio>

#include "core/error.hpp"
#include "core/memory_stats.hpp"

namespace ltri {

int64_t count_parameters(const ModelConfig& c) {
  const int64_t hidden = c.hidden_size, hd = c.head_dim;
  const int64_t q_out = c.num_attention_heads * hd, kv_out = c.num_key_value_heads * hd;
  int64_t per_layer = 2 * hidden                           // input and post-attention norms
                      + q_out * hidden + 2 * kv_out * hidden  // q, k, v projections
                      + hidden * q_out                        // o projection
                      + 3 * c.intermediate_size * hidden;     // gate, up, down
  if (c.attention_bias) per_layer += q_out + 2 * kv_out;
  if (c.mlp_bias) per_layer += 2 * c.intermediate_size + hidden;
  int64_t n = c.vocab_size * hidden + c.num_hidden_layers * per_layer + hidden;
  if (!c.tie_word_embeddings) n += c.vocab_size * hidden;
  return n;
}

void check_weights_fit_in_memory(const ModelConfig& config, const std::string& what) {
  const size_t available = available_memory_bytes();
  if (available == 0) return;
  const double needed = double(count_parameters(config)) * sizeof(float);
  if (needed > double(available)) {
    fail(what, ": ", format_param_count(count_parameters(config)), " parameters need ",
         format_bytes(needed), " as f32 weights, but only ", format_bytes(double(available)),
         " of memory is available");
  }
}

std::string format_param_count(int64_t n) {
  char text[32];
  if (n >= 1000000000) {
    std::snprintf(text, sizeof text, "%.2f B", double(n) / 1e9);
  } else if (n >= 1000000) {
    std::snprintf(text, sizeof text, "%.1f M", double(n) / 1e6);
  } else if (n >= 1000) {
    std::snprintf(text, sizeof text, "%.1f K", double(n) / 1e3);
  } else {
    std::snprintf(text, sizeof text, "%lld", static_cast<long long>(n));
  }
  return text;
}

std::string format_bytes(double bytes) {
  char text[32];
  const double kib = 1024.0, mib = kib * 1024.0, gib = mib * 1024.0;
  if (bytes >= gib) {
    std::snprintf(text, sizeof text, "%.2f GiB", bytes / gib);
  } else if (bytes >= mib) {
    std::snprintf(text, sizeof text, "%.1f MiB", bytes / mib);
  } else if (bytes >= kib) {
    std::snprintf(text, sizeof text, "%.1f KiB", bytes / kib);
  } else {
    std::snprintf(text, sizeof text, "%.0f B", bytes);
  }
  return text;
}

}  // namespace ltri
