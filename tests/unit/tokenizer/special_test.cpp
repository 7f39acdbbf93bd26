// Special tokens written in the text (a chat prompt's "<|im_start|>", a literal "<s>", GPT-NeoX's
// whitespace-run tokens): split out before the text is encoded, as llama.cpp's
// tokenizer_st_partition and Hugging Face's added-token extraction do, or read as plain text when
// asked (control and unknown tokens only: both split user-defined tokens regardless).
#include <gtest/gtest.h>

#include <algorithm>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "reslens/error.h"
#include "tokenizer/factory.h"
#include "tokenizer/special_split.h"
#include "common/test_paths.h"
#include "unit/tokenizer/tokenizer_data.h"

namespace reslens {
namespace {

using tokenizer_detail::split_special_tokens;
using tokenizer_detail::TextPart;

// "text" parts as their text, token parts as "[id]".
std::vector<std::string> show(std::string_view text, const std::vector<TextPart>& parts) {
  std::vector<std::string> out;
  for (const TextPart& p : parts) {
    out.push_back(p.token >= 0 ? "[" + std::to_string(p.token) + "]" : std::string(text.substr(p.begin, p.end - p.begin)));
  }
  return out;
}

std::vector<int32_t> concat(std::initializer_list<std::vector<int32_t>> lists) {
  std::vector<int32_t> out;
  for (const auto& l : lists) out.insert(out.end(), l.begin(), l.end());
  return out;
}

using Candidates = std::vector<std::pair<std::string_view, int32_t>>;

TEST(SpecialSplit, SplitsEveryOccurrenceLongestFirst) {
  const Candidates c = {{"<xy>", 2}, {"<x>", 1}};
  const std::string text = "a<x>b<xy>c<x><x>";
  EXPECT_EQ(show(text, split_special_tokens(text, c)),
            (std::vector<std::string>{"a", "[1]", "b", "[2]", "c", "[1]", "[1]"}));
  // Overlapping matches: the longer token is split out first, wherever it is (llama.cpp), so "ab"
  // loses the "b" it shares with "bcd".
  const Candidates overlap = {{"bcd", 2}, {"ab", 1}};
  EXPECT_EQ(show("abcd", split_special_tokens("abcd", overlap)), (std::vector<std::string>{"a", "[2]"}));
  // Whitespace runs (GPT-NeoX): the longest run token first, then what is left.
  const Candidates runs = {{"   ", 3}, {"  ", 2}};
  EXPECT_EQ(show("x     y", split_special_tokens("x     y", runs)), (std::vector<std::string>{"x", "[3]", "[2]", "y"}));
  // A token never matches across a part already split off.
  const Candidates across = {{"<a><b>", 9}, {"a>", 1}};
  EXPECT_EQ(show("<a><b>a>", split_special_tokens("<a><b>a>", across)), (std::vector<std::string>{"[9]", "[1]"}));
  EXPECT_TRUE(split_special_tokens("", c).empty());
  EXPECT_EQ(show("plain", split_special_tokens("plain", {})), (std::vector<std::string>{"plain"}));
}

TEST(SpecialTokens, Gpt2EndOfTextInTheText) {
  const auto tok = test::gguf_tokenizer("models/random-gpt2/random-gpt2-test.gguf");
  const int32_t eot = tok->find_piece("<|endoftext|>");
  ASSERT_EQ(eot, 50256);
  EXPECT_EQ(tok->encode("Hello<|endoftext|> world", false),
            concat({tok->encode("Hello", false), {eot}, tok->encode(" world", false)}));
  EXPECT_EQ(tok->encode("<|endoftext|><|endoftext|>", true), (std::vector<int32_t>{eot, eot, eot}));
  // As plain text: its characters' tokens, which decode back to it.
  const auto plain = tok->encode("Hello<|endoftext|> world", false, SpecialText::kPlain);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), eot), 0);
  EXPECT_EQ(tok->decode(plain), "Hello<|endoftext|> world");
  EXPECT_EQ(tok->encode("no specials here", false), tok->encode("no specials here", false, SpecialText::kPlain));
}

TEST(SpecialTokens, SentencePieceStretchesEachGetTheSpacePrefix) {
  // llama.cpp (is_prev_special) and HF's legacy Llama tokenizer prefix "▁" to every stretch of text
  // that begins the prompt or follows a special token. Our SPM encoder and libsentencepiece (one
  // call per stretch) must agree on it.
  const auto spm = test::gguf_tokenizer("tokenizers/ggml-vocab/ggml-vocab-llama-spm.gguf");
  const auto sp = load_sentencepiece_model(test::shared_path("tokenizers/llama2/tokenizer.model"));
  for (const Tokenizer* tok : {spm.get(), sp.get()}) {
    SCOPED_TRACE(tok->kind());
    EXPECT_EQ(tok->encode("Hello</s>world", false), concat({tok->encode("Hello", false), {2}, tok->encode("world", false)}));
    EXPECT_EQ(tok->encode("<s> Hi", true), concat({{1, 1}, tok->encode(" Hi", false)}));
    EXPECT_EQ(tok->encode("</s>", false), (std::vector<int32_t>{2}));
    EXPECT_EQ(tok->encode("a<unk>b", false), concat({tok->encode("a", false), {0}, tok->encode("b", false)}));
    const auto plain = tok->encode("Hello</s>world<unk>", false, SpecialText::kPlain);
    EXPECT_EQ(std::count(plain.begin(), plain.end(), 2) + std::count(plain.begin(), plain.end(), 0), 0);
  }
  for (const char* text : {"Hello</s>world", "<s>[INST] What is 2+2? [/INST]", " <s>  x</s></s>\n<unk>y", "</s>"}) {
    test::expect_ids(*spm, text, sp->encode(text, true), spm->encode(text, true));
    test::expect_ids(*spm, text, sp->encode(text, false, SpecialText::kPlain), spm->encode(text, false, SpecialText::kPlain));
  }
}

TEST(SpecialTokens, UserDefinedTokensSplitEvenAsPlainText) {
  // GPT-NeoX's vocabulary has user-defined tokens for runs of spaces; llama.cpp and HF split them
  // out of the text whether or not control tokens are parsed.
  const auto tok = test::gguf_tokenizer("tokenizers/ggml-vocab/ggml-vocab-gpt-neox.gguf");
  const int32_t four = tok->find_piece("    ");
  ASSERT_GE(four, 0) << "the GPT-NeoX vocabulary should have a 4-space token";
  ASSERT_EQ(tok->type(four), TokenType::kUserDefined);
  const std::vector<int32_t> want = concat({tok->encode("def f():\n", false), {four}, tok->encode("return 1", false)});
  EXPECT_EQ(tok->encode("def f():\n    return 1", false), want);
  EXPECT_EQ(tok->encode("def f():\n    return 1", false, SpecialText::kPlain), want);
  EXPECT_EQ(tok->decode(want), "def f():\n    return 1");
}

TEST(SpecialTokens, InvalidUtf8RefusedBeforeSplitting) {
  const auto tok = test::gguf_tokenizer("models/random-gpt2/random-gpt2-test.gguf");
  EXPECT_THROW(tok->encode("\xff<|endoftext|>", false), InvalidArgument);  // UTF-8 first, whatever follows
}

}  // namespace
}  // namespace reslens
