// The hook table: every recordable intermediate's TransformerLens name, in one place.
#include "reslens/hooks.h"

#include <algorithm>
#include <array>
#include <charconv>

#include "reslens/error.h"

namespace reslens {

namespace {

struct HookRow {
  Hook hook;
  const char* suffix;  ///< name after "blocks.L." (per layer) or the whole name
  bool per_layer;
};

constexpr std::array<HookRow, kHookCount> kHooks = {{
    {Hook::kEmbed, "hook_embed", false},
    {Hook::kPosEmbed, "hook_pos_embed", false},
    {Hook::kResidPre, "hook_resid_pre", true},
    {Hook::kLn1Scale, "ln1.hook_scale", true},
    {Hook::kLn1Normalized, "ln1.hook_normalized", true},
    {Hook::kQ, "attn.hook_q", true},
    {Hook::kK, "attn.hook_k", true},
    {Hook::kV, "attn.hook_v", true},
    {Hook::kRotQ, "attn.hook_rot_q", true},
    {Hook::kRotK, "attn.hook_rot_k", true},
    {Hook::kAttnScores, "attn.hook_attn_scores", true},
    {Hook::kPattern, "attn.hook_pattern", true},
    {Hook::kZ, "attn.hook_z", true},
    {Hook::kLn1PostScale, "ln1_post.hook_scale", true},
    {Hook::kAttnOut, "hook_attn_out", true},
    {Hook::kResidMid, "hook_resid_mid", true},
    {Hook::kLn2Scale, "ln2.hook_scale", true},
    {Hook::kLn2Normalized, "ln2.hook_normalized", true},
    {Hook::kMlpPre, "mlp.hook_pre", true},
    {Hook::kMlpPreLinear, "mlp.hook_pre_linear", true},
    {Hook::kMlpPost, "mlp.hook_post", true},
    {Hook::kLn2PostScale, "ln2_post.hook_scale", true},
    {Hook::kMlpOut, "hook_mlp_out", true},
    {Hook::kResidPost, "hook_resid_post", true},
    {Hook::kLnFinalScale, "ln_final.hook_scale", false},
    {Hook::kLnFinalNormalized, "ln_final.hook_normalized", false},
}};

const HookRow& row(Hook h) { return kHooks[static_cast<size_t>(h)]; }

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0u : 1u)});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// Every name the table can produce for layers 0..n_layers-1 (for suggestions and pattern checks).
std::vector<std::string> example_names(int n_layers) {
  std::vector<std::string> names;
  for (const HookRow& r : kHooks) {
    if (!r.per_layer) {
      names.emplace_back(r.suffix);
      continue;
    }
    for (int l = 0; l < n_layers; ++l) names.push_back(HookName{r.hook, l}.to_string());
  }
  return names;
}

}  // namespace

bool hook_is_per_layer(Hook hook) { return row(hook).per_layer; }

std::string HookName::to_string() const {
  const HookRow& r = row(hook);
  if (!r.per_layer) return r.suffix;
  return "blocks." + std::to_string(layer) + "." + r.suffix;
}

HookName HookName::parse(std::string_view name) {
  for (const HookRow& r : kHooks) {
    if (!r.per_layer && name == r.suffix) return {r.hook, -1};
  }
  constexpr std::string_view kBlocks = "blocks.";
  if (name.substr(0, kBlocks.size()) == kBlocks) {
    std::string_view rest = name.substr(kBlocks.size());
    int layer = -1;
    const auto [ptr, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), layer);
    if (ec == std::errc() && ptr != rest.data() && ptr < rest.data() + rest.size() && *ptr == '.' &&
        layer >= 0) {
      const std::string_view suffix(ptr + 1, static_cast<size_t>(rest.data() + rest.size() - ptr - 1));
      for (const HookRow& r : kHooks) {
        if (r.per_layer && suffix == r.suffix) return {r.hook, layer};
      }
    }
  }
  std::string best;
  size_t best_d = SIZE_MAX;
  for (const std::string& cand : example_names(4)) {
    const size_t dist = edit_distance(name, cand);
    if (dist < best_d) best_d = dist, best = cand;
  }
  throw InvalidArgument("unknown hook name '" + std::string(name) + "' (did you mean '" + best + "'?)");
}

bool glob_match(std::string_view pattern, std::string_view text) {
  size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (p < pattern.size() && pattern[p] == text[t]) {
      ++p, ++t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

HookFilter HookFilter::from_patterns(std::vector<std::string> patterns) {
  const auto names = example_names(64);
  for (const std::string& pat : patterns) {
    if (pat.find('*') == std::string::npos) {
      HookName::parse(pat);  // throws with a suggestion
      continue;
    }
    const bool any = std::any_of(names.begin(), names.end(),
                                 [&](const std::string& n) { return glob_match(pat, n); });
    if (!any) throw InvalidArgument("hook pattern '" + pat + "' matches no hook");
  }
  return HookFilter(std::move(patterns));
}

bool HookFilter::wants(const HookName& name) const {
  if (patterns_.empty()) return false;
  const std::string s = name.to_string();
  return std::any_of(patterns_.begin(), patterns_.end(),
                     [&](const std::string& p) { return glob_match(p, s); });
}

}  // namespace reslens
