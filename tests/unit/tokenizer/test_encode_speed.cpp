// Encode speed on the real tokenizers. Times are printed, not asserted (the machine may be
// busy); what is asserted is that cost grows linearly: 4x the text may not cost anywhere near
// 16x the time, which is what a quadratic step would give.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "real_tokenizers.hpp"

namespace ltri {
namespace {

// `bytes` of text made from the prose sample, with each copy's words shuffled by a simple
// rotation so repeated copies are not identical (the word cache still helps, as in real text).
std::string prose_of_size(size_t bytes) {
  const std::string prose = read_text_file(test::fixtures_dir() + "/tokenizer/prose_10k.txt");
  std::string text;
  text.reserve(bytes + prose.size());
  size_t copy = 0;
  while (text.size() < bytes) {
    const size_t cut = (copy * 7919) % prose.size();
    text += prose.substr(cut);
    text += prose.substr(0, cut);
    text += std::to_string(copy++) + "\n";
  }
  text.resize(bytes);
  // Do not end inside a UTF-8 character.
  while (!text.empty() && (static_cast<unsigned char>(text.back()) & 0x80)) text.pop_back();
  return text;
}

// The best of five runs: a busy machine (CI, parallel test jobs) can stall any one run, and a
// stalled run of the small input against a clean one of the large would read as a cost that
// grows more slowly than it does, a stalled large one as a quadratic step.
double best_encode_ms(const Tokenizer& t, const std::string& text, size_t* n_ids) {
  double best = 1e30;
  for (int run = 0; run < 5; ++run) {
    const auto start = std::chrono::steady_clock::now();
    *n_ids = t.encode(text).size();
    best = std::min(best, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  return best;
}

class EncodeSpeed : public ::testing::TestWithParam<std::string> {};

TEST_P(EncodeSpeed, one_megabyte_of_prose_encodes_in_time_linear_in_its_length) {
  const Tokenizer* t = test::real_tokenizer(GetParam());
  ASSERT_NE(t, nullptr);
  const std::string small = prose_of_size(256 * 1024);
  const std::string large = prose_of_size(1024 * 1024);
  size_t small_ids = 0;
  size_t large_ids = 0;
  const double small_ms = best_encode_ms(*t, small, &small_ids);
  const double large_ms = best_encode_ms(*t, large, &large_ids);
  std::printf("%s: encode 1 MB of prose -> %zu ids in %.0f ms (%.1f MB/s); 256 KB in %.0f ms\n",
              GetParam().c_str(), large_ids, large_ms, large.size() / 1e6 / (large_ms / 1e3), small_ms);
  EXPECT_GT(large_ids, 3 * small_ids);
  EXPECT_LT(large_ms, 10.0 * std::max(small_ms, 1.0)) << "encode time grows faster than linearly";
}

TEST_P(EncodeSpeed, pathological_inputs_encode_in_linear_time) {
  const Tokenizer* t = test::real_tokenizer(GetParam());
  ASSERT_NE(t, nullptr);
  // Long runs the regex backtracks over, one huge word, and many special-token look-alikes.
  for (const std::string& unit : {std::string(" "), std::string("\n "), std::string("x"), std::string("<|"),
                                 std::string("\xE4\xBD\xA0")}) {
    std::string small, large;
    while (small.size() < 64 * 1024) small += unit;
    while (large.size() < 256 * 1024) large += unit;
    size_t small_ids = 0, large_ids = 0;
    const double small_ms = best_encode_ms(*t, small, &small_ids);
    const double large_ms = best_encode_ms(*t, large, &large_ids);
    EXPECT_LT(large_ms, 10.0 * std::max(small_ms, 2.0)) << "unit '" << unit << "': " << small_ms << " ms vs "
                                                        << large_ms << " ms";
    EXPECT_EQ(t->decode(t->encode(large, {false, true})), large);
  }
}

INSTANTIATE_TEST_SUITE_P(RealTokenizers, EncodeSpeed, ::testing::Values("llama3", "llama2"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace ltri
