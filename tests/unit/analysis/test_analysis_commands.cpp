// The analysis commands refuse bad input with one "error:" line and a non-zero exit status.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "test_paths.hpp"

namespace ltri {
namespace {

struct Result {
  int status = -1;
  std::string output;  // stdout and stderr together
};

Result run_ltri(const std::string& args) {
  const std::string command = test::ltri_binary() + " " + args + " 2>&1";
  Result r;
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return r;
  char buf[512];
  while (std::fgets(buf, sizeof buf, pipe)) r.output += buf;
  const int raw = pclose(pipe);
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  return r;
}

void expect_one_error_line(const Result& r, const std::string& contains) {
  EXPECT_NE(r.status, 0) << r.output;
  EXPECT_EQ(r.output.rfind("error: ", 0), 0u) << r.output;
  EXPECT_EQ(r.output.find('\n'), r.output.size() - 1) << "more than one line: " << r.output;
  EXPECT_NE(r.output.find(contains), std::string::npos) << r.output;
}

class AnalysisCommands : public ::testing::Test {
 protected:
  void SetUp() override {
    text_path_ = test::scratch_path("ltri_test_attn.txt");
    std::ofstream(text_path_) << "It was a bright cold day in April, and the clocks were striking thirteen.";
    model_ = test::source_dir() + "/models/ltri-demo";
  }
  void TearDown() override { std::filesystem::remove(text_path_); }
  std::string text_path_, model_;
};

TEST_F(AnalysisCommands, attn_refuses_a_missing_text_file) {
  expect_one_error_line(run_ltri("attn -m " + model_ + " -f /nonexistent/prompt.txt --layer 0"), "/nonexistent/prompt.txt");
}

TEST_F(AnalysisCommands, attn_refuses_a_layer_out_of_range) {
  expect_one_error_line(run_ltri("attn -m " + model_ + " -f " + text_path_ + " --layer 6"), "--layer");
}

TEST_F(AnalysisCommands, attn_refuses_an_empty_token_window) {
  expect_one_error_line(run_ltri("attn -m " + model_ + " -f " + text_path_ + " --layer 0 --from 8 --to 8"), "--from");
  expect_one_error_line(run_ltri("attn -m " + model_ + " -f " + text_path_ + " --layer 0 --from 4 --to 500"), "--to");
}

TEST_F(AnalysisCommands, attn_refuses_a_bad_head) {
  expect_one_error_line(run_ltri("attn -m " + model_ + " -f " + text_path_ + " --layer 0 --head 9"), "--head");
}

TEST_F(AnalysisCommands, heads_and_calibrate_refuse_bad_lengths_and_haystacks) {
  expect_one_error_line(run_ltri("heads -m " + model_ + " --lengths 100000 -o /dev/null"), "--lengths");
  expect_one_error_line(run_ltri("calibrate -m " + model_ + " --haystack /nonexistent/hay -o /dev/null"), "/nonexistent/hay");
}

TEST_F(AnalysisCommands, attn_draws_a_picture) {
  const std::string png = test::scratch_path("ltri_test_attn.png");
  const Result r = run_ltri("attn -m " + model_ + " -f " + text_path_ + " --layer 2 --theta 0.3 -o " + png);
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_GT(std::filesystem::file_size(png), 100u);
  std::filesystem::remove(png);
}

}  // namespace
}  // namespace ltri
