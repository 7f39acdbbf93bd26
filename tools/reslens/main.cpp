// reslens CLI entry point: registers the commands and turns the library's typed errors into one-line
// messages and exit codes (0 ok, 2 usage or bad argument, 3 I/O or format, 4 unsupported,
// 70 internal error; report_current_exception in common.cpp).
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <iostream>

#include "commands.h"
#include "common.h"
#include "isa_limit.h"

namespace {

// Float32 weights and projection caches are read in place from memory maps. When another process
// truncates such a file, the next read of a page past its new end raises SIGBUS: say so in one
// line and exit 3 (a file error) rather than die of the signal. Only async-signal-safe calls here.
// (Files rewritten without truncation show new bytes instead; `serve` checks before each job.)
extern "C" void on_sigbus(int) {
  static const char kMessage[] =
      "error: a file reslens reads in place (the model's weights or a projection cache) was truncated on disk "
      "while it was being read\n";
  [[maybe_unused]] const ssize_t n = write(STDERR_FILENO, kMessage, sizeof kMessage - 1);
  _exit(3);
}

}  // namespace

int main(int argc, char** argv) {
  struct sigaction bus {};
  bus.sa_handler = on_sigbus;
  sigemptyset(&bus.sa_mask);
  sigaction(SIGBUS, &bus, nullptr);
  CLI::App app{"reslens: explain a transformer's next-token prediction by taking its residual stream apart"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "reslens 0.1.0");
  reslens::cli::register_commands(app);
  try {
    reslens::cli::apply_isa_limit_from_env();  // RESLENS_ISA (isa_limit.h)
    app.parse(argc, argv);
    // Output that could not be written (a full disk, /dev/full) is a failure, never exit 0 with a
    // truncated JSON document: both streams the commands print to are flushed and checked.
    std::cout.flush();
    if (!std::cout || std::fflush(stdout) != 0 || std::ferror(stdout) != 0) {
      std::cerr << "error: could not write the output to standard output (disk full or closed?)\n";
      return 3;
    }
  } catch (...) {
    // One line, escaped, and the exit code of its kind (common.h).
    return reslens::cli::report_current_exception(app);
  }
  return 0;
}
