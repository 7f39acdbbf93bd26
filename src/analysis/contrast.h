// The contrast score (--foil; docs/explain.md "Contrast"): every score of the paper again, for
// log p(target) - log p(foil) instead of log p(target). The normalisers cancel in that difference, so
// for a vector v added to any state x it is the logit-difference increase
//   [log p(w|x+v) - log p(f|x+v)] - [log p(w|x) - log p(f|x)] = bs_w(v) - bs_f(v),
// which does not depend on x (bs is linear, spec §2.2). Every contrast array of an Explanation
// comes from these two functions.
#pragma once

#include <cstdint>

#include "analysis/projector.h"

namespace reslens::analysis {

/// The contrast score of a vector v with bs(v) = s * g: s * (g_w - g_f), given g_w and g_f (in
/// double; callers holding float projections pass them converted). A head, an expert or any vector
/// whose own projection is at hand passes s = 1.
inline double foil_contrast(double s, double g_w, double g_f) { return s * (g_w - g_f); }

/// The same for a vector added to the state d: with a final-logit softcap (Gemma 2) the normalisers
/// still cancel but the capped logits move by d.logit_change, which depends on the state, so the
/// score is logit_change(w, s g_w) - logit_change(f, s g_f). Without a cap, exactly the form above.
inline double foil_contrast(const Distribution& d, double s, double g_w, double g_f, int32_t w, int32_t f) {
  if (d.softcap <= 0) return foil_contrast(s, g_w, g_f);
  return d.logit_change(w, s * g_w) - d.logit_change(f, s * g_f);
}

/// The contrast score of the step from one real point of the stream to the next (a layer's vector,
/// A^l = r^l - h^{l-1} or F^l = h^l - r^l): the change of the state's logit difference,
/// (after_w - after_f) - (before_w - before_f), from the two states' logits as they are.
inline double foil_contrast_between(const Distribution& before, const Distribution& after, int32_t w, int32_t f) {
  const auto wi = static_cast<size_t>(w), fi = static_cast<size_t>(f);
  return (after.logits[wi] - after.logits[fi]) - (before.logits[wi] - before.logits[fi]);
}

}  // namespace reslens::analysis
