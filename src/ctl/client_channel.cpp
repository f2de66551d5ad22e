#include "ctl/client_channel.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include <cctype>
#include <chrono>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace inferd::ctl {
namespace {

std::string ReadFile(const char* option, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  if (in) text << in.rdbuf();
  if (!in) throw std::runtime_error(std::string(option) + ": cannot read " + path);
  return text.str();
}

std::string Token(const ClientOptions& o) {
  if (!o.token.empty() && !o.token_file.empty()) throw std::runtime_error("--token and --token-file: give one");
  if (o.token_file.empty()) return o.token;
  std::string t = ReadFile("--token-file", o.token_file);
  const auto space = [](unsigned char c) { return std::isspace(c) != 0; };
  while (!t.empty() && space(t.back())) t.pop_back();
  size_t start = 0;
  while (start < t.size() && space(t[start])) ++start;
  t.erase(0, start);
  if (t.empty()) throw std::runtime_error("--token-file: " + o.token_file + " is empty");
  return t;
}

}  // namespace

void AddClientOptions(CLI::App* cmd, ClientOptions* o) {
  cmd->add_option("-a,--address", o->address, "inferd gRPC address")->capture_default_str();
  cmd->add_option("--timeout", o->timeout_s, "seconds before the call is abandoned")->capture_default_str();
  cmd->add_option("--token", o->token, "bearer token (server.auth / control.token_file)");
  cmd->add_option("--token-file", o->token_file, "file holding the bearer token");
  cmd->add_flag("--tls", o->tls, "TLS, verifying the server against the system roots");
  cmd->add_option("--tls-ca", o->tls_ca, "TLS, verifying the server against this PEM CA");
  cmd->add_option("--tls-cert", o->tls_cert, "client certificate for mutual TLS (with --tls-key)");
  cmd->add_option("--tls-key", o->tls_key, "private key of --tls-cert");
  cmd->add_option("--tls-server-name", o->tls_server_name, "name the server's certificate must carry");
}

std::shared_ptr<grpc::Channel> MakeChannel(const ClientOptions& o) {
  const bool tls = o.tls || !o.tls_ca.empty();
  if (!tls && (!o.tls_cert.empty() || !o.tls_key.empty() || !o.tls_server_name.empty())) {
    throw std::runtime_error("--tls-cert, --tls-key and --tls-server-name need --tls or --tls-ca");
  }
  if (o.tls_cert.empty() != o.tls_key.empty()) throw std::runtime_error("--tls-cert and --tls-key: give both");
  if (!tls) return grpc::CreateChannel(o.address, grpc::InsecureChannelCredentials());
  grpc::SslCredentialsOptions ssl;
  if (!o.tls_ca.empty()) ssl.pem_root_certs = ReadFile("--tls-ca", o.tls_ca);
  if (!o.tls_cert.empty()) {
    ssl.pem_cert_chain = ReadFile("--tls-cert", o.tls_cert);
    ssl.pem_private_key = ReadFile("--tls-key", o.tls_key);
  }
  grpc::ChannelArguments args;
  if (!o.tls_server_name.empty()) args.SetSslTargetNameOverride(o.tls_server_name);
  return grpc::CreateCustomChannel(o.address, grpc::SslCredentials(ssl), args);
}

void Prepare(grpc::ClientContext* ctx, const ClientOptions& o) {
  ctx->set_deadline(std::chrono::system_clock::now() +
                    std::chrono::milliseconds(static_cast<int64_t>(o.timeout_s * 1e3)));
  const std::string token = Token(o);
  if (!token.empty()) ctx->AddMetadata("authorization", "Bearer " + token);
}

}  // namespace inferd::ctl
