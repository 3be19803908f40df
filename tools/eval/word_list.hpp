#pragma once
// Words for RULER keys ("wandering-dragon") and word values: the system dictionary (Debian's
// wamerican, /usr/share/dict/american-english), lower-case words of 3-10 letters, split 90/10
// by the CRC-32 of each word exactly as tools/train_demo/tasks.py does. The bundled model was
// trained with keys from the 90% part; evaluation draws from the held-out 10%.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ltri::eval {

constexpr const char* kDefaultWordsFile = "/usr/share/dict/american-english";

class WordList {
 public:
  // Throws ltri::Error naming the file if it is missing or has no usable words.
  static WordList load(const std::string& path);
  // From the text of a word file (one word a line); `source` names it in errors.
  static WordList from_text(std::string_view text, const std::string& source);

  const std::vector<std::string>& train() const { return train_; }
  const std::vector<std::string>& heldout() const { return heldout_; }

 private:
  std::vector<std::string> train_;
  std::vector<std::string> heldout_;
};

// zlib's CRC-32 (the polynomial of Python's zlib.crc32).
uint32_t crc32(std::string_view bytes);

}  // namespace ltri::eval
