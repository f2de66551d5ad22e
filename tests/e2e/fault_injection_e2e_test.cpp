// Fault injection against the real daemon on loopback (docs/hardening.md):
//  - inferd_faults (the daemon on the runner built with fault points, tests only) with a forward pass that
//    throws and with NaN logits: that batch's requests get INTERNAL, the daemon keeps serving;
//  - the shipped inferd with a truncated or corrupt checkpoint shard: start-up fails naming file and tensor;
//  - a KV pool far smaller than the offered load: every request finishes, by preemption, or gets
//    RESOURCE_EXHAUSTED, within a bound; a prompt no pool could hold is refused at once.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>
#include <vector>

#include "daemon_process.h"
#include "inferd/v1/inferd.grpc.pb.h"
#include "test_env.h"

namespace inferd::e2e {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// inferd with the fault points compiled in (src/daemon/CMakeLists.txt).
std::string InferdFaults() {
  return inferd_test::TestEnvPath("INFERD_FAULTS_BIN");
}

class FaultInjectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("inferd-faults-");
    grpc_port_ = FreePort();
    metrics_port_ = FreePort();
    fault_file_ = dir_ + "/faults";
    WriteFile(fault_file_, "");
    setenv("INFERD_FAULT_FILE", fault_file_.c_str(), 1);  // inherited by the daemon
  }
  void TearDown() override {
    unsetenv("INFERD_FAULT_FILE");
    std::filesystem::remove_all(dir_);
  }

  std::string WriteConfig(const std::string& model_dir, const std::string& model_extra = "") {
    std::ostringstream c;
    c << "server:\n  grpc_address: \"127.0.0.1:" << grpc_port_ << "\"\n  drain_grace_seconds: 3\n"
      << "metrics:\n  address: \"127.0.0.1:" << metrics_port_ << "\"\n"
      << "models:\n  - name: default\n    path: " << model_dir << "\n"
      << "    scheduler: {realtime_deadline_ms: 10000}\n"
      << model_extra;
    const std::string path = dir_ + "/inferd.yaml";
    WriteFile(path, c.str());
    return path;
  }
  std::string Address() const { return "127.0.0.1:" + std::to_string(grpc_port_); }
  std::unique_ptr<v1::Inference::Stub> Stub() const {
    return v1::Inference::NewStub(grpc::CreateChannel(Address(), grpc::InsecureChannelCredentials()));
  }

  static v1::GenerateRequest Gen(const std::string& prompt, int max_tokens) {
    v1::GenerateRequest g;
    g.set_prompt(prompt);
    g.mutable_sampling()->set_max_tokens(max_tokens);
    g.mutable_sampling()->set_ignore_eos(true);
    return g;
  }

  // `n` Generates at once (so they share engine steps); their statuses in order.
  std::vector<grpc::Status> ConcurrentGenerates(int n, int max_tokens, std::chrono::seconds deadline) {
    std::vector<grpc::Status> out(static_cast<size_t>(n));
    std::vector<std::thread> threads;
    for (int i = 0; i < n; ++i) {
      threads.emplace_back([&, i] {
        auto stub = Stub();
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + deadline);
        v1::GenerateResponse resp;
        out[static_cast<size_t>(i)] =
            stub->Generate(&ctx, Gen("Request number " + std::to_string(i), max_tokens), &resp);
      });
    }
    for (auto& t : threads) t.join();
    return out;
  }

  void ExpectServesNormally() {
    auto stub = Stub();
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + seconds(60));
    v1::GenerateResponse resp;
    grpc::Status st = stub->Generate(&ctx, Gen("A plain request after the fault", 4), &resp);
    ASSERT_TRUE(st.ok()) << st.error_code() << " " << st.error_message();
    EXPECT_EQ(resp.tokens_size(), 4);
    v1::RecommendRequest rec;
    rec.set_context("The customer bought a tent and");
    for (uint64_t i = 0; i < 3; ++i) {
      auto* c = rec.add_candidates();
      c->set_item_id(i + 1);
      c->set_text(" item " + std::to_string(i));
    }
    grpc::ClientContext rctx;
    rctx.set_deadline(std::chrono::system_clock::now() + seconds(60));
    v1::RecommendResponse ranked;
    st = stub->Recommend(&rctx, rec, &ranked);
    ASSERT_TRUE(st.ok()) << st.error_code() << " " << st.error_message();
    EXPECT_EQ(ranked.plain().items_size(), 3);
    EXPECT_EQ(HealthStatus(Address()), "SERVING");
  }

  // Arms `point`, sends three concurrent Generates (all INTERNAL, message containing `message`), disarms,
  // then checks the daemon still serves and drains cleanly.
  void RunFaultPoint(const std::string& point, const std::string& message) {
    Process p(InferdFaults(), {"--config", WriteConfig(E2eModelDir())}, dir_ + "/log.txt");
    ASSERT_TRUE(WaitServing(Address(), seconds(120))) << p.Log();
    WriteFile(fault_file_, point + "\n");
    for (const grpc::Status& st : ConcurrentGenerates(3, 8, seconds(60))) {
      EXPECT_EQ(st.error_code(), grpc::StatusCode::INTERNAL) << st.error_message();
      EXPECT_NE(st.error_message().find(message), std::string::npos) << st.error_message();
    }
    WriteFile(fault_file_, "");
    ExpectServesNormally();
    EXPECT_TRUE(p.Running()) << p.Log();
    p.Signal(SIGTERM);
    auto code = p.WaitExit(seconds(10));
    ASSERT_TRUE(code.has_value()) << p.Log();
    EXPECT_EQ(*code, 0) << p.Log();
  }

  // A copy of the e2e model whose model.safetensors is `shard`; the other files are links.
  std::string ModelWithShard(const std::string& shard) {
    const std::string out = dir_ + "/model";
    std::filesystem::create_directories(out);
    for (const auto& entry : std::filesystem::directory_iterator(E2eModelDir())) {
      if (entry.path().filename() == "model.safetensors") continue;
      std::filesystem::create_symlink(entry.path(), out + "/" + entry.path().filename().string());
    }
    std::ofstream(out + "/model.safetensors", std::ios::binary) << shard;
    return out;
  }

  // Start-up with `model_dir` fails: exit code non-zero within the bound; returns the log.
  std::string FailedStartLog(const std::string& model_dir) {
    Process p(InferdBinary(), {"--config", WriteConfig(model_dir)}, dir_ + "/log.txt");
    auto code = p.WaitExit(seconds(60));
    EXPECT_TRUE(code.has_value()) << "daemon still running with a broken checkpoint\n" << p.Log();
    if (code) {
      EXPECT_NE(*code, 0) << p.Log();
    }
    EXPECT_NE(HealthStatus(Address()), "SERVING");
    return p.Log();
  }

  std::string dir_, fault_file_;
  int grpc_port_ = 0, metrics_port_ = 0;
};

TEST_F(FaultInjectionTest, ThrowingForwardPassFailsItsBatchWithInternalAndTheDaemonKeepsServing) {
  RunFaultPoint("forward_throw", "injected fault forward_throw");
}

TEST_F(FaultInjectionTest, NanLogitsFailTheBatchWithInternalAndTheDaemonKeepsServing) {
  RunFaultPoint("nan_logits", "non-finite logits");
}

TEST_F(FaultInjectionTest, ShippedDaemonIgnoresTheFaultFile) {
  Process p(InferdBinary(), {"--config", WriteConfig(E2eModelDir())}, dir_ + "/log.txt");
  ASSERT_TRUE(WaitServing(Address(), seconds(120))) << p.Log();
  WriteFile(fault_file_, "forward_throw\nnan_logits\n");
  ExpectServesNormally();
}

TEST_F(FaultInjectionTest, TruncatedShardFailsStartupNamingFileAndTensor) {
  const std::string full = ReadFile(E2eModelDir() + "/model.safetensors");
  ASSERT_GT(full.size(), 1000u);
  const std::string log = FailedStartLog(ModelWithShard(full.substr(0, full.size() / 2)));
  EXPECT_NE(log.find("model/model.safetensors"), std::string::npos) << log;
  EXPECT_TRUE(std::regex_search(log, std::regex("tensor '[^']+': data_offsets \\[[0-9]+, [0-9]+\\] runs past the end")))
      << log;
  EXPECT_NE(log.find("file truncated or header corrupt"), std::string::npos) << log;
}

TEST_F(FaultInjectionTest, CorruptShardHeaderFailsStartupNamingFileAndTensor) {
  std::string shard = ReadFile(E2eModelDir() + "/model.safetensors");
  // The first BF16 tensor becomes BOOL (same length, so the header stays well-formed): its byte count no
  // longer matches its shape.
  const size_t at = shard.find("\"dtype\":\"BF16\"");
  ASSERT_NE(at, std::string::npos);
  shard.replace(at + 9, 4, "BOOL");
  const std::string log = FailedStartLog(ModelWithShard(shard));
  EXPECT_NE(log.find("model/model.safetensors"), std::string::npos) << log;
  EXPECT_TRUE(std::regex_search(log, std::regex("tensor '[^']+': data_offsets .* bytes but BOOL \\[.*\\] needs")))
      << log;

  // Garbage in the JSON itself: the file is named (no tensor can be).
  shard = ReadFile(E2eModelDir() + "/model.safetensors");
  shard[8 + 1] = '\x01';
  std::filesystem::remove_all(dir_ + "/model");
  const std::string log2 = FailedStartLog(ModelWithShard(shard));
  EXPECT_NE(log2.find("model/model.safetensors: bad header JSON"), std::string::npos) << log2;
}

TEST_F(FaultInjectionTest, KvExhaustionPreemptsOrRejectsAndNeverHangs) {
  // 1 MiB of KV: 819 tokens of this model (4 layers x 160 bf16 values); 8 requests x (~6 + 200) tokens need
  // about twice that at once.
  Process p(InferdBinary(), {"--config", WriteConfig(E2eModelDir(), "    kv_cache: {memory_bytes: 1MiB}\n")},
            dir_ + "/log.txt");
  ASSERT_TRUE(WaitServing(Address(), seconds(120))) << p.Log();
  std::smatch m;
  const std::string log = p.Log();
  ASSERT_TRUE(std::regex_search(log, m, std::regex("KV pool of ([0-9]+) blocks x ([0-9]+) tokens"))) << log;
  const int pool_tokens = std::stoi(m[1]) * std::stoi(m[2]);
  ASSERT_LT(pool_tokens, 8 * 200) << "the pool is not small enough to be exhausted";

  const auto start = std::chrono::steady_clock::now();
  int ok = 0, exhausted = 0;
  for (const grpc::Status& st : ConcurrentGenerates(8, 200, seconds(120))) {
    if (st.ok()) {
      ++ok;
    } else {
      EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << st.error_message();
      ++exhausted;
    }
  }
  EXPECT_EQ(ok + exhausted, 8);
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(110));
  auto metrics = HttpGet(metrics_port_, "/metrics");
  ASSERT_TRUE(metrics.has_value());
  std::smatch pm;
  ASSERT_TRUE(std::regex_search(*metrics, pm, std::regex("inferd_preemptions_total\\{[^}]*\\} ([0-9.e+]+)")))
      << *metrics;
  EXPECT_TRUE(std::stod(pm[1]) > 0 || exhausted > 0) << "neither preemption nor refusal under exhaustion";

  // A prompt longer than the whole pool can never run: refused at once, not queued forever.
  v1::GenerateRequest huge;
  for (int i = 0; i < pool_tokens + 16; ++i) huge.mutable_prompt_token_ids()->add_ids(100 + i % 1000);
  huge.mutable_sampling()->set_max_tokens(1);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + seconds(30));
  v1::GenerateResponse resp;
  const auto t0 = std::chrono::steady_clock::now();
  grpc::Status st = Stub()->Generate(&ctx, huge, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  EXPECT_NE(st.error_message().find("can never fit (KV cache holds"), std::string::npos) << st.error_message();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, seconds(10));
  ExpectServesNormally();
}

}  // namespace
}  // namespace inferd::e2e
