// inferctl control pools|reload|drain|abort: the operator client of a running inferd's inferd.v1.Control
// service (control.enabled). --token or --token-file: a token with the control permission (control.token_file); TLS
// options as for remote (ctl/client_channel.h).
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <memory>
#include <stdexcept>
#include <string>

#include "ctl/client_channel.h"
#include "ctl/command.h"
#include "inferd/status.h"
#include "inferd/v1/control.grpc.pb.h"

namespace inferd::ctl {
namespace {

struct ControlArgs : ClientOptions {
  ControlArgs() { timeout_s = 600; }
};

struct PoolArgs {
  std::string pool;
  std::string path;
  double drain_timeout_s = 0;
  std::string request_id;
};

std::unique_ptr<v1::Control::Stub> Stub(const ControlArgs& a) {
  return v1::Control::NewStub(MakeChannel(a));
}

void Check(const grpc::Status& st) {
  if (st.ok()) return;
  throw std::runtime_error(std::string("RPC failed: ") + StatusCodeName(static_cast<StatusCode>(st.error_code())) +
                           " " + st.error_message());
}

std::string StateName(v1::PoolState s) {
  std::string n = v1::PoolState_Name(s);
  return n.rfind("POOL_STATE_", 0) == 0 ? n.substr(11) : n;
}

void PrintPool(const v1::PoolInfo& p) {
  const v1::Checkpoint& c = p.checkpoint();
  char when[32] = "-";
  if (c.generation() > 0) {
    const std::time_t t = static_cast<std::time_t>(c.loaded_at_unix_seconds());
    std::tm tm{};
    gmtime_r(&t, &tm);
    std::strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
  }
  std::string phases;
  for (const v1::LoadPhase& ph : c.phases()) {
    char buf[96];
    std::snprintf(buf, sizeof(buf), "%s%s %.2fs", phases.empty() ? "" : ", ", ph.name().c_str(), ph.seconds());
    phases += buf;
  }
  char resident[96] = "";
  if (!c.residency().empty()) {
    std::snprintf(resident, sizeof(resident), "\tweights %s (%.1f MiB)", c.residency().c_str(),
                  static_cast<double>(c.resident_bytes()) / (1 << 20));
  }
  std::printf(
      "%s\t%s\tgeneration %llu\t%s\t%s\tloaded %s (load %.2fs, warm-up %.2fs)%s\thealth %s\tdraining %d%s%s%s%s\n",
      p.name().c_str(), StateName(p.state()).c_str(), static_cast<unsigned long long>(c.generation()), c.path().c_str(),
      c.config_hash().c_str(), when, c.load_seconds(), c.warmup_seconds(), resident, p.health_service().c_str(),
      p.draining_generations(), phases.empty() ? "" : "\tphases: ", phases.c_str(),
      p.last_error().empty() ? "" : "\tlast error: ", p.last_error().c_str());
}

void AddControlCommands(CLI::App& app) {
  auto* control = app.add_subcommand("control", "Operator client of a running inferd (inferd.v1.Control)");
  control->require_subcommand(1);
  auto a = std::make_shared<ControlArgs>();
  AddClientOptions(control, a.get());  // --token: one with the control permission
  auto p = std::make_shared<PoolArgs>();

  control->add_subcommand("pools", "List pools: state, checkpoint path, config hash, load time")->callback([a] {
    grpc::ClientContext ctx;
    Prepare(&ctx, *a);
    v1::ListPoolsResponse resp;
    Check(Stub(*a)->ListPools(&ctx, v1::ListPoolsRequest(), &resp));
    for (const v1::PoolInfo& info : resp.pools()) PrintPool(info);
  });

  auto* reload = control->add_subcommand("reload", "Load a checkpoint beside the serving model and switch to it");
  reload->add_option("pool", p->pool, "model pool name")->required();
  reload->add_option("--path", p->path, "checkpoint directory as the daemon sees it; default: the current one");
  reload->callback([a, p] {
    grpc::ClientContext ctx;
    Prepare(&ctx, *a);
    v1::ReloadPoolRequest req;
    req.set_pool(p->pool);
    req.set_path(p->path);
    v1::ReloadPoolResponse resp;
    Check(Stub(*a)->ReloadPool(&ctx, req, &resp));
    PrintPool(resp.pool());
    std::fprintf(stderr, "[switched after %.2fs]\n", resp.switch_seconds());
  });

  auto* drain = control->add_subcommand("drain", "Refuse new requests to a pool and wait for in-flight ones");
  drain->add_option("pool", p->pool, "model pool name")->required();
  drain->add_option("--drain-timeout", p->drain_timeout_s, "seconds in-flight work gets; 0 = server.drain_grace");
  drain->callback([a, p] {
    grpc::ClientContext ctx;
    Prepare(&ctx, *a);
    v1::DrainPoolRequest req;
    req.set_pool(p->pool);
    req.set_timeout_seconds(p->drain_timeout_s);
    v1::DrainPoolResponse resp;
    Check(Stub(*a)->DrainPool(&ctx, req, &resp));
    PrintPool(resp.pool());
  });

  auto* abort = control->add_subcommand("abort", "Cancel an in-flight request by its request id");
  abort->add_option("request_id", p->request_id, "the request's id")->required();
  abort->callback([a, p] {
    grpc::ClientContext ctx;
    Prepare(&ctx, *a);
    v1::AbortRequestRequest req;
    req.set_request_id(p->request_id);
    v1::AbortRequestResponse resp;
    Check(Stub(*a)->AbortRequest(&ctx, req, &resp));
    std::printf("aborted %s\n", p->request_id.c_str());
  });
}

INFERD_CTL_COMMAND(AddControlCommands);

}  // namespace
}  // namespace inferd::ctl
