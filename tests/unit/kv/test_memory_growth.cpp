// The streaming policies' memory growth (KvPolicy::device_growth, host_growth): the index
// mirrored on the device and the store in host memory grow with every stored token, so a prompt
// that cannot fit must stop with one line before the prefill (the index at its floor) or as soon
// as the index density is measured, not at an allocation failure (or the OOM killer) later. The
// sizes are checked against the stores' own counts and formats; the session's refusals with a
// backend that reports a device and a host of given free sizes.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <utility>

#include <unistd.h>

#include "core/error.hpp"
#include "io/model_config.hpp"
#include "kernels/cpu/cpu_backend.hpp"
#include "kv/streaming_base.hpp"
#include "kv/unit_index_mirror.hpp"
#include "kv_test_util.hpp"
#include "model/llama_model.hpp"
#include "model/llama_weights.hpp"

namespace ltri {
namespace {

AttentionOptions small(const std::string& policy) {
  AttentionOptions o;
  o.policy = policy;
  o.n_init = 4;
  o.n_local = 24;
  o.budget = 16;
  o.block_size = 8;
  o.block_repr = 2;
  o.span_min = 2;
  o.span_max = 12;
  o.index = "static";  // at least 2 vectors a span of 2+ tokens: a density of at least 1/6
  o.index_static = 2;
  return o;
}

// A mirrored vector of policy_test_config (2 KV heads x head_dim 8, f32 index) and its unit's
// boundary and token range (int32 each: 12 bytes).
constexpr double kVectorBytes = 2 * 8 * 4 + 12;
constexpr int64_t kLayers = 2;
// The mirror's growth slack and, while one layer's mirror grows, its old buffer.
constexpr double kMirrorFactor = UnitIndexMirror::kGrowth * (1.0 + 1.0 / kLayers);

TEST(MemoryGrowth, before_any_store_the_policy_counts_its_floor) {
  for (const auto& [policy, floor] : {std::pair<std::string, double>{"ltri", 1.0 / 12}, {"infllm", 1.0 / 8}}) {
    test::StreamDriver d(test::policy_test_config(), small(policy), 16);
    const KvPolicy::MemoryGrowth g = d.policy().device_growth(1000);
    EXPECT_FALSE(g.measured) << policy;
    EXPECT_DOUBLE_EQ(g.bytes_per_token, floor * kVectorBytes * kLayers) << policy;
    // Within a byte: the policy multiplies in another order, and the product is truncated.
    EXPECT_NEAR(double(g.bytes), floor * 1000 * kLayers * kVectorBytes * kMirrorFactor, 1.0) << policy;
    EXPECT_STREQ(g.what, policy == "ltri" ? "span index" : "block index");
  }
  test::StreamDriver streaming(test::policy_test_config(), small("streaming"), 16);
  EXPECT_EQ(streaming.policy().device_growth(1000).bytes, 0u);  // nothing grows
}

TEST(MemoryGrowth, a_layer_scored_by_one_retrieval_head_mirrors_one_kv_head) {
  // --attn-score-heads retrieval: layer 0 scores with head 3 (KV head 1), layer 1 has no
  // retrieval head and scores with the mean of heads (both KV heads). A mirrored vector is then
  // one KV head's row in layer 0 and two in layer 1: (8 * 4 + 12 + 2 * 8 * 4 + 12) / 2 bytes on
  // average, against 2 * 8 * 4 + 12 when every layer scores with the mean.
  const std::filesystem::path heads = std::filesystem::temp_directory_path() /
                                      ("ltri_growth_heads_" + std::to_string(::getpid()) + ".json");
  std::ofstream(heads) << R"({"format": "ltri-heads-1", "n_layers": 2, "n_heads": 4,
      "scores": [[0, 0, 0, 0.9], [0, 0, 0, 0]], "threshold": 0.1})";
  AttentionOptions o = small("ltri");
  o.heads_file = heads.string();
  o.score_heads = "retrieval";
  test::StreamDriver d(test::policy_test_config(), o, 16);
  const double mean_bytes = (8 * 4 + 12 + 2 * 8 * 4 + 12) / 2.0;
  EXPECT_DOUBLE_EQ(d.policy().device_growth(1000).bytes_per_token, 1.0 / 12 * mean_bytes * kLayers);
  std::filesystem::remove(heads);
}

TEST(MemoryGrowth, once_the_layers_have_stored_enough_the_density_is_the_stores) {
  // The counters come from the store jobs, inline or on worker threads.
  for (const auto& [policy, async_store] : {std::pair<std::string, const char*>{"ltri", "off"}, {"ltri", "on"},
                                           {"infllm", "off"}, {"infllm", "on"}}) {
    AttentionOptions o = small(policy);
    o.async_store = async_store;
    test::StreamDriver d(test::policy_test_config(), o, 16);
    const auto& base = dynamic_cast<const StreamingPolicyBase&>(d.policy());
    // Until every layer has stored kGrowthSampleTokens on average, the floor stands.
    while (d.policy().n_past() < StreamingPolicyBase::kGrowthSampleTokens) d.feed(16);
    EXPECT_FALSE(d.policy().device_growth(1000).measured) << policy;
    while (d.policy().n_past() < StreamingPolicyBase::kGrowthSampleTokens + 64) d.feed(16);
    int64_t vectors = 0, tokens = 0;
    for (int64_t l = 0; l < kLayers; ++l) {
      vectors += base.store(l).n_vectors();
      tokens += base.store(l).end_token() - 4;  // the store starts after the 4 init tokens
    }
    ASSERT_GE(tokens, kLayers * StreamingPolicyBase::kGrowthSampleTokens) << policy;
    const KvPolicy::MemoryGrowth g = d.policy().device_growth(1000);
    EXPECT_TRUE(g.measured) << policy;
    const double density = double(vectors) / double(tokens);
    if (policy == "infllm") {
      EXPECT_DOUBLE_EQ(density, 1.0 / 8);  // one vector per block
    } else {
      EXPECT_GE(density, 1.0 / 6);  // 2 per span of 2+ tokens, or 1 per 1-token span
    }
    EXPECT_DOUBLE_EQ(g.bytes_per_token, density * kVectorBytes * kLayers) << policy;
    // On the CPU the mirrors stay empty: the growth is the whole index, stored and to come.
    const double expected = (double(vectors) + density * 1000 * kLayers) * kVectorBytes * kMirrorFactor;
    EXPECT_NEAR(double(g.bytes), expected, 1.0) << policy;
    // A reset forgets the measurement with the tokens.
    d.policy().reset();
    EXPECT_FALSE(d.policy().device_growth(1000).measured) << policy;
  }
}

TEST(MemoryGrowth, the_store_grows_by_its_rows_index_and_units_a_token_plus_a_slab) {
  // K and V rows of 2 KV heads x head_dim 8 per token and layer: f32 64 + 64 bytes, int8 16 + 16
  // values and 2 + 2 scales of 4 bytes; index vectors f32 (64 bytes) with an f32 store, bf16 (32)
  // with int8 ("auto"); a StoredUnit entry per vector at most.
  for (const auto& [host_kv, kv_bytes, vector_bytes] :
       {std::tuple<const char*, double, double>{"f32", 128, 64}, {"int8", 48, 32}}) {
    AttentionOptions o = small("ltri");
    o.host_kv = host_kv;
    test::StreamDriver d(test::policy_test_config(), o, 16);
    const KvPolicy::MemoryGrowth before = d.policy().host_growth(1000);
    EXPECT_FALSE(before.measured) << host_kv;
    EXPECT_STREQ(before.what, "store");
    const double floor_per_token = (kv_bytes + (vector_bytes + double(sizeof(StoredUnit))) / 12) * kLayers;
    EXPECT_DOUBLE_EQ(before.bytes_per_token, floor_per_token) << host_kv;
    const double slabs = kv_bytes * double(ContextStore::kMaxSlabTokens) * kLayers;
    EXPECT_EQ(before.bytes, size_t(floor_per_token * 1000 + slabs)) << host_kv;

    while (d.policy().n_past() < StreamingPolicyBase::kGrowthSampleTokens + 64) d.feed(16);
    const auto& base = dynamic_cast<const StreamingPolicyBase&>(d.policy());
    int64_t vectors = 0, tokens = 0;
    for (int64_t l = 0; l < kLayers; ++l) {
      vectors += base.store(l).n_vectors();
      tokens += base.store(l).end_token() - 4;
    }
    const KvPolicy::MemoryGrowth after = d.policy().host_growth(1000);
    EXPECT_TRUE(after.measured) << host_kv;
    const double density = double(vectors) / double(tokens);
    EXPECT_DOUBLE_EQ(after.bytes_per_token, (kv_bytes + density * (vector_bytes + double(sizeof(StoredUnit)))) * kLayers)
        << host_kv;
    // What the stores hold grows as predicted (a slab's rounding aside): feed 4096 more tokens.
    const size_t held_before = d.policy().host_bytes();
    const KvPolicy::MemoryGrowth next = d.policy().host_growth(4096);
    for (int i = 0; i < 256; ++i) d.feed(16);
    const size_t grown = d.policy().host_bytes() - held_before;
    EXPECT_LE(grown, next.bytes) << host_kv;
    EXPECT_GE(double(grown), 0.5 * next.bytes_per_token * 4096) << host_kv;
  }
  test::StreamDriver streaming(test::policy_test_config(), small("streaming"), 16);
  EXPECT_EQ(streaming.policy().host_growth(1000).bytes, 0u);  // nothing is stored
}

// The CPU backend, reporting a device with `free` bytes free and a host with `host` available.
class SizedDeviceBackend : public CpuBackend {
 public:
  SizedDeviceBackend() : CpuBackend(2) {}
  std::optional<size_t> device_free_bytes() const override { return free; }
  size_t host_available_bytes() const override { return host; }
  size_t free = size_t(1) << 40;
  size_t host = size_t(1) << 40;
};

struct SizedModel {
  SizedDeviceBackend* backend = nullptr;
  std::unique_ptr<LlamaModel> model;
};

SizedModel load_sized(const std::string& name) {
  const std::string dir = test::tiny_model_dir(name);
  const ModelConfig config = load_model_config(dir + "/config.json");
  auto backend = std::make_unique<SizedDeviceBackend>();
  SizedModel m;
  m.backend = backend.get();
  LlamaWeights weights = load_llama_weights(dir, config, *backend);
  m.model = std::make_unique<LlamaModel>(config, std::move(backend), std::move(weights), dir);
  return m;
}

TEST(MemoryGrowth, a_prompt_whose_index_cannot_fit_stops_with_one_line_early) {
  SizedModel m = load_sized("llama_gqa_bf16");
  const ModelConfig& c = m.model->config();
  const int64_t n = 5000;
  const auto ids = test::random_ids(size_t(n), c.vocab_size, 21);
  SessionOptions so;
  so.chunk = 16;
  so.attention = small("ltri");
  auto session = m.model->new_session(so);  // checked with plenty free
  std::vector<float> logits(size_t(c.vocab_size));
  const KvPolicy& policy = dynamic_cast<const LlamaSession&>(*session).policy();
  // A mirrored vector of this model (f32 index, as the store is f32) over all layers.
  const double layer_bytes = double(c.num_hidden_layers) * double(c.num_key_value_heads * c.head_dim * 4 + 12);
  const double floor = 1.0 / 12, growth = UnitIndexMirror::kGrowth * (1.0 + 1.0 / double(c.num_hidden_layers));

  // Enough: the whole prompt runs, and tells its index's density.
  session->forward(ids, logits.data());
  EXPECT_EQ(session->n_past(), n);
  const KvPolicy::MemoryGrowth after = policy.device_growth(1);
  ASSERT_TRUE(after.measured);
  const double density = after.bytes_per_token / layer_bytes;
  ASSERT_GE(density, 2 * floor);  // 2 vectors a span of 2 to 12 tokens, 1 a span of 1

  // Less than the floor for the prompt: refused before the first chunk.
  session->reset();
  m.backend->free = size_t(double(n) * floor * layer_bytes * growth / 2);
  try {
    session->forward(ids, logits.data());
    FAIL() << "expected a refusal";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("the ltri span index would outgrow GPU memory"), std::string::npos) << what;
    EXPECT_NE(what.find("the 5000 prompt tokens left (of 5000)"), std::string::npos) << what;
    EXPECT_NE(what.find("at least"), std::string::npos) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
  }
  EXPECT_EQ(session->n_past(), 0);

  // Room for what the floor promises up to the measurement (the vectors stored by then and the
  // floor for the rest), not for the density the index turns out to have: refused once the
  // layers have stored enough to measure it, well before the prompt's end.
  session->reset();
  const double measured_at = double(StreamingPolicyBase::kGrowthSampleTokens + so.attention.n_local + 64);
  const double floor_then = density * measured_at + floor * (double(n) - measured_at);
  const double measured_then = density * double(n - so.attention.n_local);
  ASSERT_LT(floor_then * 1.1, measured_then * 0.9);
  m.backend->free = size_t((floor_then + measured_then) / 2 * layer_bytes * growth);
  try {
    session->forward(ids, logits.data());
    FAIL() << "expected a refusal";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("measured"), std::string::npos) << what;
    EXPECT_NE(what.find("(of 5000)"), std::string::npos) << what;
  }
  EXPECT_GE(session->n_past(), StreamingPolicyBase::kGrowthSampleTokens);
  EXPECT_LT(session->n_past(), 3000);
}

TEST(MemoryGrowth, a_prompt_whose_store_cannot_fit_in_host_memory_stops_before_it_starts) {
  SizedModel m = load_sized("llama_gqa_bf16");
  const ModelConfig& c = m.model->config();
  const auto ids = test::random_ids(3000, c.vocab_size, 22);
  SessionOptions so;
  so.chunk = 16;
  so.attention = small("infllm");
  auto session = m.model->new_session(so);
  std::vector<float> logits(size_t(c.vocab_size));
  const KvPolicy::MemoryGrowth growth = dynamic_cast<const LlamaSession&>(*session).policy().host_growth(3000);
  m.backend->host = growth.bytes - 1;
  try {
    session->forward(ids, logits.data());
    FAIL() << "expected a refusal";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("the infllm store would outgrow host memory: the 3000 prompt tokens left (of 3000)"),
              std::string::npos) << what;
    EXPECT_NE(what.find("--attn-host-kv int8"), std::string::npos) << what;
  }
  EXPECT_EQ(session->n_past(), 0);
  m.backend->host = growth.bytes;  // just enough
  session->forward(ids, logits.data());
  EXPECT_EQ(session->n_past(), 3000);
}

}  // namespace
}  // namespace ltri
