// The error budget of a multi-token target's summed scores (docs/explain.md, "Targets of several
// tokens"). Internal to the analysis module: explain_target() calls it after sum_target_steps().
//
// Every step is explained at the request's own bound_tol, exactly as the single-position explain of
// its prefix, and records the certified half-width of each bounded score (ScoreWidths; 0 for a
// score computed over the whole vocabulary). A summed score adds one score per step, so its
// certified error is the sum of its steps' widths. Where that exceeds bound_tol, the widest steps'
// scores of that component (FFN neuron, attention neuron, head, head x position) are recomputed
// from the whole vocabulary, widest first, until the widths left add up to at most bound_tol; the
// summed arrays (and the contrast's) take those values. An FFN neuron's selected steps are first
// certified again by the int8 sketch (its direction's integer products made once for every step),
// narrower than the steps' cheap bound, and only the neurons whose sums still exceed bound_tol
// go on to their exact rows. A neuron's recomputation reads the exact
// projection of its weight direction and first certifies the score from the row's moments under
// the step's distribution (no exponentials; an interval fourth order in the coefficient for a
// weight direction's row, whose third moment's two sides come with the others, else third order,
// where the step's bound was second order); only where those narrower widths still add up to more than
// bound_tol are the widest computed exactly (one exponential per token). A head or head x position
// combination is certified the same way from its row (bs is linear): a step's coefficients at source
// position p are its attention weight times the value at p, shared by every step of a pass, so a
// head x position row is a multiple of one row per position (one pass over it for its moments) and
// a whole head's row the sum of those; where a head's columns are not such multiples, its rows are
// its coefficients times its d_head direction rows, formed block by block in cache. Where a head
// has such a basis, its head x position steps are first certified by the int8 sketch as the FFN
// neurons' are (the row is alpha times a basis vector's row: that vector's integer products serve
// every step and position that reads it), and only the sums still above bound_tol go on to rows.
// Both rounds of a component run while its rows are in memory. The steps' own arrays keep their
// single-explain values, so a summed array may differ from the sum of its steps' arrays by up to
// the widths of the steps tightened; both are certified: each step within bound_tol, each sum too.
#pragma once

#include <utility>
#include <vector>

#include "analysis/explain_internal.h"
#include "reslens/explain_target.h"

namespace reslens::analysis {

/// Tightens `done.summed` in place (its plain and contrast sums of the four bounded levels), then
/// recounts Q5 from the tightened FFN sums. `target_widths[t]` are target step t's widths,
/// `foil_widths[i]` those of foil_pass.steps[i] (arrays left empty: a step without bounded scores).
/// The widths are narrowed in place where a score is certified again. Rows of weight directions
/// found in `shared` are read from it (it may be nullptr). Adds to done.summed.method_counts how
/// many step scores the sums replaced per level ("ffn_tightened", "attention_tightened",
/// "head_tightened", "head_position_tightened"), how many of those were computed exactly
/// ("<level>_tightened_exact") and how many certified by the sketch ("<level>_tightened_sketched";
/// the others from their rows' moments), and how many summed scores needed it
/// ("<level>_sums_tightened"). Results do not depend on the thread count.
void tighten_target_sums(const Model& model, ExplainedTarget& done, std::vector<ScoreWidths>& target_widths,
                         std::vector<ScoreWidths>& foil_widths, double bound_tol, int set_size,
                         SharedProjections* shared);

namespace detail {
/// Test hook (process-wide): every head's combinations from its d_head direction rows, even where
/// the rows of its source positions' coefficient vectors would do (Tightening::heads).
void set_heads_by_direction(bool on);
/// How many heads' combinations were formed from their source positions' rows so far (test hook).
int64_t heads_by_position();
/// Test hook: f = log sum_j q_j exp(s g_j) certified from the row's moments as round 1 certifies it
/// (m1 and a2, and with `cubic` the third moment's two sides, here summed in double), with its
/// half-width; NaN where it cannot certify.
double moment_certificate(const std::vector<double>& q, const std::vector<float>& g, double s, bool cubic, double& half_width);
/// How many of its steps' context splits the sketch rounds rebuilt from what the steps kept
/// (ScoreWidths::tails), and how many they had to make again, so far (test hook).
std::pair<int64_t, int64_t> sketch_splits();
}  // namespace detail

}  // namespace reslens::analysis
