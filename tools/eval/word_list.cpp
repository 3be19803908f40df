#include "word_list.hpp"

#include <algorithm>
#include <array>
#include <filesystem>

#include "core/error.hpp"
#include "core/mapped_file.hpp"

namespace ltri::eval {

uint32_t crc32(std::string_view bytes) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t crc = 0xFFFFFFFFu;
  for (char b : bytes) crc = table[(crc ^ uint8_t(b)) & 0xFF] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

namespace {

bool usable(std::string_view word) {
  if (word.size() < 3 || word.size() > 10) return false;
  return std::all_of(word.begin(), word.end(), [](char c) { return c >= 'a' && c <= 'z'; });
}

}  // namespace

WordList WordList::from_text(std::string_view text, const std::string& source) {
  std::vector<std::string> words;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view word = text.substr(start, end - start);
    while (!word.empty() && (word.back() == '\r' || word.back() == ' ')) word.remove_suffix(1);
    while (!word.empty() && word.front() == ' ') word.remove_prefix(1);
    if (usable(word)) words.emplace_back(word);
    start = end + 1;
  }
  std::sort(words.begin(), words.end());
  words.erase(std::unique(words.begin(), words.end()), words.end());
  WordList list;
  for (std::string& w : words) (crc32(w) % 10 == 0 ? list.heldout_ : list.train_).push_back(std::move(w));
  if (list.heldout_.size() < 2 || list.train_.empty()) {
    fail(source, ": too few lower-case words of 3-10 letters for task keys (", words.size(), " found)");
  }
  return list;
}

WordList WordList::load(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    fail(path, ": word list not found (install Debian's wamerican, or give --words FILE)");
  }
  return from_text(read_text_file(path), path);
}

}  // namespace ltri::eval
