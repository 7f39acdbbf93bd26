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
/// byte fallback), `gpt2` (byte-level BPE with the `tokenizer.ggml.pre` values of llamacpp_pre.h)
/// and `gemma4` (Gemma 4's BPE over ▁-escaped text). Throws UnsupportedError for other tokenizer
/// models and pre-tokenizers, FormatError for missing or inconsistent metadata (naming
/// gguf.source()).
std::unique_ptr<Tokenizer> tokenizer_from_gguf(const gguf::File& gguf);

/// From a llama2.c tokenizer file (int32 max_token_length, then per token: float32 score,
/// int32 length, bytes). `n_vocab` comes from the model header. BOS = 1, EOS = 2, a space prefix is
/// added as llama2.c does. Throws IoError / FormatError naming the path, InvalidArgument for
/// n_vocab <= 0.
std::unique_ptr<Tokenizer> load_llama2c_tokenizer(const std::filesystem::path& path, int32_t n_vocab);

/// From a Hugging Face model directory, trying in order: `tokenizer.json` (+ `tokenizer_config.json`
/// when present), `vocab.json` + `merges.txt` (GPT-2 byte-level BPE), `tokenizer.model`
/// (SentencePiece, via libsentencepiece). Throws IoError when the directory or all of these are
/// missing, FormatError / UnsupportedError naming the file that is malformed or unsupported.
std::unique_ptr<Tokenizer> load_hf_tokenizer(const std::filesystem::path& dir);

/// The file load_hf_tokenizer(dir) reads the vocabulary from (tokenizer.json, vocab.json or
/// tokenizer.model), for messages; `dir` itself when it holds none of them.
std::filesystem::path hf_tokenizer_file(const std::filesystem::path& dir);

/// From a single tokenizer.json file (plus an optional tokenizer_config.json; empty path = none).
std::unique_ptr<Tokenizer> load_hf_tokenizer_json(const std::filesystem::path& tokenizer_json,
                                                  const std::filesystem::path& tokenizer_config = {});

/// GPT-2 byte-level BPE from `vocab.json` + `merges.txt` (equivalently OpenAI's `encoder.json` +
/// `vocab.bpe`). `<|endoftext|>` is BOS/EOS; no BOS is added by default.
std::unique_ptr<Tokenizer> load_bpe_vocab_merges(const std::filesystem::path& vocab_json,
                                                 const std::filesystem::path& merges_txt);

/// A SentencePiece `tokenizer.model`, encoded and decoded by libsentencepiece itself. BOS is added
/// by default (as Llama's tokenizers do).
std::unique_ptr<Tokenizer> load_sentencepiece_model(const std::filesystem::path& model);

}  // namespace reslens
