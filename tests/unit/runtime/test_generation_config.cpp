// generation_config.json eos ids: read as HF generate() reads them (an id or a list), strict
// about broken files, silent when the file or the field is absent.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "core/error.hpp"
#include "runtime/generation_config.hpp"

namespace ltri {
namespace {

class GenerationConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("ltri_gen_config_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void write(const std::string& text) { std::ofstream(dir_ / "generation_config.json") << text; }
  std::filesystem::path dir_;
};

TEST_F(GenerationConfigTest, missing_file_gives_no_ids) {
  EXPECT_TRUE(load_generation_eos_ids(dir_.string()).empty());
}

TEST_F(GenerationConfigTest, single_id_and_list_are_read_in_order) {
  write(R"({"bos_token_id": 0, "eos_token_id": 7})");
  EXPECT_EQ(load_generation_eos_ids(dir_.string()), (std::vector<int64_t>{7}));
  write(R"({"eos_token_id": [128001, 128009]})");
  EXPECT_EQ(load_generation_eos_ids(dir_.string()), (std::vector<int64_t>{128001, 128009}));
  write(R"({"eos_token_id": null})");
  EXPECT_TRUE(load_generation_eos_ids(dir_.string()).empty());
}

TEST_F(GenerationConfigTest, broken_files_name_the_file) {
  for (const char* text : {"{", R"({"eos_token_id": "x"})", R"({"eos_token_id": [-3]})", "[1, 2]"}) {
    write(text);
    try {
      load_generation_eos_ids(dir_.string());
      ADD_FAILURE() << "no error for " << text;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("generation_config.json"), std::string::npos) << e.what();
    }
  }
}

TEST(BundledModelGenerationConfig, lists_end_of_text_and_the_next_episode_bos) {
  const auto ids = load_generation_eos_ids(LTRI_SOURCE_DIR "/models/ltri-demo");
  EXPECT_EQ(ids, (std::vector<int64_t>{1, 0}));
}

}  // namespace
}  // namespace ltri
