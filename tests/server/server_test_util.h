// In-process test harness: a real GrpcServer on 127.0.0.1:0 over real Engines driven by the fake
// executor, with the real DeepSeek-V3 tokenizer, reached through the generated stub over loopback.
#pragma once

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "engine/fake_executor.h"
#include "inferd/engine.h"
#include "inferd/tokenizer.h"
#include "inferd/v1/inferd.grpc.pb.h"
#include "server/grpc_server.h"
#include "server/text_stream.h"
#include "test_env.h"

namespace inferd::server::testing {

inline std::shared_ptr<const Tokenizer> TestTokenizer() {
  static const std::shared_ptr<const Tokenizer> tok =
      Tokenizer::LoadOrThrow(inferd_test::TestEnvPath("INFERD_TEST_TOKENIZER_DIR"));
  return tok;
}

struct PoolSpec {
  std::string name = "default";
  std::vector<RequestClass> classes = {RequestClass::kRealtime, RequestClass::kComplex};
  LimitsConfig limits;
  int32_t max_model_len = 4096;
  int32_t num_blocks = 256;
  int32_t max_running = 64;
  int32_t max_waiting_realtime = 256;
  int32_t max_waiting_complex = 1024;
  std::chrono::microseconds step_delay{0};
};

// Pools over fresh fake-executor engines, appended to `engines` (which must outlive the pools' server).
inline std::vector<ServingPool> BuildPools(const std::vector<PoolSpec>& specs,
                                           std::vector<std::unique_ptr<Engine>>* engines) {
  std::vector<ServingPool> pools;
  for (const PoolSpec& spec : specs) {
    EngineOptions eo;
    eo.kv_cache.num_blocks_override = spec.num_blocks;
    eo.kv_cache.block_size = 16;
    eo.scheduler.max_model_len = spec.max_model_len;
    eo.scheduler.max_running = spec.max_running;
    eo.scheduler.max_waiting_realtime = spec.max_waiting_realtime;
    eo.scheduler.max_waiting_complex = spec.max_waiting_complex;
    engine::FakeExecutorOptions fx;
    fx.vocab_size = TestTokenizer()->vocab_size();
    fx.step_delay = spec.step_delay;
    auto engine =
        Engine::Create(eo, std::make_unique<engine::FakeExecutor>(fx), TokenizerTextStreamFactory(TestTokenizer()));
    if (!engine.ok()) throw std::runtime_error(engine.status().ToString());
    engines->push_back(std::move(engine).value());
    pools.push_back(ServingPool{spec.name, spec.classes, TestTokenizer(), engines->back().get(), spec.limits,
                                spec.max_model_len, spec.name + "@test"});
  }
  return pools;
}

class TestServer {
 public:
  // `config` is used as given except grpc_address (127.0.0.1:0); the stub's channel is plaintext.
  explicit TestServer(std::vector<PoolSpec> specs = {PoolSpec{}}, InferenceServiceOptions options = {},
                      ServerConfig config = {}) {
    std::vector<ServingPool> pools = BuildPools(specs, &engines_);
    config.grpc_address = "127.0.0.1:0";
    server_ = std::make_unique<GrpcServer>(config, std::move(pools), options);
    server_->SetServing(true);
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()), grpc::InsecureChannelCredentials());
    stub_ = v1::Inference::NewStub(channel_);
  }
  ~TestServer() {
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    server_.reset();
    engines_.clear();
  }

  v1::Inference::Stub& stub() { return *stub_; }
  GrpcServer& server() { return *server_; }
  Engine& engine(size_t i = 0) { return *engines_.at(i); }
  std::shared_ptr<grpc::Channel> channel() { return channel_; }

  // Waits until every KV block of engine i is free again; false after `timeout`.
  bool WaitAllBlocksFree(size_t i = 0, std::chrono::milliseconds timeout = std::chrono::milliseconds(10000)) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
      if (engine(i).LastStats().kv_free_blocks == engine(i).num_blocks()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return false;
  }

 private:
  std::vector<std::unique_ptr<Engine>> engines_;
  std::unique_ptr<GrpcServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Inference::Stub> stub_;
};

inline std::unique_ptr<grpc::ClientContext> Ctx(std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + timeout);
  return ctx;
}

// The greedy ids the fake model generates after `prompt`, cut after the first EOS (as the server stops).
inline std::vector<TokenId> ExpectedIds(const std::vector<TokenId>& prompt, int32_t n) {
  std::vector<TokenId> ids = engine::FakeExecutor::ReferenceGenerate(prompt, n, TestTokenizer()->vocab_size());
  const auto eos = TestTokenizer()->eos_id();
  for (size_t i = 0; eos && i < ids.size(); ++i) {
    if (ids[i] == *eos) {
      ids.resize(i + 1);
      break;
    }
  }
  return ids;
}

inline std::vector<TokenId> Ids(const google::protobuf::RepeatedPtrField<v1::TokenInfo>& tokens) {
  std::vector<TokenId> out;
  for (const auto& t : tokens) out.push_back(t.token_id());
  return out;
}

}  // namespace inferd::server::testing
