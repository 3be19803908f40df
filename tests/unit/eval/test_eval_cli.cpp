// `ltri eval` through the built binary: a short passkey run end to end (exit 0, a results file
// that parses and holds every sample; accuracy is not asserted), and the one-line errors.
#include <gtest/gtest.h>

#include <cstdio>
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

TEST(EvalCli, PasskeyRunsEndToEndAndWritesItsResults) {
  const std::string path = ::testing::TempDir() + "ltri_eval_cli_test.json";
  std::remove(path.c_str());
  const CommandResult r = run_ltri("eval passkey " + model_flag() + " --lengths 1k --depths 2 --samples 1 -t 2 -o " + path);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("| length \\ depth | 0% | 100% | avg |"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("eval [2/2] passkey 1k depth 100% #0"), std::string::npos) << r.output;
  std::ifstream in(path);
  ASSERT_TRUE(in.good());
  const EvalReport report = report_from_json(nlohmann::json::parse(in));
  EXPECT_EQ(report.config.command, "passkey");
  EXPECT_EQ(report.config.attention.policy, "full");
  EXPECT_EQ(report.config.lengths, std::vector<int64_t>{1024});
  ASSERT_EQ(report.samples.size(), 2u);
  for (const SampleResult& s : report.samples) {
    EXPECT_EQ(s.length, 1024);
    EXPECT_LE(std::abs(s.tokens - 1024), 10);
    EXPECT_EQ(s.expected.size(), 1u);
    EXPECT_GT(s.prefill_ms, 0.0);
    EXPECT_GT(s.kv_bytes, 0u);
    EXPECT_GT(s.peak_rss_bytes, 0u);
  }
  EXPECT_EQ(report.samples[0].depth, 0.0);
  EXPECT_EQ(report.samples[1].depth, 1.0);
  std::remove(path.c_str());
}

TEST(EvalCli, BadInputIsOneErrorLine) {
  struct Case {
    std::string args;
    int status;
    std::string message;  // the error line starts with this
  };
  const std::string m = model_flag();
  const Case cases[] = {
      {"eval passkey " + m + " --lengths 12q", 2, "error: --lengths: '12q' is not a length like 4k or 4096"},
      {"eval passkey " + m + " --depths 0", 2, "error: --depths: must be >= 1, got 0"},
      {"eval passkey " + m + " --samples 0", 2, "error: --samples: must be >= 1, got 0"},
      {"eval passkey " + m + " --question first", 2, "error: --question: first not in {after,both}"},
      {"eval niah " + m + " --task niah_single_9", 2, "error: --task: unknown task 'niah_single_9' (one of: niah_single_1,"},
      {"eval niah " + m + " --haystack /nonexistent/hay.txt --lengths 1k", 1,
       "error: /nonexistent/hay.txt: haystack file not found"},
      {"eval niah " + m + " --words /nonexistent/words --lengths 1k", 1, "error: /nonexistent/words: word list not found"},
      {"eval passkey " + m + " --lengths 1k -o /nonexistent-dir/out.json", 1,
       "error: /nonexistent-dir/out.json: cannot write the results"},
      {"eval passkey " + m + " --lengths 40", 1, "error: --lengths: 40 is shorter than the passkey prompt"},
      {"eval", 2, "error: A subcommand is required"},
  };
  for (const Case& c : cases) {
    const CommandResult r = run_ltri(c.args);
    EXPECT_EQ(r.status, c.status) << c.args << "\n" << r.output;
    EXPECT_EQ(last_line(r.output).rfind(c.message, 0), 0u) << c.args << "\n" << r.output;
    EXPECT_EQ(r.output.find("error:"), r.output.rfind("error:")) << "one error line: " << r.output;
  }
}

}  // namespace
}  // namespace ltri::eval
