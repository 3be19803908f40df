// One safetensors file: header validation and the tensor table.
//
// Layout: u64 little-endian N | N bytes of JSON | data section. The JSON maps each tensor name to
// {"dtype", "shape", "data_offsets": [begin, end]} with offsets relative to the data section,
// plus an optional "__metadata__" {string: string}. Every field is checked before any pointer
// into the data section is formed, so a corrupt or hostile file ends in one ltri::Error line.
#include "io/safetensors.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string_view>
#include <utility>

#include "core/error.hpp"
#include "io/json_text.hpp"

namespace ltri {

namespace {

using nlohmann::json;

// No real header comes near this (a 400B-parameter shard lists a few thousand tensors in well
// under 1 MB); the bound keeps a corrupt length from driving a huge parse.
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;
// A dimension past this is corruption; the bound keeps shape arithmetic far from int64 overflow.
constexpr uint64_t kMaxDim = 1ull << 48;

// dtypes the format defines that ltri does not load; anything else is not safetensors at all.
constexpr std::string_view kKnownUnsupportedDtypes[] = {
    "BOOL", "U8", "I8", "U16", "I16", "U32", "I32", "U64", "I64", "F64",
    "F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4", "C64"};

struct Header {
  std::map<std::string, TensorEntry> tensors;
  std::map<std::string, std::string> metadata;
};

uint64_t read_u64_le(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

DType parse_dtype(const json& e, const std::string& where) {
  if (!e.contains("dtype")) fail(where, ": missing \"dtype\"");
  const json& d = e["dtype"];
  if (!d.is_string()) fail(where, ": \"dtype\" must be a string, got ", io::describe(d));
  const std::string& name = d.get_ref<const std::string&>();
  DType t;
  if (dtype_from_name(name, &t)) return t;
  for (std::string_view known : kKnownUnsupportedDtypes) {
    if (name == known) fail(where, ": dtype ", name, " not supported (F32, BF16, F16)");
  }
  fail(where, ": unknown dtype ", io::describe(d), " (supported: F32, BF16, F16)");
}

std::vector<int64_t> parse_shape(const json& e, const std::string& where) {
  if (!e.contains("shape")) fail(where, ": missing \"shape\"");
  const json& s = e["shape"];
  if (!s.is_array()) fail(where, ": \"shape\" must be a list of non-negative integers, got ", io::describe(s));
  std::vector<int64_t> shape;
  for (const json& d : s) {
    if (!d.is_number_unsigned()) {
      fail(where, ": \"shape\" must be a list of non-negative integers, found ", io::describe(d));
    }
    const uint64_t v = d.get<uint64_t>();
    if (v > kMaxDim) fail(where, ": shape dimension ", v, " is implausibly large (limit ", kMaxDim, ")");
    shape.push_back(int64_t(v));
  }
  return shape;
}

// Bytes that `shape` of `t` occupies; UINT64_MAX when the product overflows (it then cannot
// equal any real byte span).
uint64_t shape_bytes(const std::vector<int64_t>& shape, DType t) {
  if (std::find(shape.begin(), shape.end(), 0) != shape.end()) return 0;
  uint64_t bytes = dtype_size(t);
  for (int64_t d : shape) {
    if (__builtin_mul_overflow(bytes, uint64_t(d), &bytes)) return UINT64_MAX;
  }
  return bytes;
}

std::pair<uint64_t, uint64_t> parse_offsets(const json& e, const std::string& where) {
  if (!e.contains("data_offsets")) fail(where, ": missing \"data_offsets\"");
  const json& o = e["data_offsets"];
  if (!o.is_array() || o.size() != 2 || !o[0].is_number_unsigned() || !o[1].is_number_unsigned()) {
    fail(where, ": \"data_offsets\" must be two non-negative integers [begin, end], got ",
         o.is_array() && o.size() <= 4 ? o.dump() : io::describe(o));
  }
  const uint64_t begin = o[0].get<uint64_t>(), end = o[1].get<uint64_t>();
  if (begin > end) fail(where, ": data_offsets begin ", begin, " > end ", end);
  return {begin, end};
}

std::map<std::string, std::string> parse_metadata(const json& j, const std::string& name) {
  std::map<std::string, std::string> metadata;
  auto m = j.find("__metadata__");
  if (m == j.end() || m->is_null()) return metadata;
  if (!m->is_object()) fail(name, ": \"__metadata__\" must be an object of strings, got ", io::describe(*m));
  for (auto it = m->begin(); it != m->end(); ++it) {
    if (!it.value().is_string()) {
      fail(name, ": \"__metadata__\" value for '", io::printable(it.key()), "' must be a string, got ",
           io::describe(it.value()));
    }
    metadata[it.key()] = it.value().get<std::string>();
  }
  return metadata;
}

// Non-empty byte ranges must not share a byte: sorted by begin, each starts at or after the
// previous one's end. (Gaps are allowed; the format's own writer never leaves any.)
void check_no_overlap(const std::map<std::string, TensorEntry>& tensors, const uint8_t* data,
                      const std::string& name) {
  std::vector<const TensorEntry*> placed;
  for (const auto& [_, t] : tensors) {
    if (t.nbytes > 0) placed.push_back(&t);
  }
  std::sort(placed.begin(), placed.end(), [](const TensorEntry* a, const TensorEntry* b) {
    return a->data != b->data ? a->data < b->data : a->nbytes < b->nbytes;
  });
  for (size_t k = 1; k < placed.size(); ++k) {
    const TensorEntry& prev = *placed[k - 1];
    const TensorEntry& cur = *placed[k];
    if (cur.data < prev.data + prev.nbytes) {
      fail(name, ": tensors '", io::printable(prev.name), "' and '", io::printable(cur.name),
           "' overlap (data_offsets [", prev.data - data, ", ", prev.data - data + prev.nbytes, "] and [",
           cur.data - data, ", ", cur.data - data + cur.nbytes, "])");
    }
  }
}

Header parse_header(const uint8_t* bytes, size_t size, const std::string& name) {
  if (size < 8) {
    fail(name, ": not a safetensors file (", size, " bytes, shorter than the 8-byte header length)");
  }
  const uint64_t header_len = read_u64_le(bytes);
  if (header_len == 0) fail(name, ": header length is 0");
  if (header_len > kMaxHeaderBytes) {
    fail(name, ": header length ", header_len, " exceeds the ", kMaxHeaderBytes, "-byte limit");
  }
  if (header_len > size - 8) {
    fail(name, ": header length ", header_len, " runs past the end of the file (", size, " bytes)");
  }
  const char* text = reinterpret_cast<const char*>(bytes + 8);
  json j;
  try {
    j = json::parse(text, text + header_len, nullptr, /*allow_exceptions=*/false);
  } catch (const json::exception& e) {  // not expected with allow_exceptions=false; kept safe
    fail(name, ": header is not valid JSON (", e.what(), ")");
  }
  if (j.is_discarded()) fail(name, ": header is not valid JSON");
  if (!j.is_object()) fail(name, ": header is not a JSON object");

  Header h;
  const uint8_t* data = bytes + 8 + header_len;
  const uint64_t data_size = size - 8 - header_len;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() == "__metadata__") continue;
    const std::string where = cat(name, ": tensor '", io::printable(it.key()), "'");
    const json& e = it.value();
    if (!e.is_object()) fail(where, ": entry must be an object, got ", io::describe(e));
    TensorEntry t;
    t.name = it.key();
    t.file = name;
    t.dtype = parse_dtype(e, where);
    t.shape = parse_shape(e, where);
    const auto [begin, end] = parse_offsets(e, where);
    if (end > data_size) {
      fail(where, ": data_offsets end ", end, " is past the end of the data section (", data_size, " bytes)");
    }
    const uint64_t expected = shape_bytes(t.shape, t.dtype);
    if (expected != end - begin) {
      fail(where, ": shape ", t.shape_string(), " x ", dtype_name(t.dtype), " needs ",
           expected == UINT64_MAX ? std::string("more than 2^64") : std::to_string(expected),
           " bytes, data_offsets [", begin, ", ", end, "] span ", end - begin);
    }
    t.data = data + begin;
    t.nbytes = size_t(end - begin);
    h.tensors.emplace(t.name, std::move(t));
  }
  h.metadata = parse_metadata(j, name);
  check_no_overlap(h.tensors, data, name);
  return h;
}

}  // namespace

int64_t TensorEntry::numel() const {
  // A zero anywhere makes the count 0 whatever the other dimensions are (and their product
  // might not fit); otherwise validation has bounded the product by the file size.
  if (std::find(shape.begin(), shape.end(), 0) != shape.end()) return 0;
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string TensorEntry::shape_string() const { return ltri::shape_string(shape); }

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::map<std::string, TensorEntry> SafetensorsFile::parse(const uint8_t* bytes, size_t size,
                                                          const std::string& name) {
  return parse_header(bytes, size, name).tensors;
}

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  SafetensorsFile f;
  f.file_ = MappedFile::open(path);
  Header h = parse_header(f.file_.data(), f.file_.size(), path);
  f.tensors_ = std::move(h.tensors);
  f.metadata_ = std::move(h.metadata);
  return f;
}

}  // namespace ltri
