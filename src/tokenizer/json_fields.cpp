#include "tokenizer/json_fields.hpp"

namespace ltri {

const Json& require_field(const Json& obj, std::string_view key, const JsonPath& obj_path) {
  as_object(obj, obj_path);
  const auto it = obj.find(key);
  if (it == obj.end()) (obj_path / key).fail("missing");
  return *it;
}

const Json* optional_field(const Json& obj, std::string_view key, const JsonPath& obj_path) {
  as_object(obj, obj_path);
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

std::string as_string(const Json& value, const JsonPath& path) {
  if (!value.is_string()) path.fail("expected a string, got ", value.type_name());
  return value.get<std::string>();
}

bool as_bool(const Json& value, const JsonPath& path) {
  if (!value.is_boolean()) path.fail("expected true or false, got ", value.type_name());
  return value.get<bool>();
}

int64_t as_int(const Json& value, const JsonPath& path) {
  if (value.is_number_unsigned()) {
    const uint64_t v = value.get<uint64_t>();
    if (v > static_cast<uint64_t>(INT64_MAX)) path.fail("integer ", v, " is too large");
    return static_cast<int64_t>(v);
  }
  if (!value.is_number_integer()) path.fail("expected an integer, got ", value.type_name());
  return value.get<int64_t>();
}

const Json& as_array(const Json& value, const JsonPath& path) {
  if (!value.is_array()) path.fail("expected an array, got ", value.type_name());
  return value;
}

const Json& as_object(const Json& value, const JsonPath& path) {
  if (!value.is_object()) path.fail("expected an object, got ", value.type_name());
  return value;
}

std::string string_field(const Json& obj, std::string_view key, const JsonPath& obj_path) {
  return as_string(require_field(obj, key, obj_path), obj_path / key);
}

bool bool_field(const Json& obj, std::string_view key, const JsonPath& obj_path, bool fallback) {
  const Json* v = optional_field(obj, key, obj_path);
  return v ? as_bool(*v, obj_path / key) : fallback;
}

int64_t int_field(const Json& obj, std::string_view key, const JsonPath& obj_path) {
  return as_int(require_field(obj, key, obj_path), obj_path / key);
}

std::string component_type(const Json& component, const JsonPath& path) {
  return string_field(component, "type", path);
}

}  // namespace ltri
