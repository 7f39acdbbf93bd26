// Tokenizer factories: build the right Tokenizer from what a model file carries. The model loaders
// call these; nothing else in reslens knows the tokenizer classes.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "io/gguf.h"
#include "reslens/tokenizer.h"

namespace reslens {

/// From GGUF metadata (`tokenizer.ggml.*`). Supports model `llama` (SentencePiece-style BPE with
/// byte fallback) and `gpt2` (byte-level BPE; `tokenizer.ggml.pre` = gpt-2/default, llama-bpe/llama3
/// or qwen2). Throws UnsupportedError for other tokenizer models and pre-tokenizers, FormatError for
/// missing or inconsistent metadata (naming gguf.source()).
std::unique_ptr<Tokenizer> tokenizer_from_gguf(const gguf::File& gguf);

/// From a llama2.c tokenizer file (int32 max_token_length, then per token: float32 score,
/// int32 length, bytes). `n_vocab` comes from the model header. BOS = 1, EOS = 2, a space prefix is
/// added as llama2.c does. Throws IoError / FormatError naming the path, InvalidArgument for
/// n_vocab <= 0.
std::unique_ptr<Tokenizer> load_llama2c_tokenizer(const std::filesystem::path& path, int32_t n_vocab);

/// GPT-2 byte-level BPE from `vocab.json` + `merges.txt` (equivalently OpenAI's `encoder.json` +
/// `vocab.bpe`). `<|endoftext|>` is BOS/EOS; no BOS is added by default.
std::unique_ptr<Tokenizer> load_bpe_vocab_merges(const std::filesystem::path& vocab_json,
                                                 const std::filesystem::path& merges_txt);

}  // namespace reslens
