// libFuzzer target for the safetensors header parser (SafetensorsFile::parse).
// Refusing input with ltri::Error is the expected outcome; any other exception, a crash or a
// sanitizer report is a bug. Accepted input must satisfy what parse() promises its callers:
// every tensor lies inside the buffer, its byte count matches shape x dtype, and tensors with
// bytes do not overlap; each tensor is then read in full through convert_to_f32.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "core/dtype.hpp"
#include "core/error.hpp"
#include "io/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A private copy, so reads past the input are caught by ASan at the exact byte.
  const std::vector<uint8_t> bytes(data, data + size);
  std::map<std::string, ltri::TensorEntry> tensors;
  try {
    tensors = ltri::SafetensorsFile::parse(bytes.data(), bytes.size(), "fuzz.safetensors");
  } catch (const ltri::Error&) {
    return 0;
  }
  const uint8_t* begin = bytes.data();
  const uint8_t* end = begin + bytes.size();
  std::vector<std::pair<const uint8_t*, const uint8_t*>> ranges;  // [first byte, past last) of non-empty tensors
  std::vector<float> values;
  for (const auto& [name, t] : tensors) {
    if (t.name != name || t.numel() < 0) std::abort();
    if (size_t(t.numel()) * ltri::dtype_size(t.dtype) != t.nbytes) std::abort();
    if (t.nbytes == 0) continue;
    if (t.data < begin || t.data + t.nbytes > end) std::abort();
    ranges.push_back({t.data, t.data + t.nbytes});
    values.resize(size_t(t.numel()));
    ltri::convert_to_f32(t.data, t.dtype, values.data(), values.size());
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i) {
    if (ranges[i].first < ranges[i - 1].second) std::abort();
  }
  return 0;
}
