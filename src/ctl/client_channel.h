// How inferctl's gRPC commands (remote, control) reach a daemon: address, TLS (server verified against a CA or
// the system roots; a client certificate for mutual TLS) and a bearer token, the client side of
// docs/security.md.
#pragma once

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

namespace inferd::ctl {

struct ClientOptions {
  std::string address = "127.0.0.1:50051";
  double timeout_s = 60;
  std::string token;       // sent as "authorization: Bearer <token>"
  std::string token_file;  // or read from this file (surrounding whitespace dropped)
  bool tls = false;        // TLS with the system roots (implied by tls_ca)
  std::string tls_ca;      // PEM roots that sign the server's certificate
  std::string tls_cert;    // client certificate chain for mutual TLS (with tls_key)
  std::string tls_key;
  std::string tls_server_name;  // name the server's certificate must carry ("" = the address's host)
};

// Registers -a/--address, --timeout, --token, --token-file, --tls, --tls-ca, --tls-cert, --tls-key and
// --tls-server-name on `cmd`; `o` must outlive the parse.
void AddClientOptions(CLI::App* cmd, ClientOptions* o);

// The channel `o` describes. Throws std::runtime_error naming the option when a file cannot be read or the
// options contradict each other.
std::shared_ptr<grpc::Channel> MakeChannel(const ClientOptions& o);

// Sets the call's deadline (timeout_s from now) and its authorization metadata.
void Prepare(grpc::ClientContext* ctx, const ClientOptions& o);

}  // namespace inferd::ctl
