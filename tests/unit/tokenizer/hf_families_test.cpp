// Hugging Face tokenizer.json files of the families whose GGUF tokenizers llama.cpp special-cases:
// Falcon's pre-tokenizer sequence (Punctuation, ByteLevel, Digits, Split) and a Gemma-shaped file
// (spaces as "▁", no pre-tokenizer, byte fallback), each filled from the shared vocabulary GGUF,
// against llama.cpp's vectors (which Hugging Face's tokenizers produced).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/test_paths.h"
#include "io/gguf.h"
#include "reslens/error.h"
#include "tokenizer/bpe.h"
#include "tokenizer/factory.h"
#include "tokenizer/hf_tokenizer_json.h"
#include "unit/tokenizer/tokenizer_data.h"

namespace reslens {
namespace {

using nlohmann::json;

// A GGUF vocabulary as tokenizer.json's BPE model (vocab, merges) and added_tokens (its control
// and user-defined tokens).
json bpe_from_vocab(const gguf::File& file, json& added) {
  const auto& tokens = file.find("tokenizer.ggml.tokens")->strings;
  const auto& types = file.find("tokenizer.ggml.token_type")->numbers;
  json vocab = json::object();
  added = json::array();
  for (size_t i = 0; i < tokens.size(); ++i) {
    vocab[tokens[i]] = i;
    if (types[i] == 3 || types[i] == 4) {
      added.push_back({{"id", i}, {"content", tokens[i]}, {"special", types[i] == 3}});
    }
  }
  return {{"type", "BPE"}, {"vocab", vocab}, {"merges", file.find("tokenizer.ggml.merges")->strings}};
}

// tiiuae/falcon-7b's pre_tokenizer, as its tokenizer.json writes it.
const json kFalconPreTokenizer = json::parse(R"({"type": "Sequence", "pretokenizers": [
  {"type": "Punctuation", "behavior": "Contiguous"},
  {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
  {"type": "Digits", "individual_digits": false},
  {"type": "Split", "pattern": {"Regex": "[0-9][0-9][0-9]"}, "behavior": "Isolated", "invert": false}]})");

std::unique_ptr<Tokenizer> falcon_json(const json& pre_tokenizer) {
  const gguf::File file(test::shared_path("tokenizers/ggml-vocab/ggml-vocab-falcon.gguf"));
  json added;
  json model = bpe_from_vocab(file, added);
  const json j = {{"added_tokens", added}, {"pre_tokenizer", pre_tokenizer}, {"decoder", {{"type", "ByteLevel"}}},
                  {"model", model}};
  return tokenizer_detail::tokenizer_from_hf_json(j.dump(), "falcon/tokenizer.json");
}

TEST(HfFamilies, FalconSequenceMatchesVectors) {
  const auto tok = falcon_json(kFalconPreTokenizer);
  EXPECT_EQ(tok->kind(), "hf-bpe-byte-level");
  size_t matched = 0;
  const auto cases = test::read_vocab_vectors("tokenizers/ggml-vocab/ggml-vocab-falcon.gguf");
  ASSERT_EQ(cases.size(), 46u);
  for (const auto& c : cases) {
    const auto ids = tok->encode(c.text, false, SpecialText::kPlain);
    if (test::expect_ids(*tok, c.text, c.ids, ids)) ++matched;
    EXPECT_EQ(tok->decode(ids), c.text);
  }
  EXPECT_EQ(matched, cases.size());
}

// Where Hugging Face and llama.cpp split Falcon text differently: HF's Digits step runs on the byte
// alphabet, in which byte BC of "м" (D0 BC) is the numeral "¼", so HF splits the character in two;
// llama.cpp's falcon list has no digit-run step and keeps "Ð¼" whole. Each loader follows its own
// reference.
TEST(HfFamilies, FalconDigitsRunOnTheByteAlphabetAsHfDoes) {
  const auto hf = falcon_json(kFalconPreTokenizer);
  const auto& hf_bpe = dynamic_cast<const tokenizer_detail::BpeTokenizer&>(*hf);
  EXPECT_EQ(hf_bpe.pre_tokenize("\xD0\xBC"), (std::vector<std::string>{"\xC3\x90", "\xC2\xBC"}));  // Ð ¼
  EXPECT_EQ(hf_bpe.pre_tokenize(" 12345"), (std::vector<std::string>{"\xC4\xA0", "123", "45"}));  // Ġ 123 45
  EXPECT_EQ(hf_bpe.pre_tokenize("a+=(b)"), (std::vector<std::string>{"a", "+=(", "b", ")"}));
  const auto gguf = test::gguf_tokenizer("tokenizers/ggml-vocab/ggml-vocab-falcon.gguf");
  const auto& gguf_bpe = dynamic_cast<const tokenizer_detail::BpeTokenizer&>(*gguf);
  EXPECT_EQ(gguf_bpe.pre_tokenize("\xD0\xBC"), (std::vector<std::string>{"\xC3\x90\xC2\xBC"}));  // Ð¼
}

TEST(HfFamilies, PunctuationAndDigitsBehaviors) {
  const auto isolated = falcon_json(json::parse(R"({"type": "Sequence", "pretokenizers": [
      {"type": "Punctuation", "behavior": "Isolated"}, {"type": "Digits", "individual_digits": true}]})"));
  const auto& bpe = dynamic_cast<const tokenizer_detail::BpeTokenizer&>(*isolated);
  EXPECT_EQ(bpe.pre_tokenize("a+=b`~12"), (std::vector<std::string>{"a", "+", "=", "b", "`", "~", "1", "2"}));
  // Unicode P counts as punctuation (¿ —), Unicode N as digits (Arabic-Indic ٣٤).
  EXPECT_EQ(bpe.pre_tokenize("\xC2\xBFx\xE2\x80\x94\xD9\xA3\xD9\xA4"),
            (std::vector<std::string>{"\xC2\xBF", "x", "\xE2\x80\x94", "\xD9\xA3", "\xD9\xA4"}));
  const auto runs = falcon_json(json::parse(R"({"type": "Sequence", "pretokenizers": [
      {"type": "Punctuation", "behavior": "Contiguous"}, {"type": "Digits", "individual_digits": false}]})"));
  EXPECT_EQ(dynamic_cast<const tokenizer_detail::BpeTokenizer&>(*runs).pre_tokenize("a+=b`~12x"),
            (std::vector<std::string>{"a", "+=", "b", "`~", "12", "x"}));
  const std::string msg = test::error_of<UnsupportedError>(
      [] { falcon_json(json::parse(R"({"type": "Punctuation", "behavior": "MergedWithPrevious"})")); });
  EXPECT_NE(msg.find("MergedWithPrevious"), std::string::npos) << msg;
  EXPECT_NE(msg.find("falcon/tokenizer.json"), std::string::npos) << msg;
}

// Gemma's tokenizer.json shape (transformers' GemmaConverter): a Replace normalizer writes spaces
// as "▁", a Split on " " with behaviour MergedWithPrevious (which then finds nothing to split),
// BPE by rank over the whole text with byte fallback, no BOS template here. Filled with the
// gemma-4 vocabulary it gives llama.cpp's gemma4 ids for every shipped vector and every extra string:
// no token mixes newlines with other characters, and the merges spell every newline run that is a
// token whole, so llama.cpp's newline split and whole-run rule change nothing for this vocabulary.
TEST(HfFamilies, GemmaShapedJsonWithGemma4VocabularyMatchesLlamaCpp) {
  const gguf::File file(test::shared_path("tokenizers/ggml-vocab/ggml-vocab-gemma-4.gguf"));
  json added;
  json model = bpe_from_vocab(file, added);
  model["byte_fallback"] = true;
  model["unk_token"] = "<unk>";
  const json j = {{"added_tokens", added},
                  {"normalizer", {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\xE2\x96\x81"}}},
                  {"pre_tokenizer", json::parse(R"({"type": "Split", "pattern": {"String": " "},
                                                    "behavior": "MergedWithPrevious", "invert": false})")},
                  {"model", model}};
  const auto tok = tokenizer_detail::tokenizer_from_hf_json(j.dump(), "gemma/tokenizer.json");
  EXPECT_EQ(tok->kind(), "hf-bpe-spm");
  const auto gguf = test::gguf_tokenizer("tokenizers/ggml-vocab/ggml-vocab-gemma-4.gguf");
  std::vector<test::TextIds> cases = test::read_vocab_vectors("tokenizers/ggml-vocab/ggml-vocab-gemma-4.gguf");
  ASSERT_EQ(cases.size(), 46u);
  // The extra strings (newline runs among them), with the GGUF tokenizer's ids, which
  // pre_aliases_test holds to llama.cpp's on the same strings.
  const std::string extra =
      test::read_file(std::filesystem::path(RESLENS_TOKENIZER_VECTORS_DIR) / "extra.inp");
  const std::string separator = "\n__ggml_vocab_test__\n";
  for (size_t pos = 0, hit = 0; (hit = extra.find(separator, pos)) != std::string::npos;
       pos = hit + separator.size()) {
    const std::string s = extra.substr(pos, hit - pos);
    cases.push_back({s, gguf->encode(s, false, SpecialText::kPlain)});
  }
  ASSERT_EQ(cases.size(), 46u + 309u);
  size_t matched = 0;
  for (const auto& c : cases) {
    if (test::expect_ids(*tok, c.text, c.ids, tok->encode(c.text, false, SpecialText::kPlain))) ++matched;
  }
  EXPECT_EQ(matched, cases.size());
}

// Hugging Face's MergedWithPrevious: a match joins the text before it unless that text is itself a
// match (tokenizers' SplitDelimiterBehavior); Isolated keeps every match alone.
TEST(HfFamilies, SplitMergedWithPrevious) {
  auto split = [](const std::string& behavior) {
    const json j = {
        {"pre_tokenizer", {{"type", "Split"}, {"pattern", {{"String", "-"}}}, {"behavior", behavior}}},
        {"model", {{"type", "BPE"}, {"vocab", {{"a", 0}, {"b", 1}, {"c", 2}, {"-", 3}}}, {"merges", json::array()}}}};
    return tokenizer_detail::tokenizer_from_hf_json(j.dump(), "split/tokenizer.json");
  };
  const auto merged = split("MergedWithPrevious");
  const auto& bpe = dynamic_cast<const tokenizer_detail::BpeTokenizer&>(*merged);
  EXPECT_EQ(bpe.pre_tokenize("a-b--c-"), (std::vector<std::string>{"a-", "b-", "-", "c-"}));
  EXPECT_EQ(bpe.pre_tokenize("-a"), (std::vector<std::string>{"-", "a"}));
  EXPECT_EQ(bpe.pre_tokenize("abc"), (std::vector<std::string>{"abc"}));
  EXPECT_EQ(merged->encode("a-b--c-", false), (std::vector<int32_t>{0, 3, 1, 3, 3, 2, 3}));
  const auto isolated = split("Isolated");
  EXPECT_EQ(dynamic_cast<const tokenizer_detail::BpeTokenizer&>(*isolated).pre_tokenize("a-b--c-"),
            (std::vector<std::string>{"a", "-", "b", "-", "-", "c", "-"}));
  for (const std::string behavior : {"MergedWithNext", "Removed", "Contiguous"}) {
    const std::string msg = test::error_of<UnsupportedError>([&] { split(behavior); });
    EXPECT_NE(msg.find("'" + behavior + "'"), std::string::npos) << msg;
  }
}

}  // namespace
}  // namespace reslens
