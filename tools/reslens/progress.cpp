#include "progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <utility>

namespace reslens::cli {

std::string duration(double s) {
  if (!(s >= 0) || s > 1e7) return "?";
  char buf[32];
  const auto t = static_cast<long long>(s + 0.5);
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%lldh%02lldm", t / 3600, t / 60 % 60);
  else if (t >= 60) std::snprintf(buf, sizeof buf, "%lldm%02llds", t / 60, t % 60);
  else std::snprintf(buf, sizeof buf, "%.1fs", s);
  return buf;
}

int terminal_columns(int fd) {
  winsize w{};
  if (::isatty(fd) != 1 || ::ioctl(fd, TIOCGWINSZ, &w) != 0) return 0;
  return w.ws_col;
}

std::string fit_to_columns(std::string line, int columns) {
  if (columns > 1 && line.size() >= static_cast<size_t>(columns)) line.resize(static_cast<size_t>(columns - 1));
  return line;
}

ProgressDisplay::ProgressDisplay(std::string unit, std::string rate_unit, int64_t already, int64_t total, bool quiet)
    : unit_(std::move(unit)),
      rate_unit_(std::move(rate_unit)),
      tty_(::isatty(2) == 1),
      quiet_(quiet),
      columns_(terminal_columns(2)),
      already_(already),
      total_(total),
      start_(std::chrono::steady_clock::now()) {}

void ProgressDisplay::update(int64_t done, const std::string& note) {
  if (quiet_) return;
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const int64_t todo = total_ - already_;
  const int64_t all_done = already_ + done;
  // The first fraction of a second says nothing about the rate (the first report can come after
  // microseconds): "?" until then.
  const bool timed = elapsed >= 0.2 && done > 0;
  const double rate = timed ? static_cast<double>(done) / elapsed : 0;
  const double eta = timed ? static_cast<double>(todo - done) / rate : -1;
  const bool last = done >= todo;
  const double pct = total_ > 0 ? 100.0 * static_cast<double>(all_done) / static_cast<double>(total_) : 100.0;
  const std::string tail = last ? "0s" : duration(eta);
  char rate_text[32] = "?";
  if (timed) std::snprintf(rate_text, sizeof rate_text, "%.2f", rate);
  char buf[320];
  if (tty_) {
    if (!last && elapsed - last_draw_ < 0.1) return;
    last_draw_ = elapsed;
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(pct / 100.0 * kWidth);
    std::string bar(static_cast<size_t>(filled), '#');
    bar += std::string(static_cast<size_t>(kWidth - filled), '-');
    std::snprintf(buf, sizeof buf, "[%s] %lld/%lld %3.0f%%  %s %s/s  ETA %s  %s", bar.c_str(),
                  static_cast<long long>(all_done), static_cast<long long>(total_), pct, rate_text, rate_unit_.c_str(),
                  tail.c_str(), note.c_str());
    // "\033[K" erases what a longer previous line (a longer note) left to its right.
    std::cerr << '\r' << fit_to_columns(buf, columns_) << "\033[K" << (last ? "\n" : "") << std::flush;
    return;
  }
  const int decile = static_cast<int>(pct / 10);
  if (!last && decile == last_decile_ && elapsed - last_draw_ < 30) return;
  last_decile_ = decile;
  last_draw_ = elapsed;
  std::snprintf(buf, sizeof buf, "progress: %lld/%lld %s (%.0f%%), %s/s, ETA %s%s%s\n",
                static_cast<long long>(all_done), static_cast<long long>(total_), unit_.c_str(), pct, rate_text,
                tail.c_str(), note.empty() ? "" : ", ", note.c_str());
  std::cerr << buf << std::flush;
}

}  // namespace reslens::cli
