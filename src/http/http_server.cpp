#include "http/http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cerrno>
#include <cstring>
#include <optional>
#include <stdexcept>

#include "common/listen_socket.h"

namespace inferd::http {
namespace {

namespace bhttp = boost::beast::http;
using SteadyClock = std::chrono::steady_clock;

constexpr size_t kReadChunk = 16384;

const char* Reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 413:
      return "Content Too Large";
    case 415:
      return "Unsupported Media Type";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 499:
      return "Client Closed Request";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Unknown";
  }
}

std::string Head(int status, bool keep_alive, const HttpHeaders& extra) {
  std::string h = "HTTP/1.1 " + std::to_string(status) + " " + Reason(status) + "\r\n";
  for (const auto& [k, v] : extra) h += k + ": " + v + "\r\n";
  h += keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n";
  return h;
}

// Splits "host:port" / "[v6]:port"; throws on a malformed address.
int64_t MsLeft(SteadyClock::time_point deadline) {
  return std::max<int64_t>(
      0, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now()).count());
}

// Why reading a request stopped without one.
enum class ReadEnd { kRequest, kClosed, kIdle, kTimeout, kHeaderTooLarge, kBodyTooLarge, kMalformed };

}  // namespace

const std::string& HttpRequest::header(const std::string& name) const {
  static const std::string kEmpty;
  const auto it = headers.find(name);
  return it == headers.end() ? kEmpty : it->second;
}

bool HttpExchange::SendAll(const std::string& data) {
  if (failed_) return false;
  size_t sent = 0;
  while (sent < data.size()) {
    const ssize_t n = send(fd_, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      failed_ = true;  // peer gone, or it stopped reading for longer than the send timeout
      return false;
    }
    sent += static_cast<size_t>(n);
  }
  return true;
}

bool HttpExchange::WriteRaw(const std::string& data) {
  return SendAll(data);
}

bool HttpExchange::Send(int status, const std::string& content_type, const std::string& body,
                        const HttpHeaders& extra) {
  responded_ = true;
  std::string r = Head(status, keep_alive_, extra);
  r += "Content-Type: " + content_type + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n";
  r += body;
  return SendAll(r);
}

bool HttpExchange::StartStream(int status, const std::string& content_type, const HttpHeaders& extra) {
  responded_ = true;
  streaming_ = true;
  std::string r = Head(status, keep_alive_, extra);
  r += "Content-Type: " + content_type + "\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n";
  return SendAll(r);
}

bool HttpExchange::WriteChunk(const std::string& data) {
  if (data.empty()) return !failed_;
  char size[24];
  std::snprintf(size, sizeof(size), "%zx\r\n", data.size());
  return SendAll(size + data + "\r\n");
}

void HttpExchange::FinishStream() {
  if (streaming_) SendAll("0\r\n\r\n");
}

bool HttpExchange::ClientGone() const {
  if (failed_) return true;
  pollfd p{fd_, POLLRDHUP, 0};
  if (poll(&p, 1, 0) < 0) return false;
  return (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

HttpServer::HttpServer(const HttpConfig& config, HttpHandlers handlers)
    : config_(config), handlers_(std::move(handlers)) {
  const ListeningSocket sock = Listen(config.address, "http.address", 128);
  listen_fd_ = sock.fd;
  port_ = sock.port;
  if (pipe2(wake_fd_, O_CLOEXEC) != 0) {
    close(listen_fd_);
    throw std::runtime_error(std::string("http: pipe: ") + std::strerror(errno));
  }
  acceptor_ = std::thread([this] { AcceptLoop(); });
}

HttpServer::~HttpServer() {
  Shutdown(SteadyClock::now());
  close(wake_fd_[0]);
  close(wake_fd_[1]);
}

void HttpServer::Refuse(int fd, int status, const std::string& message) {
  HttpExchange ex(fd, false);
  ex.Send(status, "application/json", handlers_.error_body(status, message));
}

void HttpServer::AcceptLoop() {
  for (;;) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_fd_[0], POLLIN, 0}};
    const int rc = poll(fds, 2, 1000);
    if (stopping_.load()) return;
    if (fds[1].revents & POLLIN) {
      char drain[64];
      if (read(wake_fd_[0], drain, sizeof drain) < 0) spdlog::debug("http: wake pipe: {}", std::strerror(errno));
    }
    Reap(false);
    if (rc <= 0 || !(fds[0].revents & POLLIN)) continue;
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    // A client that stops reading cannot hold a thread in send() for longer than this.
    timeval tv{static_cast<time_t>(config_.idle_timeout_ms / 1000),
               static_cast<suseconds_t>(static_cast<int64_t>(config_.idle_timeout_ms) % 1000 * 1000)};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (active_.load() >= config_.max_connections) {
      Refuse(
          fd, 503,
          "too many connections (http.max_connections = " + std::to_string(config_.max_connections) + "); retry later");
      close(fd);
      continue;
    }
    auto conn = std::make_unique<Connection>();
    conn->fd = fd;
    Connection* c = conn.get();
    active_.fetch_add(1);
    std::lock_guard<std::mutex> lock(mu_);
    conns_.push_back(std::move(conn));
    c->thread = std::thread([this, c] { Serve(c); });
  }
}

void HttpServer::Reap(bool all) {
  std::list<std::unique_ptr<Connection>> finished;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = conns_.begin(); it != conns_.end();) {
      if (all || (*it)->done.load()) {
        finished.push_back(std::move(*it));
        it = conns_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& c : finished) {
    if (c->thread.joinable()) c->thread.join();
    close(c->fd);
  }
}

void HttpServer::Shutdown(SteadyClock::time_point deadline) {
  if (stopping_.exchange(true)) return;
  const char b = 1;
  if (write(wake_fd_[1], &b, 1) != 1) spdlog::warn("http: cannot wake the accept thread");
  if (acceptor_.joinable()) acceptor_.join();
  close(listen_fd_);
  // Idle keep-alive connections close now; busy ones get until the deadline.
  for (;;) {
    bool busy = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& c : conns_) {
        if (c->done.load()) continue;
        if (c->busy.load() && SteadyClock::now() < deadline) {
          busy = true;
        } else {
          shutdown(c->fd, SHUT_RDWR);
        }
      }
    }
    if (!busy) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& c : conns_) shutdown(c->fd, SHUT_RDWR);
  }
  Reap(true);
}

void HttpServer::Serve(Connection* conn) {
  const int fd = conn->fd;
  std::string pending;  // bytes received and not yet parsed (a pipelined next request)
  auto idle_ms = static_cast<int64_t>(config_.idle_timeout_ms);
  auto read_ms = static_cast<int64_t>(config_.read_timeout_ms);
  for (;;) {
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(config_.max_header_bytes));
    parser.body_limit(static_cast<std::uint64_t>(config_.max_body_bytes));
    parser.eager(true);
    std::optional<SteadyClock::time_point> read_deadline;  // set at the request's first byte
    bool sent_continue = false;
    ReadEnd end = ReadEnd::kRequest;
    for (;;) {
      if (!pending.empty()) {
        if (!read_deadline) {
          read_deadline = SteadyClock::now() + std::chrono::milliseconds(read_ms);
          conn->busy.store(true);
        }
        boost::beast::error_code ec;
        const size_t used = parser.put(boost::asio::buffer(pending.data(), pending.size()), ec);
        pending.erase(0, used);
        if (ec == bhttp::error::header_limit) {
          end = ReadEnd::kHeaderTooLarge;
          break;
        }
        if (ec == bhttp::error::body_limit) {
          end = ReadEnd::kBodyTooLarge;
          break;
        }
        if (ec && ec != bhttp::error::need_more) {
          end = ReadEnd::kMalformed;
          break;
        }
        if (parser.is_done()) break;
        // curl and others wait for this before sending a large body.
        if (parser.is_header_done() && !sent_continue) {
          sent_continue = true;
          const auto expect = parser.get().find(bhttp::field::expect);
          if (expect != parser.get().end() && boost::beast::iequals(expect->value(), "100-continue")) {
            HttpExchange(fd, true).WriteRaw("HTTP/1.1 100 Continue\r\n\r\n");
          }
        }
        if (!ec && used > 0) continue;
      }
      if (stopping_.load() && !read_deadline) {
        end = ReadEnd::kClosed;
        break;
      }
      const int64_t wait_ms = read_deadline ? MsLeft(*read_deadline) : idle_ms;
      pollfd p{fd, POLLIN, 0};
      const int rc = poll(&p, 1, static_cast<int>(std::min<int64_t>(wait_ms, 1 << 30)));
      if (rc < 0 && errno == EINTR) continue;
      if (rc == 0) {
        end = read_deadline ? ReadEnd::kTimeout : ReadEnd::kIdle;
        break;
      }
      char buf[kReadChunk];
      const ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        end = ReadEnd::kClosed;
        break;
      }
      pending.append(buf, static_cast<size_t>(n));
    }
    if (end != ReadEnd::kRequest) {
      switch (end) {
        case ReadEnd::kTimeout:
          Refuse(fd, 408, "request not received within http.read_timeout_ms (" + std::to_string(read_ms) + " ms)");
          break;
        case ReadEnd::kHeaderTooLarge:
          Refuse(fd, 431,
                 "request head exceeds http.max_header_bytes (" + std::to_string(config_.max_header_bytes) + " bytes)");
          break;
        case ReadEnd::kBodyTooLarge:
          Refuse(fd, 413,
                 "request body exceeds http.max_body_bytes (" + std::to_string(config_.max_body_bytes) + " bytes)");
          break;
        case ReadEnd::kMalformed:
          Refuse(fd, 400, "malformed HTTP request");
          break;
        default:
          break;
      }
      break;
    }

    auto& msg = parser.get();
    HttpRequest req;
    req.method = std::string(msg.method_string());
    const std::string_view target(msg.target().data(), msg.target().size());
    req.path = std::string(target.substr(0, target.find('?')));
    for (const auto& field : msg) {
      std::string name(field.name_string());
      std::transform(name.begin(), name.end(), name.begin(), [](unsigned char ch) { return std::tolower(ch); });
      req.headers[name] = std::string(field.value());
    }
    req.body = std::move(msg.body());
    HttpExchange ex(fd, msg.keep_alive() && !stopping_.load());
    try {
      handlers_.handle(req, ex);
      if (!ex.responded()) ex.Send(500, "application/json", handlers_.error_body(500, "no response"));
    } catch (const std::exception& e) {
      spdlog::error("http: {} {}: {}", req.method, req.path, e.what());
      if (!ex.responded()) ex.Send(500, "application/json", handlers_.error_body(500, "internal error"));
    }
    ex.FinishStream();
    conn->busy.store(false);
    if (!ex.keep_alive() || stopping_.load()) break;
  }
  // The client sees the end now; the fd is closed by Reap after the join, so Shutdown never touches a
  // reused descriptor.
  shutdown(fd, SHUT_RDWR);
  active_.fetch_sub(1);
  conn->done.store(true);
  const char b = 1;
  if (write(wake_fd_[1], &b, 1) != 1) spdlog::debug("http: cannot wake the accept thread");
}

}  // namespace inferd::http
