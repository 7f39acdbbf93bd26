// Byte-level BPE (GPT-2, Llama 3, Qwen2): exact ids against llama.cpp's vocabulary vectors, ggml's
// GPT-2 prompt vectors and the random-gpt2 goldens; OpenAI's original files give the same ids as
// the GGUF; decode is lossless; a 100 KB text encodes well under a second.
#include <gtest/gtest.h>

#include "common/test_paths.h"
#include "reslens/error.h"
#include "tokenizer/bpe.h"
#include "tokenizer/factory.h"
#include "unit/tokenizer/tokenizer_data.h"

namespace reslens {
namespace {

using test::expect_ids;
using test::shared_path;

// Every vector of `<vocab>.gguf.inp/.out`, and decode(encode(s)) == s (byte-level BPE is lossless).
void check_vocab_vectors(const Tokenizer& tok, const std::string& relative, size_t n_cases) {
  const auto cases = test::read_vocab_vectors(relative);
  ASSERT_EQ(cases.size(), n_cases);
  size_t matched = 0;
  for (const auto& c : cases) {
    const auto ids = tok.encode(c.text, false);
    if (expect_ids(tok, c.text, c.ids, ids)) ++matched;
    EXPECT_EQ(tok.decode(ids), c.text) << "text: \"" << test::printable(c.text) << "\"";
  }
  EXPECT_EQ(matched, n_cases);
}

TEST(Gpt2Bpe, MatchesLlamaCppVocabVectors) {
  const auto tok = test::gguf_tokenizer("tokenizers/ggml-vocab/ggml-vocab-gpt-2.gguf");
  EXPECT_EQ(tok->kind(), "gpt2-bpe");
  EXPECT_EQ(tok->n_vocab(), 50257);
  EXPECT_EQ(tok->bos_id(), 50256);
  EXPECT_FALSE(tok->add_bos_default());
  check_vocab_vectors(*tok, "tokenizers/ggml-vocab/ggml-vocab-gpt-2.gguf", 46);
}

TEST(Llama3Bpe, MatchesLlamaCppVocabVectors) {
  const auto tok = test::gguf_tokenizer("tokenizers/ggml-vocab/ggml-vocab-llama-bpe.gguf");
  EXPECT_EQ(tok->kind(), "llama3-bpe");
  EXPECT_EQ(tok->n_vocab(), 128256);
  EXPECT_EQ(tok->bos_id(), 128000);
  EXPECT_TRUE(tok->add_bos_default());  // llama.cpp's default for the llama3 pre-tokenizer
  check_vocab_vectors(*tok, "tokenizers/ggml-vocab/ggml-vocab-llama-bpe.gguf", 46);
  EXPECT_EQ(tok->encode("Hello", true).front(), 128000);
}

TEST(Qwen2Bpe, MatchesLlamaCppVocabVectors) {
  const auto tok = test::gguf_tokenizer("tokenizers/ggml-vocab/ggml-vocab-qwen2.gguf");
  EXPECT_EQ(tok->kind(), "qwen2-bpe");
  EXPECT_EQ(tok->n_vocab(), 151936);
  EXPECT_FALSE(tok->add_bos_default());
  check_vocab_vectors(*tok, "tokenizers/ggml-vocab/ggml-vocab-qwen2.gguf", 46);
}

TEST(Gpt2Bpe, OpenAiFilesMatchGgufAndPromptVectors) {
  const auto gguf_tok = test::gguf_tokenizer("tokenizers/ggml-vocab/ggml-vocab-gpt-2.gguf");
  const auto tok = load_bpe_vocab_merges(shared_path("tokenizers/gpt2/encoder.json"),
                                         shared_path("tokenizers/gpt2/vocab.bpe"));
  EXPECT_EQ(tok->kind(), "gpt2-bpe");
  ASSERT_EQ(tok->n_vocab(), gguf_tok->n_vocab());
  for (int32_t id = 0; id < tok->n_vocab(); ++id)
    ASSERT_EQ(tok->piece(id), gguf_tok->piece(id)) << "id " << id;
  // Every one of GPT-2's 50000 merges names tokens, from either source.
  EXPECT_EQ(dynamic_cast<const tokenizer_detail::BpeTokenizer&>(*tok).n_merges(), 50000u);
  EXPECT_EQ(dynamic_cast<const tokenizer_detail::BpeTokenizer&>(*gguf_tok).n_merges(), 50000u);
  EXPECT_EQ(tok->bos_id(), 50256);
  EXPECT_EQ(tok->eos_id(), 50256);
  EXPECT_EQ(tok->type(50256), TokenType::kControl);

  const auto prompts = test::read_prompt_vectors("tokenizers/testvectors/ggml-prompts-gpt-2.txt");
  ASSERT_EQ(prompts.size(), 100u);
  for (const auto& p : prompts) {
    expect_ids(*tok, p.text, p.ids, tok->encode(p.text, false));
    expect_ids(*gguf_tok, p.text, p.ids, gguf_tok->encode(p.text, false));
  }
  // The other sentences of ggml's test-case list have no ids: both loaders must still agree.
  const std::string cases =
      test::read_file(shared_path("tokenizers/testvectors/ggml-prompts-test-cases.txt"));
  size_t start = 0;
  int sentences = 0;
  while (start < cases.size()) {
    size_t end = cases.find('\n', start);
    if (end == std::string::npos) end = cases.size();
    const std::string line = cases.substr(start, end - start);
    start = end + 1;
    const size_t colon = line.find(": ");
    if (line.empty() || line[0] == '#' || colon == std::string::npos) continue;
    const std::string text = line.substr(colon + 2);
    const auto ids = tok->encode(text, false);
    expect_ids(*tok, text, gguf_tok->encode(text, false), ids);
    EXPECT_EQ(tok->decode(ids), text);
    ++sentences;
  }
  EXPECT_EQ(sentences, 107);
  for (const auto& c : test::read_vocab_vectors("tokenizers/ggml-vocab/ggml-vocab-gpt-2.gguf")) {
    expect_ids(*tok, c.text, c.ids, tok->encode(c.text, false));
  }
}

TEST(RandomGpt2, GgufMatchesTokenizerTestsAndGoldens) {
  const auto tok = test::gguf_tokenizer("models/random-gpt2/random-gpt2-test.gguf");
  EXPECT_FALSE(tok->add_bos_default());
  test::expect_golden_tokenization(*tok, "random-gpt2");
}

TEST(Gpt2Bpe, TokenTextAndDecode) {
  const auto tok = test::gguf_tokenizer("models/random-gpt2/random-gpt2-test.gguf");
  const auto hello = tok->encode(" Hello world", false);
  ASSERT_EQ(hello, (std::vector<int32_t>{18435, 995}));
  EXPECT_EQ(tok->piece(18435), "\xC4\xA0Hello");  // "ĠHello"
  EXPECT_EQ(tok->token_text(18435), " Hello");
  // A character split over two tokens: each shows its bytes, invalid ones as <0xXX>.
  const auto emoji = tok->encode("\xF0\x9F\x98\x80", false);  // U+1F600
  ASSERT_EQ(emoji, (std::vector<int32_t>{47249, 222}));
  EXPECT_EQ(tok->token_text(47249), "<0xF0><0x9F><0x98>");
  EXPECT_EQ(tok->token_text(222), "<0x80>");
  EXPECT_EQ(tok->decode(emoji), "\xF0\x9F\x98\x80");
  // <|endoftext|> is a control token: shown as its piece, decoded as nothing.
  EXPECT_EQ(tok->token_text(50256), "<|endoftext|>");
  EXPECT_EQ(tok->decode(std::vector<int32_t>{15496, 50256, 995}), "Hello world");
  // Special-token text in the input is that token, or plain text when asked (tokenizer_special_test).
  EXPECT_EQ(tok->encode("<|endoftext|>", false), std::vector<int32_t>{50256});
  EXPECT_EQ(tok->decode(tok->encode("<|endoftext|>", false, SpecialText::kPlain)), "<|endoftext|>");
  EXPECT_TRUE(tok->encode("", false).empty());
  EXPECT_EQ(tok->encode("", true), std::vector<int32_t>{50256});
  EXPECT_THROW(tok->token_text(50257), OutOfRange);
}

TEST(Gpt2Bpe, EncodesLargeText) {
  const auto tok = test::gguf_tokenizer("models/random-gpt2/random-gpt2-test.gguf");
  // ~100 KB of varied text: the prompt vectors, numbered so words keep changing.
  const auto prompts = test::read_prompt_vectors("tokenizers/testvectors/ggml-prompts-gpt-2.txt");
  std::string text;
  for (int i = 0; text.size() < 100 * 1024; ++i) {
    text += prompts[static_cast<size_t>(i) % prompts.size()].text;
    text += " (" + std::to_string(i * 7919) + ")\n";
  }
  std::vector<int32_t> ids;
  const double seconds = test::seconds_to_encode(*tok, text, ids);
  EXPECT_GT(ids.size(), 20000u);
  EXPECT_EQ(tok->decode(ids), text);
  std::cout << "encoded " << text.size() << " bytes into " << ids.size() << " tokens in " << seconds * 1e3
            << " ms\n";
}

}  // namespace
}  // namespace reslens
