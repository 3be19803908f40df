// WeightStore: a model directory as one file or as shards behind model.safetensors.index.json.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/dtype.hpp"
#include "io/safetensors.hpp"
#include "st_builder.hpp"

namespace ltri {
namespace {

using test::error_of;
using test::st_build;
using test::StTensor;
using test::TempDir;
using ::testing::AllOf;
using ::testing::HasSubstr;

std::string f32_bytes(std::vector<float> v) { return test::raw_bytes(v); }

float first_value(const TensorEntry& t) {
  float f;
  convert_to_f32(t.data, t.dtype, &f, 1);
  return f;
}

// Two shards in HF naming with an index: a/b in shard 1, c in shard 2.
void write_sharded(const TempDir& dir, const std::string& index_extra = "") {
  test::write_file(dir.path() / "model-00001-of-00002.safetensors",
                   st_build({{"a", "F32", {1}, f32_bytes({1.0f})}, {"b", "F32", {2}, f32_bytes({2.0f, 2.5f})}}));
  test::write_file(dir.path() / "model-00002-of-00002.safetensors",
                   st_build({{"c", "F32", {1}, f32_bytes({3.0f})}}));
  test::write_file(dir.path() / "model.safetensors.index.json",
                   R"({"metadata": {"total_size": 16}, "weight_map": {)"
                   R"("a": "model-00001-of-00002.safetensors", "b": "model-00001-of-00002.safetensors", )"
                   R"("c": "model-00002-of-00002.safetensors")" +
                       index_extra + "}}");
}

std::string index_with(const std::string& weight_map) {
  return R"({"weight_map": )" + weight_map + "}";
}

TEST(WeightStore, SingleFileDirectoryExposesEveryTensor) {
  TempDir dir;
  test::write_file(dir.path() / "model.safetensors",
                   st_build({{"x", "F32", {1}, f32_bytes({5.0f})}, {"y", "F32", {1}, f32_bytes({6.0f})}}));
  const WeightStore store = WeightStore::open_dir(dir.path().string());
  EXPECT_EQ(store.all().size(), 2u);
  EXPECT_EQ(first_value(store.get("x")), 5.0f);
  EXPECT_EQ(first_value(store.get("y", {1})), 6.0f);
  EXPECT_EQ(store.find("z"), nullptr);
  EXPECT_EQ(store.dir(), dir.path().string());
}

TEST(WeightStore, ShardedDirectoryResolvesEachTensorToItsShard) {
  TempDir dir;
  write_sharded(dir);
  const WeightStore store = WeightStore::open_dir(dir.path().string());
  EXPECT_EQ(store.all().size(), 3u);
  EXPECT_EQ(first_value(store.get("a")), 1.0f);
  EXPECT_EQ(first_value(store.get("b", {2})), 2.0f);
  EXPECT_EQ(first_value(store.get("c")), 3.0f);
  EXPECT_THAT(store.get("a").file, HasSubstr("model-00001-of-00002.safetensors"));
  EXPECT_THAT(store.get("c").file, HasSubstr("model-00002-of-00002.safetensors"));
}

TEST(WeightStore, StoreStaysValidAfterBeingMoved) {
  TempDir dir;
  write_sharded(dir);
  WeightStore moved = WeightStore::open_dir(dir.path().string());
  const WeightStore store = std::move(moved);
  EXPECT_EQ(first_value(store.get("c")), 3.0f);
}

TEST(WeightStore, EmptyDirectoryNamesBothExpectedFiles) {
  TempDir dir;
  EXPECT_EQ(error_of([&] { WeightStore::open_dir(dir.path().string()); }),
            dir.path().string() + ": no model.safetensors or model.safetensors.index.json");
  EXPECT_EQ(error_of([&] { WeightStore::open_dir(dir.file("missing")); }), dir.file("missing") + ": not a directory");
}

TEST(WeightStore, MissingShardIsNamedWithTheIndex) {
  TempDir dir;
  write_sharded(dir);
  std::filesystem::remove(dir.path() / "model-00002-of-00002.safetensors");
  EXPECT_THAT(error_of([&] { WeightStore::open_dir(dir.path().string()); }),
              AllOf(HasSubstr("model.safetensors.index.json: shard 'model-00002-of-00002.safetensors'"),
                    HasSubstr("(listed for tensor 'c') does not exist")));
}

TEST(WeightStore, ShardNamesOutsideTheDirectoryAreRefused) {
  for (const char* shard : {"../model.safetensors", "sub/model.safetensors", "/etc/passwd", "..", "", "a\\\\b"}) {
    TempDir dir;
    test::write_file(dir.path() / "model.safetensors.index.json",
                     index_with(std::string(R"({"w": ")") + shard + "\"}"));
    EXPECT_THAT(error_of([&] { WeightStore::open_dir(dir.path().string()); }),
                AllOf(HasSubstr("model.safetensors.index.json: weight_map entry for tensor 'w' names shard"),
                      HasSubstr("not a plain file name in the model directory")))
        << shard;
  }
}

TEST(WeightStore, IndexedTensorAbsentFromItsShardIsNamed) {
  TempDir dir;
  write_sharded(dir, R"(, "ghost": "model-00002-of-00002.safetensors")");
  EXPECT_THAT(error_of([&] { WeightStore::open_dir(dir.path().string()); }),
              AllOf(HasSubstr("model-00002-of-00002.safetensors: tensor 'ghost' listed in "
                              "model.safetensors.index.json is not in this shard")));
}

TEST(WeightStore, TensorStoredInTwoShardsIsRefused) {
  TempDir dir;
  write_sharded(dir);
  // Shard 2 also carries 'a', which the index attributes to shard 1.
  test::write_file(dir.path() / "model-00002-of-00002.safetensors",
                   st_build({{"a", "F32", {1}, f32_bytes({9.0f})}, {"c", "F32", {1}, f32_bytes({3.0f})}}));
  EXPECT_EQ(error_of([&] { WeightStore::open_dir(dir.path().string()); }),
            dir.path().string() +
                ": tensor 'a' is stored in both model-00001-of-00002.safetensors and model-00002-of-00002.safetensors");
}

TEST(WeightStore, BrokenIndexIsRefused) {
  TempDir dir;
  const std::string index = dir.file("model.safetensors.index.json");
  test::write_file(index, "{\"weight_map\": {");
  EXPECT_EQ(error_of([&] { WeightStore::open_dir(dir.path().string()); }), index + ": not valid JSON");
  test::write_file(index, R"({"metadata": {}})");
  EXPECT_EQ(error_of([&] { WeightStore::open_dir(dir.path().string()); }), index + ": missing \"weight_map\"");
  test::write_file(index, index_with("[]"));
  EXPECT_EQ(error_of([&] { WeightStore::open_dir(dir.path().string()); }),
            index + ": \"weight_map\" must be an object, got a list");
  test::write_file(index, index_with("{}"));
  EXPECT_EQ(error_of([&] { WeightStore::open_dir(dir.path().string()); }), index + ": \"weight_map\" is empty");
  test::write_file(index, index_with(R"({"w": 3})"));
  EXPECT_EQ(error_of([&] { WeightStore::open_dir(dir.path().string()); }),
            index + ": weight_map entry for tensor 'w' must be a file name, got 3");
}

TEST(WeightStore, CorruptShardIsReportedByItsPath) {
  TempDir dir;
  write_sharded(dir);
  test::write_file(dir.path() / "model-00002-of-00002.safetensors", "garbage");
  EXPECT_THAT(error_of([&] { WeightStore::open_dir(dir.path().string()); }),
              HasSubstr("model-00002-of-00002.safetensors: not a safetensors file"));
}

TEST(WeightStore, MissingTensorIsNamed) {
  TempDir dir;
  write_sharded(dir);
  const WeightStore store = WeightStore::open_dir(dir.path().string());
  EXPECT_EQ(error_of([&] { store.get("model.norm.weight"); }),
            dir.path().string() + ": missing tensor 'model.norm.weight'");
  EXPECT_EQ(error_of([&] { store.get("model.norm.weight", {4}); }),
            dir.path().string() + ": missing tensor 'model.norm.weight'");
}

TEST(WeightStore, WrongShapeNamesShardTensorExpectedReasonAndActual) {
  TempDir dir;
  test::write_file(dir.path() / "model-00002-of-00004.safetensors",
                   st_build({{"model.layers.7.self_attn.k_proj.weight", "BF16", {32, 32}, std::string(32 * 32 * 2, '\0')}}));
  test::write_file(dir.path() / "model.safetensors.index.json",
                   index_with(R"({"model.layers.7.self_attn.k_proj.weight": "model-00002-of-00004.safetensors"})"));
  const WeightStore store = WeightStore::open_dir(dir.path().string());
  EXPECT_EQ(error_of([&] {
              store.get("model.layers.7.self_attn.k_proj.weight", {8, 32}, "num_key_value_heads 2 x head_dim 4");
            }),
            "model-00002-of-00004.safetensors: tensor 'model.layers.7.self_attn.k_proj.weight': expected shape "
            "[8, 32] (num_key_value_heads 2 x head_dim 4), got [32, 32]");
  EXPECT_EQ(error_of([&] { store.get("model.layers.7.self_attn.k_proj.weight", {32}); }),
            "model-00002-of-00004.safetensors: tensor 'model.layers.7.self_attn.k_proj.weight': expected shape "
            "[32], got [32, 32]");
  EXPECT_EQ(store.get("model.layers.7.self_attn.k_proj.weight", {32, 32}).nbytes, 2048u);
}

}  // namespace
}  // namespace ltri
