// End to end on the GPU: the bundled demo model (models/ltri-demo) run with the CUDA backend
// gives the same greedy tokens as with the CPU backend, and logits within f32 tolerance, for
// full attention and for the streaming policies with windows small enough that they evict,
// retrieve and re-place KV (which they do only through Backend memory ops, so this also checks
// the CUDA backend's copy/upload/download under the policies). Skips when no GPU is present.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "core/mapped_file.hpp"
#include "cuda_test_util.hpp"
#include "runtime/engine.hpp"
#include "test_paths.hpp"

namespace ltri {
namespace {

using test::scaled_max_error;

// Logits after 6 layers and several chunks, summed in a different order on each device.
constexpr double kLogitTolerance = 1e-3;
constexpr int kGenerated = 16;

class CudaModel : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (cuda_device_count() == 0) return;
    const std::string dir = test::source_dir() + "/models/ltri-demo";
    ModelLoadOptions cpu_options;
    cpu_options.threads = 0;  // all cores: this runs on the GPU machine
    cpu_ = std::make_unique<Engine>(Engine::load(dir, cpu_options));
    ModelLoadOptions gpu_options;
    gpu_options.device = Device::Cuda;
    gpu_ = std::make_unique<Engine>(Engine::load(dir, gpu_options));
  }
  static void TearDownTestSuite() {
    cpu_.reset();
    gpu_.reset();
  }

  // A few prompts: a short instruction-like one and two cuts of held-out prose (~450 tokens).
  static std::vector<std::vector<int32_t>> prompts() {
    const std::string prose = read_text_file(test::source_dir() + "/data/heldout/austen_persuasion.txt");
    std::vector<std::vector<int32_t>> out;
    out.push_back(cpu_->tokenizer().encode("The pass key is 71942. Remember it. What is the pass key? The pass key is"));
    out.push_back(cpu_->tokenizer().encode(prose.substr(20000, 2000)));
    out.push_back(cpu_->tokenizer().encode(prose.substr(90000, 2000) + "\n\nWho is mentioned above?"));
    return out;
  }

  // Runs `prompt` then kGenerated greedy steps on both devices, comparing logits at every step
  // and the chosen tokens.
  static void expect_same_generation(const std::vector<int32_t>& prompt, const SessionOptions& options,
                                     const std::string& label) {
    const int64_t vocab = cpu_->model().config().vocab_size;
    const std::unique_ptr<Session> cpu = cpu_->model().new_session(options);
    const std::unique_ptr<Session> gpu = gpu_->model().new_session(options);
    std::vector<float> cpu_all(prompt.size() * size_t(vocab)), gpu_all(prompt.size() * size_t(vocab));
    std::vector<float> cpu_last(static_cast<size_t>(vocab)), gpu_last(static_cast<size_t>(vocab));
    cpu->forward(prompt, cpu_last.data(), cpu_all.data());
    gpu->forward(prompt, gpu_last.data(), gpu_all.data());
    EXPECT_LT(scaled_max_error(gpu_all, cpu_all), kLogitTolerance) << label << ": prompt logits";

    std::vector<int32_t> cpu_tokens, gpu_tokens;
    for (int step = 0; step < kGenerated; ++step) {
      const auto argmax = [](const std::vector<float>& v) {
        return int32_t(std::max_element(v.begin(), v.end()) - v.begin());
      };
      cpu_tokens.push_back(argmax(cpu_last));
      gpu_tokens.push_back(argmax(gpu_last));
      if (cpu_tokens.back() != gpu_tokens.back()) break;
      const int32_t next = cpu_tokens.back();
      cpu->forward({&next, 1}, cpu_last.data());
      gpu->forward({&next, 1}, gpu_last.data());
      EXPECT_LT(scaled_max_error(gpu_last, cpu_last), kLogitTolerance) << label << ": decode step " << step;
    }
    EXPECT_EQ(gpu_tokens, cpu_tokens) << label << ": greedy tokens";
  }

  static std::unique_ptr<Engine> cpu_;
  static std::unique_ptr<Engine> gpu_;
};

std::unique_ptr<Engine> CudaModel::cpu_;
std::unique_ptr<Engine> CudaModel::gpu_;

TEST_F(CudaModel, full_attention_gives_the_cpu_tokens_and_logits) {
  LTRI_SKIP_WITHOUT_CUDA();
  SessionOptions options;
  options.max_context = 2048;
  options.chunk = 64;  // several prefill chunks: the past segment grows between them
  int i = 0;
  for (const auto& prompt : prompts()) expect_same_generation(prompt, options, "full, prompt " + std::to_string(i++));
}

TEST_F(CudaModel, streaming_policies_that_evict_give_the_cpu_tokens_and_logits) {
  LTRI_SKIP_WITHOUT_CUDA();
  for (const char* policy : {"streaming", "infllm", "ltri"}) {
    SessionOptions options;
    options.chunk = 32;
    options.attention.policy = policy;
    options.attention.n_init = 4;
    options.attention.n_local = 96;  // prompts of ~450 tokens: most of them leave the window
    options.attention.budget = 64;
    options.attention.block_size = 16;
    options.attention.span_max = 48;
    int i = 0;
    for (const auto& prompt : prompts()) {
      expect_same_generation(prompt, options, std::string(policy) + ", prompt " + std::to_string(i++));
    }
  }
}

}  // namespace
}  // namespace ltri
