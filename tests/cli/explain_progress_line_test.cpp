// The explain's progress line on a terminal (tools/reslens/explain_progress.h): what it says of a
// phase, that it draws nothing off a terminal or before its delay, that it never outgrows the
// terminal's width (a wrapped line would leave a copy at each redraw), and that it erases itself.
#include <gtest/gtest.h>

#include <chrono>
#include <sstream>
#include <string>
#include <thread>

#include "explain_progress.h"
#include "progress.h"

namespace reslens::cli {
namespace {

TEST(ExplainProgressLine, NamesThePhaseItsUnitsAndTheTime) {
  const std::string bounds = progress_text({"bounds", 3, 32}, 130.0, 841.0);
  EXPECT_EQ(bounds, "explain: model bounds (once per model)  [#---------------] 3/32 layers  2m10s, ETA 14m01s");
  // One unit: no bar, no count; no estimate yet: none shown.
  EXPECT_EQ(progress_text({"checks", 0, 1}, 41.25, -1), "explain: identity checks  41.2s");
  EXPECT_EQ(progress_text({"ffn_exact", 120, 486}, 5, -1),
            "explain: FFN neurons: exact projections  [###-------------] 120/486 vectors  5.0s");
  EXPECT_EQ(phase_label("attention"), "attention heads and neurons");
  EXPECT_EQ(phase_label("something new"), "something new");  // a phase it does not know: its name
}

TEST(ExplainProgressLine, DrawsOnlyOnATerminalAfterItsDelayAndErasesItself) {
  std::ostringstream pipe;
  {
    ExplainProgressLine line(pipe, false, 80, 0.0);
    line.update({"ffn", 3, 33});
  }
  EXPECT_EQ(pipe.str(), "");  // not a terminal: nothing, not even the erasure

  std::ostringstream early;
  {
    ExplainProgressLine line(early, true, 80, 3600.0);
    line.update({"ffn", 3, 33});
    line.finish();
  }
  EXPECT_EQ(early.str(), "");  // a quick explain: nothing drawn, nothing to erase

  std::ostringstream tty;
  ExplainProgressLine line(tty, true, 80, 0.0);
  line.update({"attention", 0, 33});
  line.update({"ffn", 0, 33});  // a new phase is drawn at once
  const std::string drawn = tty.str();
  EXPECT_NE(drawn.find("\rexplain: attention heads and neurons  ["), std::string::npos) << drawn;
  EXPECT_NE(drawn.find("\rexplain: FFN neurons  [----------------] 0/33 steps"), std::string::npos) << drawn;
  line.finish();
  EXPECT_EQ(tty.str().substr(drawn.size()), "\r\033[K");
  line.finish();  // once only
  EXPECT_EQ(tty.str().size(), drawn.size() + 4);
}

TEST(ExplainProgressLine, ItsTickerKeepsTheTimeMovingThroughALongUnit) {
  std::ostringstream tty;
  ExplainProgressLine line(tty, true, 80, 0.0, 0.05);
  line.update({"bounds", 1, 32});
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  line.finish();
  const std::string s = tty.str();
  size_t draws = 0;
  for (size_t at = s.find("\rexplain: model bounds"); at != std::string::npos; at = s.find("\rexplain: model bounds", at + 1)) ++draws;
  EXPECT_GE(draws, 2u) << s;  // the report's own draw, then the ticker's (100 ms apart at most)
  EXPECT_EQ(s.substr(s.size() - 4), "\r\033[K");  // erased, after the ticker stopped
  const size_t size = s.size();
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  EXPECT_EQ(tty.str().size(), size);  // nothing drawn after finish()
}

TEST(ExplainProgressLine, NeverWiderThanTheTerminal) {
  for (const int columns : {40, 60, 80}) {
    std::ostringstream tty;
    ExplainProgressLine line(tty, true, columns, 0.0);
    line.update({"sketch", 5, 13});
    const std::string s = tty.str();
    ASSERT_EQ(s.front(), '\r');
    const size_t end = s.find("\033[K");
    ASSERT_NE(end, std::string::npos);
    EXPECT_EQ(end - 1, static_cast<size_t>(columns - 1)) << s;  // cut to columns - 1
  }
  EXPECT_EQ(fit_to_columns("abcdef", 4), "abc");
  EXPECT_EQ(fit_to_columns("abc", 4), "abc");
  EXPECT_EQ(fit_to_columns("abcdef", 0), "abcdef");  // width unknown: as it is
}

}  // namespace
}  // namespace reslens::cli
