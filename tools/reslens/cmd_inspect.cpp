// reslens inspect MODEL: architecture, dimensions, dtype, tokenizer and the tensor list.
#include <cmath>
#include <cstdio>
#include <iostream>
#include <utility>

#include "commands.h"
#include "common.h"

namespace reslens::cli {

namespace {

nlohmann::json config_json(const Model& m) {
  const ModelConfig& c = m.config();
  const Tokenizer& t = m.tokenizer();
  nlohmann::json j;
  j["path"] = m.path().string();
  j["format"] = m.format();
  j["architecture"] = to_string(c.architecture);
  j["original_architecture"] = c.original_architecture;
  j["model_name"] = c.model_name;
  j["dtype"] = c.dtype;
  j["n_params"] = m.n_params();
  j["n_layers"] = c.n_layers;
  j["d_model"] = c.d_model;
  j["n_heads"] = c.n_heads;
  j["n_key_value_heads"] = c.n_key_value_heads;
  j["d_head"] = c.d_head;
  j["d_mlp"] = c.d_mlp;
  j["d_vocab"] = c.d_vocab;
  j["n_ctx"] = c.n_ctx;
  j["normalization_type"] = to_string(c.normalization_type);
  j["eps"] = c.eps;
  j["act_fn"] = to_string(c.act_fn);
  j["gated_mlp"] = c.gated_mlp;
  j["positional_embedding_type"] = to_string(c.positional_embedding_type);
  if (c.positional_embedding_type == PositionalEmbedding::kRotary) {
    j["rotary_base"] = c.rotary_base;
    j["rotary_dim"] = c.rotary_dim;
    j["rope_layout"] = to_string(c.rope_layout);
    j["rope_scaling"] = {{"type", c.rope_scaling.type},
                         {"linear_factor", c.rope_scaling.linear_factor},
                         {"freq_factors", c.rope_scaling.freq_factors},
                         {"attn_factor", c.rope_scaling.attn_factor}};
    if (c.rope_scaling.type == "yarn" || c.rope_scaling.type == "longrope") {
      j["rope_scaling"]["factor"] = c.rope_scaling.factor;
      j["rope_scaling"]["original_context"] = c.rope_scaling.original_context;
    }
    if (c.rope_scaling.type == "longrope") j["rope_scaling"]["factor_set"] = c.rope_scaling.factor_set;
  }
  j["attention_biases"] = {{"qkv", c.has_qkv_bias()}, {"o", c.has_o_bias()}};
  j["qk_norm"] = c.qk_norm ? "per head" : c.qk_norm_full ? "whole projection" : "none";
  int64_t n_local = 0;
  for (const uint8_t x : c.local_layers) n_local += x;
  j["local_layers"] = n_local > 0 ? nlohmann::json{{"count", n_local}, {"rotary_base", c.rotary_base_local}}
                                  : nlohmann::json(nullptr);
  j["attn_scale"] = c.attn_scale > 0.0f ? static_cast<double>(c.attn_scale) : 1.0 / std::sqrt(static_cast<double>(c.d_head));
  j["norms"] = c.post_norm ? (c.pre_norm ? "pre and post" : "post-sublayer") : "pre-sublayer";
  j["parallel_residual"] = c.parallel_residual;
  j["experts"] = c.n_experts > 0 ? nlohmann::json{{"n_experts", c.n_experts}, {"n_experts_used", c.n_experts_used},
                                                  {"d_expert", c.d_expert}, {"renormalised", c.moe_norm_topk},
                                                  {"d_shared_expert", c.d_shared_expert}}
                                 : nlohmann::json(nullptr);
  j["embedding_scale"] = c.embedding_scale;
  j["sliding_window"] = c.sliding_window > 0 ? nlohmann::json(c.sliding_window) : nlohmann::json(nullptr);
  int64_t n_windowed = 0;
  for (int64_t l = 0; l < c.n_layers; ++l) n_windowed += c.window_of(l) > 0 ? 1 : 0;
  j["window_applied"] = c.sliding_window > 0 ? nlohmann::json{{"applied", c.window_applied}, {"layers", n_windowed}}
                                             : nlohmann::json(nullptr);
  j["softcaps"] = {{"attention", c.attn_softcap > 0.0f ? nlohmann::json(c.attn_softcap) : nlohmann::json(nullptr)},
                   {"final", c.final_softcap > 0.0f ? nlohmann::json(c.final_softcap) : nlohmann::json(nullptr)}};
  j["tied_embeddings"] = c.tied_embeddings;
  j["tokenizer"] = {{"kind", t.kind()}, {"n_vocab", t.n_vocab()}, {"bos_id", t.bos_id()},
                    {"eos_id", t.eos_id()}, {"add_bos", t.add_bos_default()}};
  // The chat layout --chat would use: a built-in name, "unsupported" when the model's template
  // matches none reslens lays out, null when it has none.
  nlohmann::json chat = nullptr;
  if (!t.chat_template().empty()) {
    try {
      chat = chat_template_name(detect_chat_template(t.chat_template()));
    } catch (const UnsupportedError&) {
      chat = "unsupported";
    }
  }
  j["tokenizer"]["chat_template"] = chat;
  j["memory"] = {{"mapped_bytes", m.mapped_bytes()}, {"owned_bytes", m.owned_bytes()}};
  nlohmann::json tensors = nlohmann::json::array();
  for (const TensorInfo& ti : m.tensors()) {
    tensors.push_back({{"name", ti.name}, {"dtype", ti.dtype}, {"shape", ti.shape}});
  }
  j["tensors"] = tensors;
  return j;
}

}  // namespace

void register_inspect(CLI::App& app) {
  auto* cmd = app.add_subcommand("inspect", "Show a model's architecture, dimensions, dtype, tokenizer and tensors");
  auto args = std::make_shared<ModelArgs>();
  auto json = std::make_shared<bool>(false);
  args->add(*cmd);
  cmd->add_flag("--json", *json, "Print JSON");
  cmd->callback([args, json] {
    const auto model = args->load();
    const nlohmann::json j = config_json(*model);
    if (*json) {
      print_json(j);
      return;
    }
    std::cout << "model         " << j["path"].get<std::string>() << " (" << j["format"].get<std::string>() << ")\n";
    std::cout << "architecture  " << j["architecture"].get<std::string>() << " (file says "
              << j["original_architecture"].get<std::string>() << ")\n";
    std::cout << "parameters    " << j["n_params"].get<int64_t>() << " stored as " << j["dtype"].get<std::string>() << "\n";
    // (label, JSON key): the labels fit the 14-column label width of the other lines.
    const std::pair<const char*, const char*> dims[] = {
        {"n_layers", "n_layers"}, {"d_model", "d_model"}, {"n_heads", "n_heads"}, {"n_kv_heads", "n_key_value_heads"},
        {"d_head", "d_head"},     {"d_mlp", "d_mlp"},     {"d_vocab", "d_vocab"}, {"n_ctx", "n_ctx"}};
    for (const auto& [label, key] : dims) {
      std::printf("%-14s%lld\n", label, static_cast<long long>(j[key].get<int64_t>()));
    }
    std::cout << "norm          " << j["normalization_type"].get<std::string>() << " eps " << j["eps"].get<double>() << "\n";
    std::cout << "activation    " << j["act_fn"].get<std::string>() << (j["gated_mlp"].get<bool>() ? " (gated)" : "") << "\n";
    std::cout << "positions     " << j["positional_embedding_type"].get<std::string>();
    if (j.contains("rotary_base")) {
      // The pairs as llama.cpp names them: NORM rotates (2i, 2i+1), NEOX (i, i + dims/2).
      std::cout << " (base " << j["rotary_base"].get<double>() << ", " << j["rotary_dim"].get<int64_t>() << " dims, "
                << (j["rope_layout"] == "half" ? "rotate_half pairs (i, i+dims/2)" : "interleaved pairs (2i, 2i+1)");
      const auto& rs = j["rope_scaling"];
      if (rs["type"] != "none") {
        std::cout << ", scaling " << rs["type"].get<std::string>();
        if (rs.contains("factor")) {  // yarn, longrope: what the file names, then what reslens applies
          std::cout << " (factor " << rs["factor"].get<double>() << ", original context "
                    << rs["original_context"].get<int64_t>();
          if (rs.contains("factor_set")) std::cout << ", " << rs["factor_set"].get<std::string>() << " factors";
          std::cout << ")";
        }
        if (rs["linear_factor"].get<double>() != 1.0) std::cout << " positions / " << rs["linear_factor"].get<double>();
        if (!rs["freq_factors"].empty()) {
          const auto& ff = rs["freq_factors"];
          std::cout << " frequency divisors " << ff.front().get<double>() << ".." << ff.back().get<double>();
        }
        if (rs["attn_factor"].get<double>() != 1.0) std::cout << ", cos/sin x " << rs["attn_factor"].get<double>();
      }
      std::cout << ")";
    }
    if (!j["sliding_window"].is_null()) {
      std::cout << "\nwindow        sliding window of " << j["sliding_window"].get<int64_t>() << " tokens";
      if (j["window_applied"]["applied"].get<bool>()) {
        std::cout << " on " << j["window_applied"]["layers"].get<int64_t>() << " of " << j["n_layers"].get<int64_t>()
                  << " layers (applied: key j visible from query i iff i - window < j <= i)";
      } else {
        std::cout << " (longer sequences are refused)";
      }
    }
    for (const char* cap : {"attention", "final"}) {
      if (j["softcaps"][cap].is_null()) continue;
      std::cout << "\nsoftcap       " << (std::string(cap) == "final" ? "logits" : "attention scores") << " capped as c * tanh(x / c), c = "
                << j["softcaps"][cap].get<double>();
    }
    std::cout << "\nbiases        attention "
              << (j["attention_biases"]["qkv"].get<bool>() ? (j["attention_biases"]["o"].get<bool>() ? "q/k/v/o" : "q/k/v")
                                                           : (j["attention_biases"]["o"].get<bool>() ? "o" : "none"));
    if (!j["experts"].is_null()) {
      const auto& x = j["experts"];
      std::cout << "\nexperts       " << x["n_experts"].get<int64_t>() << " of " << x["d_expert"].get<int64_t>()
                << " neurons, " << x["n_experts_used"].get<int64_t>() << " used per token"
                << (x["renormalised"].get<bool>() ? " (weights renormalised)" : "");
      if (x["d_shared_expert"].get<int64_t>() > 0) {
        std::cout << ", and a shared expert of " << x["d_shared_expert"].get<int64_t>() << " neurons (sigmoid-gated)";
      }
    }
    if (j["parallel_residual"].get<bool>()) {
      std::cout << "\nresidual      parallel: x + attn(ln1(x)) + mlp(ln2(x))";
    }
    if (j["qk_norm"] != "none") {
      std::cout << "\nq/k norm      RMSNorm of queries and keys before RoPE, " << j["qk_norm"].get<std::string>();
    }
    if (!j["local_layers"].is_null()) {
      std::cout << "\nlocal layers  " << j["local_layers"]["count"].get<int64_t>() << " of " << j["n_layers"].get<int64_t>()
                << " attend locally and rotate with base " << j["local_layers"]["rotary_base"].get<double>()
                << " (no scaling)";
    }
    if (j["norms"] != "pre-sublayer") {
      std::cout << "\nblock norms   " << j["norms"].get<std::string>() << " (scales frozen for the attribution)";
    }
    if (j["embedding_scale"].get<double>() != 1.0) {
      std::cout << "\nembedding     scaled by " << j["embedding_scale"].get<double>() << " (sqrt(d_model))";
    }
    std::cout << "\nunembedding   " << (j["tied_embeddings"].get<bool>() ? "tied to the embedding" : "separate") << "\n";
    const auto& t = j["tokenizer"];
    std::cout << "tokenizer     " << t["kind"].get<std::string>() << ", " << t["n_vocab"].get<int>() << " tokens, bos "
              << t["bos_id"].get<int>() << ", eos " << t["eos_id"].get<int>() << ", adds bos: "
              << (t["add_bos"].get<bool>() ? "yes" : "no") << "\n";
    std::cout << "chat          "
              << (t["chat_template"].is_null() ? std::string("no template (--chat needs --chat-template NAME)")
                  : t["chat_template"] == "unsupported"
                      ? std::string("the model's template matches no built-in layout (--chat-template NAME)")
                      : t["chat_template"].get<std::string>() + " layout (--chat)")
              << "\n";
    std::cout << "memory        " << j["memory"]["mapped_bytes"].get<int64_t>() << " bytes mapped, "
              << j["memory"]["owned_bytes"].get<int64_t>() << " bytes converted or copied\n";
    std::cout << "tensors (" << j["tensors"].size() << "):\n";
    for (const auto& ti : j["tensors"]) {
      std::string shape;
      for (const auto& d : ti["shape"]) shape += (shape.empty() ? "" : ", ") + std::to_string(d.get<int64_t>());
      std::printf("  %-36s %-5s [%s]\n", ti["name"].get<std::string>().c_str(), ti["dtype"].get<std::string>().c_str(),
                  shape.c_str());
    }
  });
}

}  // namespace reslens::cli
