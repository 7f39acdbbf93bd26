#include "server/http_request.h"

#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cstring>

namespace reslens::server {

// zlib's inflate for a gzip or deflate body, never growing its output past a limit.
class Inflater {
 public:
  enum class Result { kOk, kEnd, kCorrupt, kTooLarge };

  explicit Inflater(bool gzip) : gzip_(gzip) {
    if (gzip) init(16 + MAX_WBITS);
  }
  ~Inflater() {
    if (ok_) inflateEnd(&z_);
  }
  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;

  /// Inflates `in` onto `out`, which may not grow past `limit` bytes.
  Result inflate_into(std::string_view in, std::string& out, size_t limit) {
    if (!gzip_ && !ok_) {
      // HTTP's "deflate" is zlib-wrapped, but some clients send raw deflate: the first two bytes
      // (a zlib header is 0x?8 with a 16-bit value divisible by 31) tell which.
      head_.append(in);
      if (head_.size() < 2) return Result::kOk;
      const auto b0 = static_cast<unsigned char>(head_[0]), b1 = static_cast<unsigned char>(head_[1]);
      init((b0 & 0x0f) == 8 && (b0 * 256 + b1) % 31 == 0 ? MAX_WBITS : -MAX_WBITS);
      const std::string first = std::move(head_);
      return run(first, out, limit);
    }
    return run(in, out, limit);
  }
  bool ended() const { return ended_; }

 private:
  Result run(std::string_view in, std::string& out, size_t limit) {
    if (!ok_) return Result::kCorrupt;
    if (ended_) return in.empty() ? Result::kEnd : Result::kCorrupt;  // bytes after the stream's end
    z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    z_.avail_in = static_cast<uInt>(in.size());
    unsigned char chunk[16384];
    while (true) {
      z_.next_out = chunk;
      z_.avail_out = sizeof chunk;
      const int rc = inflate(&z_, Z_NO_FLUSH);
      const size_t produced = sizeof chunk - z_.avail_out;
      if (out.size() + produced > limit) return Result::kTooLarge;
      out.append(reinterpret_cast<const char*>(chunk), produced);
      if (rc == Z_STREAM_END) {
        ended_ = true;
        return z_.avail_in == 0 ? Result::kEnd : Result::kCorrupt;
      }
      if (rc != Z_OK && rc != Z_BUF_ERROR) return Result::kCorrupt;
      if (z_.avail_in == 0 && z_.avail_out != 0) return Result::kOk;  // all input used, nothing left to flush
    }
  }
  void init(int window_bits) {
    std::memset(&z_, 0, sizeof z_);
    ok_ = inflateInit2(&z_, window_bits) == Z_OK;
  }

  z_stream z_{};
  bool gzip_;
  bool ok_ = false;
  bool ended_ = false;
  std::string head_;  ///< "deflate": bytes held until the header can be told
};

namespace {

constexpr size_t kMaxChunkLine = 1024;  // a chunk-size line with its extensions

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return std::string(s);
}

// RFC 9110's token characters: methods and header names.
bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (const char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && std::strchr("!#$%&'*+-.^_`|~", c) == nullptr) return false;
  }
  return true;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decoding ('+' is a space in a query). False on a malformed escape.
bool percent_decode(std::string_view in, bool plus_is_space, std::string& out) {
  out.clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%') {
      if (in.size() - i < 3) return false;
      const int hi = hex_value(in[i + 1]);
      const int lo = hex_value(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += plus_is_space && in[i] == '+' ? ' ' : in[i];
    }
  }
  return true;
}

}  // namespace

RequestReader::RequestReader(HttpLimits limits) : limits_(limits) {}
RequestReader::~RequestReader() = default;

RequestReader::State RequestReader::fail(int status, std::string message) {
  state_ = State::kFailed;
  phase_ = Phase::kDone;
  error_status_ = status;
  error_message_ = std::move(message);
  std::string().swap(buf_);
  return state_;
}

bool RequestReader::take_line(std::string& line) {
  const size_t nl = buf_.find('\n');
  if (nl == std::string::npos) return false;
  line.assign(buf_, 0, nl > 0 && buf_[nl - 1] == '\r' ? nl - 1 : nl);
  buf_.erase(0, nl + 1);
  return true;
}

RequestReader::State RequestReader::feed(std::string_view bytes) {
  if (state_ == State::kDone || state_ == State::kFailed) return state_;
  if (!bytes.empty()) started_ = true;
  state_ = State::kNeedMore;
  if (phase_ != Phase::kHead) return feed_body(bytes);

  // The head is bounded as it arrives: never more than the limit (and its blank line) is held.
  const size_t cap = limits_.max_header_bytes + 4;
  const size_t take = std::min(bytes.size(), cap - std::min(cap, buf_.size()));
  buf_.append(bytes.substr(0, take));
  bytes.remove_prefix(take);
  size_t end = buf_.find("\r\n\r\n");
  size_t sep = 4;
  const size_t lf = buf_.find("\n\n");
  if (lf != std::string::npos && (end == std::string::npos || lf < end)) {
    end = lf;
    sep = 2;
  }
  if (end == std::string::npos || end > limits_.max_header_bytes) {
    if (buf_.size() >= cap || end != std::string::npos) {
      return fail(431, "the request's headers are over " + std::to_string(limits_.max_header_bytes) + " bytes");
    }
    return state_;
  }
  const std::string head = buf_.substr(0, end);
  std::string body = buf_.substr(end + sep);
  body.append(bytes);
  buf_.clear();
  if (parse_head(head) == State::kFailed) return state_;
  if (phase_ == Phase::kDone) return finish();
  if (expect_continue_ && body.empty()) {
    state_ = State::kWantContinue;
    return state_;
  }
  return feed_body(body);
}

RequestReader::State RequestReader::parse_head(const std::string& head) {
  // The request line: METHOD SP target SP HTTP/1.x
  const size_t eol = head.find('\n');
  std::string line = head.substr(0, eol);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == std::string::npos ? std::string::npos : line.find(' ', sp1 + 1);
  if (sp2 == std::string::npos || line.find(' ', sp2 + 1) != std::string::npos) {
    return fail(400, "a malformed request line (METHOD /path HTTP/1.1)");
  }
  const std::string method = line.substr(0, sp1);
  const std::string target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string version = line.substr(sp2 + 1);
  if (!is_token(method)) return fail(400, "a malformed request method");
  if (version != "HTTP/1.1" && version != "HTTP/1.0") {
    return version.rfind("HTTP/", 0) == 0 ? fail(505, "only HTTP/1.0 and HTTP/1.1 are served")
                                          : fail(400, "a malformed request line (METHOD /path HTTP/1.1)");
  }
  if (target.empty() || target[0] != '/') return fail(400, "the request target must be a path starting with '/'");
  request_.method = method;
  const size_t q = target.find('?');
  if (!percent_decode(std::string_view(target).substr(0, q), false, request_.path)) {
    return fail(400, "a malformed %-escape in the path");
  }
  if (q != std::string::npos) {
    std::string_view qs = std::string_view(target).substr(q + 1);
    while (!qs.empty()) {
      const size_t amp = qs.find('&');
      const std::string_view pair = qs.substr(0, amp);
      qs = amp == std::string_view::npos ? std::string_view{} : qs.substr(amp + 1);
      if (pair.empty()) continue;
      const size_t eq = pair.find('=');
      std::string k, v;
      if (!percent_decode(pair.substr(0, eq), true, k) ||
          !percent_decode(eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1), true, v)) {
        return fail(400, "a malformed %-escape in the query");
      }
      request_.query[k] = v;
    }
  }

  // Header lines.
  size_t count = 0;
  size_t pos = eol == std::string::npos ? head.size() : eol + 1;
  while (pos < head.size()) {
    size_t next = head.find('\n', pos);
    if (next == std::string::npos) next = head.size();
    std::string_view h(head.data() + pos, next - pos);
    pos = next + 1;
    if (!h.empty() && h.back() == '\r') h.remove_suffix(1);
    if (h.empty()) continue;
    if (h.front() == ' ' || h.front() == '\t') return fail(400, "folded header lines are not accepted");
    const size_t colon = h.find(':');
    if (colon == std::string_view::npos || !is_token(h.substr(0, colon))) return fail(400, "a malformed header line");
    if (++count > limits_.max_headers) {
      return fail(431, "the request has more than " + std::to_string(limits_.max_headers) + " headers");
    }
    const std::string name = lower(h.substr(0, colon));
    const std::string value = trim(h.substr(colon + 1));
    auto [it, fresh] = request_.headers.emplace(name, value);
    if (!fresh) it->second += ", " + value;
  }

  // How the body comes: Content-Length, chunked, or none; and how it is encoded.
  const auto header = [&](const char* name) -> const std::string* {
    const auto it = request_.headers.find(name);
    return it == request_.headers.end() ? nullptr : &it->second;
  };
  const std::string* te = header("transfer-encoding");
  const std::string* cl = header("content-length");
  if (te != nullptr && cl != nullptr) return fail(400, "a request may not have both Transfer-Encoding and Content-Length");
  if (const std::string* ex = header("expect")) {
    if (lower(*ex) != "100-continue") return fail(417, "Expect: " + *ex + " is not supported");
    expect_continue_ = true;
  }
  if (const std::string* ce = header("content-encoding")) {
    const std::string enc = lower(*ce);
    if (enc == "gzip" || enc == "x-gzip") {
      inflater_ = std::make_unique<Inflater>(true);
    } else if (enc == "deflate") {
      inflater_ = std::make_unique<Inflater>(false);
    } else if (enc != "identity") {
      return fail(415, "Content-Encoding '" + *ce + "' is not supported (gzip, deflate or identity)");
    }
  }
  if (te != nullptr) {
    if (lower(*te) != "chunked") return fail(501, "Transfer-Encoding '" + *te + "' is not supported (chunked only)");
    phase_ = Phase::kChunkSize;
    return state_;
  }
  if (cl != nullptr) {
    if (cl->empty() || cl->size() > 18 || !std::all_of(cl->begin(), cl->end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return fail(400, "a malformed Content-Length");
    }
    remaining_ = static_cast<size_t>(std::stoull(*cl));
    if (remaining_ > limits_.max_body_bytes) {
      return fail(413, "the request body is " + *cl + " bytes; the limit is " + std::to_string(limits_.max_body_bytes));
    }
    phase_ = remaining_ == 0 ? Phase::kDone : Phase::kLength;
    return state_;
  }
  phase_ = Phase::kDone;
  return state_;
}

RequestReader::State RequestReader::append_body(std::string_view data) {
  const size_t limit = limits_.max_body_bytes;
  const std::string over = "the request body is over the limit of " + std::to_string(limit) + " bytes";
  if (inflater_) {
    switch (inflater_->inflate_into(data, request_.body, limit)) {
      case Inflater::Result::kOk:
      case Inflater::Result::kEnd: return state_;
      case Inflater::Result::kTooLarge: return fail(413, over + " once decoded");
      case Inflater::Result::kCorrupt: return fail(400, "the request body is not valid " + request_.headers["content-encoding"]);
    }
  }
  if (request_.body.size() + data.size() > limit) return fail(413, over);
  request_.body.append(data);
  return state_;
}

RequestReader::State RequestReader::feed_body(std::string_view data) {
  state_ = State::kNeedMore;
  if (phase_ == Phase::kLength) {
    const size_t n = std::min(remaining_, data.size());
    if (append_body(data.substr(0, n)) == State::kFailed) return state_;
    remaining_ -= n;
    return remaining_ == 0 ? finish() : state_;
  }
  // Chunked: framing and data pass through buf_, which holds at most one line or one read.
  wire_body_ += data.size();
  if (wire_body_ > 4 * limits_.max_body_bytes + 64 * 1024) {
    return fail(413, "the chunked request body is over the limit of " + std::to_string(limits_.max_body_bytes) + " bytes");
  }
  buf_.append(data);
  std::string line;
  while (true) {
    switch (phase_) {
      case Phase::kChunkSize: {
        if (!take_line(line)) {
          if (buf_.size() > kMaxChunkLine) return fail(400, "a malformed chunk-size line");
          return state_;
        }
        const std::string size = trim(std::string_view(line).substr(0, line.find(';')));
        if (size.empty() || size.size() > 15 || !std::all_of(size.begin(), size.end(), [](char c) { return hex_value(c) >= 0; })) {
          return fail(400, "a malformed chunk-size line");
        }
        remaining_ = static_cast<size_t>(std::stoull(size, nullptr, 16));
        if (remaining_ == 0) {
          phase_ = Phase::kTrailers;
        } else if (request_.body.size() + remaining_ > limits_.max_body_bytes && !inflater_) {
          return fail(413, "the request body is over the limit of " + std::to_string(limits_.max_body_bytes) + " bytes");
        } else {
          phase_ = Phase::kChunkData;
        }
        break;
      }
      case Phase::kChunkData: {
        if (buf_.empty()) return state_;
        const size_t n = std::min(remaining_, buf_.size());
        if (append_body(std::string_view(buf_).substr(0, n)) == State::kFailed) return state_;
        buf_.erase(0, n);
        remaining_ -= n;
        if (remaining_ == 0) phase_ = Phase::kChunkDataEnd;
        break;
      }
      case Phase::kChunkDataEnd:
        if (!take_line(line)) {
          if (buf_.size() > 2) return fail(400, "a chunk's data is longer than its size");
          return state_;
        }
        if (!line.empty()) return fail(400, "a chunk's data is longer than its size");
        phase_ = Phase::kChunkSize;
        break;
      case Phase::kTrailers:
        if (!take_line(line)) {
          if (trailer_bytes_ + buf_.size() > limits_.max_header_bytes) return fail(431, "the request's trailers are too long");
          return state_;
        }
        trailer_bytes_ += line.size() + 2;
        if (trailer_bytes_ > limits_.max_header_bytes) return fail(431, "the request's trailers are too long");
        if (line.empty()) return finish();
        break;
      default:
        return state_;
    }
  }
}

RequestReader::State RequestReader::finish() {
  if (inflater_ && !inflater_->ended()) {
    return fail(400, "the request body is not valid " + request_.headers["content-encoding"] + " (it ends early)");
  }
  phase_ = Phase::kDone;
  state_ = State::kDone;
  std::string().swap(buf_);
  return state_;
}

const char* http_reason(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 202: return "Accepted";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "";
  }
}

}  // namespace reslens::server
