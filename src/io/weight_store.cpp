// All weights of a model directory: one model.safetensors, or the shards that
// model.safetensors.index.json names ({"weight_map": {tensor: shard file}}).
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.hpp"
#include "io/json_text.hpp"
#include "io/safetensors.hpp"

namespace ltri {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kIndexName = "model.safetensors.index.json";
constexpr const char* kSingleName = "model.safetensors";

std::string base_name(const std::string& path) { return fs::path(path).filename().string(); }

// A shard must be a plain file name in the model directory: an index that could point at
// "../../etc/x" or "/dev/zero" would let a downloaded checkpoint read files outside itself.
bool is_plain_file_name(const std::string& s) {
  return !s.empty() && s.find('/') == std::string::npos && s.find('\\') == std::string::npos &&
         s.find("..") == std::string::npos && s.find('\0') == std::string::npos;
}

// weight_map as (tensor, shard) pairs, each shard name checked.
std::vector<std::pair<std::string, std::string>> read_weight_map(const std::string& index_path) {
  const json j = json::parse(read_text_file(index_path), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) fail(index_path, ": not valid JSON");
  if (!j.is_object()) fail(index_path, ": not a JSON object");
  auto map = j.find("weight_map");
  if (map == j.end()) fail(index_path, ": missing \"weight_map\"");
  if (!map->is_object()) fail(index_path, ": \"weight_map\" must be an object, got ", io::describe(*map));
  if (map->empty()) fail(index_path, ": \"weight_map\" is empty");
  std::vector<std::pair<std::string, std::string>> entries;
  for (auto it = map->begin(); it != map->end(); ++it) {
    const std::string tensor = io::printable(it.key());
    if (!it.value().is_string()) {
      fail(index_path, ": weight_map entry for tensor '", tensor, "' must be a file name, got ",
           io::describe(it.value()));
    }
    const std::string& shard = it.value().get_ref<const std::string&>();
    if (!is_plain_file_name(shard)) {
      fail(index_path, ": weight_map entry for tensor '", tensor, "' names shard '", io::printable(shard),
           "', which is not a plain file name in the model directory");
    }
    entries.emplace_back(it.key(), shard);
  }
  return entries;
}

}  // namespace

WeightStore WeightStore::open_dir(const std::string& dir) {
  WeightStore store;
  store.dir_ = dir;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) fail(dir, ": not a directory");
  const std::string index_path = (fs::path(dir) / kIndexName).string();
  const std::string single_path = (fs::path(dir) / kSingleName).string();

  if (fs::exists(index_path, ec)) {
    const auto entries = read_weight_map(index_path);
    // Open each distinct shard once, in the order the index first names it.
    std::map<std::string, const SafetensorsFile*> shards;
    for (const auto& [tensor, shard] : entries) {
      if (shards.count(shard)) continue;
      const std::string shard_path = (fs::path(dir) / shard).string();
      if (!fs::exists(shard_path, ec)) {
        fail(index_path, ": shard '", shard, "' (listed for tensor '", io::printable(tensor),
             "') does not exist in ", dir);
      }
      store.files_.push_back(std::make_unique<SafetensorsFile>(SafetensorsFile::open(shard_path)));
      shards[shard] = store.files_.back().get();
    }
    for (const auto& [tensor, shard] : entries) {
      const SafetensorsFile& file = *shards.at(shard);
      if (!file.tensors().count(tensor)) {
        fail(file.path(), ": tensor '", io::printable(tensor), "' listed in ", kIndexName,
             " is not in this shard");
      }
    }
  } else if (fs::exists(single_path, ec)) {
    store.files_.push_back(std::make_unique<SafetensorsFile>(SafetensorsFile::open(single_path)));
  } else {
    fail(dir, ": no ", kSingleName, " or ", kIndexName);
  }

  // Every tensor of every opened file is visible; one name in two shards is ambiguous.
  for (const auto& file : store.files_) {
    for (const auto& [name, entry] : file->tensors()) {
      auto [slot, inserted] = store.index_.emplace(name, &entry);
      if (!inserted) {
        fail(dir, ": tensor '", io::printable(name), "' is stored in both ", base_name(slot->second->file),
             " and ", base_name(entry.file));
      }
    }
  }
  return store;
}

const TensorEntry* WeightStore::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : it->second;
}

const TensorEntry& WeightStore::get(const std::string& name) const {
  const TensorEntry* t = find(name);
  if (!t) fail(dir_, ": missing tensor '", io::printable(name), "'");
  return *t;
}

const TensorEntry& WeightStore::get(const std::string& name,
                                    const std::vector<int64_t>& expected_shape,
                                    const std::string& why) const {
  const TensorEntry& t = get(name);
  if (t.shape != expected_shape) {
    fail(base_name(t.file), ": tensor '", io::printable(name), "': expected shape ",
         shape_string(expected_shape), why.empty() ? "" : " (" + why + ")", ", got ", t.shape_string());
  }
  return t;
}

}  // namespace ltri
