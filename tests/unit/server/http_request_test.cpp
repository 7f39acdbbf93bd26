// The request reader of `reslens serve` on bytes: every request arrives the same whichever way the
// stream is split, and every limit holds after decoding (chunked, gzip, deflate).
#include "server/http_request.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <string>

namespace reslens::server {
namespace {

using State = RequestReader::State;

// Feeds `wire` in pieces of `step` bytes; the reader's final state.
State feed_split(RequestReader& r, const std::string& wire, size_t step) {
  State s = State::kNeedMore;
  for (size_t i = 0; i < wire.size() && (s == State::kNeedMore || s == State::kWantContinue); i += step) {
    s = r.feed(std::string_view(wire).substr(i, step));
  }
  return s;
}

std::string deflate_bytes(const std::string& in, int window_bits) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, 9, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&z, in.size()) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

const std::string kBody = R"({"prompt": "The capital of France is", "top": 5})";

std::string chunked(const std::string& body, size_t piece) {
  std::string out;
  for (size_t i = 0; i < body.size(); i += piece) {
    const std::string part = body.substr(i, piece);
    char size[32];
    std::snprintf(size, sizeof size, "%zx;ext=1\r\n", part.size());
    out += size + part + "\r\n";
  }
  return out + "0\r\nX-Trailer: t\r\n\r\n";
}

TEST(HttpRequest, SameRequestWhateverTheSplit) {
  const std::string wire = "POST /api/explain?async=1&x=a%20b+c HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
                           "Content-Type: application/json\r\nX-A: 1\r\nx-a: 2\r\nContent-Length: " +
                           std::to_string(kBody.size()) + "\r\n\r\n" + kBody + "ignored";
  for (const size_t step : {size_t{1}, size_t{2}, size_t{7}, size_t{64}, wire.size()}) {
    RequestReader r;
    ASSERT_EQ(feed_split(r, wire, step), State::kDone) << step << ": " << r.error_message();
    const HttpRequest& q = r.request();
    EXPECT_EQ(q.method, "POST");
    EXPECT_EQ(q.path, "/api/explain");
    EXPECT_EQ(q.query.at("async"), "1");
    EXPECT_EQ(q.query.at("x"), "a b c");
    EXPECT_EQ(q.headers.at("host"), "127.0.0.1:8080");
    EXPECT_EQ(q.headers.at("x-a"), "1, 2");
    EXPECT_EQ(q.body, kBody);
  }
}

TEST(HttpRequest, ChunkedGzipAndDeflateBodiesAreDecoded) {
  const std::string head = "POST /api/predict HTTP/1.1\r\nHost: h\r\n";
  const std::string gz = deflate_bytes(kBody, 16 + MAX_WBITS);
  const std::string zl = deflate_bytes(kBody, MAX_WBITS);
  const std::string rawd = deflate_bytes(kBody, -MAX_WBITS);
  const std::string cases[] = {
      head + "Transfer-Encoding: chunked\r\n\r\n" + chunked(kBody, 5),
      head + "Content-Encoding: gzip\r\nContent-Length: " + std::to_string(gz.size()) + "\r\n\r\n" + gz,
      head + "Content-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(gz, 3),
      head + "Content-Encoding: deflate\r\nContent-Length: " + std::to_string(zl.size()) + "\r\n\r\n" + zl,
      head + "Content-Encoding: deflate\r\nContent-Length: " + std::to_string(rawd.size()) + "\r\n\r\n" + rawd,
  };
  for (const std::string& wire : cases) {
    for (const size_t step : {size_t{1}, size_t{13}, wire.size()}) {
      RequestReader r;
      ASSERT_EQ(feed_split(r, wire, step), State::kDone) << r.error_message() << "\n" << wire.substr(0, 120);
      EXPECT_EQ(r.request().body, kBody);
    }
  }
}

TEST(HttpRequest, ExpectContinueIsReportedBeforeTheBody) {
  RequestReader r;
  const std::string head = "POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n";
  EXPECT_EQ(r.feed(head), State::kWantContinue);
  EXPECT_EQ(r.feed("{}"), State::kDone);
  EXPECT_EQ(r.request().body, "{}");
}

// Every limit: the status and that memory stays bounded (the reader stops taking bytes).
TEST(HttpRequest, LimitsHoldAfterDecoding) {
  HttpLimits limits;
  limits.max_body_bytes = 1000;
  limits.max_header_bytes = 200;
  limits.max_headers = 4;
  auto outcome = [&](const std::string& wire) {
    RequestReader r(limits);
    feed_split(r, wire, 100);
    return r.error_status();
  };
  const std::string post = "POST / HTTP/1.1\r\n";
  EXPECT_EQ(outcome(post + "Content-Length: 1001\r\n\r\n"), 413);
  EXPECT_EQ(outcome(post + "Transfer-Encoding: chunked\r\n\r\n" + chunked(std::string(1001, 'a'), 100)), 413);
  EXPECT_EQ(outcome(post + "Transfer-Encoding: chunked\r\n\r\nFFFFFFFF\r\n"), 413);  // announced
  const std::string bomb = deflate_bytes(std::string(1 << 20, ' '), 16 + MAX_WBITS);
  EXPECT_EQ(outcome(post + "Content-Encoding: gzip\r\nContent-Length: " + std::to_string(bomb.size()) + "\r\n\r\n" + bomb), 413);
  EXPECT_EQ(outcome(post + "Content-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(bomb, 50)), 413);
  EXPECT_EQ(outcome(post + "X-Big: " + std::string(300, 'a') + "\r\n\r\n"), 431);
  EXPECT_EQ(outcome("GET /" + std::string(1 << 16, 'a')), 431);  // no end of line at all
  EXPECT_EQ(outcome(post + "A: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\nE: 1\r\n\r\n"), 431);
  EXPECT_EQ(outcome(post + "Transfer-Encoding: chunked\r\n\r\n0\r\n" + std::string(300, 'x') + "\r\n\r\n"), 431);
  // Framing without data (a chunk of one byte at a time) is bounded too.
  std::string tiny;
  for (int i = 0; i < 3000; ++i) tiny += "1;" + std::string(100, 'e') + "\r\n \r\n";
  EXPECT_EQ(outcome(post + "Transfer-Encoding: chunked\r\n\r\n" + tiny), 413);
}

TEST(HttpRequest, MalformedRequestsAreRefused) {
  auto outcome = [](const std::string& wire) {
    RequestReader r;
    feed_split(r, wire, 1);
    return r.error_status();
  };
  EXPECT_EQ(outcome("garbage\r\n\r\n"), 400);
  EXPECT_EQ(outcome("GET / HTTP/2.0\r\n\r\n"), 505);
  EXPECT_EQ(outcome("GET http://x/ HTTP/1.1\r\n\r\n"), 400);
  EXPECT_EQ(outcome("GET /%zz HTTP/1.1\r\n\r\n"), 400);
  EXPECT_EQ(outcome("GET /?a=%4 HTTP/1.1\r\n\r\n"), 400);
  EXPECT_EQ(outcome("G(T / HTTP/1.1\r\n\r\n"), 400);
  EXPECT_EQ(outcome("GET / HTTP/1.1\r\nNo colon\r\n\r\n"), 400);
  EXPECT_EQ(outcome("GET / HTTP/1.1\r\nA: 1\r\n folded\r\n\r\n"), 400);
  EXPECT_EQ(outcome("POST / HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n"), 400);
  EXPECT_EQ(outcome("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"), 400);
  EXPECT_EQ(outcome("POST / HTTP/1.1\r\nContent-Length: 1, 2\r\n\r\n"), 400);
  EXPECT_EQ(outcome("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"), 501);
  EXPECT_EQ(outcome("POST / HTTP/1.1\r\nContent-Encoding: br\r\n\r\n"), 415);
  EXPECT_EQ(outcome("POST / HTTP/1.1\r\nExpect: something\r\n\r\n"), 417);
  EXPECT_EQ(outcome("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"), 400);
  EXPECT_EQ(outcome("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n"), 400);
  EXPECT_EQ(outcome("POST / HTTP/1.1\r\nContent-Encoding: gzip\r\nContent-Length: 4\r\n\r\nabcd"), 400);
  // A gzip body cut short is an error, not a shorter body.
  const std::string gz = deflate_bytes(kBody, 16 + MAX_WBITS);
  EXPECT_EQ(outcome("POST / HTTP/1.1\r\nContent-Encoding: gzip\r\nContent-Length: 10\r\n\r\n" + gz.substr(0, 10)), 400);
}

TEST(HttpRequest, IdleConnectionHasNotStarted) {
  RequestReader r;
  EXPECT_FALSE(r.started());
  EXPECT_EQ(r.feed(""), State::kNeedMore);
  EXPECT_FALSE(r.started());
  EXPECT_EQ(r.feed("GET"), State::kNeedMore);
  EXPECT_TRUE(r.started());
}

}  // namespace
}  // namespace reslens::server
