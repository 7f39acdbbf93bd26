// libFuzzer target: the request reader of `reslens serve` (request line, headers, Content-Length,
// chunked framing, gzip/deflate) on arbitrary bytes, fed in pieces whose sizes the input's first
// byte chooses. It must end in a request or a 4xx/5xx, never hold more than its limits, never crash.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "server/http_request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t step = 1 + data[0] % 64;
  const std::string_view wire(reinterpret_cast<const char*>(data + 1), size - 1);
  reslens::server::HttpLimits limits;
  limits.max_body_bytes = 4096;
  limits.max_header_bytes = 1024;
  reslens::server::RequestReader reader(limits);
  using State = reslens::server::RequestReader::State;
  State s = State::kNeedMore;
  for (size_t i = 0; i < wire.size() && (s == State::kNeedMore || s == State::kWantContinue); i += step) {
    s = reader.feed(wire.substr(i, step));
  }
  if (s == State::kDone && reader.request().body.size() > limits.max_body_bytes) std::abort();
  if (s == State::kFailed && (reader.error_status() < 400 || reader.error_status() > 599)) std::abort();
  return 0;
}
