#pragma once
// The analysis files are read by people as well as by the engine: one field per line, a list of
// numbers on one line, a list of lists one inner list per line (a layer per line), instead of
// nlohmann's one-number-per-line indentation.
#include <nlohmann/json.hpp>
#include <string>

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

}  // namespace ltri
