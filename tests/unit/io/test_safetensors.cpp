// SafetensorsFile: valid files read back exact values; every kind of defect is refused with one
// line naming the file, the tensor and the problem.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "core/dtype.hpp"
#include "io/safetensors.hpp"
#include "st_builder.hpp"

namespace ltri {
namespace {

using test::error_of;
using test::st_build;
using test::st_image;
using test::StTensor;
using test::TempDir;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

std::vector<float> read_f32(const TensorEntry& t) {
  std::vector<float> out(size_t(t.numel()));
  convert_to_f32(t.data, t.dtype, out.data(), out.size());
  return out;
}

uint32_t bits_of(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

// Parses an in-memory image named "mem.safetensors" and returns the error, if any.
std::string parse_error(const std::string& image) {
  return error_of([&] {
    SafetensorsFile::parse(reinterpret_cast<const uint8_t*>(image.data()), image.size(), "mem.safetensors");
  });
}

// A one-tensor header around `entry` (the JSON object for tensor 'w'), with `data_bytes` zeros.
std::string one_tensor(const std::string& entry, size_t data_bytes) {
  return st_image("{\"w\":" + entry + "}", std::string(data_bytes, '\0'));
}

TEST(Safetensors, F32FileOnDiskReadsBackBitExactValues) {
  const std::vector<float> values = {1.5f, -2.25f, 0.0f, -0.0f, 1e-45f, std::numeric_limits<float>::max(),
                                     std::numeric_limits<float>::infinity()};
  TempDir dir;
  test::write_file(dir.path() / "a.safetensors",
                   st_build({{"x", "F32", {7}, test::raw_bytes(values)},
                             {"y", "F32", {2, 1}, test::raw_bytes(std::vector<float>{3.0f, 4.0f})}},
                            R"({"format":"pt"})"));
  const SafetensorsFile f = SafetensorsFile::open(dir.file("a.safetensors"));
  ASSERT_EQ(f.tensors().size(), 2u);
  const TensorEntry& x = f.tensors().at("x");
  EXPECT_EQ(x.dtype, DType::F32);
  EXPECT_EQ(x.shape, (std::vector<int64_t>{7}));
  EXPECT_EQ(x.nbytes, 28u);
  EXPECT_EQ(x.file, dir.file("a.safetensors"));
  const std::vector<float> got = read_f32(x);
  for (size_t i = 0; i < values.size(); ++i) EXPECT_EQ(bits_of(got[i]), bits_of(values[i])) << i;
  EXPECT_EQ(read_f32(f.tensors().at("y")), (std::vector<float>{3.0f, 4.0f}));
  EXPECT_EQ(f.tensors().at("y").shape_string(), "[2, 1]");
  EXPECT_EQ(f.metadata().at("format"), "pt");
}

TEST(Safetensors, Bf16BitPatternsDecodeToTheirKnownValues) {
  // 0x3FC0 = 1.5, 0xC010 = -2.25, 0x7F80 = +inf, 0x0001 = 2^-133 (smallest subnormal), 0x8000 = -0.
  const std::vector<uint16_t> raw = {0x3FC0, 0xC010, 0x7F80, 0x0001, 0x8000, 0x7F7F};
  const std::string image = st_build({{"b", "BF16", {2, 3}, test::raw_bytes(raw)}});
  const auto tensors =
      SafetensorsFile::parse(reinterpret_cast<const uint8_t*>(image.data()), image.size(), "mem");
  const std::vector<float> got = read_f32(tensors.at("b"));
  EXPECT_EQ(got[0], 1.5f);
  EXPECT_EQ(got[1], -2.25f);
  EXPECT_EQ(got[2], std::numeric_limits<float>::infinity());
  EXPECT_EQ(got[3], std::ldexp(1.0f, -133));
  EXPECT_EQ(bits_of(got[4]), 0x80000000u);
  EXPECT_EQ(got[5], 0x1.FEp127f);  // largest finite bf16
}

TEST(Safetensors, F16BitPatternsDecodeToTheirKnownValues) {
  // 0x3E00 = 1.5, 0xC080 = -2.25, 0x7BFF = 65504 (max), 0x0001 = 2^-24, 0x0400 = 2^-14, 0xFC00 = -inf.
  const std::vector<uint16_t> raw = {0x3E00, 0xC080, 0x7BFF, 0x0001, 0x0400, 0xFC00};
  const std::string image = st_build({{"h", "F16", {6}, test::raw_bytes(raw)}});
  const auto tensors =
      SafetensorsFile::parse(reinterpret_cast<const uint8_t*>(image.data()), image.size(), "mem");
  EXPECT_EQ(read_f32(tensors.at("h")),
            (std::vector<float>{1.5f, -2.25f, 65504.0f, std::ldexp(1.0f, -24), std::ldexp(1.0f, -14),
                                -std::numeric_limits<float>::infinity()}));
}

// The format does not align the data section; an odd start must still read correctly (and, in
// the sanitizer build, without a misaligned load).
TEST(Safetensors, DataSectionAtOddAddressReadsCorrectly) {
  const std::vector<float> f32 = {1.0f, -3.5f, 7.25f};
  const std::vector<uint16_t> bf16 = {0x3FC0, 0xC010, 0x4000};
  for (size_t phase = 1; phase < 8; ++phase) {
    // bf16 first so the f32 tensor also lands off a 4-byte boundary.
    const std::string image = st_build({{"b", "BF16", {3}, test::raw_bytes(bf16)}, {"f", "F32", {3}, test::raw_bytes(f32)}},
                                       "", 8, phase);
    std::vector<uint8_t> buffer(image.begin(), image.end());
    const auto tensors = SafetensorsFile::parse(buffer.data(), buffer.size(), "mem");
    ASSERT_EQ(reinterpret_cast<uintptr_t>(tensors.at("b").data) % 8, phase % 8);
    EXPECT_EQ(read_f32(tensors.at("b")), (std::vector<float>{1.5f, -2.25f, 2.0f})) << phase;
    EXPECT_EQ(read_f32(tensors.at("f")), f32) << phase;
  }
}

TEST(Safetensors, ZeroSizeAndScalarTensorsAreAccepted) {
  const std::string image = st_image(
      R"({"empty":{"dtype":"F32","shape":[0,4],"data_offsets":[4,4]},)"
      R"("huge_but_empty":{"dtype":"BF16","shape":[281474976710656,281474976710656,0],"data_offsets":[0,0]},)"
      R"("scalar":{"dtype":"F32","shape":[],"data_offsets":[0,4]}})",
      test::raw_bytes(std::vector<float>{42.0f}));
  const auto tensors =
      SafetensorsFile::parse(reinterpret_cast<const uint8_t*>(image.data()), image.size(), "mem");
  EXPECT_EQ(tensors.at("empty").numel(), 0);
  EXPECT_EQ(tensors.at("empty").nbytes, 0u);
  EXPECT_EQ(tensors.at("huge_but_empty").numel(), 0);
  EXPECT_EQ(tensors.at("scalar").numel(), 1);
  EXPECT_EQ(read_f32(tensors.at("scalar")), std::vector<float>{42.0f});
}

TEST(Safetensors, EntriesPointInsideTheGivenBuffer) {
  const std::string image = st_build({{"a", "F16", {3}, std::string(6, '\1')}, {"b", "F32", {1}, std::string(4, '\2')}});
  const auto* base = reinterpret_cast<const uint8_t*>(image.data());
  const auto tensors = SafetensorsFile::parse(base, image.size(), "mem");
  for (const auto& [name, t] : tensors) {
    EXPECT_GE(t.data, base) << name;
    EXPECT_LE(t.data + t.nbytes, base + image.size()) << name;
  }
  EXPECT_EQ(tensors.at("b").data, base + image.size() - 4);
}

TEST(Safetensors, TruncatedFileIsRefusedWithItsPath) {
  TempDir dir;
  test::write_file(dir.path() / "short.safetensors", "\x10\0\0");
  EXPECT_THAT(error_of([&] { SafetensorsFile::open(dir.file("short.safetensors")); }),
              AllOf(HasSubstr("short.safetensors: "), HasSubstr("shorter than the 8-byte header length")));
  test::write_file(dir.path() / "empty.safetensors", "");
  EXPECT_THAT(error_of([&] { SafetensorsFile::open(dir.file("empty.safetensors")); }),
              AllOf(HasSubstr("empty.safetensors: "), HasSubstr("0 bytes")));
}

TEST(Safetensors, MissingFileIsRefusedWithItsPath) {
  TempDir dir;
  EXPECT_THAT(error_of([&] { SafetensorsFile::open(dir.file("nope.safetensors")); }),
              AllOf(HasSubstr("nope.safetensors: cannot open")));
}

TEST(Safetensors, HeaderLengthZeroIsRefused) {
  EXPECT_EQ(parse_error(test::le_u64(0) + "{}"), "mem.safetensors: header length is 0");
}

TEST(Safetensors, HeaderLengthPastEndOfFileIsRefused) {
  const std::string full = st_build({{"w", "F32", {2}, std::string(8, '\0')}});
  const std::string cut = full.substr(0, 20);  // header claims more bytes than remain
  EXPECT_THAT(parse_error(cut), AllOf(HasSubstr("mem.safetensors: header length"),
                                      HasSubstr("runs past the end of the file (20 bytes)")));
}

TEST(Safetensors, HeaderLengthOverTheBoundIsRefusedBeforeReading) {
  // Claims 200 MB in a 9-byte file: the bound is reported, not the missing bytes.
  EXPECT_EQ(parse_error(test::le_u64(200ull << 20) + "{"),
            "mem.safetensors: header length 209715200 exceeds the 104857600-byte limit");
  EXPECT_THAT(parse_error(test::le_u64(UINT64_MAX) + "{}"), HasSubstr("exceeds the 104857600-byte limit"));
}

TEST(Safetensors, BrokenJsonIsRefused) {
  EXPECT_EQ(parse_error(st_image(R"({"w":{"dtype":"F32",)")), "mem.safetensors: header is not valid JSON");
  EXPECT_EQ(parse_error(st_image("\xff\xfe{}")), "mem.safetensors: header is not valid JSON");
  EXPECT_EQ(parse_error(st_image(R"(["w"])")), "mem.safetensors: header is not a JSON object");
}

TEST(Safetensors, EntryThatIsNotAnObjectIsRefused) {
  EXPECT_EQ(parse_error(st_image(R"({"w":[1,2]})")), "mem.safetensors: tensor 'w': entry must be an object, got a list");
}

TEST(Safetensors, UnsupportedDtypeIsNamed) {
  EXPECT_EQ(parse_error(one_tensor(R"({"dtype":"I64","shape":[1],"data_offsets":[0,8]})", 8)),
            "mem.safetensors: tensor 'w': dtype I64 not supported (F32, BF16, F16)");
  EXPECT_EQ(parse_error(one_tensor(R"({"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]})", 1)),
            "mem.safetensors: tensor 'w': dtype F8_E4M3 not supported (F32, BF16, F16)");
}

TEST(Safetensors, UnknownDtypeIsNamed) {
  EXPECT_EQ(parse_error(one_tensor(R"({"dtype":"f32","shape":[1],"data_offsets":[0,4]})", 4)),
            "mem.safetensors: tensor 'w': unknown dtype \"f32\" (supported: F32, BF16, F16)");
  EXPECT_THAT(parse_error(one_tensor(R"({"dtype":5,"shape":[1],"data_offsets":[0,4]})", 4)),
              HasSubstr("tensor 'w': \"dtype\" must be a string, got 5"));
  EXPECT_THAT(parse_error(one_tensor(R"({"shape":[1],"data_offsets":[0,4]})", 4)),
              HasSubstr("tensor 'w': missing \"dtype\""));
}

TEST(Safetensors, ShapeMustBeAListOfNonNegativeIntegers) {
  for (const char* shape : {"[-1,4]", "[2.0,2]", "4", "[\"4\"]", "[[4]]", "null"}) {
    EXPECT_THAT(parse_error(one_tensor(std::string(R"({"dtype":"F32","shape":)") + shape + R"(,"data_offsets":[0,16]})", 16)),
                AllOf(HasSubstr("mem.safetensors: tensor 'w': \"shape\" must be a list of non-negative integers")))
        << shape;
  }
  EXPECT_THAT(parse_error(one_tensor(R"({"dtype":"F32","data_offsets":[0,16]})", 16)), HasSubstr("missing \"shape\""));
}

TEST(Safetensors, DataOffsetsMustBeTwoOrderedIntegers) {
  for (const char* offsets : {"[0]", "[0,4,8]", "[-4,4]", "[0,4.0]", "\"0,4\"", "null"}) {
    EXPECT_THAT(parse_error(one_tensor(std::string(R"({"dtype":"F32","shape":[1],"data_offsets":)") + offsets + "}", 8)),
                HasSubstr("mem.safetensors: tensor 'w': \"data_offsets\" must be two non-negative integers"))
        << offsets;
  }
  EXPECT_EQ(parse_error(one_tensor(R"({"dtype":"F32","shape":[1],"data_offsets":[8,4]})", 8)),
            "mem.safetensors: tensor 'w': data_offsets begin 8 > end 4");
}

TEST(Safetensors, OffsetsPastTheDataSectionAreRefused) {
  EXPECT_EQ(parse_error(one_tensor(R"({"dtype":"F32","shape":[4],"data_offsets":[4,20]})", 16)),
            "mem.safetensors: tensor 'w': data_offsets end 20 is past the end of the data section (16 bytes)");
  EXPECT_THAT(parse_error(one_tensor(R"({"dtype":"F32","shape":[1],"data_offsets":[18446744073709551612,18446744073709551615]})", 4)),
              HasSubstr("is past the end of the data section (4 bytes)"));
}

TEST(Safetensors, ShapeTimesDtypeMustEqualTheByteSpan) {
  EXPECT_EQ(parse_error(one_tensor(R"({"dtype":"BF16","shape":[4,4],"data_offsets":[0,30]})", 32)),
            "mem.safetensors: tensor 'w': shape [4, 4] x BF16 needs 32 bytes, data_offsets [0, 30] span 30");
  // An element count whose byte size overflows 64 bits cannot match any span.
  EXPECT_THAT(parse_error(one_tensor(R"({"dtype":"F32","shape":[281474976710656,281474976710656],"data_offsets":[0,0]})", 0)),
              HasSubstr("needs more than 2^64 bytes, data_offsets [0, 0] span 0"));
  EXPECT_THAT(parse_error(one_tensor(R"({"dtype":"F32","shape":[281474976710657],"data_offsets":[0,0]})", 0)),
              HasSubstr("shape dimension 281474976710657 is implausibly large"));
}

TEST(Safetensors, OverlappingTensorsAreRefusedWhateverTheirOrder) {
  // 'late' is listed first but starts later; the check sorts by offset.
  const std::string image = st_image(
      R"({"late":{"dtype":"F32","shape":[2],"data_offsets":[12,20]},)"
      R"("early":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})",
      std::string(20, '\0'));
  EXPECT_EQ(parse_error(image),
            "mem.safetensors: tensors 'early' and 'late' overlap (data_offsets [0, 16] and [12, 20])");
  // Two tensors on the very same bytes overlap too; touching ranges and empty tensors do not.
  EXPECT_THAT(parse_error(st_image(R"({"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},)"
                                   R"("b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
                                   std::string(4, '\0'))),
              HasSubstr("overlap"));
  EXPECT_EQ(parse_error(st_image(R"({"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},)"
                                 R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},)"
                                 R"("c":{"dtype":"F32","shape":[0],"data_offsets":[2,2]}})",
                                 std::string(8, '\0'))),
            "<no error>");
}

TEST(Safetensors, MetadataMustMapStringsToStrings) {
  EXPECT_EQ(parse_error(st_image(R"({"__metadata__":{"format":1}})")),
            "mem.safetensors: \"__metadata__\" value for 'format' must be a string, got 1");
  EXPECT_EQ(parse_error(st_image(R"({"__metadata__":["pt"]})")),
            "mem.safetensors: \"__metadata__\" must be an object of strings, got a list");
  EXPECT_EQ(parse_error(st_image(R"({"__metadata__":null})")), "<no error>");
}

TEST(Safetensors, ErrorsStayOneLineWhateverTheTensorName) {
  const std::string msg = parse_error(
      st_image("{\"bad\\nname\\u0000\":{\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[0,1]}}", "x"));
  EXPECT_THAT(msg, AllOf(HasSubstr("tensor 'bad\\x0Aname\\x00'"), Not(HasSubstr("\n"))));
  const std::string long_name(5000, 'n');
  const std::string msg2 =
      parse_error(st_image("{\"" + long_name + "\":{\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[0,1]}}", "x"));
  EXPECT_LT(msg2.size(), 400u);
}

TEST(Safetensors, DeeplyNestedHeaderIsRefusedWithoutCrashing) {
  const std::string deep = "{\"w\":" + std::string(100000, '[') + std::string(100000, ']') + "}";
  EXPECT_EQ(parse_error(st_image(deep)), "mem.safetensors: tensor 'w': entry must be an object, got a list");
}

}  // namespace
}  // namespace ltri
