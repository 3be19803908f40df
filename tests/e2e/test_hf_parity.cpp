// Logits parity with Hugging Face transformers: each checkpoint under tests/fixtures/tiny/ was
// made by tests/reference/make_tiny_models.py together with transformers' f32 logits for a
// 64-token prompt and its 16-token greedy continuation. The engine must reproduce both.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/mapped_file.hpp"
#include "model/model.hpp"
#include "test_paths.hpp"

namespace ltri {
namespace {

namespace fs = std::filesystem;

std::vector<fs::path> reference_dirs() {
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(fs::path(test::fixtures_dir()) / "tiny")) {
    if (fs::exists(e.path() / "reference.json")) dirs.push_back(e.path());
  }
  std::sort(dirs.begin(), dirs.end());
  return dirs;
}

int32_t argmax(const std::vector<float>& v) {
  return int32_t(std::max_element(v.begin(), v.end()) - v.begin());
}

TEST(HfParity, logits_and_greedy_continuations_match_transformers) {
  const std::vector<fs::path> dirs = reference_dirs();
  ASSERT_GE(dirs.size(), 5u) << "reference checkpoints missing under tests/fixtures/tiny";
  for (const fs::path& dir : dirs) {
    SCOPED_TRACE(dir.filename().string());
    const auto ref = nlohmann::json::parse(read_text_file((dir / "reference.json").string()));
    const std::vector<int32_t> prompt = ref["prompt_ids"].get<std::vector<int32_t>>();
    const std::vector<std::vector<float>> want = ref["logits"].get<std::vector<std::vector<float>>>();
    const std::vector<int32_t> want_greedy = ref["greedy_ids"].get<std::vector<int32_t>>();

    ModelLoadOptions load;
    load.threads = 2;
    const std::unique_ptr<Model> model = Model::load(dir.string(), load);
    const int64_t vocab = model->config().vocab_size;
    // Chunk 16 splits the 64-token prompt into four chunks: the cache path is exercised.
    const std::unique_ptr<Session> session = model->new_session({.max_context = 256, .chunk = 16, .attention = {}, .observer = nullptr});
    std::vector<float> all(prompt.size() * size_t(vocab));
    std::vector<float> last(static_cast<size_t>(vocab));
    session->forward(prompt, last.data(), all.data());

    double max_err = 0.0, scale = 1.0;
    for (size_t i = 0; i < prompt.size(); ++i) {
      for (int64_t j = 0; j < vocab; ++j) {
        max_err = std::max(max_err, std::abs(double(all[i * vocab + j]) - want[i][size_t(j)]));
        scale = std::max(scale, std::abs(double(want[i][size_t(j)])));
      }
    }
    std::printf("  %-24s max |logit error| %.3g (logit scale %.3g, relative %.3g)\n",
                dir.filename().c_str(), max_err, scale, max_err / scale);
    EXPECT_LE(max_err / scale, 1e-4);

    std::vector<int32_t> greedy;
    for (size_t step = 0; step < want_greedy.size(); ++step) {
      const int32_t next = argmax(last);
      greedy.push_back(next);
      session->forward(std::span<const int32_t>(&next, 1), last.data());
    }
    EXPECT_EQ(greedy, want_greedy);
  }
}

}  // namespace
}  // namespace ltri
