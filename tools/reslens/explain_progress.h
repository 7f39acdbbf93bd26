// Progress of one explain on a terminal (ExplainRequest::on_progress): a single line on stderr,
// redrawn in place, naming the phase, how far it is and the time so far, and erased when the
// explain ends so the results follow on a clean screen. A 7B model's explain takes 20-60 s on two
// cores and its first one also builds the model's bounds (4 minutes with AVX-512 VNNI, 14 on an
// AVX2 host; docs/benchmarks.md, "Stop 41"), which without it would pass in silence. Nothing is drawn for an explain shorter than `delay` (a small
// model's), nor when stderr is not a terminal (logs and pipes get the results only).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <ostream>
#include <string>
#include <string_view>
#include <thread>

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
  /// seconds after construction on; with `tick` > 0 a thread of its own also redraws the latest
  /// report every `tick` seconds, so the time keeps moving through a long unit (a 7B model's layer
  /// of bounds takes half a minute, its forward pass seconds).
  ExplainProgressLine(std::ostream& out, bool tty, int columns, double delay = 1.0, double tick = 0.0);
  /// The commands' line: on stderr when it is a terminal (of its width), after 1 s, redrawn every 0.5 s.
  ExplainProgressLine();
  /// ExplainRequest::on_progress for this line (which must outlive the request's run).
  ExplainProgressFn callback() {
    return [this](const ExplainProgress& p) { update(p); };
  }
  /// The explain's latest report.
  void update(const ExplainProgress& p);
  /// Stops the redraws and erases the line if one was drawn (idempotent).
  void finish();
  ~ExplainProgressLine() { finish(); }
  ExplainProgressLine(const ExplainProgressLine&) = delete;
  ExplainProgressLine& operator=(const ExplainProgressLine&) = delete;

 private:
  using Clock = std::chrono::steady_clock;
  // Draws the latest report (mu_ held); `force`: even within 0.1 s of the last draw.
  void draw(bool force);

  std::ostream& out_;
  bool tty_;
  int columns_;
  double delay_;
  Clock::time_point start_, phase_start_, reported_;
  std::mutex mu_;  // the fields below and out_, between update() and the ticker
  std::condition_variable wake_;
  std::thread ticker_;
  bool stopping_ = false;
  bool have_ = false;        // a report came
  std::string phase_;        // the latest report's
  int64_t done_ = 0, total_ = 0;
  double eta_ = -1;          // its phase's remaining time when it came (negative: none)
  double last_draw_ = -1;    // seconds since start_ of the last draw
  bool drawn_ = false;       // a line is on the screen
};

}  // namespace reslens::cli
