// libFuzzer target: Hugging Face tokenizer.json parsing (and a short encode/decode when it parses).
// Only reslens's typed errors may escape; anything else is a bug the fuzzer reports.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "reslens/error.h"
#include "tokenizer/fuzz_entry.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    reslens::fuzz_parse_tokenizer_json(std::string_view(reinterpret_cast<const char*>(data), size));
  } catch (const reslens::Error&) {
  } catch (const reslens::InvalidArgument&) {
  } catch (const reslens::OutOfRange&) {
  }
  return 0;
}
