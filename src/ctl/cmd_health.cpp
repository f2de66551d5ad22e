// inferctl health: asks a running inferd for its grpc.health.v1 status; exit 0 only when SERVING.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include "ctl/command.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace inferd::ctl {
namespace {

void AddHealthCommand(CLI::App& app) {
  auto* cmd = app.add_subcommand("health", "Print the health status of a running inferd (exit 0 when SERVING)");
  auto address = std::make_shared<std::string>("127.0.0.1:50051");
  auto service = std::make_shared<std::string>();
  auto timeout_s = std::make_shared<double>(2.0);
  cmd->add_option("-a,--address", *address, "inferd gRPC address")->capture_default_str();
  cmd->add_option("--service", *service, "service name; empty = the whole server");
  cmd->add_option("--timeout", *timeout_s, "seconds to wait for an answer")->capture_default_str();
  cmd->callback([=] {
    auto stub = grpc::health::v1::Health::NewStub(grpc::CreateChannel(*address, grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::milliseconds(static_cast<int64_t>(*timeout_s * 1000)));
    grpc::health::v1::HealthCheckRequest req;
    req.set_service(*service);
    grpc::health::v1::HealthCheckResponse resp;
    grpc::Status st = stub->Check(&ctx, req, &resp);
    if (!st.ok()) throw std::runtime_error(*address + ": " + st.error_message());
    std::printf("%s\n", grpc::health::v1::HealthCheckResponse::ServingStatus_Name(resp.status()).c_str());
    if (resp.status() != grpc::health::v1::HealthCheckResponse::SERVING) std::exit(3);
  });
}

INFERD_CTL_COMMAND(AddHealthCommand);

}  // namespace
}  // namespace inferd::ctl
