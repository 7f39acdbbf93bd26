// The vocabularies of the model families reslens runs: Phi-3's exact ids against llama.cpp's vectors
// in ../shared/tokenizers/ggml-vocab, GPT-NeoX's round trip, and clean refusals for the rest.
#include <gtest/gtest.h>

#include "common/test_paths.h"
#include "reslens/error.h"
#include "tokenizer/factory.h"
#include "unit/tokenizer/tokenizer_data.h"

namespace reslens {
namespace {

// Every vector of `<vocab>.gguf.inp/.out` (encoded without BOS, as llama.cpp's test does).
void check_all_vectors(const std::string& relative) {
  const auto tok = test::gguf_tokenizer(relative);
  const auto cases = test::read_vocab_vectors(relative);
  ASSERT_FALSE(cases.empty()) << relative;
  size_t matched = 0;
  for (const auto& c : cases) {
    if (test::expect_ids(*tok, c.text, c.ids, tok->encode(c.text, false))) ++matched;
  }
  EXPECT_EQ(matched, cases.size()) << relative;
}

TEST(FamilyVocabularies, Phi3MatchesLlamaCpp) { check_all_vectors("tokenizers/ggml-vocab/ggml-vocab-phi-3.gguf"); }

// GPT-NeoX / Pythia: byte-level BPE with GPT-2's splitting (no test vectors ship for it): loads,
// round-trips, and keeps NeoX's runs of spaces as their own tokens.
TEST(FamilyVocabularies, GptNeoXLoadsAndRoundTrips) {
  const auto tok = test::gguf_tokenizer("tokenizers/ggml-vocab/ggml-vocab-gpt-neox.gguf");
  for (const std::string s : {"Hello world", "  two  spaces and\ttabs\n", "Äpfel 🦙 нещо"}) {
    EXPECT_EQ(tok->decode(tok->encode(s, false)), s);
  }
}

// Not yet supported, and refused by name rather than tokenized differently from llama.cpp: Falcon's
// three-regex pre-tokenizer and Gemma 3/4's own tokenizer model.
TEST(FamilyVocabularies, FalconAndGemma4AreRefusedByName) {
  try {
    test::gguf_tokenizer("tokenizers/ggml-vocab/ggml-vocab-falcon.gguf");
    ADD_FAILURE() << "the falcon vocabulary loaded";
  } catch (const UnsupportedError& e) {
    EXPECT_NE(std::string(e.what()).find("pre-tokenizer 'falcon'"), std::string::npos) << e.what();
  }
  try {
    test::gguf_tokenizer("tokenizers/ggml-vocab/ggml-vocab-gemma-4.gguf");
    ADD_FAILURE() << "the gemma-4 vocabulary loaded";
  } catch (const UnsupportedError& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer model 'gemma4'"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace reslens
