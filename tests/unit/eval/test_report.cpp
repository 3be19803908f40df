// The results file and the tables: a JSON round trip keeps every field; the tables average
// sample scores as hand-computed here.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "core/error.hpp"
#include "eval/eval_report.hpp"

namespace ltri::eval {
namespace {

SampleResult result(const std::string& task, int64_t length, double depth, double score) {
  SampleResult s;
  s.task = task;
  s.length = length;
  s.tokens = length - 1;
  s.depth = depth;
  s.needle_depths = {depth + 0.01};
  s.expected = {"12345"};
  s.output = score == 1.0 ? " 12345." : " 54321.\n\"quoted\"";
  s.scoring = "first_number";
  s.score = score;
  s.correct = score == 1.0;
  s.prefill_ms = 12.5;
  s.decode_ms = 3.25;
  s.generated_tokens = 4;
  s.stop_reason = "eos";
  s.context = length + 12;
  s.peak_rss_bytes = 123456789;
  s.kv_bytes = 6365184;
  return s;
}

EvalReport example() {
  EvalReport r;
  r.config.command = "niah";
  r.config.tasks = {"niah_single_1", "niah_single_2"};
  r.config.model_dir = "models/ltri-demo";
  r.config.architecture = "LlamaForCausalLM";
  r.config.max_position_embeddings = 8192;
  r.config.attention.policy = "streaming";
  r.config.attention.n_local = 1024;
  r.config.attention.theta = 0.25;
  r.config.attention.voting = false;
  r.config.attention.heads_file = "heads.json";
  r.config.lengths = {1024, 2048};
  r.config.depths = {0.0, 0.5, 1.0};
  r.config.samples = 2;
  r.config.seed = 20261122;
  r.config.prompt_template = "plain";
  r.config.chunk = 256;
  r.config.threads = 2;
  r.config.max_new_tokens = 0;
  r.config.context = 0;
  r.config.haystack = "data/heldout";
  r.config.words = "/usr/share/dict/american-english";
  r.config.device = "cpu";
  r.wall_s = 42.5;
  return r;
}

TEST(Report, JsonRoundTripKeepsEveryField) {
  EvalReport r = example();
  r.samples.push_back(result("niah_single_1", 1024, 0.5, 1.0));
  r.samples.push_back(result("niah_single_2", 2048, 1.0, 0.5));
  const std::string text = report_to_json(r).dump();
  const EvalReport back = report_from_json(nlohmann::json::parse(text));
  EXPECT_EQ(report_to_json(back), report_to_json(r));
  // A few fields by name, as a reader of the file sees them.
  const nlohmann::json j = nlohmann::json::parse(text);
  EXPECT_EQ(j["format"], "ltri-eval");
  EXPECT_EQ(j["config"]["attention"]["policy"], "streaming");
  EXPECT_EQ(j["config"]["attention"]["n_local"], 1024);
  EXPECT_EQ(j["config"]["attention"]["voting"], false);
  EXPECT_EQ(j["config"]["lengths"], (std::vector<int64_t>{1024, 2048}));
  EXPECT_EQ(j["config"]["seed"], 20261122);
  EXPECT_EQ(j["samples"][1]["output"], " 54321.\n\"quoted\"");
  EXPECT_EQ(j["samples"][1]["score"], 0.5);
  EXPECT_EQ(j["samples"][1]["correct"], false);
  EXPECT_EQ(j["samples"][0]["peak_rss_bytes"], 123456789);
  EXPECT_EQ(back.samples[1].needle_depths, std::vector<double>{1.01});
}

TEST(Report, VersionOneFilesReadWithTheirSinglePolicy) {
  EvalReport r = example();
  r.samples.push_back(result("niah_single_1", 1024, 0.5, 1.0));
  nlohmann::json j = report_to_json(r);
  EXPECT_EQ(j["version"], 10);
  EXPECT_EQ(j["samples"][0]["policy"], "");
  // A file written before the policy grid: no policies, policy, kv_host_bytes, retrieval_query.
  j["version"] = 1;
  j["config"].erase("policies");
  j["config"]["attention"].erase("retrieval_query");
  j["config"]["attention"].erase("query_block");
  j["samples"][0].erase("policy");
  j["samples"][0].erase("kv_host_bytes");
  const EvalReport back = report_from_json(j);
  EXPECT_EQ(back.config.policies, std::vector<std::string>{"streaming"});
  EXPECT_EQ(back.samples[0].policy, "streaming");
  EXPECT_EQ(back.samples[0].kv_host_bytes, 0u);
  // Version 2 requires them.
  j["version"] = 2;
  EXPECT_THROW(report_from_json(j), Error);
  j["version"] = 11;  // a version this build does not know
  EXPECT_THROW(report_from_json(j), Error);
}

TEST(Report, BeforeVersionTenEveryDecodeStepRanItsOwnBand) {
  EvalReport r = example();
  r.config.attention.decode_band_batch = 16;
  nlohmann::json j = report_to_json(r);
  EXPECT_EQ(report_from_json(j).config.attention.decode_band_batch, 16);  // version 10 keeps it
  j["version"] = 9;
  j["config"]["attention"].erase("decode_band_batch");
  EXPECT_EQ(report_from_json(j).config.attention.decode_band_batch, 1);  // what version 9 ran with
  j["version"] = 10;
  EXPECT_THROW(report_from_json(j), Error);  // version 10 requires it
}

TEST(Report, BeforeVersionNineTheQuestionSharedTheLastChunk) {
  EvalReport r = example();
  r.config.attention.question_chunk = true;
  nlohmann::json j = report_to_json(r);
  EXPECT_TRUE(report_from_json(j).config.attention.question_chunk);  // version 9 keeps it
  j["version"] = 8;
  j["config"]["attention"].erase("question_chunk");
  EXPECT_FALSE(report_from_json(j).config.attention.question_chunk);  // what version 8 ran with
  j["version"] = 9;
  EXPECT_THROW(report_from_json(j), Error);  // version 9 requires it
}

TEST(Report, BeforeVersionEightTheWholeLastChunkScoredThePersistentSet) {
  EvalReport r = example();
  r.config.attention.question_tokens = 96;
  nlohmann::json j = report_to_json(r);
  EXPECT_EQ(report_from_json(j).config.attention.question_tokens, 96);  // version 8 keeps it
  j["version"] = 7;
  j["config"]["attention"].erase("question_tokens");
  j["config"]["attention"].erase("question_chunk");
  EXPECT_EQ(report_from_json(j).config.attention.question_tokens, 0);  // what version 7 ran with
  j["version"] = 8;
  EXPECT_THROW(report_from_json(j), Error);  // version 8 requires it
}

TEST(Report, BeforeVersionSevenTheIndexWasF32) {
  EvalReport r = example();
  r.config.attention.index_dtype = "bf16";
  nlohmann::json j = report_to_json(r);
  EXPECT_EQ(j["config"]["attention"]["index_dtype"], "bf16");
  EXPECT_EQ(report_from_json(j).config.attention.index_dtype, "bf16");  // version 7 keeps it
  j["version"] = 6;
  j["config"]["attention"].erase("index_dtype");
  // f32, as "auto" resolves it beside an f32 store, so the file resumes under the defaults...
  j["config"]["attention"]["host_kv"] = "f32";
  EXPECT_EQ(report_from_json(j).config.attention.index_dtype, "auto");
  // ... and plainly f32 beside a bf16 store, where "auto" would now mean bf16.
  j["config"]["attention"]["host_kv"] = "bf16";
  EXPECT_EQ(report_from_json(j).config.attention.index_dtype, "f32");
  j["version"] = 7;
  EXPECT_THROW(report_from_json(j), Error);  // version 7 requires it
}

TEST(Report, BeforeVersionSixTheStoreStepRanOnTheCallingThread) {
  EvalReport r = example();
  r.config.attention.async_store = "on";
  nlohmann::json j = report_to_json(r);
  EXPECT_EQ(j["config"]["attention"]["async_store"], "on");
  EXPECT_EQ(report_from_json(j).config.attention.async_store, "on");  // version 6 keeps it
  j["version"] = 5;
  j["config"]["attention"].erase("async_store");
  EXPECT_EQ(report_from_json(j).config.attention.async_store, "off");  // what version 5 ran with
  j["version"] = 6;
  EXPECT_THROW(report_from_json(j), Error);  // version 6 requires it
}

TEST(Report, BeforeVersionFiveTheHostStoreWasF32) {
  EvalReport r = example();
  r.config.attention.host_kv = "bf16";
  nlohmann::json j = report_to_json(r);
  EXPECT_EQ(report_from_json(j).config.attention.host_kv, "bf16");  // version 5 keeps it
  j["version"] = 4;
  j["config"]["attention"].erase("host_kv");
  EXPECT_EQ(report_from_json(j).config.attention.host_kv, "f32");  // what version 4 ran with
  j["version"] = 5;
  EXPECT_THROW(report_from_json(j), Error);  // version 5 requires it
}

TEST(Report, BeforeVersionFourDecodeRetrievalWasAlwaysOn) {
  EvalReport r = example();
  r.config.attention.decode_retrieval = false;
  nlohmann::json j = report_to_json(r);
  EXPECT_FALSE(report_from_json(j).config.attention.decode_retrieval);  // version 4 keeps it
  j["version"] = 3;
  j["config"]["attention"].erase("decode_retrieval");
  EXPECT_TRUE(report_from_json(j).config.attention.decode_retrieval);  // what version 3 ran with
  j["version"] = 4;
  EXPECT_THROW(report_from_json(j), Error);  // version 4 requires it
}

TEST(Report, BeforeVersionThreeTheSegmentationHeadsFollowTheScoringHeads) {
  EvalReport r = example();
  r.config.attention.score_heads = "mean";
  r.config.attention.seg_heads = "retrieval";
  nlohmann::json j = report_to_json(r);
  EXPECT_EQ(report_from_json(j).config.attention.seg_heads, "retrieval");  // version 3 keeps it
  j["version"] = 2;
  j["config"]["attention"].erase("seg_heads");
  EXPECT_EQ(report_from_json(j).config.attention.seg_heads, "mean");  // what version 2 ran with
  j["version"] = 3;
  EXPECT_THROW(report_from_json(j), Error);  // version 3 requires it
}

TEST(Report, MissingOrMistypedFieldsAreNamed) {
  EvalReport r = example();
  r.samples.push_back(result("niah_single_1", 1024, 0.5, 1.0));
  nlohmann::json j = report_to_json(r);
  j["samples"][0].erase("score");
  try {
    report_from_json(j);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "eval results: field 'samples[0].score' is missing");
  }
  j = report_to_json(r);
  j["config"]["attention"]["n_local"] = "big";
  EXPECT_THROW(report_from_json(j), Error);
  EXPECT_THROW(report_from_json(nlohmann::json::object()), Error);
}

TEST(Report, WriteReplacesTheFileAndFailsOnABadPath) {
  const std::string path = ::testing::TempDir() + "ltri_eval_report_test.json";
  EvalReport r = example();
  write_report(r, path);
  r.samples.push_back(result("niah_single_1", 1024, 0.5, 1.0));
  write_report(r, path);
  std::ifstream in(path);
  const EvalReport back = report_from_json(nlohmann::json::parse(in));
  EXPECT_EQ(back.samples.size(), 1u);
  std::remove(path.c_str());
  try {
    write_report(r, "/nonexistent-dir/results.json");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("/nonexistent-dir/results.json: cannot write the results", 0), 0u);
  }
}

TEST(Report, DepthTableAveragesSamplesPerCellRowAndColumn) {
  EvalReport r = example();
  // 1k: depth 0 -> 1, 0 (50%); depth 0.5 -> 1, 1 (100%); depth 1 -> 0.5, 0 (25%). Row: 3.5/6.
  for (auto [d, s] : std::vector<std::pair<double, double>>{{0, 1}, {0, 0}, {0.5, 1}, {0.5, 1}, {1, 0.5}, {1, 0}}) {
    r.samples.push_back(result("niah_single_1", 1024, d, s));
  }
  // 2k: only depth 0.5 run -> 0, 0. Another task's samples must not count.
  r.samples.push_back(result("niah_single_1", 2048, 0.5, 0));
  r.samples.push_back(result("niah_single_1", 2048, 0.5, 0));
  r.samples.push_back(result("niah_single_2", 1024, 0.0, 0));
  EXPECT_EQ(markdown_depth_table(r, "niah_single_1"),
            "| length \\ depth | 0% | 50% | 100% | avg |\n"
            "|---|---:|---:|---:|---:|\n"
            "| 1k | 50.0 | 100.0 | 25.0 | 58.3 |\n"
            "| 2k | - | 0.0 | - | 0.0 |\n"
            "| avg | 50.0 | 50.0 | 25.0 | 43.8 |\n");  // 3.5 of 8
  EXPECT_EQ(markdown_task_table(r),
            "| length \\ task | niah_single_1 | niah_single_2 | avg |\n"
            "|---|---:|---:|---:|\n"
            "| 1k | 58.3 | 0.0 | 50.0 |\n"
            "| 2k | 0.0 | - | 0.0 |\n"
            "| avg | 43.8 | 0.0 | 38.9 |\n");  // 3.5 of 9
}

TEST(Report, DepthLabels) {
  EXPECT_EQ(format_depth(0.0), "0%");
  EXPECT_EQ(format_depth(0.25), "25%");
  EXPECT_EQ(format_depth(1.0 / 3.0), "33.3%");
  EXPECT_EQ(format_depth(1.0), "100%");
}

}  // namespace
}  // namespace ltri::eval
