#include "metrics/metrics_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <prometheus/text_serializer.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "common/listen_socket.h"
#include "metrics/process_collector.h"

namespace inferd::metrics {
namespace {

constexpr size_t kMaxRequestBytes = 8192;
using SteadyClock = std::chrono::steady_clock;

// Splits "host:port" / "[v6]:port"; throws on a malformed address.
struct SslDeleter {
  void operator()(SSL* s) const { SSL_free(s); }
};

// One non-blocking connection, plain or TLS; every operation gives up at its deadline.
class Conn {
 public:
  Conn(int fd, SSL_CTX* ctx) : fd_(fd), tls_wanted_(ctx != nullptr) {
    if (ctx != nullptr) {
      ssl_.reset(SSL_new(ctx));
      if (ssl_) SSL_set_fd(ssl_.get(), fd);
    }
  }

  // TLS handshake (no-op in plaintext).
  bool Handshake(SteadyClock::time_point deadline) {
    if (!ssl_) return !tls_wanted_;
    return Retry(deadline, [&] { return SSL_accept(ssl_.get()); });
  }
  // Some bytes, or <= 0 on EOF, error or deadline.
  ssize_t Read(char* buf, size_t n, SteadyClock::time_point deadline) {
    if (ssl_) {
      int got = 0;
      if (!Retry(deadline, [&] { return got = SSL_read(ssl_.get(), buf, static_cast<int>(n)); })) return -1;
      return got;
    }
    for (;;) {
      ssize_t r = recv(fd_, buf, n, 0);
      if (r >= 0) return r;
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return -1;
      if (!Wait(POLLIN, deadline)) return -1;
    }
  }
  void WriteAll(const std::string& data, SteadyClock::time_point deadline) {
    size_t sent = 0;
    while (sent < data.size()) {
      if (ssl_) {
        int n = 0;
        if (!Retry(deadline, [&] {
              return n = SSL_write(ssl_.get(), data.data() + sent, static_cast<int>(data.size() - sent));
            })) {
          return;
        }
        sent += static_cast<size_t>(n);
        continue;
      }
      ssize_t n = send(fd_, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
      if (n > 0) {
        sent += static_cast<size_t>(n);
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        if (!Wait(POLLOUT, deadline)) return;
      } else {
        return;
      }
    }
    if (ssl_) SSL_shutdown(ssl_.get());
  }

 private:
  bool Wait(short events, SteadyClock::time_point deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd_, events, 0};
    return poll(&p, 1, static_cast<int>(left)) > 0 && (p.revents & (events | POLLHUP | POLLERR));
  }
  // Repeats an SSL call while it wants I/O; true once it returns > 0.
  template <typename F>
  bool Retry(SteadyClock::time_point deadline, F&& op) {
    for (;;) {
      const int r = op();
      if (r > 0) return true;
      const int err = SSL_get_error(ssl_.get(), r);
      ERR_clear_error();
      if (err == SSL_ERROR_WANT_READ) {
        if (!Wait(POLLIN, deadline)) return false;
      } else if (err == SSL_ERROR_WANT_WRITE) {
        if (!Wait(POLLOUT, deadline)) return false;
      } else {
        return false;
      }
    }
  }

  int fd_;
  const bool tls_wanted_;
  std::unique_ptr<SSL, SslDeleter> ssl_;
};

StatusOr<std::shared_ptr<SSL_CTX>> MakeTlsContext(const std::string& cert_file, const std::string& key_file) {
  std::shared_ptr<SSL_CTX> ctx(SSL_CTX_new(TLS_server_method()), SSL_CTX_free);
  if (!ctx) return Internal("metrics.tls: cannot create an OpenSSL context");
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  Status st;
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), cert_file.c_str()) != 1) {
    st = InvalidArgument("metrics.tls.cert_file: " + cert_file + ": cannot read a PEM certificate chain");
  } else if (SSL_CTX_use_PrivateKey_file(ctx.get(), key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    st = InvalidArgument("metrics.tls.key_file: " + key_file + ": cannot read a PEM private key");
  } else if (SSL_CTX_check_private_key(ctx.get()) != 1) {
    st = InvalidArgument("metrics.tls.key_file: " + key_file + " does not match the certificate in " + cert_file);
  }
  ERR_clear_error();
  if (!st.ok()) return st;
  return ctx;
}

std::string Response(int code, const char* reason, const std::string& content_type, const std::string& body,
                     bool head_only) {
  std::string r = "HTTP/1.1 " + std::to_string(code) + " " + reason + "\r\nContent-Type: " + content_type +
                  "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n";
  if (!head_only) r += body;
  return r;
}

}  // namespace

MetricsServer::MetricsServer(const std::string& address, MetricsServerOptions options)
    : options_(std::move(options)), registry_(std::make_shared<prometheus::Registry>()) {
  if (!options_.tls_cert_file.empty()) {
    StatusOr<std::shared_ptr<SSL_CTX>> ctx = MakeTlsContext(options_.tls_cert_file, options_.tls_key_file);
    if (!ctx.ok()) throw std::runtime_error(ctx.status().message());
    tls_ = *std::move(ctx);
  }
  const ListeningSocket sock = Listen(address, "metrics.address", 64);
  listen_fd_ = sock.fd;
  port_ = sock.port;
  if (pipe2(wake_fd_, O_CLOEXEC) != 0) {
    close(listen_fd_);
    throw std::runtime_error(std::string("metrics: pipe: ") + std::strerror(errno));
  }
  Add(registry_);
  Add(std::make_shared<ProcessCollector>(INFERD_VERSION));
  thread_ = std::thread([this] { Serve(); });
}

MetricsServer::~MetricsServer() {
  char b = 1;
  if (write(wake_fd_[1], &b, 1) != 1) spdlog::warn("metrics: cannot wake the server thread");
  if (thread_.joinable()) thread_.join();
  {
    std::unique_lock<std::mutex> lock(conn_mu_);
    for (int fd : open_fds_) shutdown(fd, SHUT_RDWR);  // their threads see EOF or an error and finish
    conn_cv_.wait(lock, [&] { return open_fds_.empty(); });
  }
  close(listen_fd_);
  close(wake_fd_[0]);
  close(wake_fd_[1]);
}

void MetricsServer::Add(std::shared_ptr<prometheus::Collectable> c) {
  std::lock_guard<std::mutex> lock(mu_);
  collectables_.push_back(std::move(c));
}

namespace {
class ConstantGauge : public prometheus::Collectable {
 public:
  ConstantGauge(const std::string& name, const std::string& help, double value) {
    family_ = {name, help, prometheus::MetricType::Gauge, {}};
    family_.metric.emplace_back().gauge.value = value;
  }
  std::vector<prometheus::MetricFamily> Collect() const override { return {family_}; }

 private:
  prometheus::MetricFamily family_;
};
}  // namespace

void MetricsServer::AddConstantGauge(const std::string& name, const std::string& help, double value) {
  Add(std::make_shared<ConstantGauge>(name, help, value));
}

std::string MetricsServer::Render() const {
  std::vector<prometheus::MetricFamily> families;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& c : collectables_) {
      auto f = c->Collect();
      families.insert(families.end(), std::make_move_iterator(f.begin()), std::make_move_iterator(f.end()));
    }
  }
  return prometheus::TextSerializer().Serialize(families);
}

Status MetricsServer::Reload() {
  if (options_.tls_cert_file.empty()) return Status::Ok();
  StatusOr<std::shared_ptr<SSL_CTX>> ctx = MakeTlsContext(options_.tls_cert_file, options_.tls_key_file);
  if (!ctx.ok()) return ctx.status();
  std::lock_guard<std::mutex> lock(tls_mu_);
  tls_ = *std::move(ctx);
  spdlog::info("metrics.tls: reloaded {}", options_.tls_cert_file);
  return Status::Ok();
}

std::shared_ptr<SSL_CTX> MetricsServer::tls_context() const {
  std::lock_guard<std::mutex> lock(tls_mu_);
  return tls_;
}

void MetricsServer::Serve() {
  pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_fd_[0], POLLIN, 0}};
  while (true) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      spdlog::error("metrics: poll: {}", std::strerror(errno));
      return;
    }
    if (fds[1].revents) return;
    if (fds[0].revents & POLLIN) {
      int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd < 0) continue;
      std::unique_lock<std::mutex> lock(conn_mu_);
      if (open_fds_.size() >= static_cast<size_t>(kMaxConnections)) {
        lock.unlock();
        static const std::string busy =
            Response(503, "Service Unavailable", "text/plain", "too many open metrics connections\n", false);
        if (tls_context() == nullptr) send(fd, busy.data(), busy.size(), MSG_NOSIGNAL);
        close(fd);
        continue;
      }
      open_fds_.insert(fd);
      lock.unlock();
      std::thread([this, fd] {
        HandleConnection(fd);
        std::lock_guard<std::mutex> done(conn_mu_);
        close(fd);
        open_fds_.erase(fd);
        conn_cv_.notify_all();
      }).detach();
    }
  }
}

// One request per connection: read the head (bounded in size and, in total, by header_timeout), answer, close.
void MetricsServer::HandleConnection(int fd) {
  const std::shared_ptr<SSL_CTX> ctx = tls_context();
  Conn conn(fd, ctx.get());
  const auto head_deadline = SteadyClock::now() + options_.header_timeout;
  if (!conn.Handshake(head_deadline)) return;
  auto SendAll = [&](int, const std::string& data) {
    conn.WriteAll(data, SteadyClock::now() + options_.write_timeout);
  };
  std::string req;
  char buf[1024];
  while (req.find("\r\n\r\n") == std::string::npos && req.find("\n\n") == std::string::npos) {
    ssize_t n = conn.Read(buf, sizeof buf, head_deadline);
    if (n <= 0) return;
    req.append(buf, static_cast<size_t>(n));
    if (req.size() > kMaxRequestBytes) {
      return SendAll(fd, Response(431, "Request Header Fields Too Large", "text/plain", "request too large\n", false));
    }
  }
  const std::string line = req.substr(0, req.find_first_of("\r\n"));
  const size_t sp1 = line.find(' ');
  const size_t sp2 = line.find(' ', sp1 + 1);
  if (sp1 == std::string::npos || sp2 == std::string::npos) {
    return SendAll(fd, Response(400, "Bad Request", "text/plain", "malformed request line\n", false));
  }
  const std::string method = line.substr(0, sp1);
  std::string target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  target = target.substr(0, target.find('?'));
  const bool head = method == "HEAD";
  if (method != "GET" && !head) {
    return SendAll(fd, Response(405, "Method Not Allowed", "text/plain", "only GET and HEAD\n", false));
  }
  if (target != "/metrics") {
    return SendAll(fd, Response(404, "Not Found", "text/plain", "metrics are at /metrics\n", head));
  }
  SendAll(fd, Response(200, "OK", "text/plain; version=0.0.4; charset=utf-8", Render(), head));
}

}  // namespace inferd::metrics
