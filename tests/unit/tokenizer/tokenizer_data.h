// Test data for the tokenizer tests, read from ../shared: llama.cpp's .inp/.out vocabulary vectors,
// the goldens' tokenizer_tests.json and prompts, ggml's GPT-2 prompt vectors. Also a checker that
// reports a mismatch with the pieces of both sides, not just ids.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "reslens/tokenizer.h"

namespace reslens::test {

struct TextIds {
  std::string text;
  std::vector<int32_t> ids;
};

/// llama.cpp's `<vocab>.gguf.inp` / `.out` pair (`gguf_relative` under shared/, e.g.
/// "tokenizers/ggml-vocab/ggml-vocab-gpt-2.gguf"): one case per test string, ids without BOS.
std::vector<TextIds> read_vocab_vectors(const std::string& gguf_relative);

/// ggml's "text => id,id,..." lines (shared/tokenizers/testvectors/...).
std::vector<TextIds> read_prompt_vectors(const std::string& relative);

/// One case of goldens/<model>/tokenizer_tests.json.
struct TokenizerCase {
  std::string text;
  std::optional<std::vector<int32_t>> ids_default;  ///< null where llama.cpp failed
  std::optional<std::vector<int32_t>> ids_no_bos;
  std::optional<std::vector<int32_t>> hf_reference_ids_with_bos;
};
std::vector<TokenizerCase> read_tokenizer_tests(const std::string& model);

/// The prompts of goldens/<model>/goldens.json.
struct GoldenPrompt {
  std::string id;
  std::string text;
  std::vector<int32_t> token_ids;
  bool add_bos = false;
};
std::vector<GoldenPrompt> read_golden_prompts(const std::string& model);

/// "[12 '▁Once'] [34 ','] ..." for failure messages.
std::string describe(const Tokenizer& tokenizer, const std::vector<int32_t>& ids);

/// Printable form of a test string (control characters escaped).
std::string printable(const std::string& text);

/// EXPECTs `actual == expected` for `text`, printing both as ids and pieces on failure.
/// Returns whether they matched.
bool expect_ids(const Tokenizer& tokenizer, const std::string& text, const std::vector<int32_t>& expected,
                const std::vector<int32_t>& actual);

/// The tokenizer of the GGUF file `relative` (under shared/).
std::unique_ptr<Tokenizer> gguf_tokenizer(const std::string& relative);

/// Checks every case of goldens/<model>/tokenizer_tests.json and every goldens.json prompt: ids
/// with the model's default BOS setting (llama.cpp's, or the HF reference where llama.cpp failed),
/// ids without BOS, and decode(encode(s)) == s wherever llama.cpp could tokenize s.
void expect_golden_tokenization(const Tokenizer& tokenizer, const std::string& model);

/// At least `bytes` of text: the model's golden prompts, one per line, repeated.
std::string repeated_prompts(const std::string& model, size_t bytes);

/// Encodes `text` into `ids` and returns the seconds it took.
double seconds_to_encode(const Tokenizer& tokenizer, const std::string& text, std::vector<int32_t>& ids);

/// The message of the `E` that `f()` throws; a test failure when it throws nothing or another type.
template <typename E, typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
    return "";
  }
  ADD_FAILURE() << "no exception";
  return "";
}

}  // namespace reslens::test
