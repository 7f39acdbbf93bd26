// Progress of one explain on a terminal (ExplainRequest::on_progress): a single line on stderr,
// redrawn in place, naming the phase, how far it is and the time so far, and erased when the
// explain ends so the results follow on a clean screen. A 7B model's explain takes about a minute
// and its first one also builds the model's bounds (a quarter of an hour on two cores), which
// without it would pass in silence. Nothing is drawn for an explain shorter than `delay` (a small
// model's), nor when stderr is not a terminal (logs and pipes get the results only).
#pragma once

#include <chrono>
#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>

#include "reslens/explain.h"

namespace reslens::cli {

/// What the line says of a phase: "FFN neurons", "model bounds (once per model)", ...; the
/// phase's own name for one it does not know.
std::string phase_label(std::string_view phase);

/// The line's text (without the carriage return): the label, a bar and "done/total unit" where the
/// phase has more than one unit, the time since the explain began, and an estimate of the phase's
/// remaining time (`phase_eta` seconds; negative: none yet).
std::string progress_text(const ExplainProgress& p, double elapsed, double phase_eta);

class ExplainProgressLine {
 public:
  /// Draws on `out` when `tty` (a terminal) of `columns` columns (0: unknown, no cut), from `delay`
  /// seconds after construction on.
  ExplainProgressLine(std::ostream& out, bool tty, int columns, double delay = 1.0);
  /// The explain's latest report.
  void update(const ExplainProgress& p);
  /// Erases the line if one was drawn (idempotent).
  void finish();
  ~ExplainProgressLine() { finish(); }
  ExplainProgressLine(const ExplainProgressLine&) = delete;
  ExplainProgressLine& operator=(const ExplainProgressLine&) = delete;

 private:
  double seconds_since(std::chrono::steady_clock::time_point t) const;

  std::ostream& out_;
  bool tty_;
  int columns_;
  double delay_;
  std::chrono::steady_clock::time_point start_, phase_start_;
  std::string phase_;        // the phase being drawn
  double last_draw_ = -1;    // seconds since start_ of the last draw
  bool drawn_ = false;       // a line is on the screen
};

}  // namespace reslens::cli
