// HttpServer: a small HTTP/1.1 server (Boost.Beast's request parser, our own socket loop) for the
// OpenAI-compatible front end. One thread accepts; each connection gets its own std::thread, started with
// the default pthread attributes, so its stack (RLIMIT_STACK, 8 MiB by default) has room for the static
// TLS of libtorch and the CUDA libraries (see metrics/metrics_server.h for the failure it avoids).
//
// Limits (HttpConfig): request head <= max_header_bytes (431), body <= max_body_bytes (413), at most
// max_connections open connections (the next one gets 503 and is closed), a request's head and body must
// arrive within read_timeout_ms of its first byte (408, then closed: a slowloris client cannot hold a
// thread), and a keep-alive connection idle for idle_timeout_ms is closed. Every error response is built
// by the owner's ErrorBody, so clients see one error shape.
// Threading: the handler runs on the connection's thread, one request at a time per connection.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "inferd/config.h"

namespace inferd::http {

struct HttpRequest {
  std::string method;                          // "GET", "POST", ...
  std::string path;                            // target without the query string
  std::map<std::string, std::string> headers;  // names lower-cased; a repeated header keeps the last value
  std::string body;

  // The header's value, or "" when absent. `name` lower-case.
  const std::string& header(const std::string& name) const;
};

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

// One request's response, written from the handler's thread. Either Send once, or StartStream, any number
// of WriteChunk and then return from the handler (the stream is ended for it).
class HttpExchange {
 public:
  HttpExchange(int fd, bool keep_alive) : fd_(fd), keep_alive_(keep_alive) {}
  HttpExchange(const HttpExchange&) = delete;
  HttpExchange& operator=(const HttpExchange&) = delete;

  // A complete response with Content-Length. Returns false when the client is gone.
  bool Send(int status, const std::string& content_type, const std::string& body, const HttpHeaders& extra = {});
  // A chunked (Transfer-Encoding) response; the body follows in WriteChunk calls.
  bool StartStream(int status, const std::string& content_type, const HttpHeaders& extra = {});
  bool WriteChunk(const std::string& data);
  // Bytes as they are (an interim "100 Continue" response).
  bool WriteRaw(const std::string& data);
  // Whether the client has closed or reset the connection; does not block or read.
  bool ClientGone() const;

  bool responded() const { return responded_; }
  bool streaming() const { return streaming_; }
  bool keep_alive() const { return keep_alive_ && !failed_; }
  // Ends a started stream (the terminating chunk). Called by the server after the handler returns.
  void FinishStream();

 private:
  bool SendAll(const std::string& data);

  const int fd_;
  const bool keep_alive_;
  bool responded_ = false;
  bool streaming_ = false;
  bool failed_ = false;
};

struct HttpHandlers {
  std::function<void(const HttpRequest&, HttpExchange&)> handle;
  // JSON body of an error the server itself answers (400, 408, 413, 431, 503, 500); message says why.
  std::function<std::string(int status, const std::string& message)> error_body;
};

class HttpServer {
 public:
  // Binds config.address and starts accepting. Throws std::runtime_error naming the address when it cannot.
  HttpServer(const HttpConfig& config, HttpHandlers handlers);
  ~HttpServer();  // Shutdown(now)
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const { return port_; }
  // Open connections now.
  int connections() const { return active_.load(); }
  // Stops accepting; requests in flight may finish until `deadline`, then every connection is shut down
  // (handlers see ClientGone and cancel their requests) and joined. Blocks; idempotent.
  void Shutdown(std::chrono::steady_clock::time_point deadline);

 private:
  struct Connection {
    int fd = -1;
    std::thread thread;
    std::atomic<bool> done{false};
    std::atomic<bool> busy{false};  // a request is being read or handled
  };

  void AcceptLoop();
  void Serve(Connection* conn);
  void Reap(bool all);
  void Refuse(int fd, int status, const std::string& message);

  const HttpConfig config_;
  const HttpHandlers handlers_;
  int listen_fd_ = -1;
  int wake_fd_[2] = {-1, -1};
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> active_{0};
  std::mutex mu_;
  std::list<std::unique_ptr<Connection>> conns_;  // guarded by mu_
  std::thread acceptor_;
};

}  // namespace inferd::http
