// The real inferd binary: start on free loopback ports, SERVING, promtool-clean /metrics, SIGTERM drain.
#include <arpa/inet.h>
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "daemon_process.h"
#include "inferd/v1/inferd.grpc.pb.h"

namespace inferd::e2e {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

class DaemonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("inferd-e2e-");
    model_dir_ = E2eModelDir();
    grpc_port_ = FreePort();
    metrics_port_ = FreePort();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string WriteConfig(const std::string& extra = "", const std::string& server_extra = "") {
    std::ostringstream c;
    c << "server:\n  grpc_address: \"127.0.0.1:" << grpc_port_ << "\"\n  drain_grace_seconds: 3\n"
      << server_extra << "metrics:\n  address: \"127.0.0.1:" << metrics_port_ << "\"\n"
      << "models:\n  - name: default\n    path: " << model_dir_ << "\n"
      << "    scheduler: {realtime_deadline_ms: 10000}\n"  // serving, not admission, is under test here
      << extra;
    std::string path = dir_ + "/inferd.yaml";
    WriteFile(path, c.str());
    return path;
  }
  std::string GrpcAddress() const { return "127.0.0.1:" + std::to_string(grpc_port_); }

  std::string dir_, model_dir_;
  int grpc_port_ = 0, metrics_port_ = 0;
};

TEST_F(DaemonTest, ServesHealthAndPromtoolCleanMetricsThenDrainsOnSigterm) {
  Process p(InferdBinary(), {"--config", WriteConfig()}, dir_ + "/log.txt");
  ASSERT_TRUE(WaitServing(GrpcAddress(), seconds(60))) << p.Log();
  EXPECT_EQ(HealthStatus(GrpcAddress(), "inferd.v1.Inference"), "SERVING");
  EXPECT_EQ(HealthStatus(GrpcAddress(), "no.such.Service"), "SERVICE_UNKNOWN");
  std::string health_out;
  EXPECT_EQ(RunCommand(BinDir() + "/inferctl health --address " + GrpcAddress(), &health_out), 0) << health_out;
  EXPECT_EQ(health_out, "SERVING\n");

  int http_status = 0;
  auto body = HttpGet(metrics_port_, "/metrics", &http_status);
  ASSERT_TRUE(body.has_value()) << p.Log();
  EXPECT_EQ(http_status, 200);
  for (const char* series : {"process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds",
                             "process_start_time_seconds", "inferd_build_info{version=\""}) {
    EXPECT_NE(body->find(series), std::string::npos) << series << " missing from:\n" << *body;
  }
  // Without an NVIDIA driver (libnvidia-ml.so.1 does not load here either) there are no GPU series and
  // one log line says why.
  if (void* nvml = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL); nvml != nullptr) {
    dlclose(nvml);
  } else {
    EXPECT_EQ(body->find("inferd_gpu_"), std::string::npos) << *body;
    EXPECT_NE(p.Log().find("metrics: no GPU series (cannot load libnvidia-ml.so.1"), std::string::npos) << p.Log();
  }
  WriteFile(dir_ + "/metrics.txt", *body);
  std::string out;
  EXPECT_EQ(RunCommand(std::string(PROMTOOL) + " check metrics < " + dir_ + "/metrics.txt", &out), 0) << out;

  p.Signal(SIGTERM);
  auto code = p.WaitExit(seconds(3 + 5));
  ASSERT_TRUE(code.has_value()) << "did not exit within the grace period\n" << p.Log();
  EXPECT_EQ(*code, 0) << p.Log();
  EXPECT_NE(p.Log().find("received SIGTERM"), std::string::npos) << p.Log();
  EXPECT_EQ(HttpGet(metrics_port_, "/metrics"), std::nullopt) << "metrics still served after exit";
  EXPECT_NE(RunCommand(BinDir() + "/inferctl health --timeout 0.5 --address " + GrpcAddress(), &health_out), 0);
}

TEST_F(DaemonTest, SigintAlsoDrainsAndExitsZero) {
  Process p(InferdBinary(), {"--config", WriteConfig()}, dir_ + "/log.txt");
  ASSERT_TRUE(WaitServing(GrpcAddress(), seconds(60))) << p.Log();
  p.Signal(SIGINT);
  auto code = p.WaitExit(seconds(8));
  ASSERT_TRUE(code.has_value()) << p.Log();
  EXPECT_EQ(*code, 0) << p.Log();
}

TEST_F(DaemonTest, ServesGenerateAndRecommendOnTheDefaultModel) {
  Process p(InferdBinary(), {"--config", WriteConfig()}, dir_ + "/log.txt");
  ASSERT_TRUE(WaitServing(GrpcAddress(), seconds(120))) << p.Log();
  auto stub = v1::Inference::NewStub(grpc::CreateChannel(GrpcAddress(), grpc::InsecureChannelCredentials()));

  v1::GenerateRequest gen;
  gen.set_prompt("Describe this product: a blue ceramic mug.");
  gen.mutable_sampling()->set_max_tokens(8);
  gen.mutable_sampling()->set_ignore_eos(true);
  v1::GenerateResponse unary;
  {
    grpc::ClientContext ctx;
    grpc::Status st = stub->Generate(&ctx, gen, &unary);
    ASSERT_TRUE(st.ok()) << st.error_message() << "\n" << p.Log();
  }
  EXPECT_EQ(unary.tokens_size(), 8);
  EXPECT_EQ(unary.finish_reason(), v1::FINISH_REASON_LENGTH);
  EXPECT_GT(unary.usage().prompt_tokens(), 5);

  // The stream's deltas concatenate to the unary answer (greedy, same prompt).
  grpc::ClientContext sctx;
  auto reader = stub->GenerateStream(&sctx, gen);
  v1::GenerateDelta delta;
  std::string text;
  std::vector<int32_t> ids;
  while (reader->Read(&delta)) {
    text += delta.text();
    for (const auto& t : delta.tokens()) ids.push_back(t.token_id());
  }
  ASSERT_TRUE(reader->Finish().ok());
  std::vector<int32_t> unary_ids;
  for (const auto& t : unary.tokens()) unary_ids.push_back(t.token_id());
  EXPECT_EQ(ids, unary_ids);
  EXPECT_EQ(text, unary.text());

  v1::RecommendRequest rec;
  rec.set_context("The customer bought a tent and");
  const char* items[] = {" a sleeping bag", " a stove", " a lamp", " socks"};
  for (uint64_t i = 0; i < 4; ++i) {
    auto* c = rec.add_candidates();
    c->set_item_id(100 + i);
    c->set_text(items[i]);
  }
  rec.set_top_k(3);
  v1::RecommendResponse ranked;
  grpc::ClientContext rctx;
  grpc::Status st = stub->Recommend(&rctx, rec, &ranked);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(ranked.plain().items_size(), 3);
  for (int i = 1; i < 3; ++i) {  // score_by_mean unset: ranked by the sum of log-probabilities
    EXPECT_GE(ranked.plain().items(i - 1).sum_logprob(), ranked.plain().items(i).sum_logprob());
  }

  v1::GenerateRequest bad = gen;
  bad.mutable_sampling()->set_top_p(1.5f);
  grpc::ClientContext bctx;
  st = stub->Generate(&bctx, bad, &unary);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("sampling.top_p"), std::string::npos) << st.error_message();
}

TEST_F(DaemonTest, InferctlRemoteClientGeneratesAndRanks) {
  Process p(InferdBinary(), {"--config", WriteConfig()}, dir_ + "/log.txt");
  ASSERT_TRUE(WaitServing(GrpcAddress(), seconds(120))) << p.Log();
  const std::string remote = BinDir() + "/inferctl remote --address " + GrpcAddress() + " ";
  std::string unary, streamed, ranked;
  ASSERT_EQ(RunCommand(remote + "generate --prompt 'Write a tagline' --max-tokens 6 2>/dev/null", &unary), 0) << unary;
  ASSERT_EQ(RunCommand(remote + "generate --stream --prompt 'Write a tagline' --max-tokens 6 2>/dev/null", &streamed), 0)
      << streamed;
  // inferctl reports the finish reason on stderr as a "[...]" line, which RunCommand merges into the output.
  auto text_only = [](const std::string& out) {
    std::istringstream lines(out);
    std::string line, text;
    while (std::getline(lines, line)) {
      if (!line.empty() && line.front() != '[') text += line + "\n";
    }
    return text;
  };
  EXPECT_FALSE(text_only(unary).empty()) << unary;
  EXPECT_EQ(text_only(unary), text_only(streamed));  // greedy: the streamed deltas add up to the unary text
  ASSERT_EQ(RunCommand(remote + "recommend --context 'Gift for a cook:' --item '7= a knife' --item '9= a pan' " +
                           "--item '11= a sock' --top-k 2",
                       &ranked),
            0)
      << ranked;
  const size_t json_at = ranked.find("[{");
  ASSERT_NE(json_at, std::string::npos) << ranked;
  nlohmann::json j = nlohmann::json::parse(ranked.substr(json_at, ranked.find('\n', json_at) - json_at));
  ASSERT_EQ(j.size(), 2u) << ranked;
  EXPECT_GE(j[0]["score"].get<double>(), j[1]["score"].get<double>());
  std::string err;
  EXPECT_NE(RunCommand(remote + "recommend --context x --item 'seven= a knife'", &err), 0);
  EXPECT_NE(err.find("not an unsigned integer id"), std::string::npos) << err;
  EXPECT_NE(RunCommand(remote + "generate --prompt x --temperature -1", &err), 0);
  EXPECT_NE(err.find("INVALID_ARGUMENT"), std::string::npos) << err;
}

TEST_F(DaemonTest, JsonLogFormatWritesOneJsonObjectPerLine) {
  Process p(InferdBinary(), {"--config", WriteConfig(), "--log-format", "json"}, dir_ + "/log.txt");
  ASSERT_TRUE(WaitServing(GrpcAddress(), seconds(60))) << p.Log();
  p.Signal(SIGTERM);
  ASSERT_EQ(p.WaitExit(seconds(8)), std::optional<int>(0)) << p.Log();
  std::istringstream lines(p.Log());
  std::string line;
  int n = 0;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    ++n;
    nlohmann::json j;
    ASSERT_NO_THROW(j = nlohmann::json::parse(line)) << line;
    EXPECT_TRUE(j.contains("ts") && j.contains("level") && j.contains("msg")) << line;
  }
  EXPECT_GE(n, 3);
}

TEST_F(DaemonTest, InvalidConfigExitsNonZeroNamingTheKey) {
  Process p(InferdBinary(), {"--config", WriteConfig("    dtype: int3\n")}, dir_ + "/log.txt");
  auto code = p.WaitExit(seconds(30));
  ASSERT_TRUE(code.has_value());
  EXPECT_NE(*code, 0);
  EXPECT_NE(p.Log().find("models[0].dtype: must be one of bf16, fp16, fp32, found 'int3'"), std::string::npos)
      << p.Log();
}

TEST_F(DaemonTest, CheckConfigValidatesWithoutServing) {
  std::string out;
  EXPECT_EQ(RunCommand(InferdBinary() + " --check-config --config " + WriteConfig(), &out), 0) << out;
  EXPECT_NE(out.find(": OK"), std::string::npos) << out;
  EXPECT_NE(RunCommand(InferdBinary() + " --check-config --config " + WriteConfig("    bogus: 1\n"), &out), 0) << out;
  EXPECT_NE(out.find("models[0].bogus: unknown key"), std::string::npos) << out;
  EXPECT_NE(RunCommand(InferdBinary() + " --check-config --config " + dir_ + "/missing.yaml", &out), 0) << out;
  EXPECT_NE(out.find("missing.yaml: cannot open config file"), std::string::npos) << out;
}

TEST_F(DaemonTest, PortInUseExitsNonZeroNamingTheAddress) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(grpc_port_));
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(fd, 1), 0);
  Process p(InferdBinary(), {"--config", WriteConfig()}, dir_ + "/log.txt");
  auto code = p.WaitExit(seconds(30));
  close(fd);
  ASSERT_TRUE(code.has_value()) << p.Log();
  EXPECT_NE(*code, 0);
  EXPECT_NE(p.Log().find("cannot listen on 127.0.0.1:" + std::to_string(grpc_port_)), std::string::npos) << p.Log();
}

TEST_F(DaemonTest, MissingModelDirectoryExitsNonZeroNamingThePath) {
  model_dir_ = dir_ + "/no-such-model";
  Process p(InferdBinary(), {"--config", WriteConfig()}, dir_ + "/log.txt");
  auto code = p.WaitExit(seconds(30));
  ASSERT_TRUE(code.has_value());
  EXPECT_NE(*code, 0);
  EXPECT_NE(p.Log().find(model_dir_ + "/config.json not found"), std::string::npos) << p.Log();
}

TEST_F(DaemonTest, VersionAndHelp) {
  std::string out;
  EXPECT_EQ(RunCommand(InferdBinary() + " --version", &out), 0);
  EXPECT_EQ(out.rfind("inferd ", 0), 0u) << out;
  EXPECT_EQ(RunCommand(InferdBinary() + " --help", &out), 0);
  EXPECT_NE(out.find("--check-config"), std::string::npos) << out;
}

}  // namespace
}  // namespace inferd::e2e

namespace inferd::e2e {
namespace {

// inferctl generate --prompt encodes with the checkpoint's tokenizer exactly as inferctl tokenize does
// (whose ids are checked against the tokenizers library), and prints text unless --ids.
TEST(InferctlGenerate, PromptTextEqualsItsTokenIds) {
  const std::string ctl = BinDir() + "/inferctl";
  const std::string model = E2eModelDir();
  std::string ids_json, by_prompt, by_tokens, text;
  ASSERT_EQ(RunCommand(ctl + " tokenize --model " + model + " --text 'A red wool scarf'", &ids_json), 0) << ids_json;
  std::string csv = ids_json.substr(ids_json.find('[') + 1, ids_json.find(']') - ids_json.find('[') - 1);
  ASSERT_FALSE(csv.empty());
  ASSERT_EQ(RunCommand(ctl + " generate --model " + model + " --prompt 'A red wool scarf' --max-tokens 6 --ids", &by_prompt),
            0) << by_prompt;
  ASSERT_EQ(RunCommand(ctl + " generate --model " + model + " --tokens " + csv + " --max-tokens 6 --ids", &by_tokens), 0)
      << by_tokens;
  EXPECT_EQ(by_prompt, by_tokens);
  EXPECT_EQ(std::count(by_prompt.begin(), by_prompt.end(), ','), 5) << by_prompt;
  ASSERT_EQ(RunCommand(ctl + " generate --model " + model + " --prompt 'A red wool scarf' --max-tokens 6", &text), 0);
  EXPECT_NE(text, by_prompt) << "expected text, got ids";
  EXPECT_NE(RunCommand(ctl + " generate --model " + model + " --max-tokens 2", &text), 0);
  EXPECT_NE(text.find("exactly one of --tokens or --prompt"), std::string::npos) << text;
}

}  // namespace
}  // namespace inferd::e2e
