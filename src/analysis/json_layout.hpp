#pragma once
// The analysis files are read by people as well as by the engine: one field per line, a list of
// numbers on one line, a list of lists one inner list per line (a layer per line), instead of
// nlohmann's one-number-per-line indentation.
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "core/error.hpp"
#include "core/mapped_file.hpp"

namespace ltri {

inline std::string json_layout(const nlohmann::ordered_json& object) {
  std::string out = "{\n";
  size_t i = 0;
  for (const auto& [key, value] : object.items()) {
    out += "  " + nlohmann::ordered_json(key).dump() + ": ";
    const bool nested = value.is_array() && !value.empty() && value[0].is_array();
    if (nested) {
      out += "[\n";
      for (size_t r = 0; r < value.size(); ++r) out += "    " + value[r].dump() + (r + 1 < value.size() ? ",\n" : "\n");
      out += "  ]";
    } else {
      out += value.dump();
    }
    out += ++i < object.size() ? ",\n" : "\n";
  }
  return out + "}\n";
}

// Writes `object` laid out as above to `path`; errors name the path.
inline void write_json_file(const std::string& path, const nlohmann::ordered_json& object) {
  std::ofstream out(path);
  if (!out) fail(path, ": cannot open for writing");
  out << json_layout(object);
  if (!out) fail(path, ": write failed");
}

// Reads `path` as a JSON object whose field 'format' is `format`; errors name the path.
inline nlohmann::json read_json_object(const std::string& path, const std::string& format) {
  const std::string text = read_text_file(path);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": not valid JSON (", e.what(), ")");
  }
  if (!j.is_object()) fail(path, ": expected a JSON object");
  if (!j.contains("format") || j["format"] != format) fail(path, ": field 'format' must be \"", format, "\"");
  return j;
}

}  // namespace ltri
