#include "runtime/generation_config.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.hpp"

namespace ltri {

namespace {

int64_t token_id(const nlohmann::json& v, const std::string& path) {
  if (!v.is_number_integer() || v.get<int64_t>() < 0) {
    fail(path, ": eos_token_id must be a token id >= 0 or a list of them, got ", v.dump());
  }
  return v.get<int64_t>();
}

}  // namespace

std::vector<int64_t> load_generation_eos_ids(const std::string& model_dir) {
  const std::filesystem::path path = std::filesystem::path(model_dir) / "generation_config.json";
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return {};
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path.string(), ": cannot read the file");
  std::stringstream text;
  text << in.rdbuf();
  const nlohmann::json j = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) fail(path.string(), ": not a JSON object");
  std::vector<int64_t> ids;
  if (!j.contains("eos_token_id") || j["eos_token_id"].is_null()) return ids;
  const nlohmann::json& e = j["eos_token_id"];
  if (e.is_array()) {
    for (const nlohmann::json& v : e) ids.push_back(token_id(v, path.string()));
  } else {
    ids.push_back(token_id(e, path.string()));
  }
  return ids;
}

}  // namespace ltri
