#include "explain_progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>

#include "progress.h"

namespace reslens::cli {

namespace {

struct PhaseName {
  std::string_view phase, label, unit;
};

// ExplainProgress's phases (include/reslens/explain.h), as the line names them and counts their units.
constexpr PhaseName kPhases[] = {
    {"generate", "generating the answer", "tokens"},
    {"forward", "forward pass", ""},
    {"points", "logit lens", ""},
    {"bounds", "model bounds (once per model)", "layers"},
    {"sketch", "sketch Gram matrices (once per model)", "blocks"},
    {"tails", "head/tail splits", ""},
    {"attention", "attention heads and neurons", "steps"},
    {"attention_exact", "attention: exact projections", "vectors"},
    {"ffn", "FFN neurons", "steps"},
    {"ffn_exact", "FFN neurons: exact projections", "vectors"},
    {"checks", "identity checks", ""},
    {"queries", "query neurons", ""},
    {"tightening", "tightening the answer's sums", ""},
};

const PhaseName* find_phase(std::string_view phase) {
  for (const PhaseName& p : kPhases) {
    if (p.phase == phase) return &p;
  }
  return nullptr;
}

}  // namespace

std::string phase_label(std::string_view phase) {
  const PhaseName* p = find_phase(phase);
  return std::string(p != nullptr ? p->label : phase);
}

std::string progress_text(const ExplainProgress& p, double elapsed, double phase_eta) {
  std::string text = "explain: " + phase_label(p.phase);
  if (p.total > 1) {
    constexpr int kWidth = 16;
    const int64_t done = std::clamp<int64_t>(p.done, 0, p.total);
    const auto filled = static_cast<size_t>(done * kWidth / p.total);
    const PhaseName* name = find_phase(p.phase);
    const std::string_view unit = name != nullptr ? name->unit : "";
    text += "  [" + std::string(filled, '#') + std::string(kWidth - filled, '-') + "] " + std::to_string(done) + "/" +
            std::to_string(p.total);
    if (!unit.empty()) text += " " + std::string(unit);
  }
  text += "  " + duration(elapsed);
  if (phase_eta >= 0) text += ", ETA " + duration(phase_eta);
  return text;
}

ExplainProgressLine::ExplainProgressLine(std::ostream& out, bool tty, int columns, double delay, double tick)
    : out_(out), tty_(tty), columns_(columns), delay_(delay), start_(Clock::now()), phase_start_(start_), reported_(start_) {
  if (!tty_ || !(tick > 0)) return;
  ticker_ = std::thread([this, tick] {
    std::unique_lock<std::mutex> lock(mu_);
    while (!wake_.wait_for(lock, std::chrono::duration<double>(tick), [this] { return stopping_; })) {
      if (have_) draw(false);
    }
  });
}

ExplainProgressLine::ExplainProgressLine() : ExplainProgressLine(std::cerr, ::isatty(2) == 1, terminal_columns(2), 1.0, 0.5) {}

void ExplainProgressLine::update(const ExplainProgress& p) {
  if (!tty_) return;
  const std::lock_guard<std::mutex> lock(mu_);
  const auto now = Clock::now();
  const bool new_phase = !have_ || p.phase != phase_;
  if (new_phase) {
    phase_ = std::string(p.phase);
    phase_start_ = now;
  }
  have_ = true;
  done_ = p.done, total_ = p.total;
  reported_ = now;
  // The phase's own rate predicts its rest once a unit is done and it has run long enough to say.
  const double in_phase = std::chrono::duration<double>(now - phase_start_).count();
  eta_ = p.total > 1 && p.done > 0 && p.done < p.total && in_phase >= 0.5
             ? in_phase / static_cast<double>(p.done) * static_cast<double>(p.total - p.done)
             : -1.0;
  // A new phase is drawn at once, so the line never names a phase that has ended.
  draw(new_phase);
}

void ExplainProgressLine::draw(bool force) {
  const auto now = Clock::now();
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  // Quick explains draw nothing; a long one at most ten times a second.
  if (elapsed < delay_ || (!force && elapsed - last_draw_ < 0.1)) return;
  last_draw_ = elapsed;
  const double since = std::chrono::duration<double>(now - reported_).count();
  const double eta = eta_ < 0 ? -1.0 : std::max(0.0, eta_ - since);
  // Cut to the terminal's width: a line that wrapped would leave a copy of itself at each redraw.
  // "\033[K" erases what a longer previous line left to the right.
  out_ << '\r' << fit_to_columns(progress_text({phase_, done_, total_}, elapsed, eta), columns_) << "\033[K" << std::flush;
  drawn_ = true;
}

void ExplainProgressLine::finish() {
  if (ticker_.joinable()) {
    {
      const std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    wake_.notify_all();
    ticker_.join();
  }
  const std::lock_guard<std::mutex> lock(mu_);
  if (!drawn_) return;
  out_ << "\r\033[K" << std::flush;
  drawn_ = false;
}

}  // namespace reslens::cli
