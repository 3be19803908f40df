#pragma once
// Typed access to tokenizer.json fields. Every failure names the file and the JSON path of the
// field ("tokenizer.json: model.merges[12]: expected a string "a b" or a pair of strings, got
// number"), so a bad file is diagnosed in one line.
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/error.hpp"

namespace ltri {

using Json = nlohmann::json;

class JsonPath {
 public:
  JsonPath(std::string source, std::string path) : source_(std::move(source)), path_(std::move(path)) {}

  JsonPath operator/(std::string_view key) const {
    return JsonPath(source_, path_.empty() ? std::string(key) : path_ + "." + std::string(key));
  }
  JsonPath operator[](size_t index) const { return JsonPath(source_, cat(path_, "[", index, "]")); }

  const std::string& source() const { return source_; }
  const std::string& path() const { return path_; }

  template <class... Args>
  [[noreturn]] void fail(Args&&... args) const {
    if (path_.empty()) ltri::fail(source_, ": ", std::forward<Args>(args)...);
    ltri::fail(source_, ": ", path_, ": ", std::forward<Args>(args)...);
  }

 private:
  std::string source_;
  std::string path_;
};

// The value of obj[key]; fails if obj is not an object or the key is missing.
const Json& require_field(const Json& obj, std::string_view key, const JsonPath& obj_path);
// obj[key], or nullptr when absent or null.
const Json* optional_field(const Json& obj, std::string_view key, const JsonPath& obj_path);

std::string as_string(const Json& value, const JsonPath& path);
bool as_bool(const Json& value, const JsonPath& path);
int64_t as_int(const Json& value, const JsonPath& path);
const Json& as_array(const Json& value, const JsonPath& path);
const Json& as_object(const Json& value, const JsonPath& path);

std::string string_field(const Json& obj, std::string_view key, const JsonPath& obj_path);
bool bool_field(const Json& obj, std::string_view key, const JsonPath& obj_path, bool fallback);
int64_t int_field(const Json& obj, std::string_view key, const JsonPath& obj_path);

// The "type" of a component object ({"type": "BPE", ...}).
std::string component_type(const Json& component, const JsonPath& path);

}  // namespace ltri
