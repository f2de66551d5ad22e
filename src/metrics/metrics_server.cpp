#include "metrics/metrics_server.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>
#include <prometheus/text_serializer.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "metrics/process_collector.h"

namespace inferd::metrics {
namespace {

constexpr size_t kMaxRequestBytes = 8192;
constexpr int kIoTimeoutMs = 5000;

// Splits "host:port" / "[v6]:port"; throws on a malformed address.
std::pair<std::string, std::string> SplitAddress(const std::string& address) {
  size_t colon = address.rfind(':');
  if (colon == std::string::npos) throw std::runtime_error("metrics.address: expected host:port, got " + address);
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return {host, address.substr(colon + 1)};
}

void SendAll(int fd, const std::string& data) {
  size_t sent = 0;
  while (sent < data.size()) {
    ssize_t n = send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return;
    sent += static_cast<size_t>(n);
  }
}

std::string Response(int code, const char* reason, const std::string& content_type, const std::string& body,
                     bool head_only) {
  std::string r = "HTTP/1.1 " + std::to_string(code) + " " + reason + "\r\nContent-Type: " + content_type +
                  "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n";
  if (!head_only) r += body;
  return r;
}

}  // namespace

MetricsServer::MetricsServer(const std::string& address) : registry_(std::make_shared<prometheus::Registry>()) {
  auto [host, port] = SplitAddress(address);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  if (int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &res); rc != 0) {
    throw std::runtime_error("metrics.address: cannot resolve " + address + " (" + gai_strerror(rc) + ")");
  }
  std::string error = "no usable address";
  for (addrinfo* ai = res; ai != nullptr && listen_fd_ < 0; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) continue;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 64) == 0) {
      listen_fd_ = fd;
      sockaddr_storage bound{};
      socklen_t len = sizeof bound;
      getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
      port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                                : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    } else {
      error = std::strerror(errno);
      close(fd);
    }
  }
  freeaddrinfo(res);
  if (listen_fd_ < 0) throw std::runtime_error("metrics.address: cannot listen on " + address + " (" + error + ")");
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
      int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      HandleConnection(fd);
      close(fd);
    }
  }
}

// One request per connection: read the head (bounded in size and time), answer, close.
void MetricsServer::HandleConnection(int fd) const {
  timeval tv{kIoTimeoutMs / 1000, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  std::string req;
  char buf[1024];
  while (req.find("\r\n\r\n") == std::string::npos && req.find("\n\n") == std::string::npos) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
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
