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
/// byte fallback) and, where implemented, `gpt2` (byte-level BPE with `tokenizer.ggml.pre`).
/// Throws UnsupportedError for other tokenizer models, FormatError for inconsistent metadata
/// (naming gguf.source()).
std::unique_ptr<Tokenizer> tokenizer_from_gguf(const gguf::File& gguf);

/// From a llama2.c tokenizer file (int32 max_token_length, then per token: float32 score,
/// int32 length, bytes). `n_vocab` comes from the model header. BOS = 1, EOS = 2, a space prefix is
/// added as llama2.c does. Throws IoError / FormatError naming the path.
std::unique_ptr<Tokenizer> load_llama2c_tokenizer(const std::filesystem::path& path, int32_t n_vocab);

/// From a Hugging Face model directory: tokenizer.json, else vocab.json + merges.txt, else
/// tokenizer.model (SentencePiece); BOS handling from tokenizer_config.json / the post-processor.
/// Throws IoError naming the directory and the files it looked for when none is present.
std::unique_ptr<Tokenizer> load_hf_tokenizer(const std::filesystem::path& dir);

}  // namespace reslens
