#pragma once
// Writes 8-bit RGB pictures as PNG through libpng's simplified API (png_image), which reports
// failures as messages instead of longjmp, so no C++ object is skipped on an error path.
#include <cstdint>
#include <string>
#include <vector>

namespace ltri {

struct RgbImage {
  int64_t width = 0;
  int64_t height = 0;
  std::vector<uint8_t> pixels;  // (height, width, 3), row-major

  RgbImage() = default;
  RgbImage(int64_t w, int64_t h, uint8_t r, uint8_t g, uint8_t b);
  void set(int64_t x, int64_t y, uint8_t r, uint8_t g, uint8_t b);  // ignores pixels outside
};

// Throws ltri::Error naming the path if the picture is empty or cannot be written.
void write_png(const std::string& path, const RgbImage& image);

}  // namespace ltri
