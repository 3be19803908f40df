#pragma once
// Test helpers for the io tests: safetensors images written byte by byte (so the tests do not
// trust the reader to describe its own input), temporary directories, and error capture.
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "core/error.hpp"

namespace ltri::test {

struct StTensor {
  std::string name;
  std::string dtype;  // safetensors spelling: "F32", "BF16", "F16", ...
  std::vector<int64_t> shape;
  std::string bytes;  // raw little-endian element bytes
};

inline std::string le_u64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = char((v >> (8 * i)) & 0xff);
  return s;
}

template <class T>
std::string raw_bytes(const std::vector<T>& values) {
  std::string s(values.size() * sizeof(T), '\0');
  if (!values.empty()) std::memcpy(s.data(), values.data(), s.size());
  return s;
}

// u64 length | header | data, with the header taken verbatim.
inline std::string st_image(const std::string& header, const std::string& data = "") {
  return le_u64(header.size()) + header + data;
}

inline std::string shape_json(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(shape[i]);
  }
  s += ']';
  return s;
}

// A well-formed file: tensors laid out back to back in the given order. The header is padded
// with spaces until (8 + header length) % pad_to == data_phase, which lets a test place the data
// section at an odd address (pad_to 8, data_phase 1) or aligned (8, 0) as writers normally do.
inline std::string st_build(const std::vector<StTensor>& tensors, const std::string& metadata_json = "",
                            size_t pad_to = 8, size_t data_phase = 0) {
  std::string header = "{";
  std::string data;
  bool first = true;
  if (!metadata_json.empty()) {
    header += "\"__metadata__\":" + metadata_json;
    first = false;
  }
  for (const StTensor& t : tensors) {
    const size_t begin = data.size();
    data += t.bytes;
    // Appended piece by piece: GCC 12 gives a spurious -Wrestrict on chains of string '+'.
    if (!first) header += ',';
    header.append("\"").append(t.name).append("\":{\"dtype\":\"").append(t.dtype);
    header.append("\",\"shape\":").append(shape_json(t.shape));
    header.append(",\"data_offsets\":[").append(std::to_string(begin)).append(",");
    header.append(std::to_string(data.size())).append("]}");
    first = false;
  }
  header += "}";
  while ((8 + header.size()) % pad_to != data_phase % pad_to) header += ' ';
  return st_image(header, data);
}

inline void write_file(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), std::streamsize(bytes.size()));
  if (!out) throw std::runtime_error("test: cannot write " + path.string());
}

// A fresh directory under the system temp dir, removed with everything in it at scope exit.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() /
            ("ltri_io_test_" + std::to_string(rd()) + "_" + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// The message of the ltri::Error that `fn` throws, or "<no error>" (which no expectation
// in these tests matches).
inline std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const ltri::Error& e) {
    return e.what();
  }
  return "<no error>";
}

}  // namespace ltri::test
