// The sockets of `reslens serve` (see http_server.h for why they are not a library's).
//
// One I/O thread polls the listening socket and every connection that is still sending its request,
// without blocking, each against its own whole-request deadline. A complete request goes to a queue
// that `http_threads` workers take from; a worker runs Api::handle, writes the reply (bounded by its own
// deadline) and hands the connection back to the I/O thread, which closes it after draining what the
// client still sends (so the reply is not lost to a reset). Every reply closes its connection:
// clients of a local API lose little by it, and an idle keep-alive connection can hold nothing.
#include "server/http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstring>
#include <deque>
#include <list>
#include <mutex>
#include <thread>

#include "reslens/error.h"
#include "server/http_request.h"

namespace reslens::server {

namespace {

using Clock = std::chrono::steady_clock;

// SIGINT and SIGTERM write a byte to this pipe (all a handler may safely do, on whatever thread the
// signal lands: libraries such as OpenBLAS start threads of their own before main); the I/O thread
// polls it and stops.
int g_stop_pipe[2] = {-1, -1};

extern "C" void on_stop_signal(int) {
  const char byte = 1;
  [[maybe_unused]] const ssize_t n = write(g_stop_pipe[1], &byte, 1);
}

Clock::time_point after(double seconds) {
  return Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

int ms_until(Clock::time_point t) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t - Clock::now()).count();
  return static_cast<int>(std::clamp<int64_t>(ms, 0, 60000));
}

std::string serialize(const Reply& reply, bool head_only) {
  std::string out = "HTTP/1.1 " + std::to_string(reply.status) + " " + http_reason(reply.status) + "\r\n";
  out += "Content-Type: " + reply.content_type + "\r\n";
  out += "Content-Length: " + std::to_string(reply.body.size()) + "\r\n";
  out += "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n";
  if (!head_only) out += reply.body;
  return out;
}

// Writes all of `data` to a non-blocking socket before `deadline`; false when the client went away
// or was too slow to read.
bool write_all(int fd, std::string_view data, Clock::time_point deadline) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN)) {
      if (Clock::now() >= deadline) return false;
      pollfd p{fd, POLLOUT, 0};
      if (::poll(&p, 1, ms_until(deadline)) < 0 && errno != EINTR) return false;
      continue;
    }
    return false;
  }
  return true;
}

// A best-effort reply from the I/O thread (an error before the request was complete): what the
// socket's buffer takes now, never waiting.
void send_now(int fd, const Reply& reply) {
  const std::string s = serialize(reply, false);
  [[maybe_unused]] const ssize_t n = ::send(fd, s.data(), s.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

int listen_socket(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  if (::getaddrinfo(host.c_str(), service.c_str(), &hints, &found) != 0 || found == nullptr) {
    throw IoError("cannot listen on " + host + ":" + service + " (not an address of this machine)");
  }
  int err = 0;
  int fd = -1;
  for (addrinfo* a = found; a != nullptr && fd < 0; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
    if (fd < 0) {
      err = errno;
      continue;
    }
    // SO_REUSEADDR lets a restarted server bind while old connections linger in TIME_WAIT; it does
    // not let two servers listen on one port (SO_REUSEPORT would, and is not set).
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, a->ai_addr, a->ai_addrlen) != 0 || ::listen(fd, SOMAXCONN) != 0) {
      err = errno;
      ::close(fd);
      fd = -1;
    }
  }
  ::freeaddrinfo(found);
  if (fd < 0) {
    throw IoError("cannot listen on " + host + ":" + service + " (" +
                  (err == EADDRINUSE ? std::string("in use") : std::string(std::strerror(err))) + ")");
  }
  return fd;
}

int bound_port(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return -1;
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return -1;
}

// A connection while the I/O thread holds it: reading its request, or draining before the close.
struct Connection {
  int fd = -1;
  Clock::time_point deadline;
  std::unique_ptr<RequestReader> reader;  ///< null: draining
};

// A complete request on its way to a worker.
struct Ready {
  int fd;
  HttpRequest request;
};

class Server {
 public:
  Server(Api& api, const HttpOptions& options, int listen_fd) : api_(api), options_(options), listen_fd_(listen_fd) {
    limits_.max_body_bytes = api.options().max_body_bytes;
    // Every connection is a descriptor: keep well inside the process's limit.
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
      const size_t room = rl.rlim_cur > 128 ? static_cast<size_t>(rl.rlim_cur) - 128 : 16;
      options_.max_connections = std::min(options_.max_connections, room);
    }
    if (::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) throw IoError("cannot create a pipe for the server's threads");
  }
  ~Server() {
    for (const int fd : wake_) ::close(fd);
  }

  void run() {
    for (int i = 0; i < std::max(1, options_.http_threads); ++i) workers_.emplace_back([this] { work(); });
    io_loop();
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
    for (auto& r : ready_) ::close(r.fd);
    for (auto& c : conns_) ::close(c.fd);
    for (const int fd : returned_) ::close(fd);
  }

 private:
  void io_loop() {
    std::vector<pollfd> fds;
    char buf[16384];
    while (true) {
      take_returned();
      fds.clear();
      fds.push_back({g_stop_pipe[0], POLLIN, 0});
      fds.push_back({wake_[0], POLLIN, 0});
      fds.push_back({listen_fd_, POLLIN, 0});
      Clock::time_point next = after(60);
      for (const Connection& c : conns_) {
        fds.push_back({c.fd, POLLIN, 0});
        next = std::min(next, c.deadline);
      }
      const int rc = ::poll(fds.data(), fds.size(), ms_until(next) + 1);
      if (rc < 0 && errno != EINTR) return;
      if (fds[0].revents != 0) return;  // SIGINT / SIGTERM
      if (fds[1].revents != 0) {
        while (::read(wake_[0], buf, sizeof buf) > 0) {
        }
      }
      if (fds[2].revents != 0) accept_all();

      // Connections, in the order polled (conns_ may have grown by accept_all: those wait a round).
      const auto now = Clock::now();
      size_t i = 3;
      for (auto it = conns_.begin(); it != conns_.end() && i < fds.size(); ++i) {
        Connection& c = *it;
        bool close_now = false;
        if (fds[i].revents != 0) close_now = read_from(c, buf, sizeof buf);
        if (!close_now && c.fd >= 0 && now >= c.deadline) {
          if (c.reader && c.reader->started()) {
            send_now(c.fd, error_reply(408, "the request did not arrive within " +
                                                std::to_string(static_cast<int>(options_.request_timeout_s)) + " s"));
          }
          close_now = true;
        }
        if (close_now && c.fd >= 0) {
          ::close(c.fd);
          c.fd = -1;
        }
        it = c.fd < 0 ? conns_.erase(it) : std::next(it);
      }
    }
  }

  // Reads what a connection has; true when it should be closed now. A complete request leaves the
  // I/O thread (c.fd becomes -1 without a close).
  bool read_from(Connection& c, char* buf, size_t size) {
    while (true) {
      const ssize_t n = ::recv(c.fd, buf, size, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN)) return false;
      if (n <= 0) return true;  // the client closed (or reset) the connection
      if (!c.reader) continue;  // draining: discard
      switch (c.reader->feed(std::string_view(buf, static_cast<size_t>(n)))) {
        case RequestReader::State::kNeedMore: break;
        case RequestReader::State::kWantContinue: {
          static constexpr char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
          [[maybe_unused]] const ssize_t w = ::send(c.fd, kContinue, sizeof kContinue - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
          break;
        }
        case RequestReader::State::kFailed:
          send_now(c.fd, error_reply(c.reader->error_status(), c.reader->error_message()));
          start_draining(c);
          break;
        case RequestReader::State::kDone: {
          Ready r{c.fd, std::move(c.reader->request())};
          bool queued = false;
          {
            std::lock_guard lock(mu_);
            if (ready_.size() < options_.max_queued) {
              ready_.push_back(std::move(r));
              queued = true;
            }
          }
          if (queued) {
            ++handed_off_;
            cv_.notify_one();
            c.fd = -1;  // the worker's now
            return false;
          }
          send_now(c.fd, error_reply(503, "busy: " + std::to_string(options_.max_queued) +
                                              " requests are waiting for a thread; try again shortly"));
          start_draining(c);
          break;
        }
      }
    }
  }

  // After a reply: stop sending, then read and discard for a moment so the client receives the reply
  // instead of a reset (closing a socket with unread bytes resets it).
  void start_draining(Connection& c) {
    ::shutdown(c.fd, SHUT_WR);
    c.reader.reset();
    c.deadline = after(2);
  }

  void accept_all() {
    while (true) {
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        return;  // EAGAIN, or out of descriptors (the pending connection waits in the backlog)
      }
      if (conns_.size() + handed_off_ >= options_.max_connections) {
        send_now(fd, error_reply(503, "busy: " + std::to_string(options_.max_connections) + " connections are open"));
        ::close(fd);
        continue;
      }
      conns_.push_back({fd, after(options_.request_timeout_s), std::make_unique<RequestReader>(limits_)});
    }
  }

  // Connections whose reply a worker wrote come back here to be drained and closed.
  void take_returned() {
    std::vector<int> back;
    {
      std::lock_guard lock(mu_);
      back.swap(returned_);
    }
    for (const int fd : back) {
      --handed_off_;
      Connection c{fd, {}, nullptr};
      start_draining(c);
      conns_.push_back(std::move(c));
    }
  }

  void work() {
    while (true) {
      Ready r;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return stopping_ || !ready_.empty(); });
        if (stopping_) return;
        r = std::move(ready_.front());
        ready_.pop_front();
      }
      Request q;
      q.method = r.request.method;
      q.path = r.request.path;
      q.query = std::move(r.request.query);
      q.headers = std::move(r.request.headers);
      q.body = std::move(r.request.body);
      Reply reply;
      try {
        reply = api_.handle(q);
      } catch (const std::exception&) {
        reply = error_reply(500, "internal error");
      }
      write_all(r.fd, serialize(reply, q.method == "HEAD"), after(options_.write_timeout_s));
      {
        std::lock_guard lock(mu_);
        returned_.push_back(r.fd);
      }
      const char byte = 1;
      [[maybe_unused]] const ssize_t n = ::write(wake_[1], &byte, 1);
    }
  }

  Api& api_;
  HttpOptions options_;
  HttpLimits limits_;
  int listen_fd_;
  int wake_[2] = {-1, -1};  ///< workers wake the I/O thread when they return a connection
  std::list<Connection> conns_;  ///< the I/O thread's only

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Ready> ready_;
  std::vector<int> returned_;
  std::atomic<size_t> handed_off_ = 0;  ///< connections queued for, or held by, a worker
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace

void serve_http(Api& api, const HttpOptions& options, const std::function<void(int port)>& on_listening) {
  const int listen_fd = listen_socket(options.host, options.port);
  if (::pipe2(g_stop_pipe, O_CLOEXEC) != 0) {
    ::close(listen_fd);
    throw IoError("cannot create a pipe for the stop signals");
  }
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  struct sigaction old_int {}, old_term {};
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  {
    Server server(api, options, listen_fd);
    on_listening(bound_port(listen_fd));
    server.run();
  }
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  ::close(listen_fd);
  ::close(g_stop_pipe[0]);
  ::close(g_stop_pipe[1]);
  g_stop_pipe[0] = g_stop_pipe[1] = -1;
}

}  // namespace reslens::server
