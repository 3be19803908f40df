// The per-model files of the ltri policy: the heads and calibration readers (shape checks,
// one-line errors), and how the factory uses them (explicit files must exist; missing default
// files fall back; --attn-theta overrides the calibration).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "core/error.hpp"
#include "kv/ltri_policy.hpp"
#include "kv/policy_files.hpp"
#include "kv_test_util.hpp"

namespace ltri {
namespace {

namespace fs = std::filesystem;

class PolicyFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("ltri_kv_files_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
    return (dir_ / name).string();
  }
  static std::string error_of(const std::function<void()>& f) {
    try {
      f();
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  }
  fs::path dir_;
};

const char* kHeads = R"({"format": "ltri-heads-1", "model": "m", "n_layers": 2, "n_heads": 4,
  "scores": [[0.0, 0.05, 0.02, 0.0], [0.1, 0.7, 0.7, 0.2]], "threshold": 0.1, "samples": 8})";
const char* kCalibration = R"({"format": "ltri-calibration-1", "theta": [0.25, 0.75], "phi": 0.3,
  "span_min": 4, "span_max": 256, "f1": [0.5, 0.6]})";

TEST_F(PolicyFiles, heads_file_is_read_and_checked_against_the_model) {
  const RetrievalHeads h = load_retrieval_heads(write("h.json", kHeads), 2, 4);
  EXPECT_EQ(h.best_head(0), 1);
  EXPECT_FLOAT_EQ(h.best_score(0), 0.05f);
  EXPECT_EQ(h.best_head(1), 1);  // ties: the lower index
  EXPECT_FLOAT_EQ(h.best_score(1), 0.7f);
  const std::string path = write("h.json", kHeads);
  EXPECT_EQ(error_of([&] { load_retrieval_heads(path, 3, 4); }), path + ": n_layers is 2 but the model has 3 layers");
  EXPECT_EQ(error_of([&] { load_retrieval_heads(path, 2, 8); }), path + ": n_heads is 4 but the model has 8 attention heads");
  const std::string bad = write("bad.json", "{\"format\": \"ltri-heads-1\", ");
  EXPECT_EQ(error_of([&] { load_retrieval_heads(bad, 2, 4); }), bad + ": not valid JSON");
  const std::string other = write("other.json", kCalibration);
  EXPECT_EQ(error_of([&] { load_retrieval_heads(other, 2, 4); }), other + ": field 'format' must be \"ltri-heads-1\"");
  const std::string range = write("range.json", R"({"format": "ltri-heads-1", "n_layers": 1, "n_heads": 2, "scores": [[0.5, 1.5]]})");
  EXPECT_EQ(error_of([&] { load_retrieval_heads(range, 1, 2); }), range + ": scores[0][1] must be a number in [0, 1]");
  const std::string rows = write("rows.json", R"({"format": "ltri-heads-1", "n_layers": 2, "n_heads": 2, "scores": [[0.5, 0.5]]})");
  EXPECT_EQ(error_of([&] { load_retrieval_heads(rows, 2, 2); }), rows + ": field 'scores' must be a list of 2 lists (one per layer)");
}

TEST_F(PolicyFiles, calibration_file_is_read_and_checked_against_the_model) {
  const SpanCalibration c = load_span_calibration(write("c.json", kCalibration), 2);
  EXPECT_EQ(c.theta, (std::vector<double>{0.25, 0.75}));
  EXPECT_EQ(c.span_max, 256);
  const std::string path = write("c.json", kCalibration);
  EXPECT_EQ(error_of([&] { load_span_calibration(path, 4); }), path + ": field 'theta' must be a list of 4 numbers (one per layer)");
  const std::string neg = write("neg.json", R"({"format": "ltri-calibration-1", "theta": [-0.1]})");
  EXPECT_EQ(error_of([&] { load_span_calibration(neg, 1); }), neg + ": theta[0] must be a number in [0, 1]");
  EXPECT_EQ(c.segmentation_heads, "");  // the file does not say
  const std::string seg = write("seg.json", R"({"format": "ltri-calibration-1", "theta": [0.5], "segmentation_heads": "retrieval"})");
  EXPECT_EQ(load_span_calibration(seg, 1).segmentation_heads, "retrieval");
  const std::string bad_seg = write("bad_seg.json", R"({"format": "ltri-calibration-1", "theta": [0.5], "segmentation_heads": 3})");
  EXPECT_EQ(error_of([&] { load_span_calibration(bad_seg, 1); }),
            bad_seg + ": field 'segmentation_heads' must be \"mean\" or \"retrieval\"");
}

TEST_F(PolicyFiles, the_factory_uses_the_model_files_and_refuses_missing_explicit_ones) {
  const ModelConfig c = test::policy_test_config(2, 4, 2, 8);
  auto backend = make_cpu_backend(1);
  AttentionOptions o;
  o.policy = "ltri";
  o.n_local = 512;
  auto make = [&](const AttentionOptions& opts) {
    return make_kv_policy(opts, {*backend, c, 1 << 20, 64, dir_.string()});
  };
  // No files in the model directory: defaults (mean of heads, --attn-theta), with a warning.
  {
    const auto p = make(o);
    const auto& ltri = dynamic_cast<const LtriPolicy&>(*p);
    for (const auto& L : ltri.params().layers) {
      EXPECT_EQ(L.score_head, -1);
      EXPECT_DOUBLE_EQ(L.theta, 0.6);
      EXPECT_FLOAT_EQ(L.vote_weight, 1.0f);
    }
  }
  write("ltri_heads.json", kHeads);
  write("ltri_calibration.json", kCalibration);
  {
    const auto p = make(o);
    const auto& layers = dynamic_cast<const LtriPolicy&>(*p).params().layers;
    EXPECT_EQ(layers[0].score_head, -1);  // defaults: --attn-score-heads mean, --attn-seg-heads mean
    EXPECT_EQ(layers[1].score_head, -1);
    EXPECT_EQ(layers[0].seg_head, -1);
    EXPECT_EQ(layers[1].seg_head, -1);
    EXPECT_FLOAT_EQ(layers[0].vote_weight, 0.05f);
    EXPECT_FLOAT_EQ(layers[1].vote_weight, 0.7f);
    EXPECT_DOUBLE_EQ(layers[0].theta, 0.25);
    EXPECT_DOUBLE_EQ(layers[1].theta, 0.75);
  }
  {
    AttentionOptions given = o;
    given.theta = 0.4;  // an explicit --attn-theta wins over the calibration
    given.score_heads = "mean";
    const auto p = make(given);
    for (const auto& L : dynamic_cast<const LtriPolicy&>(*p).params().layers) {
      EXPECT_DOUBLE_EQ(L.theta, 0.4);
      EXPECT_EQ(L.score_head, -1);
      EXPECT_EQ(L.seg_head, -1);
    }
  }
  {
    AttentionOptions given = o;  // the spec's scoring head, and segment its attention too
    given.score_heads = "retrieval";
    given.seg_heads = "retrieval";
    const auto p = make(given);
    const auto& layers = dynamic_cast<const LtriPolicy&>(*p).params().layers;
    EXPECT_EQ(layers[0].score_head, -1);  // best score 0.05 < threshold 0.1: mean of heads
    EXPECT_EQ(layers[1].score_head, 1);
    EXPECT_EQ(layers[0].seg_head, -1);
    EXPECT_EQ(layers[1].seg_head, 1);
    EXPECT_TRUE(layers[1].score_head_set.empty());
  }
  {
    // The mean of each layer's retrieval heads (score >= threshold); none in a layer: the mean.
    write("ltri_heads.json", R"({"format": "ltri-heads-1", "n_layers": 2, "n_heads": 4,
      "scores": [[0.0, 0.05, 0.02, 0.0], [0.0, 0.7, 0.1, 0.09]], "threshold": 0.1})");
    AttentionOptions given = o;
    given.score_heads = "retrieval-heads";
    const auto p = make(given);
    const auto& layers = dynamic_cast<const LtriPolicy&>(*p).params().layers;
    EXPECT_TRUE(layers[0].score_head_set.empty());
    EXPECT_EQ(layers[1].score_head_set, (std::vector<uint8_t>{0, 1, 1, 0}));
    EXPECT_EQ(layers[1].score_head, -1);
    EXPECT_EQ(layers[1].seg_head, -1);  // segmentation stays --attn-seg-heads mean
    write("ltri_heads.json", kHeads);
  }
  AttentionOptions missing = o;
  missing.heads_file = (dir_ / "nope.json").string();
  EXPECT_EQ(error_of([&] { make(missing); }), "--attn-heads-file " + missing.heads_file + ": no such file");
  missing = o;
  missing.calibration_file = (dir_ / "nope.json").string();
  EXPECT_EQ(error_of([&] { make(missing); }), "--attn-calibration " + missing.calibration_file + ": no such file");
  // A heads file for another model is refused, naming it.
  write("ltri_heads.json", R"({"format": "ltri-heads-1", "n_layers": 6, "n_heads": 6, "scores": []})");
  EXPECT_NE(error_of([&] { make(o); }).find("ltri_heads.json: n_layers is 6 but the model has 2 layers"), std::string::npos);
}

TEST_F(PolicyFiles, bad_ltri_parameters_name_the_flag) {
  const ModelConfig c = test::policy_test_config(2, 4, 2, 8);
  auto backend = make_cpu_backend(1);
  auto error_with = [&](const std::function<void(AttentionOptions&)>& edit) {
    AttentionOptions o;
    o.policy = "ltri";
    o.n_local = 512;
    o.budget = 256;
    edit(o);
    return error_of([&] { make_kv_policy(o, {*backend, c, 1 << 20, 64, ""}); });
  };
  EXPECT_EQ(error_with([](auto& o) { o.span_min = 300; }), "--attn-span-min 300 is larger than --attn-span-max 256");
  EXPECT_EQ(error_with([](auto& o) { o.span_max = 600; }),
            "--attn-span-max 600 exceeds --attn-local 512 (spans are cut from the local window's attention band)");
  EXPECT_EQ(error_with([](auto& o) { o.theta = 1.5; }), "--attn-theta must be in [0, 1], got 1.5");
  EXPECT_EQ(error_with([](auto& o) { o.phi = -0.1; }), "--attn-phi must be in [0, 1], got -0.1");
  EXPECT_EQ(error_with([](auto& o) { o.lambda = 0; }), "--attn-lambda must be > 0, got 0");
  EXPECT_EQ(error_with([](auto& o) { o.index = "sometimes"; }), "--attn-index sometimes: expected static or dynamic");
  EXPECT_EQ(error_with([](auto& o) { o.score_heads = "best"; }), "--attn-score-heads best: expected retrieval, retrieval-heads or mean");
  EXPECT_EQ(error_with([](auto& o) { o.seg_heads = "all"; }), "--attn-seg-heads all: expected retrieval or mean");
  EXPECT_EQ(error_with([](auto& o) { o.index_max = 0; }), "--attn-index-max must be >= 1, got 0");
  EXPECT_EQ(error_with([](auto& o) { o.span_cache_tokens = -1; }), "--attn-span-cache must be >= 0, got -1");
  EXPECT_EQ(error_with([](auto& o) { o.question_tokens = -5; }), "--attn-question-tokens must be >= 0, got -5");
  EXPECT_EQ(error_with([](auto& o) { o.policy = "infllm"; o.block_repr = 200; }),
            "--attn-block-repr 200 exceeds the block size 128 (--attn-block)");
  EXPECT_EQ(error_with([](auto&) {}), "");
}

}  // namespace
}  // namespace ltri
