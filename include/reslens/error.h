// reslens's exception types. The library never prints and never exits: everything a user can cause
// (a bad file, a bad argument) arrives as one of these, with enough context to name the file and the
// problem in one line. The CLI maps them to exit codes; the Python module to Python exceptions.
#pragma once

#include <stdexcept>
#include <string>

namespace reslens {

/// Base of every runtime failure reslens reports (I/O, format, unsupported feature).
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
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
  using std::invalid_argument::invalid_argument;
};

/// An index is outside its range (token id, layer, head, neuron, position).
class OutOfRange : public std::out_of_range {
 public:
  using std::out_of_range::out_of_range;
};

/// An internal invariant failed: a bug in reslens, never a user error.
class InternalError : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

}  // namespace reslens
