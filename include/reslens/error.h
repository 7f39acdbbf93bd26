// reslens's exception types. The library never prints and never exits: everything a user can cause
// (a bad file, a bad argument) arrives as one of these, with enough context to name the file and the
// problem in one line. The CLI maps them to exit codes; the Python module to Python exceptions.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace reslens {

/// `message` made safe to print on a terminal and to pass around as a C string: control bytes
/// (0x00-0x1f, 0x7f) and bytes that are not valid UTF-8 become "\xNN", C1 controls (U+0080-U+009F)
/// and bidirectional overrides (U+202A-U+202E, U+2066-U+2069) "\uNNNN"; every other character,
/// multi-byte UTF-8 included, is kept. Applying it twice changes nothing more. Every exception below
/// passes its message through it, so text copied from a file into a message (a token piece, a GGUF
/// key, a config.json field name, a dataset line) can neither send escape sequences to a terminal
/// nor be cut short by a NUL when what() is read as a C string.
std::string escape_message(std::string_view message);

/// Base of every runtime failure reslens reports (I/O, format, unsupported feature).
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(escape_message(message)) {}
  explicit Error(const char* message) : std::runtime_error(escape_message(message)) {}
};

/// A file could not be opened, read or mapped. The message names the path and the OS error.
class IoError : public Error {
 public:
  using Error::Error;
};

/// A file exists but its contents are malformed (bad magic, truncated, inconsistent shapes, ...).
class FormatError : public Error {
 public:
  using Error::Error;
};

/// A well-formed input asks for something reslens does not implement (architecture, dtype, ...).
class UnsupportedError : public Error {
 public:
  using Error::Error;
};

/// A caller-supplied value is invalid (bad hook name, empty prompt, invalid UTF-8, bad option).
class InvalidArgument : public std::invalid_argument {
 public:
  explicit InvalidArgument(const std::string& message) : std::invalid_argument(escape_message(message)) {}
  explicit InvalidArgument(const char* message) : std::invalid_argument(escape_message(message)) {}
};

/// An index is outside its range (token id, layer, head, neuron, position).
class OutOfRange : public std::out_of_range {
 public:
  explicit OutOfRange(const std::string& message) : std::out_of_range(escape_message(message)) {}
  explicit OutOfRange(const char* message) : std::out_of_range(escape_message(message)) {}
};

/// The caller asked a long computation to stop (ExplainRequest::should_stop) and it stopped at a
/// step boundary: not a failure of the input, and nothing after that boundary was computed.
class Cancelled : public Error {
 public:
  using Error::Error;
};

/// An internal invariant failed: a bug in reslens, never a user error.
class InternalError : public std::logic_error {
 public:
  explicit InternalError(const std::string& message) : std::logic_error(escape_message(message)) {}
  explicit InternalError(const char* message) : std::logic_error(escape_message(message)) {}
};

}  // namespace reslens
