// MappedFile and read_text_file: exact bytes, empty files, ownership on move, errors by path.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/mapped_file.hpp"
#include "st_builder.hpp"

namespace ltri {
namespace {

using test::error_of;
using test::TempDir;
using ::testing::HasSubstr;

std::string some_bytes(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = char((i * 131 + 7) & 0xff);  // includes NULs and high bytes
  return s;
}

TEST(CoreMappedFile, MapsTheExactBytesOfTheFile) {
  TempDir dir;
  const std::string bytes = some_bytes(100003);  // not a multiple of the page size
  test::write_file(dir.path() / "f.bin", bytes);
  const MappedFile f = MappedFile::open(dir.file("f.bin"));
  ASSERT_EQ(f.size(), bytes.size());
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(f.data()), f.size()), bytes);
  EXPECT_EQ(f.path(), dir.file("f.bin"));
}

TEST(CoreMappedFile, EmptyFileMapsToNothing) {
  TempDir dir;
  test::write_file(dir.path() / "empty", "");
  const MappedFile f = MappedFile::open(dir.file("empty"));
  EXPECT_EQ(f.size(), 0u);
  EXPECT_EQ(f.data(), nullptr);
}

TEST(CoreMappedFile, MoveTransfersTheMappingAndEmptiesTheSource) {
  TempDir dir;
  test::write_file(dir.path() / "f.bin", "hello");
  MappedFile a = MappedFile::open(dir.file("f.bin"));
  const uint8_t* p = a.data();
  MappedFile b = std::move(a);
  EXPECT_EQ(b.data(), p);
  EXPECT_EQ(b.size(), 5u);
  EXPECT_EQ(a.data(), nullptr);  // NOLINT(bugprone-use-after-move): checking the moved-from state
  EXPECT_EQ(a.size(), 0u);
  MappedFile c;
  c = std::move(b);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(c.data()), c.size()), "hello");
}

TEST(CoreMappedFile, MissingFileAndDirectoryAreNamed) {
  TempDir dir;
  EXPECT_THAT(error_of([&] { MappedFile::open(dir.file("absent")); }),
              HasSubstr(dir.file("absent") + ": cannot open: No such file or directory"));
  EXPECT_EQ(error_of([&] { MappedFile::open(dir.path().string()); }), dir.path().string() + ": not a regular file");
}

TEST(CoreReadTextFile, ReadsAllBytesIncludingNuls) {
  TempDir dir;
  const std::string bytes = some_bytes(5000);
  test::write_file(dir.path() / "t.json", bytes);
  EXPECT_EQ(read_text_file(dir.file("t.json")), bytes);
  test::write_file(dir.path() / "e.json", "");
  EXPECT_EQ(read_text_file(dir.file("e.json")), "");
}

TEST(CoreReadTextFile, MissingFileAndDirectoryAreNamed) {
  TempDir dir;
  EXPECT_THAT(error_of([&] { read_text_file(dir.file("absent.json")); }),
              HasSubstr(dir.file("absent.json") + ": cannot open"));
  EXPECT_EQ(error_of([&] { read_text_file(dir.path().string()); }), dir.path().string() + ": not a regular file");
}

}  // namespace
}  // namespace ltri
