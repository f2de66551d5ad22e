// bench_http: the OpenAI HTTP front end against gRPC for the same work, on one daemon run.sh starts.
//   --mode overhead: the same call through gRPC (C++ stub) and HTTP (a keep-alive HTTP/1.1 client on a raw
//                    socket, so no client library cost), alternating so both see the same machine load.
//                    Calls: a Generate rejected in validation (top_p 1.5: front end only, no model time),
//                    a 1-token Generate, and a Recommend of 8 candidates (HTTP: /v1/rerank; gRPC: the same
//                    context and candidates, PLAIN, score_by_mean, top_k 5). Added = HTTP - gRPC per percentile.
//   --mode stream:   16 (--streams) concurrent streamed Generates of --tokens tokens each (ignore_eos,
//                    greedy): gRPC GenerateStream against POST /v1/completions with stream: true; tokens/s =
//                    all tokens / wall time of the round. --rounds rounds of each, alternating which goes first.
// Prints one JSON object per line.
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "inferd/v1/inferd.grpc.pb.h"

namespace {

using Clock = std::chrono::steady_clock;
namespace v1 = inferd::v1;

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  const size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
  return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
}

template <typename F>
double TimeUs(F&& f) {
  const auto t0 = Clock::now();
  f();
  return std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
}

// A keep-alive HTTP/1.1 connection to 127.0.0.1:port. Post() returns the status; the body (for chunked
// responses, the de-chunked body) goes to *body.
class HttpConn {
 public:
  explicit HttpConn(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) throw std::runtime_error("connect failed");
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ~HttpConn() { close(fd_); }

  int Post(const std::string& path, const std::string& json, std::string* body) {
    const std::string req =
        "POST " + path +
        " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(json.size()) +
        "\r\n\r\n" + json;
    for (size_t sent = 0; sent < req.size();) {
      const ssize_t n = send(fd_, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) throw std::runtime_error("send failed");
      sent += static_cast<size_t>(n);
    }
    size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos) Fill();
    const std::string head = buf_.substr(0, end);
    buf_.erase(0, end + 4);
    const int status = std::stoi(head.substr(9, 3));
    body->clear();
    std::string lower = head;
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
    const size_t cl = lower.find("content-length: ");
    if (cl != std::string::npos) {
      const size_t len = std::stoul(lower.substr(cl + 16));
      while (buf_.size() < len) Fill();
      *body = buf_.substr(0, len);
      buf_.erase(0, len);
      return status;
    }
    for (;;) {  // chunked
      size_t line;
      while ((line = buf_.find("\r\n")) == std::string::npos) Fill();
      const size_t len = std::stoul(buf_.substr(0, line), nullptr, 16);
      while (buf_.size() < line + 2 + len + 2) Fill();
      body->append(buf_, line + 2, len);
      buf_.erase(0, line + 2 + len + 2);
      if (len == 0) return status;
    }
  }

 private:
  void Fill() {
    char tmp[65536];
    const ssize_t n = recv(fd_, tmp, sizeof tmp, 0);
    if (n <= 0) throw std::runtime_error("connection closed");
    buf_.append(tmp, static_cast<size_t>(n));
  }

  int fd_ = -1;
  std::string buf_;
};

const char* kPrompt = "Write a product description for a blue ceramic mug:";
const char* kItems[] = {" a sleeping bag", " a stove", " a lamp", " socks",
                        " a tent peg",     " a map",   " a rope", " a torch"};

void PrintLatency(const char* what, const std::vector<double>& grpc_us, const std::vector<double>& http_us) {
  const double g50 = Percentile(grpc_us, 50), g99 = Percentile(grpc_us, 99);
  const double h50 = Percentile(http_us, 50), h99 = Percentile(http_us, 99);
  std::printf(
      "{\"mode\": \"overhead\", \"what\": \"%s\", \"count\": %zu, \"grpc_p50_us\": %.1f, \"http_p50_us\": %.1f, "
      "\"added_p50_us\": %.1f, \"grpc_p99_us\": %.1f, \"http_p99_us\": %.1f, \"added_p99_us\": %.1f}\n",
      what, grpc_us.size(), g50, h50, h50 - g50, g99, h99, h99 - g99);
  std::fflush(stdout);
}

void Overhead(v1::Inference::Stub& stub, int http_port, int count) {
  HttpConn http(http_port);
  std::string body;
  auto check = [](bool ok, const char* what) {
    if (!ok) throw std::runtime_error(std::string("unexpected answer: ") + what);
  };
  {
    v1::GenerateRequest g;
    g.set_prompt(kPrompt);
    g.mutable_sampling()->set_top_p(1.5f);
    const std::string j = std::string(R"({"prompt": ")") + kPrompt + R"(", "top_p": 1.5})";
    std::vector<double> gu, hu;
    for (int i = 0; i < count; ++i) {
      gu.push_back(TimeUs([&] {
        grpc::ClientContext ctx;
        v1::GenerateResponse r;
        check(stub.Generate(&ctx, g, &r).error_code() == grpc::StatusCode::INVALID_ARGUMENT, "grpc rejected");
      }));
      hu.push_back(TimeUs([&] { check(http.Post("/v1/completions", j, &body) == 400, "http rejected"); }));
    }
    PrintLatency("Generate rejected in validation", gu, hu);
  }
  {
    v1::GenerateRequest g;
    g.set_prompt(kPrompt);
    g.mutable_sampling()->set_max_tokens(1);
    g.mutable_sampling()->set_ignore_eos(true);
    const std::string j =
        std::string(R"({"prompt": ")") + kPrompt + R"(", "max_tokens": 1, "temperature": 0, "ignore_eos": true})";
    std::vector<double> gu, hu;
    for (int i = 0; i < count / 5; ++i) {
      gu.push_back(TimeUs([&] {
        grpc::ClientContext ctx;
        v1::GenerateResponse r;
        check(stub.Generate(&ctx, g, &r).ok(), "grpc generate");
      }));
      hu.push_back(TimeUs([&] { check(http.Post("/v1/completions", j, &body) == 200, "http generate"); }));
    }
    PrintLatency("Generate, 1 token", gu, hu);
  }
  {
    std::vector<double> gu, hu;
    for (int i = 0; i < count / 5; ++i) {
      // A fresh context each call (no prefix-cache hits), of the same token length on both paths.
      std::string docs;
      v1::RecommendRequest r;
      for (uint64_t k = 0; k < 8; ++k) {
        auto* c = r.add_candidates();
        c->set_item_id(k);
        c->set_text(kItems[k]);
        docs += std::string(k ? ", " : "") + "\"" + kItems[k] + "\"";
      }
      r.set_top_k(5);
      r.set_score_by_mean(true);
      r.set_context("Order g" + std::to_string(i) + ": I bought a tent and");
      const std::string j = R"({"query": "Order h)" + std::to_string(i) + R"(: I bought a tent and", "documents": [)" +
                            docs + R"(], "top_n": 5})";
      gu.push_back(TimeUs([&] {
        grpc::ClientContext ctx;
        v1::RecommendResponse resp;
        check(stub.Recommend(&ctx, r, &resp).ok(), "grpc recommend");
      }));
      hu.push_back(TimeUs([&] { check(http.Post("/v1/rerank", j, &body) == 200, "http rerank"); }));
    }
    PrintLatency("Recommend / rerank, 8 candidates", gu, hu);
  }
}

double GrpcStreamRound(const std::string& address, int streams, int tokens) {
  std::vector<std::thread> threads;
  std::vector<int> got(static_cast<size_t>(streams), 0);
  const auto t0 = Clock::now();
  for (int s = 0; s < streams; ++s) {
    threads.emplace_back([&, s] {
      auto stub = v1::Inference::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
      v1::GenerateRequest g;
      g.set_prompt(std::string(kPrompt) + " #" + std::to_string(s));
      g.mutable_sampling()->set_max_tokens(tokens);
      g.mutable_sampling()->set_ignore_eos(true);
      grpc::ClientContext ctx;
      auto reader = stub->GenerateStream(&ctx, g);
      v1::GenerateDelta d;
      while (reader->Read(&d)) got[static_cast<size_t>(s)] += d.tokens_size();
      if (!reader->Finish().ok()) got[static_cast<size_t>(s)] = -1;
    });
  }
  for (auto& t : threads) t.join();
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  int total = 0;
  for (int g : got) {
    if (g != tokens) throw std::runtime_error("a gRPC stream did not produce all its tokens");
    total += g;
  }
  return total / secs;
}

double HttpStreamRound(int port, int streams, int tokens) {
  std::vector<std::thread> threads;
  std::vector<int> got(static_cast<size_t>(streams), 0);
  const auto t0 = Clock::now();
  for (int s = 0; s < streams; ++s) {
    threads.emplace_back([&, s] {
      HttpConn http(port);
      std::string body;
      const std::string j = std::string(R"({"prompt": ")") + kPrompt + " #" + std::to_string(s) +
                            R"(", "max_tokens": )" + std::to_string(tokens) +
                            R"(, "temperature": 0, "ignore_eos": true, "stream": true,
                               "stream_options": {"include_usage": true}})";
      if (http.Post("/v1/completions", j, &body) != 200) return;
      const std::string key = "\"completion_tokens\":";
      const size_t at = body.rfind(key);
      if (at != std::string::npos && body.find("data: [DONE]") != std::string::npos) {
        got[static_cast<size_t>(s)] = std::stoi(body.substr(at + key.size()));
      }
    });
  }
  for (auto& t : threads) t.join();
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  int total = 0;
  for (int g : got) {
    if (g != tokens) throw std::runtime_error("an HTTP stream did not produce all its tokens");
    total += g;
  }
  return total / secs;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_http: HTTP front end against gRPC"};
  std::string mode = "overhead", grpc_address;
  int http_port = 0, count = 1000, streams = 16, tokens = 64, rounds = 3;
  app.add_option("--mode", mode)->check(CLI::IsMember({"overhead", "stream"}));
  app.add_option("--grpc", grpc_address)->required();
  app.add_option("--http-port", http_port)->required();
  app.add_option("--count", count);
  app.add_option("--streams", streams);
  app.add_option("--tokens", tokens);
  app.add_option("--rounds", rounds);
  CLI11_PARSE(app, argc, argv);
  try {
    if (mode == "overhead") {
      auto stub = v1::Inference::NewStub(grpc::CreateChannel(grpc_address, grpc::InsecureChannelCredentials()));
      Overhead(*stub, http_port, count);
      return 0;
    }
    std::vector<double> g, h;
    for (int r = 0; r < rounds; ++r) {
      // Alternating which goes first, so a trend in the machine's load favours neither.
      if (r % 2 == 0) {
        g.push_back(GrpcStreamRound(grpc_address, streams, tokens));
        h.push_back(HttpStreamRound(http_port, streams, tokens));
      } else {
        h.push_back(HttpStreamRound(http_port, streams, tokens));
        g.push_back(GrpcStreamRound(grpc_address, streams, tokens));
      }
      std::printf("{\"mode\": \"stream\", \"round\": %d, \"grpc_tokens_per_s\": %.1f, \"http_tokens_per_s\": %.1f}\n",
                  r, g.back(), h.back());
      std::fflush(stdout);
    }
    const double gm = Percentile(g, 50), hm = Percentile(h, 50);
    std::printf(
        "{\"mode\": \"stream\", \"streams\": %d, \"tokens\": %d, \"rounds\": %d, \"grpc_median_tokens_per_s\": %.1f, "
        "\"http_median_tokens_per_s\": %.1f, \"http_over_grpc\": %.3f}\n",
        streams, tokens, rounds, gm, hm, hm / gm);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_http: %s\n", e.what());
    return 1;
  }
  return 0;
}
