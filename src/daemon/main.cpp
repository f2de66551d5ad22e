// inferd: the serving daemon. Start-up order: config -> logging -> metrics -> gRPC port (health NOT_SERVING,
// RPCs UNAVAILABLE) -> models (load, KV pool, warm-up) -> HTTP (when enabled) -> SERVING. SIGTERM/SIGINT:
// NOT_SERVING, in-flight RPCs and HTTP requests get the grace period, exit 0. SIGHUP: re-read the TLS files
// and the token files, the upstreams' too (a bad file keeps the old), and the config: pools whose
// models[].path changed are reloaded without downtime (daemon/pool_manager.h); other changes are logged and
// wait for a restart.
#include <malloc.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <thread>

#include "cache/response_cache.h"
#include "common/logging.h"
#include "daemon/pool_manager.h"
#include "http/openai_frontend.h"
#include "inferd/config.h"
#include "metrics/edge_collector.h"
#include "metrics/engine_collector.h"
#include "metrics/gpu_collector.h"
#include "metrics/lifecycle_collector.h"
#include "metrics/metrics_server.h"
#include "metrics/serving_collector.h"
#include "server/grpc_server.h"
#include "upstream/upstream_backend.h"

namespace {

// glibc gives a thread that allocates while the arenas are busy an arena of its own, up to 8 per core, and an
// arena keeps what its threads freed. Under load the gRPC sync server runs a thread per in-flight RPC (17 -> 273
// threads in benchmarks/soak/RESULTS.md), so resident memory grew with the load and the core count. The
// bound keeps it flat; MALLOC_ARENA_MAX in the environment, if set, wins.
constexpr int kMallocArenaMax = 4;

void BoundMallocArenas() {
  if (std::getenv("MALLOC_ARENA_MAX") == nullptr) mallopt(M_ARENA_MAX, kMallocArenaMax);
}

// Blocks SIGTERM, SIGINT and SIGHUP in this thread and every thread it starts afterwards; main waits for them.
sigset_t BlockTerminationSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

void CheckModelPaths(const inferd::Config& cfg) {
  for (const auto& m : cfg.models) {
    std::filesystem::path cfg_json = std::filesystem::path(m.path) / "config.json";
    if (!std::filesystem::exists(cfg_json)) {
      throw std::runtime_error("model '" + m.name + "': " + cfg_json.string() +
                               " not found (models[].path must be a Hugging Face checkpoint directory)");
    }
  }
}

std::vector<inferd::RequestClass> ParseClasses(const std::vector<std::string>& names) {
  std::vector<inferd::RequestClass> out;
  for (const auto& n : names) {
    out.push_back(n == "realtime" ? inferd::RequestClass::kRealtime : inferd::RequestClass::kComplex);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"inferd: LLM inference serving daemon"};
  std::string config_path = "configs/inferd.yaml";
  bool check_only = false;
  std::string log_level;
  std::string log_format;
  app.add_option("-c,--config", config_path, "YAML config file (documented in configs/inferd.example.yaml)")
      ->capture_default_str();
  app.add_flag("--check-config", check_only, "Validate the config and exit (0 = valid)");
  app.add_option("--log-level", log_level, "Overrides logging.level")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  app.add_option("--log-format", log_format, "Overrides logging.format")->check(CLI::IsMember({"text", "json"}));
  app.set_version_flag("--version", std::string("inferd ") + INFERD_VERSION);
  CLI11_PARSE(app, argc, argv);
  BoundMallocArenas();

  sigset_t signals = BlockTerminationSignals();
  inferd::SetupLogging(inferd::LogFormat::kText, 2);

  inferd::Config cfg;
  try {
    cfg = inferd::LoadConfigFile(config_path);
  } catch (const inferd::ConfigError& e) {
    spdlog::critical("invalid config: {}", e.what());
    return 2;
  }
  if (!log_level.empty()) cfg.logging.level = log_level;
  if (!log_format.empty()) cfg.logging.format = log_format;
  int level = 2;
  inferd::ParseLogLevel(cfg.logging.level, &level);
  inferd::SetupLogging(cfg.logging.format == "json" ? inferd::LogFormat::kJson : inferd::LogFormat::kText, level);

  if (check_only) {
    std::printf("%s: OK\n", config_path.c_str());
    return 0;
  }

  std::unique_ptr<inferd::metrics::MetricsServer> metrics;
  std::shared_ptr<inferd::metrics::EngineCollector> engine_metrics;
  std::unique_ptr<inferd::daemon::PoolManager> pools;
  std::vector<std::shared_ptr<inferd::upstream::UpstreamBackend>> upstreams;
  std::shared_ptr<inferd::cache::ResponseCache> response_cache;
  std::unique_ptr<inferd::server::GrpcServer> grpc_server;
  std::unique_ptr<inferd::http::OpenAiFrontend> http_frontend;
  try {
    CheckModelPaths(cfg);
    if (cfg.metrics.enabled) {
      inferd::metrics::MetricsServerOptions mo;
      mo.header_timeout = std::chrono::milliseconds(static_cast<int64_t>(cfg.metrics.header_timeout_ms));
      mo.tls_cert_file = cfg.metrics.tls.cert_file;
      mo.tls_key_file = cfg.metrics.tls.key_file;
      metrics = std::make_unique<inferd::metrics::MetricsServer>(cfg.metrics.address, mo);
      spdlog::info("metrics on {}://{}/metrics", cfg.metrics.tls.enabled() ? "https" : "http", cfg.metrics.address);
      engine_metrics = std::make_shared<inferd::metrics::EngineCollector>();
      metrics->Add(engine_metrics);
      metrics->Add(std::make_shared<inferd::metrics::GpuCollector>());
      metrics->AddConstantGauge("inferd_realtime_latency_slo_seconds",
                                "Configured realtime latency objective (metrics.realtime_slo_ms).",
                                cfg.metrics.realtime_slo_ms / 1000.0);
    }
    grpc_server = std::make_unique<inferd::server::GrpcServer>(cfg.server, cfg.control);
    spdlog::info(
        "gRPC listening on {} (port {}, {}{}), NOT_SERVING until the models are warm", cfg.server.grpc_address,
        grpc_server->port(),
        cfg.server.tls.enabled() ? (cfg.server.tls.client_ca_file.empty() ? "TLS" : "mutual TLS") : "plaintext",
        cfg.server.auth.token_file.empty() ? "" : ", bearer tokens");
    std::vector<std::string> pool_names;
    for (const auto& m : cfg.models) pool_names.push_back(m.name);
    grpc_server->DeclarePools(pool_names);
    pools = std::make_unique<inferd::daemon::PoolManager>(
        engine_metrics, std::chrono::milliseconds(static_cast<int64_t>(cfg.control.drain_timeout_seconds * 1000)),
        std::chrono::milliseconds(static_cast<int64_t>(cfg.server.drain_grace_seconds * 1000)),
        inferd::daemon::PoolManager::ReloadScheduling{cfg.control.reload_priority, cfg.control.reload_warmup_threads});
    pools->LoadAll(cfg.models);
    std::vector<inferd::server::ServingPool> serving = pools->serving_pools();
    inferd::server::InferenceServiceOptions options;
    options.experiment_variants = cfg.metrics.experiment_variants;
    options.classification = cfg.classification;
    if (cfg.cache.enabled) {
      response_cache = std::make_shared<inferd::cache::ResponseCache>(
          cfg.cache.max_bytes, std::chrono::milliseconds(static_cast<int64_t>(cfg.cache.ttl_ms)));
      options.cache = response_cache;
    }
    for (const auto& u : cfg.upstreams) {
      upstreams.push_back(std::make_shared<inferd::upstream::UpstreamBackend>(u));
      options.upstreams.push_back({upstreams.back(), ParseClasses(u.classes), u.models, u.overflow, u.name});
      spdlog::info("upstream '{}': {} replica(s)", u.name, upstreams.back()->stats().replicas.size());
    }
    grpc_server->Attach(std::move(serving), std::move(options));
    grpc_server->AttachControl(pools.get());
    if (cfg.control.enabled) spdlog::info("Control service on the gRPC port (inferd.v1.Control)");
    if (cfg.http.enabled) {
      http_frontend = std::make_unique<inferd::http::OpenAiFrontend>(cfg.http, &grpc_server->service(),
                                                                       grpc_server->gate());
      spdlog::info("HTTP (OpenAI API) listening on {} (port {})", cfg.http.address, http_frontend->port());
    }
    if (metrics) {
      const inferd::server::GrpcServer* g = grpc_server.get();  // outlives `metrics` (reset first below)
      metrics->Add(std::make_shared<inferd::metrics::ServingCollector>([g] { return g->rpc_stats(); },
                                                                       [g] { return g->business_stats(); }));
      // Model lifecycle: load phases, residency, reloads; Control calls when the service is on.
      const inferd::daemon::PoolManager* pm = pools.get();  // outlives `metrics` too
      std::function<inferd::ControlStats()> control_stats;
      if (cfg.control.enabled) control_stats = [g] { return g->control_stats(); };
      metrics->Add(std::make_shared<inferd::metrics::LifecycleCollector>([pm] { return pm->lifecycle_stats(); },
                                                                         std::move(control_stats)));
      if (response_cache != nullptr || !upstreams.empty()) {
        std::shared_ptr<const inferd::cache::ResponseCache> cache = response_cache;
        metrics->Add(std::make_shared<inferd::metrics::EdgeCollector>(
            [cache]() -> std::optional<inferd::ResponseCacheStats> {
              if (cache == nullptr) return std::nullopt;
              return cache->stats();
            },
            [ups = upstreams] {
              std::vector<inferd::UpstreamStats> out;
              for (const auto& u : ups) out.push_back(u->stats());
              return out;
            }));
      }
    }
  } catch (const std::exception& e) {
    spdlog::critical("start-up failed: {}", e.what());
    return 1;
  }

  grpc_server->SetServing(true);
  spdlog::info("inferd {} SERVING", INFERD_VERSION);

  int sig = 0;
  while (sigwait(&signals, &sig) == 0 && sig == SIGHUP) {
    spdlog::info("received SIGHUP, reloading TLS and token files and {}", config_path);
    if (inferd::Status st = grpc_server->Reload(); !st.ok()) spdlog::error("reload: {}", st.message());
    for (const auto& u : upstreams) {
      if (inferd::Status st = u->Reload(); !st.ok()) spdlog::error("reload: {}", st.message());
    }
    try {
      pools->Reconfigure(&cfg, inferd::LoadConfigFile(config_path));
    } catch (const inferd::ConfigError& e) {
      spdlog::error("SIGHUP: {} is invalid, nothing reloaded: {}", config_path, e.what());
    }
    grpc_server->RefreshHealth();
    if (metrics) {
      if (inferd::Status st = metrics->Reload(); !st.ok()) spdlog::error("reload: {}", st.message());
    }
  }
  spdlog::info("received {}, draining for up to {:.1f}s", sig == SIGTERM ? "SIGTERM" : "SIGINT",
               cfg.server.drain_grace_seconds);
  auto deadline = std::chrono::system_clock::now() +
                  std::chrono::milliseconds(static_cast<int64_t>(cfg.server.drain_grace_seconds * 1000));
  grpc_server->SetServing(false);  // new HTTP requests get 503 while gRPC drains
  if (http_frontend) {
    std::thread http_drain([&] {
      http_frontend->Shutdown(std::chrono::steady_clock::now() +
                              std::chrono::milliseconds(static_cast<int64_t>(cfg.server.drain_grace_seconds * 1000)));
    });
    grpc_server->Shutdown(deadline);
    http_drain.join();
  } else {
    grpc_server->Shutdown(deadline);
  }
  http_frontend.reset();  // before the service it calls
  metrics.reset();  // before the server and engines its collectors read
  grpc_server.reset();
  upstreams.clear();  // in-flight forwarded calls are cancelled upstream
  pools.reset();      // engines stop; anything still queued ends CANCELLED
  spdlog::info("drained, exiting");
  return 0;
}
