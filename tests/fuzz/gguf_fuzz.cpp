// libFuzzer target: the GGUF reader on arbitrary bytes. Any input must parse or throw a reslens
// error; ASan/UBSan turn an out-of-bounds read or overflow into a crash the fuzzer reports.
#include <cstddef>
#include <cstdint>
#include <span>

#include "io/gguf.h"
#include "reslens/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const reslens::gguf::File f(std::span<const uint8_t>(data, size), "fuzz.gguf");
    // Touch what a loader touches: every metadata value and every tensor's bytes.
    size_t sum = 0;
    for (const auto& [key, v] : f.metadata()) sum += key.size() + v.s.size() + v.strings.size() + v.numbers.size();
    for (const auto& t : f.tensors()) {
      const auto bytes = f.tensor_bytes(t);
      if (!bytes.empty()) sum += bytes[0] + bytes[bytes.size() - 1];
    }
    (void)f.get_string_opt("general.architecture");
    return sum == 0xdeadbeef ? 1 : 0;
  } catch (const reslens::Error&) {
  }
  return 0;
}
