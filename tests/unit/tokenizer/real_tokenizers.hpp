#pragma once
// Access to the real tokenizer.json files (Llama-3, Llama-2) that scripts/setup.sh fetches into
// .deps/tokenizers/, and to the HF goldens made from them. Tests that need them FAIL (not
// skip) when they are missing, so a machine without them cannot pass silently.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "core/mapped_file.hpp"
#include "test_paths.hpp"
#include "tokenizer/tokenizer.hpp"

namespace ltri::test {

inline std::string real_tokenizer_path(const std::string& name) {
  return deps_dir() + "/tokenizers/" + name + "/tokenizer.json";
}

// Loaded once per test binary. Returns nullptr (after recording a failure) if the file is
// missing.
inline const Tokenizer* real_tokenizer(const std::string& name) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> loaded;
  const auto it = loaded.find(name);
  if (it != loaded.end()) return it->second.get();
  const std::string path = real_tokenizer_path(name);
  if (!std::filesystem::exists(path)) {
    ADD_FAILURE() << path << " is missing: run scripts/setup.sh (fetches .deps/tokenizers)";
    return nullptr;
  }
  auto tokenizer = std::make_unique<Tokenizer>(Tokenizer::load(path));
  return loaded.emplace(name, std::move(tokenizer)).first->second.get();
}

inline nlohmann::json read_json_fixture(const std::string& relative) {
  return nlohmann::json::parse(read_text_file(fixtures_dir() + "/" + relative));
}

}  // namespace ltri::test
