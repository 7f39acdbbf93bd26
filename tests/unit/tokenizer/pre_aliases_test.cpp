// Every `tokenizer.ggml.pre` value reslens accepts, against llama.cpp's own ids: each case of
// tests/data/llamacpp-tokenizer/cases.json (recorded by scripts/llamacpp/make_tokenizer_vectors.py
// with llama.cpp 80fb11a) takes a vocabulary of ../shared, sets its pre value (or removes it) and
// must give llama.cpp's ids for every string and llama.cpp's default BOS. Values reslens does not
// list are refused by name, including ones llama.cpp itself does not know.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <optional>
#include <set>
#include <sstream>

#include "common/gguf_builder.h"
#include "common/test_paths.h"
#include "io/gguf.h"
#include "reslens/error.h"
#include "tokenizer/factory.h"
#include "tokenizer/llamacpp_pre.h"
#include "unit/tokenizer/tokenizer_data.h"

namespace reslens {
namespace {

using test::GgufBuilder;

const std::filesystem::path kVectors = RESLENS_TOKENIZER_VECTORS_DIR;

// The tokenizer.* metadata of `f`, copied, with `tokenizer.ggml.pre` set to `pre` (absent: nullopt).
std::vector<uint8_t> with_pre(const gguf::File& f, const std::optional<std::string>& pre) {
  GgufBuilder b;
  for (const auto& [key, v] : f.metadata()) {
    if (key.rfind("tokenizer.", 0) != 0 || key == "tokenizer.ggml.pre") continue;
    if (v.type == gguf::ValueType::kString) {
      b.kv_string(key, v.s);
    } else if (v.type == gguf::ValueType::kBool) {
      b.kv_bool(key, v.i != 0);
    } else if (v.type == gguf::ValueType::kArray && v.array_type == gguf::ValueType::kString) {
      b.kv_string_array(key, v.strings);
    } else if (v.type == gguf::ValueType::kArray && v.array_type == gguf::ValueType::kFloat32) {
      b.kv_f32_array(key, std::vector<float>(v.numbers.begin(), v.numbers.end()));
    } else if (v.type == gguf::ValueType::kArray) {
      std::vector<int32_t> ints;
      for (const double x : v.numbers) ints.push_back(static_cast<int32_t>(x));
      b.kv_i32_array(key, ints);
    } else if (v.is_integer()) {
      b.kv_u32(key, static_cast<uint32_t>(v.i));
    } else {
      ADD_FAILURE() << key << ": value type not copied";
    }
  }
  if (pre) b.kv_string("tokenizer.ggml.pre", *pre);
  return b.bytes();
}

std::vector<std::vector<int32_t>> read_id_lines(const std::filesystem::path& path) {
  std::vector<std::vector<int32_t>> lines;
  std::stringstream ss(test::read_file(path));
  for (std::string line; std::getline(ss, line);) {
    std::vector<int32_t> ids;
    std::stringstream ls(line);
    for (int32_t id = 0; ls >> id;) ids.push_back(id);
    lines.push_back(std::move(ids));
  }
  return lines;
}

nlohmann::json cases() { return nlohmann::json::parse(test::read_file(kVectors / "cases.json")); }

class LlamaCppPreTokenizers : public ::testing::TestWithParam<std::string> {};

TEST_P(LlamaCppPreTokenizers, MatchLlamaCppIds) {
  const auto all = cases();
  const auto it = std::find_if(all["cases"].begin(), all["cases"].end(),
                               [&](const auto& c) { return c["name"] == GetParam(); });
  ASSERT_NE(it, all["cases"].end()) << GetParam();
  const nlohmann::json& c = *it;
  const gguf::File vocab(test::shared_path(c["vocab"].get<std::string>()));
  std::unique_ptr<Tokenizer> tok;
  std::vector<uint8_t> bytes;
  if (c["pre"] == "keep") {
    tok = tokenizer_from_gguf(vocab);
  } else {
    std::optional<std::string> pre;
    if (!c["pre"].is_null()) pre = c["pre"].get<std::string>();
    bytes = with_pre(vocab, pre);
    tok = tokenizer_from_gguf(gguf::File(bytes, GetParam() + ".gguf"));
  }
  EXPECT_EQ(tok->add_bos_default(), c["add_bos"].get<bool>());

  // The vocabulary's own strings ("<vocab>.gguf.inp", read through its vocabulary name)...
  std::string own = c["strings"].get<std::string>();
  own.resize(own.size() - std::string(".inp").size());
  std::vector<std::string> strings;
  for (const auto& tc : test::read_vocab_vectors(own)) strings.push_back(tc.text);
  // ... then extra.inp's, in the same format.
  const std::string extra = test::read_file(kVectors / "extra.inp");
  const std::string separator = "\n__ggml_vocab_test__\n";
  for (size_t pos = 0; pos < extra.size();) {
    const size_t hit = extra.find(separator, pos);
    if (hit == std::string::npos) break;
    strings.push_back(extra.substr(pos, hit - pos));
    pos = hit + separator.size();
  }
  const auto expected = read_id_lines(kVectors / (GetParam() + ".out"));
  ASSERT_EQ(strings.size(), c["n_strings"].get<size_t>());
  ASSERT_EQ(expected.size(), strings.size());
  size_t matched = 0;
  for (size_t i = 0; i < strings.size(); ++i) {
    const auto ids = tok->encode(strings[i], false, SpecialText::kPlain);
    if (test::expect_ids(*tok, strings[i], expected[i], ids)) ++matched;
    EXPECT_EQ(tok->decode(ids), strings[i]) << "text: \"" << test::printable(strings[i]) << "\"";
  }
  EXPECT_EQ(matched, strings.size()) << GetParam();
}

INSTANTIATE_TEST_SUITE_P(AllCases, LlamaCppPreTokenizers,
                         ::testing::Values("neox-no-pre", "gpt2-default", "gpt2-gpt-2", "gpt2-phi-2", "gpt2-jais",
                                           "neox-mpt", "neox-olmo", "llama-bpe-llama-bpe", "llama-bpe-llama3",
                                           "llama-bpe-llama-v3", "llama-bpe-falcon3", "llama-bpe-dbrx",
                                           "llama-bpe-smaug-bpe", "qwen2-qwen2", "qwen2-deepseek-r1-qwen",
                                           "qwen2-stablelm2", "falcon-falcon", "gemma-4"),
                         [](const ::testing::TestParamInfo<std::string>& param) {
                           std::string name = param.param;
                           for (char& ch : name) ch = ch == '-' ? '_' : ch;
                           return name;
                         });

// Every accepted value has a recorded case, so a new alias cannot be added without llama.cpp's ids.
TEST(LlamaCppPreTokenizerTable, EveryAcceptedValueHasVectors) {
  std::set<std::string> recorded;
  const auto all = cases();
  for (const auto& c : all["cases"]) {
    if (c["pre"].is_string()) recorded.insert(c["pre"].get<std::string>());
  }
  for (const std::string& pre : tokenizer_detail::llamacpp_pre_tokenizer_names()) {
    EXPECT_TRUE(recorded.count(pre)) << "'" << pre << "' is accepted but has no llama.cpp vectors";
  }
}

// Refused by name: "gpt2" (llama.cpp itself rejects it: its name is "gpt-2"), values llama.cpp knows
// but reslens does not reproduce (other regexes, or settings such as add_sep), and model gemma4
// with another pre value.
TEST(LlamaCppPreTokenizerTable, OtherValuesAreRefusedByName) {
  const gguf::File vocab(test::shared_path("tokenizers/ggml-vocab/ggml-vocab-gpt-2.gguf"));
  for (const std::string pre : {"gpt2", "starcoder", "deepseek-llm", "gpt-4o", "bloom", "chatglm-bpe",
                                "roberta-bpe", "tekken", "gemma4", "Falcon"}) {
    const auto bytes = with_pre(vocab, pre);
    const std::string msg =
        test::error_of<UnsupportedError>([&] { tokenizer_from_gguf(gguf::File(bytes, "synthetic.gguf")); });
    EXPECT_NE(msg.find("pre-tokenizer '" + pre + "'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("synthetic.gguf"), std::string::npos) << msg;
  }
  GgufBuilder b;
  b.kv_string("tokenizer.ggml.model", "gemma4");
  b.kv_string("tokenizer.ggml.pre", "gpt-2");
  b.kv_string_array("tokenizer.ggml.tokens", {"a", "b"});
  b.kv_string_array("tokenizer.ggml.merges", {"a b"});
  const auto bytes = b.bytes();
  const std::string msg =
      test::error_of<UnsupportedError>([&] { tokenizer_from_gguf(gguf::File(bytes, "synthetic.gguf")); });
  EXPECT_NE(msg.find("'gpt-2'"), std::string::npos) << msg;
}

}  // namespace
}  // namespace reslens
