// Progress of a long command (experiment, precompute) on stderr: a bar redrawn in place on a
// terminal; on a pipe or a file, a plain line every 10% (and at least every 30 s), so logs stay
// readable. stdout is left to the command's results.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace reslens::cli {

/// "4.2s", "3m07s", "1h02m"; "?" for a negative or absurd estimate.
std::string duration(double seconds);

/// The width in columns of the terminal on `fd`, 0 when it is not one or does not say.
int terminal_columns(int fd);

/// `line` cut to `columns - 1` characters (nothing cut when columns <= 1): a line redrawn in place
/// with "\r" must not wrap, or each redraw leaves a copy of it above the next.
std::string fit_to_columns(std::string line, int columns);

class ProgressDisplay {
 public:
  /// `unit` names what is counted in the plain lines ("sentences"), `rate_unit` in the bar's rate
  /// ("sent" -> "sent/s"). `already`: items done by an earlier run, counted in the total and the
  /// percentage but not in the rate. Time runs from construction.
  ProgressDisplay(std::string unit, std::string rate_unit, int64_t already, int64_t total, bool quiet);

  /// `done` of this run's `total - already` items are finished; `note` ("kept 3") ends the line.
  void update(int64_t done, const std::string& note = "");

 private:
  std::string unit_, rate_unit_;
  bool tty_, quiet_;
  int columns_ = 0;
  int64_t already_, total_;
  std::chrono::steady_clock::time_point start_;
  double last_draw_ = -1;
  int last_decile_ = -1;
};

}  // namespace reslens::cli
