// GGUF reader: well-formed files parse; every kind of corruption is a FormatError/UnsupportedError
// that names the source, never a crash or an out-of-bounds read (ASan runs these in CI).
#include "io/gguf.h"

#include <gtest/gtest.h>

#include "common/gguf_builder.h"
#include "common/test_paths.h"
#include "reslens/error.h"

namespace reslens {
namespace {

using test::GgufBuilder;

GgufBuilder small_file() {
  GgufBuilder b;
  b.kv_string("general.architecture", "llama");
  b.kv_u32("llama.block_count", 2);
  b.kv_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  b.kv_string_array("tokenizer.ggml.tokens", {"a", "b", "c"});
  b.tensor_f32("w", {3, 2}, {1, 2, 3, 4, 5, 6});
  b.tensor_f32("v", {4}, {7, 8, 9, 10});
  return b;
}

gguf::File parse(const std::vector<uint8_t>& bytes) { return gguf::File(bytes, "test.gguf"); }

std::string error_of(const std::vector<uint8_t>& bytes) {
  try {
    parse(bytes);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

TEST(Gguf, ParsesMetadataAndTensors) {
  const auto bytes = small_file().bytes();
  const gguf::File f = parse(bytes);
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
  EXPECT_EQ(f.get_int("llama.block_count"), 2);
  EXPECT_NEAR(f.get_float("llama.attention.layer_norm_rms_epsilon"), 1e-5, 1e-12);
  ASSERT_EQ(f.tensors().size(), 2u);
  const auto* w = f.find_tensor("w");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->shape(), (std::vector<int64_t>{2, 3}));
  const auto data = f.tensor_bytes(*w);
  ASSERT_EQ(data.size(), 24u);
  float x[6];
  std::memcpy(x, data.data(), 24);
  EXPECT_EQ(x[5], 6.0f);
  EXPECT_EQ(f.find("tokenizer.ggml.tokens")->strings.size(), 3u);
}

TEST(Gguf, RejectsBadMagic) {
  auto bytes = small_file().bytes();
  bytes[0] = 'X';
  EXPECT_NE(error_of(bytes).find("test.gguf: not a GGUF file"), std::string::npos);
  EXPECT_THROW(parse({}), FormatError);
}

TEST(Gguf, RejectsUnsupportedVersions) {
  auto bytes = GgufBuilder(1).bytes();
  EXPECT_NE(error_of(bytes).find("version 1"), std::string::npos);
  bytes = GgufBuilder(7).bytes();
  EXPECT_NE(error_of(bytes).find("unsupported GGUF version 7"), std::string::npos);
  EXPECT_NO_THROW(parse(GgufBuilder(2).bytes()));
}

TEST(Gguf, EveryTruncationIsAFormatError) {
  const auto bytes = small_file().bytes();
  for (size_t n = 0; n < bytes.size(); ++n) {
    std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
    EXPECT_THROW(parse(cut), FormatError) << "cut at " << n;
  }
}

TEST(Gguf, RejectsAbsurdCounts) {
  GgufBuilder b;
  auto bytes = b.bytes();
  // n_tensors lives at offset 8.
  const uint64_t huge = uint64_t{1} << 60;
  std::memcpy(bytes.data() + 8, &huge, 8);
  EXPECT_NE(error_of(bytes).find("absurd tensor count"), std::string::npos);
  bytes = b.bytes();
  std::memcpy(bytes.data() + 16, &huge, 8);
  EXPECT_NE(error_of(bytes).find("absurd metadata count"), std::string::npos);
}

TEST(Gguf, RejectsHugeStringAndArrayLengths) {
  GgufBuilder b;
  std::vector<uint8_t> kv;
  GgufBuilder::str(kv, "k");
  GgufBuilder::u32(kv, 8);
  GgufBuilder::u64(kv, uint64_t{1} << 62);  // string length far past the end
  b.kv_raw(kv);
  EXPECT_NE(error_of(b.bytes()).find("truncated"), std::string::npos);

  GgufBuilder a;
  kv.clear();
  GgufBuilder::str(kv, "arr");
  GgufBuilder::u32(kv, 9);
  GgufBuilder::u32(kv, 6);
  GgufBuilder::u64(kv, uint64_t{1} << 61);
  a.kv_raw(kv);
  EXPECT_NE(error_of(a.bytes()).find("runs past the end"), std::string::npos);
}

TEST(Gguf, RejectsUnknownValueTypes) {
  GgufBuilder b;
  std::vector<uint8_t> kv;
  GgufBuilder::str(kv, "k");
  GgufBuilder::u32(kv, 99);
  b.kv_raw(kv);
  EXPECT_NE(error_of(b.bytes()).find("unknown value type 99"), std::string::npos);
}

TEST(Gguf, RejectsTensorDataPastTheEnd) {
  auto bytes = small_file().bytes();
  bytes.resize(bytes.size() - 4);  // cut into the last tensor's data
  EXPECT_NE(error_of(bytes).find("runs past the end of the file"), std::string::npos);
}

TEST(Gguf, RejectsAbsurdDimensionsAndUnknownTypes) {
  GgufBuilder b;
  b.tensor_raw("big", {uint64_t{1} << 40, uint64_t{1} << 40}, 0, {});
  EXPECT_NE(error_of(b.bytes()).find("absurd dimension"), std::string::npos);
  GgufBuilder c;
  c.tensor_raw("odd", {4}, 77, std::vector<uint8_t>(16));
  EXPECT_THROW(parse(c.bytes()), UnsupportedError);
  GgufBuilder d;
  d.tensor_raw("five", {1, 1, 1, 1, 1}, 0, std::vector<uint8_t>(4));
  EXPECT_NE(error_of(d.bytes()).find("dimensions"), std::string::npos);
  GgufBuilder e;
  e.tensor_raw("q", {31}, 8, std::vector<uint8_t>(34));  // Q8_0 needs whole blocks of 32
  EXPECT_NE(error_of(e.bytes()).find("whole number"), std::string::npos);
  GgufBuilder f;  // 32 values, one Q8_0 block, but in two rows of 16: blocks never span rows
  f.tensor_raw("rows", {16, 2}, 8, std::vector<uint8_t>(34));
  EXPECT_NE(error_of(f.bytes()).find("rows of 16 values"), std::string::npos) << error_of(f.bytes());
}

TEST(Gguf, RejectsDuplicateKeysAndTensors) {
  GgufBuilder b;
  b.kv_u32("a", 1);
  b.kv_u32("a", 2);
  EXPECT_NE(error_of(b.bytes()).find("duplicate metadata key"), std::string::npos);
  GgufBuilder c;
  c.tensor_f32("t", {1}, {1});
  c.tensor_f32("t", {1}, {1});
  EXPECT_NE(error_of(c.bytes()).find("duplicate tensor"), std::string::npos);
}

TEST(Gguf, WrongTypeLookupNamesTheKey) {
  const auto bytes = small_file().bytes();
  const gguf::File f = parse(bytes);
  try {
    f.get_int("general.architecture");
    FAIL();
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("'general.architecture' should be an integer"), std::string::npos);
  }
  EXPECT_THROW(f.get_string("missing.key"), FormatError);
}

TEST(Gguf, MissingFileAndDirectoryAreIoErrors) {
  EXPECT_THROW(gguf::File{"/nonexistent/model.gguf"}, IoError);
  EXPECT_THROW(gguf::File{std::filesystem::temp_directory_path()}, IoError);
}

TEST(Gguf, ReadsTheSharedModels) {
  const gguf::File f(test::shared_path("models/stories260K/stories260K.gguf"));
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
  EXPECT_EQ(f.tensors().size(), 48u);
  const gguf::File g(test::shared_path("models/random-gpt2/random-gpt2-test.gguf"));
  EXPECT_EQ(g.find("tokenizer.ggml.merges")->strings.size(), 50000u);
}

}  // namespace
}  // namespace reslens
