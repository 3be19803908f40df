// Session behaviour of the Llama forward pass on a small random model: chunking and decoding
// do not change the logits, bad inputs are refused with a clear error.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <unistd.h>

#include "core/error.hpp"
#include "kv/ltri_policy.hpp"
#include "model/llama_model.hpp"
#include "model/model.hpp"

namespace ltri {
namespace {

namespace fs = std::filesystem;

fs::path write_config(const std::string& name, const std::string& json) {
  const fs::path dir = fs::temp_directory_path() / ("ltri_model_test_" + name + "_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "config.json") << json;
  return dir;
}

const char* kTinyConfig = R"({"architectures": ["LlamaForCausalLM"], "vocab_size": 97,
  "hidden_size": 48, "intermediate_size": 80, "num_hidden_layers": 2, "num_attention_heads": 6,
  "num_key_value_heads": 2, "max_position_embeddings": 512, "rms_norm_eps": 1e-5,
  "rope_theta": 10000.0})";

std::unique_ptr<Model> tiny_random_model() {
  ModelLoadOptions o;
  o.random_weights = true;
  o.random_seed = 42;
  o.threads = 2;
  return Model::load(write_config("tiny", kTinyConfig).string(), o);
}

std::vector<int32_t> random_ids(size_t n, int32_t vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> ids(n);
  for (int32_t& id : ids) id = int32_t(rng() % uint32_t(vocab));
  return ids;
}

std::vector<float> all_logits(const Model& model, const std::vector<int32_t>& ids, int64_t chunk) {
  auto s = model.new_session({.max_context = 512, .chunk = chunk, .attention = {}, .observer = nullptr});
  std::vector<float> all(ids.size() * size_t(model.config().vocab_size));
  std::vector<float> last(size_t(model.config().vocab_size));
  s->forward(ids, last.data(), all.data());
  return all;
}

TEST(LlamaSession, chunk_size_does_not_change_logits) {
  const auto model = tiny_random_model();
  const auto ids = random_ids(70, 97, 1);
  const auto ref = all_logits(*model, ids, 70);
  for (int64_t chunk : {1, 7, 23, 64}) {  // 23: 70 = 3 x 23 + 1, the last chunks are 22 and 2
    const auto got = all_logits(*model, ids, chunk);
    for (size_t i = 0; i < ref.size(); ++i) ASSERT_NEAR(got[i], ref[i], 1e-4) << "chunk " << chunk;
  }
}

TEST(LlamaSession, a_prompt_never_ends_in_a_one_token_chunk) {
  // The streaming policies read a one-token chunk after a longer one as the first decode step.
  const auto model = tiny_random_model();
  const auto chunk_ends = [&](size_t n, int64_t chunk) {
    auto s = model->new_session({.max_context = 512, .chunk = chunk, .attention = {}, .observer = nullptr});
    std::vector<float> last(97);
    std::vector<int64_t> ends;
    s->forward(random_ids(n, 97, 3), last.data(), nullptr, [&](int64_t done, int64_t) { ends.push_back(done); });
    return ends;
  };
  EXPECT_EQ(chunk_ends(17, 8), (std::vector<int64_t>{8, 15, 17}));
  EXPECT_EQ(chunk_ends(9, 8), (std::vector<int64_t>{7, 9}));
  EXPECT_EQ(chunk_ends(16, 8), (std::vector<int64_t>{8, 16}));
  EXPECT_EQ(chunk_ends(1, 8), (std::vector<int64_t>{1}));
  EXPECT_EQ(chunk_ends(3, 1), (std::vector<int64_t>{1, 2, 3}));  // one-token chunks asked for
}

TEST(LlamaSession, ltri_question_chunk_prefills_the_prompt_tail_as_its_own_chunk) {
  const auto model = tiny_random_model();
  const auto run = [&](size_t n, bool question_chunk, int64_t n_local, std::vector<float>* last_logits) {
    AttentionOptions a;
    a.policy = "ltri";
    a.n_init = 4;
    a.n_local = n_local;
    a.budget = 16;
    a.span_min = 2;
    a.span_max = 8;
    a.question_tokens = 6;
    a.question_chunk = question_chunk;
    auto s = model->new_session({.max_context = 512, .chunk = 16, .attention = a, .observer = nullptr});
    std::vector<float> last(97);
    std::vector<int64_t> ends;
    s->forward(random_ids(n, 97, 5), last.data(), nullptr, [&](int64_t done, int64_t) { ends.push_back(done); });
    if (last_logits) *last_logits = last;
    return ends;
  };
  EXPECT_EQ(run(40, false, 32, nullptr), (std::vector<int64_t>{16, 32, 40}));
  EXPECT_EQ(run(40, true, 32, nullptr), (std::vector<int64_t>{16, 32, 34, 40}));
  // 33 tokens before the question: 16 + 17 would leave a lone token, so 16 + 15 + 2.
  EXPECT_EQ(run(39, true, 32, nullptr), (std::vector<int64_t>{16, 31, 33, 39}));
  EXPECT_EQ(run(7, true, 32, nullptr), (std::vector<int64_t>{7}));  // no room for a chunk before it
  EXPECT_EQ(run(8, true, 32, nullptr), (std::vector<int64_t>{2, 8}));
  // With a local window holding the whole prompt the split changes nothing: full attention's logits.
  std::vector<float> split, whole;
  run(40, true, 256, &split);
  auto s = model->new_session({.max_context = 512, .chunk = 16, .attention = {}, .observer = nullptr});
  whole.resize(97);
  s->forward(random_ids(40, 97, 5), whole.data(), nullptr);
  for (size_t i = 0; i < whole.size(); ++i) ASSERT_NEAR(split[i], whole[i], 1e-4) << i;
}

TEST(LlamaSession, ltri_builds_its_pinned_spans_once_a_prompt_when_the_prompt_ends) {
  const auto model = tiny_random_model();
  AttentionOptions a;
  a.policy = "ltri";
  a.n_init = 4;
  a.n_local = 32;
  a.budget = 16;
  a.span_min = 2;
  a.span_max = 8;
  auto s = model->new_session({.max_context = 512, .chunk = 16, .attention = a, .observer = nullptr});
  const auto& ltri = dynamic_cast<const LtriPolicy&>(dynamic_cast<const LlamaSession&>(*s).policy());
  std::vector<float> last(97);
  s->forward(random_ids(120, 97, 7), last.data());
  EXPECT_EQ(ltri.persistent_builds(), 1);  // at the prompt's end, before any decode step
  EXPECT_FALSE(ltri.persistent_units(0).empty());
  for (int32_t id : {3, 4, 5}) s->forward(std::span<const int32_t>(&id, 1), last.data());
  EXPECT_EQ(ltri.persistent_builds(), 1);
  s->forward(random_ids(40, 97, 8), last.data());  // a second turn: its own pinned spans
  EXPECT_EQ(ltri.persistent_builds(), 2);
  const int32_t id = 6;
  s->forward(std::span<const int32_t>(&id, 1), last.data());
  EXPECT_EQ(ltri.persistent_builds(), 2);
}

TEST(LlamaSession, decode_after_prefill_equals_prefill_of_whole_sequence) {
  const auto model = tiny_random_model();
  const int64_t vocab = model->config().vocab_size;
  const auto ids = random_ids(40, 97, 2);
  const auto ref = all_logits(*model, ids, 512);
  auto s = model->new_session({.max_context = 512, .chunk = 16, .attention = {}, .observer = nullptr});
  std::vector<float> last(static_cast<size_t>(vocab));
  s->forward(std::span<const int32_t>(ids.data(), 30), last.data());
  for (size_t t = 30; t < ids.size(); ++t) {
    s->forward(std::span<const int32_t>(&ids[t], 1), last.data());
    for (int64_t j = 0; j < vocab; ++j) ASSERT_NEAR(last[size_t(j)], ref[t * size_t(vocab) + size_t(j)], 1e-4);
  }
  EXPECT_EQ(s->n_past(), 40);
  s->reset();
  EXPECT_EQ(s->n_past(), 0);
}

TEST(LlamaSession, out_of_range_ids_and_context_overflow_are_refused) {
  const auto model = tiny_random_model();
  auto s = model->new_session({.max_context = 16, .chunk = 8, .attention = {}, .observer = nullptr});
  std::vector<float> last(97);
  const std::vector<int32_t> bad = {1, 2, 97};
  try {
    s->forward(bad, last.data());
    FAIL() << "id 97 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("token id 97"), std::string::npos) << e.what();
  }
  const auto long_prompt = random_ids(17, 97, 3);
  try {
    s->forward(long_prompt, last.data());
    FAIL() << "17 tokens accepted in a context of 16";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("exceeds the context limit of 16"), std::string::npos) << e.what();
  }
  EXPECT_THROW(s->forward(std::span<const int32_t>(), last.data()), Error);
  EXPECT_THROW(model->new_session({.max_context = 16, .chunk = 0, .attention = {}, .observer = nullptr}), Error);
}

TEST(LlamaSession, missing_weights_and_wrong_shapes_name_the_tensor) {
  // A checkpoint from the reference set with its config edited to another shape.
  const fs::path src = fs::path(LTRI_FIXTURES_DIR) / "tiny" / "llama_gqa_bf16";
  const fs::path dir = fs::temp_directory_path() / ("ltri_model_test_shape_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  fs::copy_file(src / "model.safetensors", dir / "model.safetensors", fs::copy_options::overwrite_existing);
  std::string config;
  {
    std::ifstream in(src / "config.json");
    config.assign(std::istreambuf_iterator<char>(in), {});
  }
  const std::string edited = std::regex_replace(config, std::regex("\"num_key_value_heads\": 2"), "\"num_key_value_heads\": 4");
  std::ofstream(dir / "config.json") << edited;
  try {
    Model::load(dir.string());
    FAIL() << "wrong shape accepted";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("model.safetensors: tensor 'model.layers.0.self_attn.k_proj.weight': expected shape [64, 64] (num_key_value_heads 4 x head_dim 16), got [32, 64]"), std::string::npos) << msg;
  }
  std::ofstream(dir / "config.json") << std::regex_replace(config, std::regex("\"tie_word_embeddings\": false"), "\"tie_word_embeddings\": false, \"vocab_size_unused\": 0");
  fs::remove(dir / "model.safetensors");
  EXPECT_THROW(Model::load(dir.string()), Error);
  EXPECT_THROW(Model::load((dir / "nope").string()), Error);
}

}  // namespace
}  // namespace ltri
