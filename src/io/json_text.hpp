#pragma once
// Small helpers for putting file-supplied values into one-line error messages (private to io).
// Names and values in checkpoints are untrusted: they may hold newlines, be megabytes long, or be
// nested thousands of levels deep, so errors never dump a whole JSON value.
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace ltri::io {

// Control characters escaped as \xNN and long text cut, so a message stays one readable line.
inline std::string printable(std::string_view s, size_t max_bytes = 200) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < max_bytes; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) {
      char hex[8];
      std::snprintf(hex, sizeof(hex), "\\x%02X", c);
      out += hex;
    } else {
      out += char(c);
    }
  }
  if (s.size() > max_bytes) out += "...";
  return out;
}

// A short description of what a value is: scalars as written (strings cut to 40 bytes),
// containers only by kind, so describing a deeply nested value costs nothing and cannot recurse.
inline std::string describe(const nlohmann::json& v) {
  using nlohmann::json;
  switch (v.type()) {
    case json::value_t::array: return "a list";
    case json::value_t::object: return "an object";
    case json::value_t::null: return "null";
    case json::value_t::string: {
      const std::string& s = v.get_ref<const std::string&>();
      const bool cut = s.size() > 40;
      // replace: cutting may split a UTF-8 sequence, which dump() would otherwise refuse.
      return json(cut ? s.substr(0, 40) : s).dump(-1, ' ', false, json::error_handler_t::replace) +
             (cut ? "..." : "");
    }
    case json::value_t::number_float:
      // A literal like 1e999 parses to infinity, which dump() would print as null.
      return std::isfinite(v.get<double>()) ? v.dump() : "a number out of range";
    default: return v.dump();
  }
}

}  // namespace ltri::io
