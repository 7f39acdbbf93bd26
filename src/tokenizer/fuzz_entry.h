// Entry point for a libFuzzer target over tokenizer.json parsing.
#pragma once

#include <string_view>

namespace reslens {

/// Parses `bytes` as tokenizer.json content held in memory and, when that yields a tokenizer,
/// round-trips a short fixed text through it. Throws only reslens errors (FormatError,
/// UnsupportedError, InvalidArgument, ...) for bad input; anything else (a crash, a std::exception
/// of another type) is a bug for the fuzzer to report.
void fuzz_parse_tokenizer_json(std::string_view bytes);

}  // namespace reslens
