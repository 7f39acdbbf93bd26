// The vocabularies of the model families reslens runs: exact ids against llama.cpp's vectors in
// ../shared/tokenizers/ggml-vocab (Phi-3, Falcon, Gemma 4, GPT-NeoX), and round trips.
#include <gtest/gtest.h>

#include <iostream>

#include "common/gguf_builder.h"
#include "common/test_paths.h"
#include "io/gguf.h"
#include "reslens/error.h"
#include "tokenizer/bpe.h"
#include "tokenizer/factory.h"
#include "unit/tokenizer/tokenizer_data.h"

namespace reslens {
namespace {

// Every vector of `<vocab>.gguf.inp/.out` (encoded without BOS and with special-token text kept
// as text, as llama.cpp's test-tokenizer-0 does), and decode(encode(s)) == s when `round_trip`.
void check_all_vectors(const Tokenizer& tok, const std::string& relative, size_t n_cases, bool round_trip) {
  const auto cases = test::read_vocab_vectors(relative);
  ASSERT_EQ(cases.size(), n_cases) << relative;
  size_t matched = 0;
  for (const auto& c : cases) {
    const auto ids = tok.encode(c.text, false, SpecialText::kPlain);
    if (test::expect_ids(tok, c.text, c.ids, ids)) ++matched;
    if (round_trip) {
      EXPECT_EQ(tok.decode(ids), c.text) << "text: \"" << test::printable(c.text) << "\"";
    }
  }
  EXPECT_EQ(matched, cases.size()) << relative;
}

TEST(FamilyVocabularies, Phi3MatchesLlamaCpp) {
  const std::string vocab = "tokenizers/ggml-vocab/ggml-vocab-phi-3.gguf";
  check_all_vectors(*test::gguf_tokenizer(vocab), vocab, 46, false);
}

// Falcon (`tokenizer.ggml.pre = falcon`): runs of punctuation split off first, then GPT-2's regex
// inside each piece, then ASCII digits in threes; byte-level, so every string round-trips.
TEST(FamilyVocabularies, FalconMatchesLlamaCpp) {
  const std::string vocab = "tokenizers/ggml-vocab/ggml-vocab-falcon.gguf";
  const auto tok = test::gguf_tokenizer(vocab);
  EXPECT_EQ(tok->kind(), "falcon-bpe");
  EXPECT_EQ(tok->n_vocab(), 65024);
  EXPECT_FALSE(tok->add_bos_default());  // no add_bos key: llama.cpp's BPE default
  EXPECT_EQ(dynamic_cast<const tokenizer_detail::BpeTokenizer&>(*tok).n_merges(), 64784u);
  check_all_vectors(*tok, vocab, 46, true);
  // Each step of the split shows (ids from llama.cpp, commit 80fb11a, llama_tokenize).
  const auto& bpe = dynamic_cast<const tokenizer_detail::BpeTokenizer&>(*tok);
  EXPECT_EQ(bpe.pre_tokenize("a+=b 12345"), (std::vector<std::string>{"a", "+=", "b", "Ġ", "123", "45"}));
  EXPECT_EQ(bpe.pre_tokenize("x`y"), (std::vector<std::string>{"x", "`", "y"}));
  EXPECT_EQ(tok->encode("a+=b 12345", false), (std::vector<int32_t>{76, 8889, 77, 204, 10963, 2617}));
  EXPECT_EQ(tok->encode("x`y", false), (std::vector<int32_t>{99, 75, 100}));
}

// Gemma 4 (`tokenizer.ggml.model = gemma4`): BPE over "▁"-escaped text split only at newline runs,
// whole newline-run tokens, <0xXX> byte fallback, BOS always added.
TEST(FamilyVocabularies, Gemma4MatchesLlamaCpp) {
  const std::string vocab = "tokenizers/ggml-vocab/ggml-vocab-gemma-4.gguf";
  const auto tok = test::gguf_tokenizer(vocab);
  EXPECT_EQ(tok->kind(), "gemma4-bpe");
  EXPECT_EQ(tok->n_vocab(), 262144);
  EXPECT_EQ(tok->bos_id(), 2);
  EXPECT_EQ(tok->eos_id(), 1);
  EXPECT_TRUE(tok->add_bos_default());
  EXPECT_EQ(dynamic_cast<const tokenizer_detail::BpeTokenizer&>(*tok).n_merges(), 514906u);
  check_all_vectors(*tok, vocab, 46, true);
  EXPECT_EQ(tok->encode("Hello", true).front(), 2);
}

// Runs of newlines: a run of up to 31 is one token (ids 107..137), a longer run starts with the
// 31-newline token; llama.cpp emits such a token whole instead of trusting the merges (ids from
// llama.cpp 80fb11a, llama_tokenize, which the vectors above do not exercise).
TEST(FamilyVocabularies, Gemma4NewlineRunsMatchLlamaCpp) {
  const auto tok = test::gguf_tokenizer("tokenizers/ggml-vocab/ggml-vocab-gemma-4.gguf");
  for (int32_t k = 1; k <= 40; ++k) {
    const std::string run(static_cast<size_t>(k), '\n');
    const std::vector<int32_t> expected =
        k <= 31 ? std::vector<int32_t>{106 + k} : std::vector<int32_t>{137, 106 + (k - 31)};
    EXPECT_EQ(tok->encode(run, false), expected) << k << " newlines";
  }
  EXPECT_EQ(tok->encode("a\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\nb", false),
            (std::vector<int32_t>{236746, 123, 236763}));
  EXPECT_EQ(tok->encode(" \n\n ", false), (std::vector<int32_t>{236743, 108, 236743}));
  EXPECT_EQ(tok->encode("x\n\n\n\n\n\n\n\n\n\ny", false), (std::vector<int32_t>{236781, 116, 236762}));
}

// The newline-run rule itself, on a vocabulary whose merges alone would spell "\n\n\n" as
// "\n\n" + "\n": llama.cpp (80fb11a, dump_tokens on the same vocabulary) emits the run's own token.
// A run that is no token goes through the merges; a character no token spells (no byte tokens
// here) is refused, where llama.cpp drops it.
TEST(FamilyVocabularies, Gemma4WholeNewlineRunRule) {
  test::GgufBuilder b;
  b.kv_string("tokenizer.ggml.model", "gemma4");
  b.kv_string_array("tokenizer.ggml.tokens",
                    {"<pad>", "<eos>", "<bos>", "\n", "\n\n", "\n\n\n", "a", "\xE2\x96\x81"});
  b.kv_i32_array("tokenizer.ggml.token_type", {3, 3, 3, 1, 1, 1, 1, 1});
  b.kv_string_array("tokenizer.ggml.merges", {"\n \n"});
  b.kv_u32("tokenizer.ggml.bos_token_id", 2);
  b.kv_u32("tokenizer.ggml.eos_token_id", 1);
  const auto bytes = b.bytes();
  const auto tok = tokenizer_from_gguf(gguf::File(bytes, "synthetic-gemma4.gguf"));
  EXPECT_EQ(tok->encode("\n", false), (std::vector<int32_t>{3}));
  EXPECT_EQ(tok->encode("\n\n", false), (std::vector<int32_t>{4}));
  EXPECT_EQ(tok->encode("\n\n\n", false), (std::vector<int32_t>{5}));
  EXPECT_EQ(tok->encode("\n\n\n\n", false), (std::vector<int32_t>{4, 4}));
  EXPECT_EQ(tok->encode("a\n\n\na", false), (std::vector<int32_t>{6, 5, 6}));
  EXPECT_EQ(tok->encode(" a\n\n\n a", false), (std::vector<int32_t>{7, 6, 5, 7, 6}));
  EXPECT_EQ(tok->encode("a", true), (std::vector<int32_t>{2, 6}));
  EXPECT_EQ(tok->decode(tok->encode(" a\n\n\n a", false)), " a\n\n\n a");
  EXPECT_THROW(tok->encode("a\xC3\xA9", false), InvalidArgument);
}

// ~100 KB of varied text (GPT-2's prompt vectors, numbered) through Falcon's three splits and
// through Gemma 4's line-long words (no word cache past 256 bytes): both lossless, time printed.
TEST(FamilyVocabularies, FalconAndGemma4EncodeLargeText) {
  const auto prompts = test::read_prompt_vectors("tokenizers/testvectors/ggml-prompts-gpt-2.txt");
  std::string text;
  for (int i = 0; text.size() < 100 * 1024; ++i) {
    text += prompts[static_cast<size_t>(i) % prompts.size()].text;
    text += " (" + std::to_string(i * 7919) + ")\n";
  }
  for (const char* vocab : {"ggml-vocab-falcon.gguf", "ggml-vocab-gemma-4.gguf"}) {
    const auto tok = test::gguf_tokenizer(std::string("tokenizers/ggml-vocab/") + vocab);
    std::vector<int32_t> ids;
    const double seconds = test::seconds_to_encode(*tok, text, ids);
    EXPECT_GT(ids.size(), 20000u) << vocab;
    EXPECT_EQ(tok->decode(ids), text) << vocab;
    EXPECT_LT(seconds, 5.0) << vocab;
    std::cout << vocab << ": encoded " << text.size() << " bytes into " << ids.size() << " tokens in "
              << seconds * 1e3 << " ms\n";
  }
}

// GPT-NeoX / Pythia: this vocabulary has no tokenizer.ggml.pre, so llama.cpp's default list splits
// it (pre_aliases_test's neox-no-pre case holds its ids to llama.cpp's); no vectors ship for it.
// Loads, round-trips, and keeps NeoX's runs of spaces as their own tokens.
TEST(FamilyVocabularies, GptNeoXLoadsAndRoundTrips) {
  const auto tok = test::gguf_tokenizer("tokenizers/ggml-vocab/ggml-vocab-gpt-neox.gguf");
  EXPECT_EQ(tok->kind(), "default-bpe");
  for (const std::string s : {"Hello world", "  two  spaces and\ttabs\n", "Äpfel 🦙 нещо"}) {
    EXPECT_EQ(tok->decode(tok->encode(s, false)), s);
  }
}

}  // namespace
}  // namespace reslens
