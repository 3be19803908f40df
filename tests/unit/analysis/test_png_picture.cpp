// The PNG writer makes a valid PNG of the right size (its IHDR read back byte by byte), and the
// attention picture has the size and colours its contract gives.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#include "analysis/attention_picture.hpp"
#include "analysis/png_writer.hpp"
#include "core/error.hpp"
#include "test_paths.hpp"

namespace ltri {
namespace {

uint32_t big_endian(const std::vector<uint8_t>& b, size_t at) {
  return uint32_t(b[at]) << 24 | uint32_t(b[at + 1]) << 16 | uint32_t(b[at + 2]) << 8 | uint32_t(b[at + 3]);
}

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(PngWriter, writes_a_png_whose_ihdr_has_the_right_size) {
  const std::string path = test::scratch_path("ltri_test_picture.png");
  RgbImage image(37, 23, 10, 20, 30);
  image.set(5, 5, 255, 0, 0);
  write_png(path, image);
  const std::vector<uint8_t> b = read_bytes(path);
  ASSERT_GT(b.size(), 33u);
  const uint8_t signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  for (int i = 0; i < 8; ++i) EXPECT_EQ(b[size_t(i)], signature[i]);
  EXPECT_EQ(big_endian(b, 8), 13u);  // IHDR length
  EXPECT_EQ(std::string(b.begin() + 12, b.begin() + 16), "IHDR");
  EXPECT_EQ(big_endian(b, 16), 37u);  // width
  EXPECT_EQ(big_endian(b, 20), 23u);  // height
  EXPECT_EQ(b[24], 8);                // bit depth
  EXPECT_EQ(b[25], 2);                // colour type: RGB
  EXPECT_EQ(std::string(b.end() - 8, b.end() - 4), "IEND");
  std::filesystem::remove(path);
}

TEST(PngWriter, unwritable_path_is_an_error) {
  RgbImage image(4, 4, 0, 0, 0);
  EXPECT_THROW(write_png("/nonexistent-dir/x.png", image), Error);
  EXPECT_THROW(RgbImage(0, 4, 0, 0, 0), Error);
}

TEST(AttentionPicture, size_upper_triangle_and_span_outline) {
  const int64_t n = 40;
  std::vector<float> map(size_t(n * n), 0.0f), row_max(size_t(n), 1.0f);
  for (int64_t i = 0; i < n; ++i) map[size_t(i * n + i)] = 1.0f;  // bright diagonal
  const std::vector<Span> spans = {{0, 20, 3.0f}, {20, 20, 0.0f}};
  PictureOptions o;  // 40 tokens x 8 px = 320 px
  const RgbImage img = render_attention(map.data(), row_max.data(), n, spans, o);
  ASSERT_EQ(img.width, 320);
  ASSERT_EQ(img.height, 320);
  auto pixel = [&](int64_t x, int64_t y) {
    const uint8_t* p = img.pixels.data() + (y * img.width + x) * 3;
    return std::vector<int>{p[0], p[1], p[2]};
  };
  EXPECT_EQ(pixel(300, 10), (std::vector<int>{230, 230, 230}));  // above the diagonal
  EXPECT_EQ(pixel(84, 84), (std::vector<int>{252, 250, 170}));   // diagonal cell: full brightness
  EXPECT_EQ(pixel(44, 84), (std::vector<int>{0, 0, 4}));         // a dark cell below it
  EXPECT_EQ(pixel(0, 100), (std::vector<int>{0, 230, 255}));     // left leg of the triangle span
  EXPECT_EQ(pixel(160, 200), (std::vector<int>{90, 255, 90}));   // left leg of the gap span
  EXPECT_EQ(pixel(100, 159), (std::vector<int>{0, 230, 255}));   // bottom leg of the first span
  // Many tokens: the side is capped near target_px.
  const int64_t m = 2000;
  std::vector<float> big(size_t(m * m), 0.0f), big_max(size_t(m), 1.0f);
  const RgbImage small = render_attention(big.data(), big_max.data(), m, {}, o);
  EXPECT_LE(small.width, 1024);
  EXPECT_GE(small.width, 1000);
}

}  // namespace
}  // namespace ltri
