#include "analysis/png_writer.hpp"

#include <png.h>

#include <cstring>

#include "core/error.hpp"

namespace ltri {

RgbImage::RgbImage(int64_t w, int64_t h, uint8_t r, uint8_t g, uint8_t b) : width(w), height(h) {
  if (w < 1 || h < 1 || w > 16384 || h > 16384) fail("picture size ", w, " x ", h, " outside 1..16384");
  pixels.resize(size_t(w * h * 3));
  for (size_t i = 0; i < pixels.size(); i += 3) {
    pixels[i] = r;
    pixels[i + 1] = g;
    pixels[i + 2] = b;
  }
}

void RgbImage::set(int64_t x, int64_t y, uint8_t r, uint8_t g, uint8_t b) {
  if (x < 0 || y < 0 || x >= width || y >= height) return;
  uint8_t* p = pixels.data() + (y * width + x) * 3;
  p[0] = r;
  p[1] = g;
  p[2] = b;
}

void write_png(const std::string& path, const RgbImage& image) {
  if (image.width < 1 || image.height < 1 || image.pixels.size() != size_t(image.width * image.height * 3)) {
    fail(path, ": cannot write an empty or malformed picture (", image.width, " x ", image.height, ")");
  }
  png_image png;
  std::memset(&png, 0, sizeof png);
  png.version = PNG_IMAGE_VERSION;
  png.width = png_uint_32(image.width);
  png.height = png_uint_32(image.height);
  png.format = PNG_FORMAT_RGB;
  const int ok = png_image_write_to_file(&png, path.c_str(), 0, image.pixels.data(), 0, nullptr);
  if (!ok) {
    const std::string message = png.message;
    png_image_free(&png);
    fail(path, ": cannot write PNG (", message, ")");
  }
  png_image_free(&png);
}

}  // namespace ltri
