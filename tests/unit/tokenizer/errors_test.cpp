// Bad input never crashes and never misleads: invalid UTF-8 is an InvalidArgument with the byte
// offset; broken tokenizer files are FormatError / IoError naming the file; unsupported tokenizer
// kinds are UnsupportedError. Also small synthetic vocabularies that pin the merge order, and the
// fuzz entry point on hostile tokenizer.json content.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <random>

#include "common/gguf_builder.h"
#include "common/test_paths.h"
#include "io/gguf.h"
#include "reslens/error.h"
#include "tokenizer/factory.h"
#include "tokenizer/fuzz_entry.h"
#include "unit/tokenizer/tokenizer_data.h"

namespace reslens {
namespace {

using test::GgufBuilder;
using test::shared_path;

const std::string kSpace = "\xE2\x96\x81";  // ▁

std::unique_ptr<Tokenizer> from_builder(const GgufBuilder& b) {
  const gguf::File file(b.bytes(), "synthetic.gguf");
  return tokenizer_from_gguf(file);
}

void write_bytes(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

TEST(TokenizerErrors, InvalidUtf8IsInvalidArgumentWithOffset) {
  std::vector<std::unique_ptr<Tokenizer>> tokenizers;
  tokenizers.push_back(test::gguf_tokenizer("models/stories260K/stories260K.gguf"));
  tokenizers.push_back(test::gguf_tokenizer("models/random-gpt2/random-gpt2-test.gguf"));
  tokenizers.push_back(load_hf_tokenizer(shared_path("models/TinyStories-656K")));
  tokenizers.push_back(load_llama2c_tokenizer(shared_path("models/stories260K/tok512.bin"), 512));
  tokenizers.push_back(load_sentencepiece_model(shared_path("tokenizers/llama2/tokenizer.model")));
  const std::vector<std::pair<std::string, size_t>> bad = {
      {"ab\xFF"
       "cd",
       2},                      // not a lead byte
      {"abc\xE2\x82", 3},       // truncated sequence
      {"x\xC0\xAF", 1},         // overlong '/'
      {"ok \xED\xA0\x80", 3},   // UTF-16 surrogate
      {"\xF4\x90\x80\x80", 0},  // past U+10FFFF
      {"caf\xC3\xA9 \x80", 6},  // stray continuation byte after valid text
  };
  for (const auto& tok : tokenizers) {
    for (const auto& c : bad) {
      const std::string msg = test::error_of<InvalidArgument>([&] { tok->encode(c.first, true); });
      EXPECT_NE(msg.find("byte offset " + std::to_string(c.second)), std::string::npos)
          << tok->kind() << ": " << msg;
    }
  }
}

TEST(TokenizerErrors, Llama2cFileProblemsNameThePath) {
  const auto good = test::read_file(shared_path("models/stories260K/tok512.bin"));
  const auto dir = test::scratch_dir("llama2c");
  const auto path = dir / "tok.bin";
  const std::string name = path.string();

  const std::string missing =
      test::error_of<IoError>([&] { load_llama2c_tokenizer(dir / "missing.bin", 512); });
  EXPECT_NE(missing.find("missing.bin"), std::string::npos) << missing;

  // Every truncation is a FormatError naming the file, never a crash or a partial vocabulary.
  for (const size_t size :
       {size_t{0}, size_t{2}, size_t{4}, size_t{10}, size_t{1000}, good.size() / 2, good.size() - 1}) {
    write_bytes(path, good.substr(0, size));
    const std::string msg = test::error_of<FormatError>([&] { load_llama2c_tokenizer(path, 512); });
    EXPECT_NE(msg.find(name), std::string::npos) << "size " << size << ": " << msg;
  }
  // A negative or oversized piece length, and an absurd max_token_length.
  std::string corrupt = good;
  const int32_t negative = -5;
  std::memcpy(corrupt.data() + 8, &negative, 4);  // length of token 0
  write_bytes(path, corrupt);
  EXPECT_NE(test::error_of<FormatError>([&] { load_llama2c_tokenizer(path, 512); }).find("length -5"),
            std::string::npos);
  corrupt = good;
  const int32_t huge = 1 << 30;
  std::memcpy(corrupt.data(), &huge, 4);
  write_bytes(path, corrupt);
  EXPECT_NE(test::error_of<FormatError>([&] { load_llama2c_tokenizer(path, 512); }).find(name),
            std::string::npos);
  // The wrong vocabulary size for the file, either way.
  write_bytes(path, good);
  EXPECT_NE(test::error_of<FormatError>([&] { load_llama2c_tokenizer(path, 600); }).find(name),
            std::string::npos);
  EXPECT_NE(test::error_of<FormatError>([&] { load_llama2c_tokenizer(path, 500); }).find("does not belong"),
            std::string::npos);
  EXPECT_THROW(load_llama2c_tokenizer(path, 0), InvalidArgument);
  EXPECT_NO_THROW(load_llama2c_tokenizer(path, 512));
}

GgufBuilder spm_vocab(const std::vector<std::string>& tokens, const std::vector<float>& scores,
                      const std::vector<int32_t>& types) {
  GgufBuilder b;
  b.kv_string("tokenizer.ggml.model", "llama");
  b.kv_string_array("tokenizer.ggml.tokens", tokens);
  b.kv_f32_array("tokenizer.ggml.scores", scores);
  b.kv_i32_array("tokenizer.ggml.token_type", types);
  return b;
}

// llama.cpp appends EOS to such a model's prompts; reslens would tokenize them differently, so it
// refuses the file by the key's name (false, as nearly every model has it, loads).
TEST(TokenizerErrors, AddEosTokenIsRefusedByName) {
  const std::vector<std::string> tokens = {"<unk>", "<s>", "</s>", kSpace, "a"};
  auto b = spm_vocab(tokens, {0, 0, 0, -1, -2}, {2, 3, 3, 1, 1});
  b.kv_bool("tokenizer.ggml.add_eos_token", false);
  EXPECT_NO_THROW(from_builder(b));
  auto t = spm_vocab(tokens, {0, 0, 0, -1, -2}, {2, 3, 3, 1, 1});
  t.kv_bool("tokenizer.ggml.add_eos_token", true);
  const std::string msg = test::error_of<UnsupportedError>([&] { from_builder(t); });
  EXPECT_NE(msg.find("synthetic.gguf"), std::string::npos) << msg;
  EXPECT_NE(msg.find("tokenizer.ggml.add_eos_token"), std::string::npos) << msg;
}

TEST(TokenizerErrors, InconsistentGgufMetadataIsFormatError) {
  const std::vector<std::string> tokens = {"<unk>", "<s>", "</s>", kSpace, "a"};
  auto expect_format_error = [](const GgufBuilder& b, const std::string& needle) {
    const std::string msg = test::error_of<FormatError>([&] { from_builder(b); });
    EXPECT_NE(msg.find("synthetic.gguf"), std::string::npos) << msg;
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
  };
  expect_format_error(spm_vocab(tokens, {0, 0, 0, -1}, {2, 3, 3, 1, 1}), "tokenizer.ggml.scores");
  expect_format_error(spm_vocab(tokens, {0, 0, 0, -1, -2}, {2, 3, 3, 1}), "tokenizer.ggml.token_type");
  expect_format_error(spm_vocab(tokens, {0, 0, 0, -1, -2}, {2, 3, 3, 1, 9}), "not a token type");
  {
    auto b = spm_vocab(tokens, {0, 0, 0, -1, -2}, {2, 3, 3, 1, 1});
    b.kv_u32("tokenizer.ggml.bos_token_id", 7);
    expect_format_error(b, "bos_token_id");
  }
  {
    GgufBuilder b;
    b.kv_string("tokenizer.ggml.model", "llama");
    b.kv_i32_array("tokenizer.ggml.tokens", {1, 2, 3});
    expect_format_error(b, "array of strings");
  }
  {
    GgufBuilder b;
    b.kv_string("tokenizer.ggml.model", "llama");
    expect_format_error(b, "tokenizer.ggml.tokens");
  }
  {
    GgufBuilder b;
    b.kv_string_array("tokenizer.ggml.tokens", tokens);
    expect_format_error(b, "tokenizer.ggml.model");
  }
  {
    GgufBuilder b;  // gpt2 without merges
    b.kv_string("tokenizer.ggml.model", "gpt2");
    b.kv_string_array("tokenizer.ggml.tokens", {"a", "b"});
    expect_format_error(b, "tokenizer.ggml.merges");
    b.kv_string_array("tokenizer.ggml.merges", {"ab"});
    expect_format_error(b, "'left right'");
  }
  EXPECT_NO_THROW(from_builder(spm_vocab(tokens, {0, 0, 0, -1, -2}, {2, 3, 3, 1, 1})));
}

TEST(TokenizerErrors, UnsupportedTokenizerModelsAreNamed) {
  for (const std::string model : {"bert", "t5", "rwkv", "no"}) {
    GgufBuilder b;
    b.kv_string("tokenizer.ggml.model", model);
    b.kv_string_array("tokenizer.ggml.tokens", {"a", "b"});
    const std::string msg = test::error_of<UnsupportedError>([&] { from_builder(b); });
    EXPECT_NE(msg.find("'" + model + "'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("synthetic.gguf"), std::string::npos) << msg;
  }
  GgufBuilder b;
  b.kv_string("tokenizer.ggml.model", "gpt2");
  b.kv_string("tokenizer.ggml.pre", "some-new-model");
  b.kv_string_array("tokenizer.ggml.tokens", {"a", "b"});
  b.kv_string_array("tokenizer.ggml.merges", {"a b"});
  EXPECT_NE(test::error_of<UnsupportedError>([&] { from_builder(b); }).find("'some-new-model'"),
            std::string::npos);
}

TEST(SpmSynthetic, MergesHighestScoreThenLeftmost) {
  const std::vector<std::string> tokens = {"<unk>", "<s>", "</s>", kSpace, "a", "b", kSpace + "a", "ab"};
  // "ab" -> "▁ab": candidates "▁a" and "ab". Equal scores: the leftmost pair merges.
  auto tied = from_builder(spm_vocab(tokens, {0, 0, 0, -10, -10, -10, -1, -1}, {2, 3, 3, 1, 1, 1, 1, 1}));
  EXPECT_EQ(tied->encode("ab", false), (std::vector<int32_t>{6, 5}));
  // A higher score wins wherever it is.
  auto scored = from_builder(spm_vocab(tokens, {0, 0, 0, -10, -10, -10, -2, -1}, {2, 3, 3, 1, 1, 1, 1, 1}));
  EXPECT_EQ(scored->encode("ab", false), (std::vector<int32_t>{3, 7}));
  EXPECT_EQ(scored->encode("ab", true), (std::vector<int32_t>{1, 3, 7}));  // llama.cpp default BOS 1
  EXPECT_EQ(scored->decode(scored->encode("ab ab", true)), "ab ab");
}

TEST(SpmSynthetic, UnknownCharactersWithoutByteTokens) {
  const std::vector<std::string> tokens = {"<unk>", "<s>", "</s>", kSpace, "a"};
  auto tok = from_builder(spm_vocab(tokens, {0, 0, 0, -1, -2}, {2, 3, 3, 1, 1}));
  EXPECT_EQ(tok->unk_id(), 0);
  // A run of unknown characters is one <unk>; runs separated by a known token are two.
  EXPECT_EQ(tok->encode("a\xC3\xA9\xC3\xA8"
                        "a\xE6\x97\xA5",
                        false),
            (std::vector<int32_t>{3, 4, 0, 4, 0}));
  // Without an <unk> token (and no byte tokens) the text cannot be encoded: say where.
  auto no_unk = from_builder(spm_vocab(tokens, {0, 0, 0, -1, -2}, {1, 3, 3, 1, 1}));
  EXPECT_EQ(no_unk->unk_id(), -1);
  const std::string msg = test::error_of<InvalidArgument>([&] { no_unk->encode("a a\xC3\xA9", false); });
  EXPECT_NE(msg.find("byte offset 3"), std::string::npos) << msg;
}

TEST(BpeSynthetic, MergesLowestRankThenLeftmost) {
  auto make = [](const std::vector<std::string>& merges) {
    GgufBuilder b;
    b.kv_string("tokenizer.ggml.model", "gpt2");
    b.kv_string("tokenizer.ggml.pre", "gpt-2");
    b.kv_string_array("tokenizer.ggml.tokens", {"a", "b", "c", "ab", "bc", "aa"});
    b.kv_string_array("tokenizer.ggml.merges", merges);
    return from_builder(b);
  };
  EXPECT_EQ(make({"a b", "b c"})->encode("abc", false), (std::vector<int32_t>{3, 2}));
  EXPECT_EQ(make({"b c", "a b"})->encode("abc", false), (std::vector<int32_t>{0, 4}));
  EXPECT_EQ(make({"a a"})->encode("aaa", false), (std::vector<int32_t>{5, 0}));  // leftmost first
  // A merge naming unknown pieces is dropped, not an error (llama.cpp ignores it too).
  EXPECT_EQ(make({"x y", "a b"})->encode("ab", false), (std::vector<int32_t>{3}));
}

bool is_reslens_error(const std::exception& e) {
  return dynamic_cast<const Error*>(&e) != nullptr || dynamic_cast<const InvalidArgument*>(&e) != nullptr
         || dynamic_cast<const OutOfRange*>(&e) != nullptr;
}

// Runs the fuzz entry point on `bytes`: success or a reslens error are fine, anything else fails.
void fuzz_once(const std::string& bytes, const std::string& label) {
  try {
    fuzz_parse_tokenizer_json(bytes);
  } catch (const std::exception& e) {
    EXPECT_TRUE(is_reslens_error(e)) << label << ": non-reslens exception: " << e.what();
  }
}

TEST(TokenizerFuzzEntry, ThrowsOnlyReslensErrors) {
  const std::string valid = test::read_file(shared_path("models/TinyStories-656K/tokenizer.json"));
  EXPECT_NO_THROW(fuzz_parse_tokenizer_json(valid));
  // A one-token BPE model plus `rest` (further top-level members).
  auto with_model = [](const std::string& rest) {
    return R"({"model": {"type": "BPE", "vocab": {"a": 0}}, )" + rest + "}";
  };
  const std::vector<std::string> hostile = {
      "",
      "{",
      "null",
      "[]",
      "0",
      "\"x\"",
      "{\"model\": 1}",
      "{\"model\": {}}",
      R"({"model": {"type": "BPE", "vocab": {}, "merges": []}})",
      R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [["a"]]}})",
      R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [], "unk_token": 5}})",
      R"({"model": {"type": "BPE", "vocab": {"a": -1}, "merges": []}})",
      R"({"model": {"type": "BPE", "vocab": {"a": 2000000000}, "merges": []}})",
      with_model(R"("added_tokens": [{"id": 5}])"),
      with_model(R"("added_tokens": [{"id": 1, "content": "b", "special": "yes"}])"),
      with_model(R"("pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(a+)+$"}})"),
      with_model(R"("pre_tokenizer": {"type": "Split", "pattern": {"Regex": ""}})"),
      with_model(R"("pre_tokenizer": {"type": "Split", "pattern": {"Regex": "\\C"}})"),
      with_model(R"("pre_tokenizer": {"type": "Split", "pattern": {"String": "\\E"}})"),
      with_model(R"("normalizer": {"type": "Replace", "pattern": {"String": ""}, "content": "x"})"),
      with_model(R"("post_processor": {"type": "TemplateProcessing",)"
                 R"( "single": [{"SpecialToken": {"id": "zz"}}, {"Sequence": {"id": "A"}}]})"),
      with_model(R"("post_processor": {"type": "TemplateProcessing",)"
                 R"( "single": [{"SpecialToken": {"id": "a"}}, {"Sequence": {"id": "A"}}],)"
                 R"( "special_tokens": {"a": {"ids": [99]}}})"),
      std::string(100000, '[') + std::string(100000, ']'),
      "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"\xFF\": 0}}}",
  };
  for (size_t i = 0; i < hostile.size(); ++i) fuzz_once(hostile[i], "hostile case " + std::to_string(i));
  // Nested Sequences past the depth bound.
  std::string nested = R"({"type": "Prepend", "prepend": "x"})";
  for (int i = 0; i < 100; ++i) nested = R"({"type": "Sequence", "normalizers": [)" + nested + "]}";
  fuzz_once(R"({"model": {"type": "BPE", "vocab": {"a": 0}}, "normalizer": )" + nested + "}", "deep nesting");
  // Truncations and byte mutations of a real file.
  for (size_t cut = 1; cut < valid.size(); cut += valid.size() / 23)
    fuzz_once(valid.substr(0, cut), "truncated");
  std::mt19937 rng(1234);
  const std::string small =
      R"({"model": {"type": "BPE", "byte_fallback": true, "fuse_unk": true, "unk_token": "<unk>",
      "vocab": {"<unk>": 0, "a": 1, "b": 2, "ab": 3, "<0x41>": 4}, "merges": ["a b"]},
      "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "_"},
      {"type": "Replace", "pattern": {"String": " "}, "content": "_"}]},
      "post_processor": {"type": "TemplateProcessing",
          "single": [{"SpecialToken": {"id": "a"}}, {"Sequence": {"id": "A"}}]}})";
  EXPECT_NO_THROW(fuzz_parse_tokenizer_json(small));
  for (int round = 0; round < 2000; ++round) {
    std::string mutated = small;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) {
      mutated[rng() % mutated.size()] = static_cast<char>(rng() % 256);
    }
    fuzz_once(mutated, "mutation round " + std::to_string(round));
  }
}

}  // namespace
}  // namespace reslens
