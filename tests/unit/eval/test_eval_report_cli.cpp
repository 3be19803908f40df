// `ltri eval report` through the built binary on the bundled model: a small grid end to end
// (one JSON with every sample, the Markdown summary, the pictures), an interrupted run that a
// rerun continues without redoing the samples it has, a file made with other settings
// refused, and bad flags as one error line. Accuracy is not asserted.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "eval/eval_report.hpp"
#include "run_ltri.hpp"

namespace ltri::eval {
namespace {

using test_cli::CommandResult;
using test_cli::last_line;
using test_cli::model_flag;
using test_cli::run_ltri;

namespace fs = std::filesystem;

// A scratch directory of this process (parallel CTest runs must not share files).
std::string scratch_dir() {
  const std::string dir = ::testing::TempDir() + "ltri_eval_report_" + std::to_string(getpid());
  fs::create_directories(dir);
  return dir;
}

std::string grid_flags() {
  // 2 prompts (passkey at depth 50%, fwe) x 2 policies at 512 tokens: 4 samples.
  return "eval report " + model_flag() + " --attn full,streaming --attn-local 128 --attn-init 16 --lengths 512 " +
         "--tasks passkey,fwe --depths 1 -n 4 -t 2";
}

TEST(EvalReportCli, GridRunsEndToEndAndAnInterruptedRunContinues) {
  const std::string dir = scratch_dir();
  const std::string json = dir + "/grid.json";
  CommandResult r = run_ltri(grid_flags() + " -o " + json);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("report [4/4] streaming fwe 512 #0"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("| length \\ policy | full | streaming |"), std::string::npos) << r.output;
  EvalReport report = read_report(json);
  EXPECT_EQ(report.config.command, "report");
  EXPECT_EQ(report.config.policies, (std::vector<std::string>{"full", "streaming"}));
  EXPECT_EQ(report.config.question_placement, "after_context");
  ASSERT_EQ(report.samples.size(), 4u);
  for (const SampleResult& s : report.samples) {
    EXPECT_LE(std::abs(s.tokens - 512), 5) << s.task;
    EXPECT_EQ(s.depth, s.task == "fwe" ? -1.0 : 0.5);
    EXPECT_EQ(s.scoring, s.task == "fwe" ? "string_match_all" : "first_number");
    EXPECT_GT(s.prefill_ms, 0.0);
    EXPECT_GT(s.kv_bytes, 0u);
  }
  EXPECT_EQ(report.samples[0].policy, "full");
  EXPECT_EQ(report.samples[1].policy, "streaming");
  for (const char* file : {"/grid.md", "/grid_heatmap_full.png", "/grid_heatmap_streaming.png", "/grid_accuracy.png",
                           "/grid_prefill.png", "/grid_memory.png"}) {
    EXPECT_GT(fs::file_size(dir + file), 100u) << file;
  }

  // As if the run had stopped after 3 samples: the file is rewritten after every sample.
  nlohmann::json j = report_to_json(report);
  j["samples"].erase(j["samples"].begin() + 2);
  {
    std::ofstream out(json);
    out << j.dump();
  }
  r = run_ltri(grid_flags() + " -o " + json);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("continuing " + json + ": 3 of 4 samples already done"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("report [4/4] full fwe 512 #0"), std::string::npos) << r.output;  // the missing one
  EXPECT_EQ(r.output.find("report [1/4]"), std::string::npos) << r.output;
  const EvalReport continued = read_report(json);
  ASSERT_EQ(continued.samples.size(), 4u);
  for (size_t i : {0, 1, 3}) {
    // The samples already there are kept as they were (not rerun: the same measured times).
    const SampleResult& kept = continued.samples[i == 3 ? 2 : i];
    EXPECT_EQ(kept.prefill_ms, report.samples[i].prefill_ms);
    EXPECT_EQ(kept.output, report.samples[i].output);
  }
  EXPECT_EQ(continued.samples[3].policy, "full");
  EXPECT_EQ(continued.samples[3].task, "fwe");
  EXPECT_EQ(continued.samples[3].expected, report.samples[2].expected);  // the same prompt again

  // Other settings: refused, the file left alone.
  r = run_ltri(grid_flags() + " --seed 5 -o " + json);
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_EQ(last_line(r.output),
            "error: " + json + ": made with different settings, cannot continue it (seed: 20261122 in the file, 5 now); "
            "give another -o or the file's settings");
  EXPECT_EQ(read_report(json).samples.size(), 4u);
  fs::remove_all(dir);
}

TEST(EvalReportCli, PartsRunApartAreMergedByImport) {
  const std::string dir = scratch_dir();
  // The grid of grid_flags() in two parts, one policy each, as two machines would run it.
  const std::string part_flags = "eval report " + model_flag() + " --attn-local 128 --attn-init 16 --lengths 512 " +
                                 "--tasks passkey,fwe --depths 1 -n 4 -t 2 --no-pictures";
  ASSERT_EQ(run_ltri(part_flags + " --attn full -o " + dir + "/a.json").status, 0);
  ASSERT_EQ(run_ltri(part_flags + " --attn streaming -o " + dir + "/b.json").status, 0);
  const EvalReport a = read_report(dir + "/a.json"), b = read_report(dir + "/b.json");
  ASSERT_EQ(a.samples.size(), 2u);
  ASSERT_EQ(b.samples.size(), 2u);

  const std::string merged = dir + "/merged.json";
  CommandResult r = run_ltri(grid_flags() + " --no-run --import " + dir + "/a.json," + dir + "/b.json -o " + merged);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("imported 2 samples from " + dir + "/b.json"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("| length \\ policy | full | streaming |"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("report [1/4]"), std::string::npos) << "nothing runs: " << r.output;
  const EvalReport m = read_report(merged);
  ASSERT_EQ(m.samples.size(), 4u);
  for (const SampleResult& s : m.samples) {
    const EvalReport& from = s.policy == "full" ? a : b;
    const bool same = std::any_of(from.samples.begin(), from.samples.end(), [&](const SampleResult& p) {
      return p.task == s.task && p.prefill_ms == s.prefill_ms && p.output == s.output;
    });
    EXPECT_TRUE(same) << s.policy << " " << s.task;
  }
  EXPECT_GT(fs::file_size(dir + "/merged_heatmap_streaming.png"), 100u);

  // A part made with other settings is refused, naming the field.
  ASSERT_EQ(run_ltri(part_flags + " --attn streaming --seed 7 -o " + dir + "/c.json").status, 0);
  r = run_ltri(grid_flags() + " --no-run --import " + dir + "/c.json -o " + dir + "/merged2.json");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_EQ(last_line(r.output), "error: " + dir + "/c.json: made with different settings, cannot import it (seed: 7 in "
                                 "the file, 20261122 now)");
  // Nothing to report.
  r = run_ltri(grid_flags() + " --no-run -o " + dir + "/empty.json");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_EQ(last_line(r.output), "error: --no-run: nothing to report: " + dir +
                                     "/empty.json and the --import files hold no samples");
  fs::remove_all(dir);
}

TEST(EvalReportCli, PartsDealTheGridRoundRobin) {
  const std::string dir = scratch_dir();
  ASSERT_EQ(run_ltri(grid_flags() + " --no-pictures --part 1/3 -o " + dir + "/p1.json").status, 0);
  ASSERT_EQ(run_ltri(grid_flags() + " --no-pictures --part 3/3 -o " + dir + "/p3.json").status, 0);
  // The grid's 4 cells in order: passkey full, passkey streaming, fwe full, fwe streaming.
  const EvalReport p1 = read_report(dir + "/p1.json"), p3 = read_report(dir + "/p3.json");
  ASSERT_EQ(p1.samples.size(), 2u);  // cells 1 and 4
  EXPECT_EQ(p1.samples[0].task + " " + p1.samples[0].policy, "passkey full");
  EXPECT_EQ(p1.samples[1].task + " " + p1.samples[1].policy, "fwe streaming");
  ASSERT_EQ(p3.samples.size(), 1u);  // cell 3
  EXPECT_EQ(p3.samples[0].task + " " + p3.samples[0].policy, "fwe full");
  // Merged, one cell is still missing: the report shows what is there and runs nothing.
  const CommandResult r =
      run_ltri(grid_flags() + " --no-run --import " + dir + "/p1.json," + dir + "/p3.json -o " + dir + "/m.json");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(read_report(dir + "/m.json").samples.size(), 3u);
  fs::remove_all(dir);
}

TEST(EvalReportCli, BadFlagsAreOneErrorLine) {
  struct Case {
    std::string args;
    int status;
    std::string message;  // the error line starts with this
  };
  const std::string m = "eval report " + model_flag() + " -o " + scratch_dir() + "/bad.json";
  const Case cases[] = {
      {m + " --attn full,sliding", 2, "error: --attn: unknown policy 'sliding' (one of: full, streaming, infllm, ltri)"},
      {m + " --tasks passkey,vt2", 2, "error: --tasks: unknown task 'vt2' (one of: passkey, niah_single_1,"},
      {m + " --lengths 4q", 2, "error: --lengths: '4q' is not a length like 4k or 4096"},
      {m + " --question sideways", 2, "error: --question: sideways not in {after,both}"},
      {m + " --depths 0", 2, "error: --depths: must be >= 1, got 0"},
      {m + " --part 4/3", 2, "error: --part: expected I/N with 1 <= I <= N, like 3/8, got '4/3'"},
      {m + " --part 2", 2, "error: --part: expected I/N with 1 <= I <= N, like 3/8, got '2'"},
      {m + " --tasks cwe --lengths 300", 1, "error: --lengths: 300 is shorter than the smallest cwe prompt"},
      {"eval report " + model_flag() + " -o /nonexistent-dir/r.json", 1,
       "error: /nonexistent-dir/r.json: cannot write the results"},
  };
  for (const Case& c : cases) {
    const CommandResult r = run_ltri(c.args);
    EXPECT_EQ(r.status, c.status) << c.args << "\n" << r.output;
    EXPECT_EQ(last_line(r.output).rfind(c.message, 0), 0u) << c.args << "\n" << r.output;
    EXPECT_EQ(r.output.find("error:"), r.output.rfind("error:")) << "one error line: " << r.output;
  }
  fs::remove_all(scratch_dir());
}

}  // namespace
}  // namespace ltri::eval
