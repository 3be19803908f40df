#pragma once
// A read-only memory map of a whole file. Weights are read straight from the map, so loading a
// checkpoint touches only the pages a tensor occupies.
#include <cstddef>
#include <cstdint>
#include <string>

namespace ltri {

class MappedFile {
 public:
  // Throws ltri::Error naming the path if it cannot be opened or mapped.
  static MappedFile open(const std::string& path);

  MappedFile() = default;
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
};

// Reads a whole (small) text file; throws ltri::Error naming the path on failure.
std::string read_text_file(const std::string& path);

}  // namespace ltri
