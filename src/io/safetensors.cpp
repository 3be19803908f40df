#include "io/safetensors.hpp"

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.hpp"

namespace ltri {

namespace {

// No real header comes near this; a bound keeps a corrupt length from driving a huge parse.
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

std::string base_name(const std::string& path) {
  return std::filesystem::path(path).filename().string();
}

std::vector<int64_t> parse_shape(const nlohmann::json& j, const std::string& where) {
  if (!j.is_array()) fail(where, ": \"shape\" must be a list of non-negative integers");
  std::vector<int64_t> shape;
  for (const auto& d : j) {
    if (!d.is_number_unsigned()) fail(where, ": \"shape\" must be a list of non-negative integers");
    const uint64_t v = d.get<uint64_t>();
    if (v > (1ull << 48)) fail(where, ": shape dimension ", v, " is implausibly large");
    shape.push_back(int64_t(v));
  }
  return shape;
}

}  // namespace

int64_t TensorEntry::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string TensorEntry::shape_string() const {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::map<std::string, TensorEntry> SafetensorsFile::parse(const uint8_t* bytes, size_t size,
                                                          const std::string& name) {
  if (size < 8) fail(name, ": not a safetensors file (", size, " bytes, shorter than the 8-byte header length)");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes[i];  // little-endian
  if (header_len == 0) fail(name, ": header length is 0");
  if (header_len > kMaxHeaderBytes) {
    fail(name, ": header length ", header_len, " exceeds the ", kMaxHeaderBytes, "-byte limit");
  }
  if (header_len > size - 8) {
    fail(name, ": header length ", header_len, " runs past the end of the file (", size, " bytes)");
  }
  const char* header = reinterpret_cast<const char*>(bytes + 8);
  nlohmann::json j = nlohmann::json::parse(header, header + header_len, nullptr, false);
  if (j.is_discarded()) fail(name, ": header is not valid JSON");
  if (!j.is_object()) fail(name, ": header is not a JSON object");

  const uint8_t* data = bytes + 8 + header_len;
  const uint64_t data_size = size - 8 - header_len;
  std::map<std::string, TensorEntry> tensors;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;  // (begin, end) of non-empty tensors
  std::vector<const std::string*> range_names;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() == "__metadata__") continue;
    const std::string where = cat(name, ": tensor '", it.key(), "'");
    const nlohmann::json& e = it.value();
    if (!e.is_object()) fail(where, ": entry is not a JSON object");
    if (!e.contains("dtype") || !e["dtype"].is_string()) fail(where, ": missing \"dtype\"");
    TensorEntry t;
    t.name = it.key();
    t.file = name;
    const std::string dtype = e["dtype"].get<std::string>();
    if (!dtype_from_name(dtype, &t.dtype)) {
      fail(where, ": dtype ", dtype, " not supported (F32, BF16, F16)");
    }
    if (!e.contains("shape")) fail(where, ": missing \"shape\"");
    t.shape = parse_shape(e["shape"], where);
    if (!e.contains("data_offsets") || !e["data_offsets"].is_array() ||
        e["data_offsets"].size() != 2 || !e["data_offsets"][0].is_number_unsigned() ||
        !e["data_offsets"][1].is_number_unsigned()) {
      fail(where, ": \"data_offsets\" must be two non-negative integers [begin, end]");
    }
    const uint64_t begin = e["data_offsets"][0].get<uint64_t>();
    const uint64_t end = e["data_offsets"][1].get<uint64_t>();
    if (begin > end) fail(where, ": data_offsets begin ", begin, " > end ", end);
    if (end > data_size) {
      fail(where, ": data_offsets end ", end, " is past the data section (", data_size, " bytes)");
    }
    // numel * element size; a product that overflows cannot match any real byte count.
    uint64_t expected = dtype_size(t.dtype);
    for (int64_t d : t.shape) {
      if (__builtin_mul_overflow(expected, uint64_t(d), &expected)) {
        expected = UINT64_MAX;
        break;
      }
    }
    if (expected != end - begin) {
      fail(where, ": shape ", t.shape_string(), " x ", dtype, " needs ",
           expected == UINT64_MAX ? std::string("more") : std::to_string(expected),
           " bytes, data_offsets span ", end - begin);
    }
    // Entries may be unaligned (the format does not align the data section): readers copy or
    // convert through memcpy (convert_to_f32), never cast to float*.
    t.data = data + begin;
    t.nbytes = size_t(end - begin);
    auto [slot, inserted] = tensors.emplace(t.name, std::move(t));
    if (begin != end) {
      ranges.push_back({begin, end});
      range_names.push_back(&slot->first);
    }
  }
  if (j.contains("__metadata__")) {
    const nlohmann::json& m = j["__metadata__"];
    if (!m.is_object()) fail(name, ": \"__metadata__\" must be an object of strings");
    for (auto it = m.begin(); it != m.end(); ++it) {
      if (!it.value().is_string()) fail(name, ": \"__metadata__\" value for '", it.key(), "' is not a string");
    }
  }
  // Overlap check: sort ranges by begin; any begin before the previous end overlaps.
  std::vector<size_t> order(ranges.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return ranges[a] < ranges[b]; });
  for (size_t k = 1; k < order.size(); ++k) {
    const auto& prev = ranges[order[k - 1]];
    const auto& cur = ranges[order[k]];
    if (cur.first < prev.second) {
      fail(name, ": tensors '", *range_names[order[k - 1]], "' and '", *range_names[order[k]],
           "' overlap (bytes ", cur.first, "..", prev.second, ")");
    }
  }
  return tensors;
}

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  SafetensorsFile f;
  f.file_ = MappedFile::open(path);
  f.tensors_ = parse(f.file_.data(), f.file_.size(), path);
  const uint8_t* b = f.file_.data();
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | b[i];
  const char* header = reinterpret_cast<const char*>(b + 8);
  nlohmann::json j = nlohmann::json::parse(header, header + header_len, nullptr, false);
  if (j.contains("__metadata__")) {
    for (auto it = j["__metadata__"].begin(); it != j["__metadata__"].end(); ++it) {
      f.metadata_[it.key()] = it.value().get<std::string>();
    }
  }
  return f;
}

WeightStore WeightStore::open_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  WeightStore store;
  store.dir_ = dir;
  const fs::path index_path = fs::path(dir) / "model.safetensors.index.json";
  const fs::path single_path = fs::path(dir) / "model.safetensors";
  std::error_code ec;
  if (fs::exists(index_path, ec)) {
    const std::string where = index_path.string();
    nlohmann::json j = nlohmann::json::parse(read_text_file(where), nullptr, false);
    if (j.is_discarded() || !j.is_object()) fail(where, ": not valid JSON");
    if (!j.contains("weight_map") || !j["weight_map"].is_object()) {
      fail(where, ": missing \"weight_map\" object");
    }
    std::map<std::string, size_t> shard_index;  // shard file -> files_ slot
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      if (!it.value().is_string()) fail(where, ": weight_map entry '", it.key(), "' is not a file name");
      const std::string shard = it.value().get<std::string>();
      if (shard.empty() || shard.find('/') != std::string::npos || shard.find("..") != std::string::npos) {
        fail(where, ": weight_map entry '", it.key(), "' names a bad shard file '", shard, "'");
      }
      auto found = shard_index.find(shard);
      if (found == shard_index.end()) {
        store.files_.push_back(std::make_unique<SafetensorsFile>(
            SafetensorsFile::open((fs::path(dir) / shard).string())));
        found = shard_index.emplace(shard, store.files_.size() - 1).first;
      }
      const SafetensorsFile& file = *store.files_[found->second];
      auto t = file.tensors().find(it.key());
      if (t == file.tensors().end()) {
        fail(file.path(), ": tensor '", it.key(), "' listed in model.safetensors.index.json is missing");
      }
      store.index_[it.key()] = &t->second;
    }
  } else if (fs::exists(single_path, ec)) {
    store.files_.push_back(std::make_unique<SafetensorsFile>(SafetensorsFile::open(single_path.string())));
    for (const auto& [name, entry] : store.files_.back()->tensors()) store.index_[name] = &entry;
  } else {
    fail(dir, ": no model.safetensors or model.safetensors.index.json");
  }
  return store;
}

const TensorEntry* WeightStore::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : it->second;
}

const TensorEntry& WeightStore::get(const std::string& name) const {
  const TensorEntry* t = find(name);
  if (!t) fail(dir_, ": missing tensor '", name, "'");
  return *t;
}

const TensorEntry& WeightStore::get(const std::string& name,
                                    const std::vector<int64_t>& expected_shape,
                                    const std::string& why) const {
  const TensorEntry& t = get(name);
  if (t.shape != expected_shape) {
    TensorEntry want;
    want.shape = expected_shape;
    fail(base_name(t.file), ": tensor '", name, "': expected shape ", want.shape_string(),
         why.empty() ? "" : " (" + why + ")", ", got ", t.shape_string());
  }
  return t;
}

}  // namespace ltri
