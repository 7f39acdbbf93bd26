// The lists of harmless metadata and the checks that refuse everything else (see known_keys.h).
#include "model/known_keys.h"

#include "io/gguf.h"
#include "reslens/error.h"

namespace reslens {

namespace {

// "<arch>.*" GGUF keys that do not change what the model computes from token ids.
const std::set<std::string> kHarmlessGgufArchKeys = {
    "vocab_size",                            // llama.cpp sizes the vocabulary by the tokenizer; reslens by token_embd
    "rope.scaling.original_context_length",  // read by yarn (read_gguf_yarn) and Phi-3's LongRoPE only, as in llama.cpp
    "rope.scaling.finetuned",                // says whether the model was trained with its scaling; informational
    "context_length_swa",                    // unused without a sliding window (a window key is refused)
};

// GGUF key prefixes outside the architecture's: descriptive ("general."), read by the tokenizer
// factory ("tokenizer."), or provenance of an importance matrix ("quantize.").
const char* const kOtherGgufPrefixes[] = {"general.", "tokenizer.", "quantize."};

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

// config.json fields that do not change the logits of a causal LM run on token ids: descriptive,
// tokenizer ids, dtype hints (reslens computes in float32 whatever the storage), training-only
// settings (dropout, initialisation, caching), and transformers' generation defaults.
const std::set<std::string> kHarmlessHfFields = {
    // descriptive
    "architectures", "model_type", "transformers_version", "_name_or_path", "_comment", "name_or_path",
    "torch_dtype", "dtype", "use_bfloat16", "tokenizer_class", "id2label", "label2id", "finetuning_task",
    "problem_type", "auto_map", "_attn_implementation_autoset",
    // token ids
    "bos_token_id", "eos_token_id", "pad_token_id", "sep_token_id", "decoder_start_token_id",
    // training only
    "initializer_range", "attention_dropout", "hidden_dropout", "attn_pdrop", "embd_pdrop", "resid_pdrop",
    "summary_first_dropout", "use_cache", "output_attentions", "output_hidden_states", "return_dict",
    "torchscript", "tf_legacy_loss", "gradient_checkpointing", "pretraining_tp",  // pretraining_tp only splits matmuls
    "max_position_embeddings", "n_positions", "n_ctx",  // read as the context window where used
    // GPT2DoubleHeadsModel's multiple-choice head, not used by the causal LM
    "summary_type", "summary_use_proj", "summary_activation", "summary_proj_to_labels",
    // generation defaults (sampling, beams, lengths): not the next-token distribution
    "do_sample", "early_stopping", "num_beams", "num_beam_groups", "diversity_penalty", "temperature",
    "top_k", "top_p", "typical_p", "repetition_penalty", "length_penalty", "no_repeat_ngram_size",
    "encoder_no_repeat_ngram_size", "bad_words_ids", "num_return_sequences", "output_scores",
    "return_dict_in_generate", "forced_bos_token_id", "forced_eos_token_id", "remove_invalid_values",
    "exponential_decay_length_penalty", "suppress_tokens", "begin_suppress_tokens", "max_length",
    "min_length", "prefix", "task_specific_params", "chunk_size_feed_forward",
    // encoder-decoder settings, meaningless for a decoder-only checkpoint unless switched on (below)
    "is_decoder", "tie_encoder_decoder", "cross_attention_hidden_size",
};

// Fields that are harmless at their default only.
bool harmless_at_default(const std::string& key, const nlohmann::json& v) {
  if (key == "add_cross_attention" || key == "is_encoder_decoder") return v.is_boolean() && !v.get<bool>();
  if (key == "pruned_heads") return v.is_object() && v.empty();
  return false;
}

}  // namespace

void check_gguf_keys(const gguf::File& f, const std::string& arch, const std::set<std::string>& applied) {
  const std::string p = arch + ".";
  for (const auto& [key, value] : f.metadata()) {
    bool other = false;
    for (const char* prefix : kOtherGgufPrefixes) other = other || starts_with(key, prefix);
    if (other) continue;
    if (starts_with(key, p)) {
      const std::string k = key.substr(p.size());
      if (applied.count(k) != 0 || kHarmlessGgufArchKeys.count(k) != 0) continue;
    }
    throw UnsupportedError(f.source() + ": metadata key '" + key +
                           "' changes the computation in llama.cpp and reslens does not apply it "
                           "(refusing rather than computing a different model)");
  }
}

void check_gguf_tensors(const gguf::File& f, const std::string& arch, const std::set<std::string>& used) {
  for (const auto& t : f.tensors()) {
    if (used.count(t.name) != 0) continue;
    throw UnsupportedError(f.source() + ": tensor '" + t.name + "' is not part of the " + arch +
                           " graph reslens runs (refusing rather than computing without it)");
  }
}

void check_hf_fields(const nlohmann::json& cfg, const std::set<std::string>& applied, const std::string& source) {
  for (const auto& [key, value] : cfg.items()) {
    if (applied.count(key) != 0 || kHarmlessHfFields.count(key) != 0 || harmless_at_default(key, value)) continue;
    throw UnsupportedError(source + ": field '" + key + "' (" + value.dump() +
                           ") may change the computation and reslens does not apply it "
                           "(refusing rather than computing a different model)");
  }
}

void check_hf_tensors(const std::vector<std::string>& stored, const std::set<std::string>& used,
                      const std::string& source) {
  auto ends_with = [](const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  for (const std::string& name : stored) {
    if (used.count(name) != 0) continue;
    // Buffers transformers rebuilds from the config instead of loading: the rotary frequencies of
    // older checkpoints and GPT-2's and GPT-NeoX's causal masks.
    if (ends_with(name, ".rotary_emb.inv_freq") || ends_with(name, ".attn.bias") ||
        ends_with(name, ".attn.masked_bias") || ends_with(name, ".attention.bias") ||
        ends_with(name, ".attention.masked_bias")) {
      continue;
    }
    throw UnsupportedError(source + ": tensor '" + name +
                           "' is not part of the model reslens runs from this config "
                           "(refusing rather than computing without it)");
  }
}

}  // namespace reslens
