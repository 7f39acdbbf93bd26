// Forward hooks: callbacks that read and replace an activation while the pass runs, at the same
// TransformerLens hook points a run can record (reslens/hooks.h). They make activation patching,
// mean or resample ablation and steering possible without a hand-written forward pass:
//
//   RunOptions o;
//   o.hooks.push_back({"blocks.1.attn.hook_z", [&](HookActivation& a) {
//     // a.values: [pos, n_heads, d_head], row-major; overwrite head 2 at the last position
//     float* z = a.values.data() + ((a.shape[0] - 1) * a.shape[1] + 2) * a.shape[2];
//     std::copy(donor, donor + a.shape[2], z);
//   }});
//   RunResult r = run(model, tokens, o);
//
// What the callback leaves in `values` is what the rest of the pass reads, and what the run records
// when the same hook is captured. Hooks run on the calling thread, in the order of RunOptions::hooks,
// so results do not depend on the thread count. A run without hooks pays one branch per hook point.
// Hooks are a run() feature: Session and generate() (the KV-cached loop) take none. With an
// Intervention, a hook sees the activation after the intervention was applied.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include "reslens/hooks.h"

namespace reslens {

/// One activation handed to a forward hook. `shape` is the recorded tensor's shape (docs/naming.md):
/// [pos, d_model], [pos, n_heads, d_head], [n_heads, query_pos, key_pos], ...; `values` holds
/// shape's product floats, row-major, and may be overwritten.
///
/// Hook points whose values the pass does not read back are read-only, and changing them is an
/// UnsupportedError rather than a silent no-op: the norm scales (`ln1.hook_scale`,
/// `ln2.hook_scale`, `ln_final.hook_scale`, `ln1_post.hook_scale`, `ln2_post.hook_scale`; hook
/// `hook_normalized` or the sublayer output instead). The causal mask stays: a hook on
/// `attn.hook_attn_scores` must leave masked entries at -inf, and one on `attn.hook_pattern` must
/// leave them at 0 (UnsupportedError otherwise). `hook_pattern` and `hook_attn_scores` are always
/// handed every query row ([n_heads, pos, pos]), whatever RunOptions::pattern_rows records.
struct HookActivation {
  HookName name;
  std::span<const int64_t> shape;
  std::span<float> values;
};

using HookFn = std::function<void(HookActivation&)>;

/// A callback and the hook points it runs at: a hook name ("blocks.1.attn.hook_z") or a pattern in
/// which `*` matches any run of characters ("blocks.*.hook_resid_post"), HookFilter's syntax.
/// run() rejects a pattern that matches no hook (InvalidArgument, with the nearest name), a layer
/// past the model's (OutOfRange), and an exact name this model does not compute, such as
/// `hook_pos_embed` on a rotary model (InvalidArgument).
struct ForwardHook {
  std::string pattern;
  HookFn fn;
};

}  // namespace reslens
