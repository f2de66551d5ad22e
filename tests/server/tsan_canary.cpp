// ThreadSanitizer canary, built only in the TSan build (tests/server/CMakeLists.txt): a real gRPC server on
// loopback whose handler has a deliberate data race, called by concurrent clients. Its ctest passes only if
// TSan, with the project's suppressions (scripts/tsan.supp) active, reports that race with the handler's
// frame on top: the suppressions for Debian's uninstrumented gRPC must not hide races in our own frames.
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "inferd/v1/inferd.grpc.pb.h"

namespace {

class RacyInference final : public inferd::v1::Inference::Service {
 public:
  grpc::Status Generate(grpc::ServerContext*, const inferd::v1::GenerateRequest*,
                        inferd::v1::GenerateResponse* response) override {
    for (int i = 0; i < 1000; ++i) BumpUnsynchronised();
    // The first two calls wait here until both have made their writes, so that in every run two writes from
    // different threads have no ordering between them (gRPC's locks, now visible to TSan, would otherwise
    // order calls that happen not to overlap). Only the atomic comes after the writes.
    entered_.fetch_add(1);
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (entered_.load() < 2 && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    response->set_text("done");
    return grpc::Status::OK;
  }

  // The race: every handler thread increments hits_ with no lock and no atomic.
  __attribute__((noinline)) void BumpUnsynchronised() { ++hits_; }

  int hits_ = 0;
  std::atomic<int> entered_{0};
};

}  // namespace

int main() {
  RacyInference service;
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::fprintf(stderr, "tsan_canary: cannot start the gRPC server on 127.0.0.1\n");
    return 2;
  }
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials());
  std::vector<std::thread> clients;
  for (int c = 0; c < 4; ++c) {
    clients.emplace_back([&channel] {
      auto stub = inferd::v1::Inference::NewStub(channel);
      for (int i = 0; i < 20; ++i) {
        grpc::ClientContext context;
        inferd::v1::GenerateResponse response;
        stub->Generate(&context, inferd::v1::GenerateRequest(), &response);
      }
    });
  }
  for (auto& t : clients) t.join();
  server->Shutdown();
  std::printf("tsan_canary: %d increments\n", service.hits_);
  return 0;
}
