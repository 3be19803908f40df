#pragma once
// safetensors checkpoints: one file or a sharded set behind model.safetensors.index.json.
// Files are memory-mapped; every header is validated strictly before any tensor is handed out
// (header size bound, JSON, dtype, shape x dtype = byte length, offsets inside the data section,
// no two tensors overlapping), so a broken file is reported by name and never read out of bounds.
//
// Alignment: the format does not align the data section (it starts at 8 + header length, which
// writers usually but not always pad to a multiple of 8), so TensorEntry::data may have any
// alignment. Read tensors through memcpy or convert_to_f32 (which copies element by element);
// never reinterpret_cast `data` to float* / uint16_t* and dereference it, which is undefined
// behaviour on an unaligned address.
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.hpp"
#include "core/mapped_file.hpp"

namespace ltri {

struct TensorEntry {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;  // as stored, row-major, e.g. [out_features, in_features]
  const uint8_t* data = nullptr;  // inside the mapped file; ANY alignment (see above)
  size_t nbytes = 0;              // numel() x dtype_size(dtype); 0 for zero-size tensors
  std::string file;  // the file it lives in, for error messages

  int64_t numel() const;
  std::string shape_string() const;  // "[1024, 4096]"
};

// "[1024, 4096]", as in error messages.
std::string shape_string(const std::vector<int64_t>& shape);

// One .safetensors file.
class SafetensorsFile {
 public:
  // Throws ltri::Error "<path>: <problem>" on any defect.
  static SafetensorsFile open(const std::string& path);
  // Validates an in-memory image (used by open() and by the fuzz target); `name` is for errors.
  // The returned entries point into `bytes`, which must outlive them.
  static std::map<std::string, TensorEntry> parse(const uint8_t* bytes, size_t size,
                                                  const std::string& name);

  const std::map<std::string, TensorEntry>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::string& path() const { return file_.path(); }

 private:
  MappedFile file_;
  std::map<std::string, TensorEntry> tensors_;
  std::map<std::string, std::string> metadata_;
};

// All weights of a model directory: model.safetensors, or the shards listed by
// model.safetensors.index.json (each shard checked to hold what the index says; a tensor stored
// in two shards is an error). Shard names must be plain file names inside the directory.
class WeightStore {
 public:
  static WeightStore open_dir(const std::string& dir);

  // nullptr if absent.
  const TensorEntry* find(const std::string& name) const;
  // Throws "<dir>: missing tensor '<name>'" if absent.
  const TensorEntry& get(const std::string& name) const;
  // Throws naming file, tensor, expected and actual shape (and `why`, e.g.
  // "num_key_value_heads 8 x head_dim 128") if the shape differs.
  const TensorEntry& get(const std::string& name, const std::vector<int64_t>& expected_shape,
                         const std::string& why = "") const;
  const std::map<std::string, const TensorEntry*>& all() const { return index_; }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const TensorEntry*> index_;
};

}  // namespace ltri
