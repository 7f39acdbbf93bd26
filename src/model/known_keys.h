// What a model file may hold that reslens knows about. A metadata key, config.json field or tensor
// that could change the computation and that reslens does not apply must stop the load, naming it:
// a model run without it would give silently wrong numbers. So every loader accounts for everything
// its file holds: each item is either applied or on one of the commented lists of harmless ones
// here, and anything else is an UnsupportedError.
#pragma once

#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace reslens {

namespace gguf {
class File;
}

/// GGUF metadata: "general.*" (descriptive), "tokenizer.*" (read by the tokenizer factory) and
/// "quantize.*" (how an importance matrix was made) pass; "<arch>.*" keys must be in `applied` (keys,
/// without the "<arch>." prefix, that the loader reads and applies) or on the harmless list in
/// known_keys.cpp; anything else throws UnsupportedError naming the key and `source`.
void check_gguf_keys(const gguf::File& f, const std::string& arch, const std::set<std::string>& applied);

/// GGUF tensors: every tensor of the file must be in `used` (read by the loader); UnsupportedError
/// naming the first other one.
void check_gguf_tensors(const gguf::File& f, const std::string& arch, const std::set<std::string>& used);

/// config.json: each top-level field must be in `applied` (fields the loader reads and applies) or on
/// the harmless lists in known_keys.cpp (descriptive fields, generation defaults, training-only
/// settings); UnsupportedError naming the field and `source` otherwise.
void check_hf_fields(const nlohmann::json& cfg, const std::set<std::string>& applied, const std::string& source);

/// Hugging Face tensors: every stored tensor must be in `used` or be a buffer transformers itself
/// recomputes instead of loading (rotary inv_freq, GPT-2's and GPT-NeoX's causal-mask "attn.bias" /
/// "attention.bias" and "masked_bias").
void check_hf_tensors(const std::vector<std::string>& stored, const std::set<std::string>& used,
                      const std::string& source);

}  // namespace reslens
