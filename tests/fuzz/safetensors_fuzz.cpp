// libFuzzer target: the safetensors reader (header JSON, offsets, overlaps) on arbitrary bytes.
#include <cstddef>
#include <cstdint>
#include <span>

#include "io/safetensors.h"
#include "reslens/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const reslens::safetensors::File f(std::span<const uint8_t>(data, size), "fuzz.safetensors");
    size_t sum = 0;
    for (const auto& [name, t] : f.tensors()) {
      const auto bytes = f.tensor_bytes(t);
      if (!bytes.empty()) sum += bytes[0] + bytes[bytes.size() - 1];
    }
    return sum == 0xdeadbeef ? 1 : 0;
  } catch (const reslens::Error&) {
  }
  return 0;
}
