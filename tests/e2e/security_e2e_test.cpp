// The real inferd with TLS, mutual TLS, bearer tokens and HTTPS metrics, using certificates made here with
// openssl: clients presenting no certificate, a wrong one and the right one; SIGHUP certificate rotation;
// the gRPC port answering health before the model is warm.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <sstream>
#include <thread>

#include "daemon_process.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "inferd/v1/inferd.grpc.pb.h"

namespace inferd::e2e {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr const char* kToken = "e2e-token-7f3a9c";  // its hash goes in the token file; the log must not show it

class SecurityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string out;
    if (RunCommand("openssl version", &out) != 0) GTEST_SKIP() << "openssl (Debian package openssl) not found";
    dir_ = MakeTempDir("inferd-sec-");
    grpc_port_ = FreePort();
    metrics_port_ = FreePort();
    MakeCa("ca1");
    MakeCa("ca2");
    MakeCert("ca1", "server1", "localhost", true);
    MakeCert("ca2", "server2", "localhost", true);
    MakeCert("ca1", "client1", "client", false);
    MakeCert("ca2", "client2", "client", false);
    ASSERT_EQ(RunCommand("printf %s " + std::string(kToken) + " | sha256sum | cut -d' ' -f1", &out), 0);
    WriteFile(dir_ + "/tokens", "e2e-client sha256:" + out.substr(0, 64) + " inference,feedback\n");
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  void Run(const std::string& cmd) {
    std::string out;
    ASSERT_EQ(RunCommand("cd " + dir_ + " && " + cmd, &out), 0) << cmd << "\n" << out;
  }
  void MakeCa(const std::string& name) {
    Run("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=" + name + " -keyout " + name + ".key -out " +
        name + ".pem");
  }
  void MakeCert(const std::string& ca, const std::string& name, const std::string& cn, bool server) {
    const std::string ext = server ? "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
                                   : "extendedKeyUsage=clientAuth\n";
    WriteFile(dir_ + "/" + name + ".ext", ext);
    Run("openssl req -newkey rsa:2048 -nodes -subj /CN=" + cn + " -keyout " + name + ".key -out " + name + ".csr");
    Run("openssl x509 -req -in " + name + ".csr -CA " + ca + ".pem -CAkey " + ca +
        ".key -CAcreateserial -days 2 -out " + name + ".pem -extfile " + name + ".ext");
  }
  std::string Pem(const std::string& name) const { return ReadFile(dir_ + "/" + name); }

  std::string WriteConfig(bool mutual, bool metrics_tls) {
    std::ostringstream c;
    c << "server:\n  grpc_address: \"127.0.0.1:" << grpc_port_ << "\"\n  drain_grace_seconds: 1\n"
      << "  tls: {cert_file: served.pem, key_file: served.key" << (mutual ? ", client_ca_file: ca1.pem" : "")
      << "}\n  auth: {token_file: tokens}\n"
      << "metrics:\n  address: \"127.0.0.1:" << metrics_port_ << "\"\n";
    if (metrics_tls) c << "  tls: {cert_file: server1.pem, key_file: server1.key}\n";
    c << "models:\n  - name: default\n    path: " << E2eModelDir() << "\n"
      << "    scheduler: {realtime_deadline_ms: 10000}\n";
    WriteFile(dir_ + "/inferd.yaml", c.str());
    return dir_ + "/inferd.yaml";
  }
  void Serve(const std::string& server_cert) {
    WriteFile(dir_ + "/served.pem", Pem(server_cert + ".pem"));
    WriteFile(dir_ + "/served.key", Pem(server_cert + ".key"));
  }

  // A TLS channel trusting `root` ("" = plaintext), presenting `client` ("" = no certificate).
  std::shared_ptr<grpc::Channel> Channel(const std::string& root, const std::string& client) const {
    const std::string address = "127.0.0.1:" + std::to_string(grpc_port_);
    if (root.empty()) return grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
    grpc::SslCredentialsOptions opts;
    opts.pem_root_certs = Pem(root + ".pem");
    if (!client.empty()) {
      opts.pem_cert_chain = Pem(client + ".pem");
      opts.pem_private_key = Pem(client + ".key");
    }
    grpc::ChannelArguments args;
    args.SetSslTargetNameOverride("localhost");
    return grpc::CreateCustomChannel(address, grpc::SslCredentials(opts), args);
  }
  // Health of a fresh channel: "SERVING", "NOT_SERVING", or the gRPC code name when the call fails.
  static std::string Health(const std::shared_ptr<grpc::Channel>& channel) {
    auto stub = grpc::health::v1::Health::NewStub(channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + seconds(3));
    grpc::health::v1::HealthCheckResponse resp;
    grpc::Status s = stub->Check(&ctx, {}, &resp);
    if (!s.ok()) return "code " + std::to_string(s.error_code());
    return grpc::health::v1::HealthCheckResponse::ServingStatus_Name(resp.status());
  }
  bool WaitHealth(const std::function<std::shared_ptr<grpc::Channel>()>& channel, const std::string& want, Process& p,
                  seconds timeout = seconds(120)) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until && p.Running()) {
      if (Health(channel()) == want) return true;
      std::this_thread::sleep_for(milliseconds(100));
    }
    return false;
  }
  static grpc::Status Generate(const std::shared_ptr<grpc::Channel>& channel, const std::string& token) {
    auto stub = v1::Inference::NewStub(channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + seconds(60));
    if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
    v1::GenerateRequest req;
    req.set_prompt("hello");
    req.mutable_sampling()->set_max_tokens(2);
    v1::GenerateResponse resp;
    return stub->Generate(&ctx, req, &resp);
  }

  std::string dir_;
  int grpc_port_ = 0, metrics_port_ = 0;
};

TEST_F(SecurityTest, MutualTlsRefusesClientsWithoutTheRightCertificate) {
  Serve("server1");
  Process p(InferdBinary(), {"--config", WriteConfig(/*mutual=*/true, /*metrics_tls=*/true)}, dir_ + "/log.txt");
  ASSERT_TRUE(WaitHealth([&] { return Channel("ca1", "client1"); }, "SERVING", p)) << p.Log();

  // code 14 = UNAVAILABLE: the handshake fails, so no RPC reaches the server.
  EXPECT_EQ(Health(Channel("", "")), "code 14") << "plaintext client";
  EXPECT_EQ(Health(Channel("ca1", "")), "code 14") << "client without a certificate";
  EXPECT_EQ(Health(Channel("ca1", "client2")), "code 14") << "client certificate from another CA";
  EXPECT_EQ(Health(Channel("ca2", "client1")), "code 14") << "client that does not trust the server's CA";
  EXPECT_EQ(Health(Channel("ca1", "client1")), "SERVING");

  // Over mutual TLS the Inference RPCs still need a bearer token.
  EXPECT_EQ(Generate(Channel("ca1", "client1"), "").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Generate(Channel("ca1", "client1"), "wrong").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  const grpc::Status ok = Generate(Channel("ca1", "client1"), kToken);
  EXPECT_TRUE(ok.ok()) << ok.error_message();

  // /metrics over HTTPS with the server certificate; a plaintext request gets no metrics.
  std::string out;
  EXPECT_EQ(RunCommand("curl -sS --max-time 10 --cacert " + dir_ +
                           "/ca1.pem --resolve localhost:" + std::to_string(metrics_port_) +
                           ":127.0.0.1 https://localhost:" + std::to_string(metrics_port_) + "/metrics",
                       &out),
            0)
      << out;
  EXPECT_NE(out.find("inferd_build_info"), std::string::npos) << out.substr(0, 300);
  int status = 0;
  const auto plain = HttpGet(metrics_port_, "/metrics", &status);
  EXPECT_FALSE(plain.has_value() && status == 200);

  p.Signal(SIGTERM);
  ASSERT_EQ(p.WaitExit(seconds(30)), 0);
  EXPECT_EQ(p.Log().find(kToken), std::string::npos) << "the log shows the bearer token";
}

TEST_F(SecurityTest, SighupRotatesTheServerCertificateAndKeepsItOnABadFile) {
  Serve("server1");
  Process p(InferdBinary(), {"--config", WriteConfig(/*mutual=*/false, /*metrics_tls=*/false)}, dir_ + "/log.txt");
  ASSERT_TRUE(WaitHealth([&] { return Channel("ca1", ""); }, "SERVING", p)) << p.Log();
  EXPECT_EQ(Health(Channel("ca2", "")), "code 14");

  // New files alone change nothing until SIGHUP.
  Serve("server2");
  std::this_thread::sleep_for(milliseconds(2500));  // more than gRPC's 1 s watch interval
  EXPECT_EQ(Health(Channel("ca1", "")), "SERVING");
  p.Signal(SIGHUP);
  EXPECT_TRUE(WaitHealth([&] { return Channel("ca2", ""); }, "SERVING", p, seconds(20))) << p.Log();
  EXPECT_EQ(Health(Channel("ca1", "")), "code 14");

  // A broken certificate is refused and the current one stays.
  WriteFile(dir_ + "/served.pem", "not a certificate\n");
  p.Signal(SIGHUP);
  const auto until = std::chrono::steady_clock::now() + seconds(20);
  while (p.Log().find("reload: server.tls.cert_file") == std::string::npos &&
         std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_NE(p.Log().find("reload: server.tls.cert_file: " + dir_ + "/served.pem holds no PEM certificate"),
            std::string::npos)
      << p.Log();
  std::this_thread::sleep_for(milliseconds(2500));
  EXPECT_EQ(Health(Channel("ca2", "")), "SERVING");
  p.Signal(SIGTERM);
  EXPECT_EQ(p.WaitExit(seconds(30)), 0);
}

TEST_F(SecurityTest, PortAnswersHealthBeforeTheModelIsWarm) {
  Serve("server1");
  Process p(InferdBinary(), {"--config", WriteConfig(false, false)}, dir_ + "/log.txt");
  const auto until = std::chrono::steady_clock::now() + seconds(60);
  while (p.Log().find("gRPC listening") == std::string::npos && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  const std::string first = Health(Channel("ca1", ""));
  EXPECT_TRUE(first == "NOT_SERVING" || first == "SERVING") << first;
  ASSERT_TRUE(WaitHealth([&] { return Channel("ca1", ""); }, "SERVING", p)) << p.Log();
  const std::string log = p.Log();
  const size_t listening = log.find("gRPC listening");
  const size_t loaded = log.find("loaded in");
  ASSERT_NE(listening, std::string::npos) << log;
  ASSERT_NE(loaded, std::string::npos) << log;
  EXPECT_LT(listening, loaded) << "the port opened only after the model loaded:\n" << log;
  p.Signal(SIGTERM);
  EXPECT_EQ(p.WaitExit(seconds(30)), 0);
}

}  // namespace
}  // namespace inferd::e2e
