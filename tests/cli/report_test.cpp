// The CLI's error reporting (tools/reslens/common.cpp, report_current_exception): every kind of
// failure gives one escaped line on stderr and its exit code; a std::filesystem error names the path
// and the reason (exit 3) instead of libstdc++'s "filesystem error: ..." with exit 1.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "common.h"

namespace reslens::cli {
namespace {

struct Reported {
  int code = -1;
  std::string err;
};

template <typename F>
Reported report(F&& thrower) {
  CLI::App app{"test"};
  std::ostringstream captured;
  std::streambuf* const old = std::cerr.rdbuf(captured.rdbuf());
  Reported r;
  try {
    thrower();
  } catch (...) {
    r.code = report_current_exception(app);
  }
  std::cerr.rdbuf(old);
  r.err = captured.str();
  return r;
}

int lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

TEST(CliReport, ExitCodesFollowTheErrorKind) {
  EXPECT_EQ(report([] { throw InvalidArgument("bad"); }).code, 2);
  EXPECT_EQ(report([] { throw OutOfRange("far"); }).code, 2);
  EXPECT_EQ(report([] { throw CLI::ValidationError("--threads", "nope"); }).code, 2);
  EXPECT_EQ(report([] { throw IoError("io"); }).code, 3);
  EXPECT_EQ(report([] { throw FormatError("fmt"); }).code, 3);
  EXPECT_EQ(report([] { throw UnsupportedError("nope"); }).code, 4);
  EXPECT_EQ(report([] { throw InternalError("bug"); }).code, 70);
  EXPECT_EQ(report([] { throw std::bad_alloc(); }).code, 3);
  EXPECT_EQ(report([] { throw std::runtime_error("other"); }).code, 1);
  EXPECT_EQ(report([] { throw 42; }).code, 70);
  const Reported r = report([] { throw IoError("out.json: cannot write the file (No space left on device)"); });
  EXPECT_EQ(r.err, "error: out.json: cannot write the file (No space left on device)\n");
}

TEST(CliReport, FilesystemErrorsNameThePathAndTheReason) {
  const auto file = std::filesystem::temp_directory_path() / ("reslens-report-" + std::to_string(::getpid()));
  { std::ofstream(file) << "x"; }
  const Reported r = report([&] { std::filesystem::create_directories(file / "out"); });
  std::filesystem::remove(file);
  EXPECT_EQ(r.code, 3);
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_EQ(r.err.find("filesystem error"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("error: " + (file / "out").string() + ": cannot create directories (Not a directory)"),
            std::string::npos) << r.err;
  // Two paths: both named.
  const Reported two = report([&] { std::filesystem::rename(file / "a", file / "b"); });
  EXPECT_EQ(two.code, 3);
  EXPECT_NE(two.err.find((file / "a").string() + ": "), std::string::npos) << two.err;
  EXPECT_NE(two.err.find("(to " + (file / "b").string() + ")"), std::string::npos) << two.err;
}

TEST(CliReport, EveryMessageIsPrintedEscaped) {
  // Messages from outside reslens (the standard library, CLI11 quoting an argument) are escaped too.
  const Reported std_error = report([] { throw std::runtime_error("x\x1b[2Jy"); });
  EXPECT_EQ(std_error.err, "error: x\\x1b[2Jy\n");
  const Reported cli_error = report([] { throw CLI::ValidationError("--threads", "'\x1b]0;t\x07' is not a thread count"); });
  EXPECT_EQ(cli_error.err.find('\x1b'), std::string::npos) << cli_error.err;
  EXPECT_NE(cli_error.err.find("\\x1b]0;t\\x07"), std::string::npos) << cli_error.err;
  const Reported lib = report([] { throw FormatError(std::string("key 'a\0b' is bad", 16)); });
  EXPECT_EQ(lib.err, "error: key 'a\\x00b' is bad\n");
}

}  // namespace
}  // namespace reslens::cli
