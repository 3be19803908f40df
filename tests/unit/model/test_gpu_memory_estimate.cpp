// The GPU memory estimate at Llama-3-8B's shape (bench/configs/llama-3-8b.json), against sizes
// worked out here from the published parameter count and the KV layout (f32 k and v per layer,
// token and KV head), and the one-line refusal when the free memory is short.
#include <gtest/gtest.h>

#include <string>

#include "core/error.hpp"
#include "io/model_config.hpp"
#include "model/gpu_memory_estimate.hpp"
#include "test_paths.hpp"

namespace ltri {
namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

ModelConfig llama_3_8b() { return load_model_config(test::source_dir() + "/bench/configs/llama-3-8b.json"); }

TEST(GpuMemoryEstimate, llama_3_8b_weights_in_bf16_and_f32) {
  const ModelConfig c = llama_3_8b();
  // Meta's figure for Llama-3-8B: 8,030,261,248 parameters, of which the 65 RMSNorm weight
  // vectors (2 per layer + the final one) of 4096 stay f32 and the rest are matrices.
  const size_t params = 8030261248ull, vectors = 65 * 4096;
  EXPECT_EQ(llama_weight_bytes(c, DType::BF16), (params - vectors) * 2 + vectors * 4);
  EXPECT_EQ(llama_weight_bytes(c, DType::F32), params * 4);
  EXPECT_NEAR(double(llama_weight_bytes(c, DType::BF16)) / kGiB, 14.96, 0.01);
}

TEST(GpuMemoryEstimate, full_attention_holds_the_whole_context) {
  const ModelConfig c = llama_3_8b();
  SessionOptions s;
  s.max_context = 8192;
  // 32 layers x 8192 tokens x (k and v) x 8 KV heads x 128 dims x 4 bytes = 2 GiB.
  EXPECT_EQ(llama_kv_device_bytes(c, s), size_t(32) * 8192 * 2 * 8 * 128 * 4);
  s.max_context = 0;  // full with no -c: max_position_embeddings (131072) = 32 GiB
  EXPECT_DOUBLE_EQ(double(llama_kv_device_bytes(c, s)) / kGiB, 32.0);
}

TEST(GpuMemoryEstimate, streaming_policies_hold_a_bounded_window_whatever_the_context) {
  const ModelConfig c = llama_3_8b();
  const size_t per_token_all_layers = size_t(32) * 2 * 8 * 128 * 4;
  SessionOptions s;
  s.chunk = 512;
  s.attention.policy = "ltri";
  s.attention.n_init = 64;
  s.attention.n_local = 2048;
  s.attention.budget = 2048;
  s.attention.span_max = 256;
  s.attention.span_cache_tokens = 8192;
  // init 64 + window buffer 2 x (local 2048 + span lag 255 + chunk 512) + two retrieved
  // buffers of the decode capacity max(2048, min(8192, 2 x 2048)) = 4096.
  EXPECT_EQ(llama_kv_device_bytes(c, s), size_t(64 + 2 * 2815 + 2 * 4096) * per_token_all_layers);
  s.attention.policy = "streaming";  // no lag, nothing retrieved
  EXPECT_EQ(llama_kv_device_bytes(c, s), size_t(64 + 2 * 2560) * per_token_all_layers);
  s.max_context = 1000;  // a context shorter than the window bounds it
  EXPECT_EQ(llama_kv_device_bytes(c, s), size_t(1000) * per_token_all_layers);
}

TEST(GpuMemoryEstimate, scratch_is_one_chunk_of_activations_and_a_row_of_logits_plus_headroom) {
  const ModelConfig c = llama_3_8b();
  SessionOptions s;
  s.max_context = 8192;
  s.chunk = 512;
  // Per token: id + x, h (4096) + q, attn (4096) + k, v (1024) + gate, up (14336); logits (128256)
  // for the last token only.
  const size_t activations = (size_t(512) * (1 + 2 * 4096 + 2 * 4096 + 2 * 1024 + 2 * 14336) + 128256) * 4;
  // The tensor-core attention's bf16 K and V of every visible key: 8192 x 8 KV heads x 128, and
  // the wgmma kernel's padding of up to 8 segments to multiples of 64 keys.
  const size_t attention = size_t(2) * (8192 + 8 * 63) * 1024 * 2;
  const size_t scratch = llama_scratch_bytes(c, s);
  EXPECT_GE(scratch, activations + attention + kGpuHeadroomBytes);
  // The rest (bf16 copy of a 512 x 14336 input: 14 MiB; RoPE table 8192 x 128 floats: 4 MiB)
  // is small.
  EXPECT_LT(scratch, activations + attention + kGpuHeadroomBytes + (size_t(32) << 20));
  // ltri adds the band's workspace, of it (32 heads, 512 queries, 256 wide) f32 probabilities
  // (16 MiB) and the rotated queries (8 MiB).
  SessionOptions streaming = s;
  streaming.attention.policy = "ltri";
  const size_t band = size_t(32) * 512 * 256 * 4 + size_t(512) * 4096 * 4;
  // And two-pass attention's buffers: both passes' (512 x 32 rows) outputs with their (max,
  // sum), 2 x 8.1 MiB, and the early pass's bf16 copy of init, window and chunk (at least 128 +
  // 4096 + 512 keys of 8 KV heads x 128, K and V: 9.3 MiB).
  const size_t early = size_t(2) * 512 * 32 * (128 + 2) * 4 + size_t(2) * (128 + 4096 + 512) * 1024 * 2;
  EXPECT_GE(llama_scratch_bytes(c, streaming), activations + band + early + kGpuHeadroomBytes);
  const GpuMemoryEstimate e = estimate_gpu_memory(c, DType::BF16, s);
  EXPECT_EQ(e.weights, llama_weight_bytes(c, DType::BF16));
  EXPECT_EQ(e.kv, llama_kv_device_bytes(c, s));
  EXPECT_EQ(e.scratch, scratch);
  EXPECT_EQ(e.total(), e.weights + e.kv + e.scratch);
}

TEST(GpuMemoryEstimate, too_little_free_memory_is_one_line_naming_the_parts) {
  GpuMemoryEstimate need;
  need.weights = size_t(15.0 * kGiB);
  need.kv = size_t(2.9 * kGiB);
  need.scratch = size_t(0.3 * kGiB);
  EXPECT_NO_THROW(check_gpu_memory(need, need.total(), 0));
  try {
    check_gpu_memory(need, size_t(7.5 * kGiB), 0);
    FAIL() << "no error with 7.5 GiB free";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "--device cuda: needs 18.2 GiB of GPU memory (weights 15.0 + KV 2.9 + scratch 0.3) but GPU 0 has "
              "7.5 GiB free");
  }
  EXPECT_THROW(check_gpu_memory(need, need.total() - 1, 1), Error);
}

}  // namespace
}  // namespace ltri
