// MetricsServer over real loopback sockets: a client that trickles or withholds its request head does not
// block other scrapes, and is closed once the header timeout passes.
#include "metrics/metrics_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

namespace inferd::metrics {
namespace {

int Connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  timeval tv{20, 0};  // a bound for a broken server, far above any expected wait
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

// Everything the server sends until it closes (or the receive bound passes).
std::string ReadAll(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

std::string Scrape(int port) {
  int fd = Connect(port);
  const std::string req = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
  send(fd, req.data(), req.size(), MSG_NOSIGNAL);
  std::string resp = ReadAll(fd);
  close(fd);
  return resp;
}

TEST(MetricsServerTest, SlowClientsDoNotBlockScrapes) {
  MetricsServerOptions opts;
  opts.header_timeout = std::chrono::minutes(5);  // the slow clients stay open for the whole test
  MetricsServer server("127.0.0.1:0", opts);
  server.AddConstantGauge("inferd_test_gauge", "A test gauge.", 7);
  std::vector<int> slow;
  for (int i = 0; i < 8; ++i) {
    slow.push_back(Connect(server.port()));
    send(slow.back(), "GET /met", 8, MSG_NOSIGNAL);  // an unfinished request head
  }
  for (int i = 0; i < 3; ++i) {
    const std::string resp = Scrape(server.port());
    EXPECT_EQ(resp.rfind("HTTP/1.1 200 OK", 0), 0u) << resp.substr(0, 200);
    EXPECT_NE(resp.find("inferd_test_gauge 7"), std::string::npos);
  }
  for (int fd : slow) close(fd);
}

TEST(MetricsServerTest, TricklingClientIsClosedAfterTheHeaderTimeout) {
  MetricsServerOptions opts;
  opts.header_timeout = std::chrono::milliseconds(300);
  MetricsServer server("127.0.0.1:0", opts);
  int fd = Connect(server.port());
  // One byte every 50 ms never completes the head; each byte alone would reset a per-read timeout.
  const std::string head = "GET /metrics HTTP/1.1\r\nX-Pad: " + std::string(400, 'a');
  bool closed = false;
  for (size_t i = 0; i < head.size() && !closed; ++i) {
    if (send(fd, &head[i], 1, MSG_NOSIGNAL) != 1) closed = true;
    char c;
    const ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) closed = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(closed) << "the server still reads a head trickled for 20 s";
  close(fd);
  // The server keeps serving.
  EXPECT_EQ(Scrape(server.port()).rfind("HTTP/1.1 200 OK", 0), 0u);
}

TEST(MetricsServerTest, UnusableTlsFilesNameTheKey) {
  MetricsServerOptions opts;
  opts.tls_cert_file = "/nonexistent/cert.pem";
  opts.tls_key_file = "/nonexistent/key.pem";
  try {
    MetricsServer server("127.0.0.1:0", opts);
    FAIL() << "started with missing TLS files";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("metrics.tls.cert_file: /nonexistent/cert.pem"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace inferd::metrics
