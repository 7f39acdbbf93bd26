// Hook names: the stable names of every intermediate a forward pass can record, spelled exactly as
// TransformerLens spells them ("blocks.3.hook_resid_pre", "blocks.0.attn.hook_pattern"). The strings
// live at the API edge; inside, a hook is an enum plus a layer. The names are listed once, in the
// table kHooks of src/forward/hooks.cpp; shapes and meanings are below and in docs/naming.md.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace reslens {

enum class Hook : uint8_t {
  kEmbed,          ///< hook_embed                     [pos, d_model]
  kPosEmbed,       ///< hook_pos_embed                 [pos, d_model] (GPT-2)
  kResidPre,       ///< blocks.L.hook_resid_pre        [pos, d_model] the layer input h^{l-1}
  kLn1Scale,       ///< blocks.L.ln1.hook_scale        [pos, 1] sqrt(var + eps) or sqrt(mean sq + eps)
  kLn1Normalized,  ///< blocks.L.ln1.hook_normalized   [pos, d_model] (weight and bias applied)
  kQ,              ///< blocks.L.attn.hook_q           [pos, n_heads, d_head] before rotation
  kK,              ///< blocks.L.attn.hook_k           [pos, n_kv_heads, d_head] before rotation
  kV,              ///< blocks.L.attn.hook_v           [pos, n_kv_heads, d_head]
  kRotQ,           ///< blocks.L.attn.hook_rot_q       [pos, n_heads, d_head] (rotary models)
  kRotK,           ///< blocks.L.attn.hook_rot_k       [pos, n_kv_heads, d_head] (rotary models)
  kAttnScores,     ///< blocks.L.attn.hook_attn_scores [n_heads, query_pos, key_pos] (masked: -inf)
  kPattern,        ///< blocks.L.attn.hook_pattern     [n_heads, query_pos, key_pos]
  kZ,              ///< blocks.L.attn.hook_z           [pos, n_heads, d_head] pattern-weighted values
  kLn1PostScale,   ///< blocks.L.ln1_post.hook_scale   [pos, 1] post-attention norm's scale (OLMo 2)
  kAttnOut,        ///< blocks.L.hook_attn_out         [pos, d_model] A^l (with b_O; after a post-norm)
  kResidMid,       ///< blocks.L.hook_resid_mid        [pos, d_model] r^l = h^{l-1} + A^l
  kLn2Scale,       ///< blocks.L.ln2.hook_scale        [pos, 1]
  kLn2Normalized,  ///< blocks.L.ln2.hook_normalized   [pos, d_model]
  kMlpPre,         ///< blocks.L.mlp.hook_pre          [pos, d_mlp] GPT-2 c_fc output / Llama gate
  kMlpPreLinear,   ///< blocks.L.mlp.hook_pre_linear   [pos, d_mlp] Llama up projection
  kMlpPost,        ///< blocks.L.mlp.hook_post         [pos, d_mlp] coefficients m fed to W_out
  kLn2PostScale,   ///< blocks.L.ln2_post.hook_scale   [pos, 1] post-MLP norm's scale (OLMo 2)
  kMlpOut,         ///< blocks.L.hook_mlp_out          [pos, d_model] F^l (with b_out; after a post-norm)
  kResidPost,      ///< blocks.L.hook_resid_post       [pos, d_model] h^l
  kLnFinalScale,   ///< ln_final.hook_scale            [pos, 1] the final norm's scale
  kLnFinalNormalized,  ///< ln_final.hook_normalized   [pos, d_model]
};
inline constexpr int kHookCount = static_cast<int>(Hook::kLnFinalNormalized) + 1;

/// True for hooks that exist once per block (named "blocks.L....").
bool hook_is_per_layer(Hook hook);

struct HookName {
  Hook hook = Hook::kEmbed;
  int layer = -1;  ///< -1 for model-level hooks

  /// "blocks.3.hook_resid_pre", "hook_embed", "ln_final.hook_scale".
  std::string to_string() const;
  /// Parses a TransformerLens name. Throws InvalidArgument, suggesting the closest valid name.
  static HookName parse(std::string_view name);

  friend bool operator==(const HookName&, const HookName&) = default;
  friend auto operator<=>(const HookName&, const HookName&) = default;
};

/// What a run records, fixed before it starts so nothing unrequested is stored. Patterns are hook
/// names in which `*` matches any run of characters: "blocks.*.hook_resid_pre", "*hook_pattern", "*".
class HookFilter {
 public:
  static HookFilter none() { return HookFilter{}; }
  static HookFilter all() { return HookFilter{{"*"}}; }
  /// Every name is validated: a pattern that can match no hook is an InvalidArgument.
  static HookFilter from_patterns(std::vector<std::string> patterns);

  bool wants(const HookName& name) const;
  bool wants(Hook hook, int layer) const { return wants(HookName{hook, layer}); }
  bool empty() const { return patterns_.empty(); }
  const std::vector<std::string>& patterns() const { return patterns_; }

 private:
  explicit HookFilter(std::vector<std::string> patterns) : patterns_(std::move(patterns)) {}
  HookFilter() = default;
  std::vector<std::string> patterns_;
};

/// Glob match with `*` only (used by HookFilter; exposed for tests).
bool glob_match(std::string_view pattern, std::string_view text);

}  // namespace reslens
