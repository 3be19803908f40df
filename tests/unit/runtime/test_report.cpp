// The timing block of `ltri run` keeps llama.cpp's wording and arithmetic, and the sizes the
// reports print are rounded as documented.
#include <gtest/gtest.h>

#include <string>

#include "runtime/model_info.hpp"
#include "runtime/report.hpp"

namespace ltri {
namespace {

TEST(Report, timing_block_uses_llama_cpp_wording_and_rates) {
  GenerateStats s;
  s.prompt_tokens = 20;
  s.prompt_ms = 500.0;
  s.eval_runs = 10;
  s.eval_ms = 250.0;
  s.total_ms = 760.0;
  s.kv_bytes = 3 * 1024 * 1024;
  const std::string block = format_timings(123.456, s, 100 * 1024 * 1024);
  EXPECT_EQ(block,
            "       load time =     123.46 ms\n"
            "prompt eval time =     500.00 ms /    20 tokens (   25.00 ms per token,    40.00 tokens per second)\n"
            "       eval time =     250.00 ms /    10 runs   (   25.00 ms per token,    40.00 tokens per second)\n"
            "      total time =     760.00 ms /    30 tokens\n"
            "peak RSS = 100.0 MiB, KV cache = 3.0 MiB\n");
}

TEST(Report, empty_phase_prints_zeros_not_nan) {
  GenerateStats s;
  s.prompt_tokens = 3;
  s.prompt_ms = 1.5;
  const std::string block = format_timings(0.0, s, 0);
  EXPECT_EQ(block.find("nan"), std::string::npos) << block;
  EXPECT_EQ(block.find("inf"), std::string::npos) << block;
  EXPECT_NE(block.find("       eval time =       0.00 ms /     0 runs   (    0.00 ms per token,     0.00 tokens per second)"),
            std::string::npos)
      << block;
}

TEST(Report, sizes_are_human_readable) {
  EXPECT_EQ(format_param_count(15733632), "15.7 M");
  EXPECT_EQ(format_param_count(8030261248), "8.03 B");
  EXPECT_EQ(format_param_count(1500), "1.5 K");
  EXPECT_EQ(format_param_count(999), "999");
  EXPECT_EQ(format_bytes(62934528.0), "60.0 MiB");
  EXPECT_EQ(format_bytes(1024.0 * 1024 * 1024 * 1.5), "1.50 GiB");
  EXPECT_EQ(format_bytes(2048.0), "2.0 KiB");
  EXPECT_EQ(format_bytes(12.0), "12 B");
}

}  // namespace
}  // namespace ltri
