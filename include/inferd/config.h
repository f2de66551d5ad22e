// Daemon configuration: YAML -> validated plain structs. Defaults live here and nowhere else;
// configs/inferd.example.yaml documents every key with the same values.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace inferd {

// Server TLS from PEM files; all empty = plaintext. Re-read on SIGHUP.
struct TlsConfig {
  std::string cert_file;       // certificate chain presented to clients
  std::string key_file;        // its private key
  std::string client_ca_file;  // gRPC only: when set, clients must present a certificate signed by it (mTLS)
  bool enabled() const { return !cert_file.empty(); }
  bool operator==(const TlsConfig&) const = default;
};

// Bearer-token authentication of the inferd.v1.Inference RPCs (docs/security.md); health and reflection
// stay open. Empty token_file = no authentication.
struct RateLimitConfig {
  double requests_per_second = 0;  // per authenticated identity; 0 = no limit
  double burst = 0;                // bucket size in requests; 0 = max(1, requests_per_second)
  bool operator==(const RateLimitConfig&) const = default;
};

struct AuthConfig {
  std::string token_file;  // lines "<identity> sha256:<hex> <permission>[,<permission>]"; re-read on SIGHUP
  RateLimitConfig rate_limit;
  bool operator==(const AuthConfig&) const = default;
};

struct ServerConfig {
  std::string grpc_address = "127.0.0.1:50051";  // host:port; port 0 picks a free port
  int64_t max_message_bytes = 4 << 20;           // gRPC receive/send cap
  double drain_grace_seconds = 10.0;             // SIGTERM: time in-flight work gets to finish
  bool reflection = true;                        // grpc.reflection.v1alpha
  int32_t max_request_id_bytes = 256;            // request_id of every RPC
  // gRPC's synchronous server runs each in-flight RPC on a thread of its own: at most this many (pollers
  // included); an RPC arriving when all are busy gets RESOURCE_EXHAUSTED at once. Bounds threads and their
  // per-thread memory under overload (docs/hardening.md). 0 = unbounded (gRPC's default).
  int32_t max_threads = 1024;
  TlsConfig tls;
  AuthConfig auth;
  bool operator==(const ServerConfig&) const = default;
};

// The OpenAI-compatible HTTP front end (http/): completions, chat, models, rerank, health and readiness.
// Off unless enabled; loopback by default. No authentication: the gRPC API has none either.
struct HttpConfig {
  bool enabled = false;
  std::string address = "127.0.0.1:8000";  // host:port; port 0 picks a free port
  int64_t max_body_bytes = 4 << 20;        // larger bodies get 413
  int64_t max_header_bytes = 16 << 10;     // request line + headers; larger gets 431
  int32_t max_connections = 256;           // open connections (one thread each); beyond: 503 and closed
  double idle_timeout_ms = 30000;          // keep-alive connection without a request is closed; send timeout
  double read_timeout_ms = 10000;          // a request's head and body must arrive within this of its first byte
  // Deadline of a completion, chat or rerank request without an `inferd-timeout-ms` header (0 = none); past
  // it the request ends with 504. The header may set a shorter or longer one.
  double request_timeout_ms = 0;
  bool operator==(const HttpConfig&) const = default;
};

struct MetricsConfig {
  bool enabled = true;
  std::string address = "127.0.0.1:9464";  // HTTP GET /metrics; loopback unless set otherwise
  TlsConfig tls;                           // HTTPS when cert_file is set (client_ca_file is not used here)
  double header_timeout_ms = 5000;         // a connection that has not sent its request head by then is closed
  double realtime_slo_ms = 80;             // exported as inferd_realtime_latency_slo_seconds for the p99 alert
  // Values the `inferd-variant` request header may carry; business series then get a `variant` label
  // ("none" for requests without a listed value). Empty: no variant label.
  std::vector<std::string> experiment_variants;
  bool operator==(const MetricsConfig&) const = default;
};

struct LoggingConfig {
  std::string level = "info";   // trace | debug | info | warn | error | critical | off
  std::string format = "text";  // text | json (one object per line)
  bool operator==(const LoggingConfig&) const = default;
};

struct KvCacheConfig {
  int32_t block_size = 16;             // tokens per block
  int64_t memory_bytes = 256LL << 20;  // budget for the block pool
  bool prefix_caching = true;
  bool operator==(const KvCacheConfig&) const = default;
};

struct SchedulerConfig {
  int32_t max_batched_tokens = 512;    // token budget per engine step
  int32_t max_running = 64;            // running sequences cap
  int32_t prefill_chunk_tokens = 256;  // longest prefill slice in one step
  int32_t max_waiting_realtime = 256;  // bounded queues: beyond these, RESOURCE_EXHAUSTED
  int32_t max_waiting_complex = 1024;
  double realtime_deadline_ms = 100;  // default deadline for realtime requests
  double complex_max_wait_ms = 2000;  // starvation bound: past it the longest-waiting complex request
                                      // is promoted ahead of realtime work, one at a time
  // Realtime protection, by the step-cost model fitted from the engine's own step timings:
  double realtime_step_budget_ms = 25;       // while realtime work waits or runs, complex chunks join a step only
                                             // while its predicted time stays within this...
  double complex_min_share = 0.2;            // ...but complex work keeps this share of each step's time (0..0.9)
  double realtime_max_request_share = 0.5;   // one realtime request's share of a step's tokens while others wait
  std::string realtime_overload = "refuse";  // refuse | best_effort: a realtime request predicted to miss its
                                             // deadline is refused (RESOURCE_EXHAUSTED) or served and counted
  bool operator==(const SchedulerConfig&) const = default;
};

// Request caps, checked before anything is queued; over a cap = INVALID_ARGUMENT naming the field and cap.
struct LimitsConfig {
  int32_t max_prompt_tokens = 4096;  // Generate prompt
  int32_t max_tokens = 1024;         // cap on a request's max_tokens
  int32_t default_max_tokens = 256;
  int32_t max_candidates = 256;                // per Recommend
  int32_t max_context_tokens = 4096;           // Recommend context
  int32_t max_candidate_tokens = 256;          // one Recommend candidate
  int32_t max_total_candidate_tokens = 16384;  // all candidates of one Recommend together
  int32_t max_stop_strings = 16;               // sampling.stop entries
  int32_t max_stop_string_bytes = 256;         // one stop string
  bool operator==(const LimitsConfig&) const = default;
};

// ---- Model lifecycle (docs/lifecycle.md) ----

// Start-up and reload warm-up: requests over the shape classes the scheduler produces, run before the pool
// serves (daemon/warmup.h derives the shapes from the pool's scheduler, KV and limits settings).
struct WarmupConfig {
  bool enabled = true;
  // prefill: a prompt of more than one prefill chunk and a short one; decode: decode-only steps at every
  // batch-size bucket up to the pool's batch cap; recommend: a Recommend at each candidate-count bucket.
  std::vector<std::string> classes = {"prefill", "decode", "recommend"};
  bool operator==(const WarmupConfig&) const = default;
};

struct ModelPoolConfig {
  std::string name = "default";
  std::string path;            // HF checkpoint dir; relative paths are relative to the config file
  std::string device = "cpu";  // cpu | cuda | cuda:N
  std::string dtype = "bf16";  // bf16 | fp16 | fp32 (fp16 on CUDA only)
  int32_t num_threads = 0;     // intra-op threads; 0 = all cores
  std::vector<std::string> classes = {"realtime", "complex"};  // classes routed to this pool
  KvCacheConfig kv_cache;
  SchedulerConfig scheduler;
  LimitsConfig limits;
  WarmupConfig warmup;
  // Weights after load: lock (mlock their pages so nothing can evict them; falls back to prefault, with the
  // reason logged, when RLIMIT_MEMLOCK is too small) | prefault (touch every page once) | none.
  std::string residency = "lock";
  // Weights stored in `dtype`: map (locked read-only views into the checkpoint's file mapping, no copy; only
  // with residency lock, else copied; the files must not be rewritten in place while served) | copy.
  std::string weights = "map";
  bool operator==(const ModelPoolConfig&) const = default;
};

// ---- Edge/central topology (docs/edge-central.md) ----

// An inclusive integer range; an absent bound is open.
struct RangeConfig {
  std::optional<int64_t> min;
  std::optional<int64_t> max;
  bool operator==(const RangeConfig&) const = default;
};

// What a classification rule matches. An empty list or absent range matches anything; a rule matches
// when every condition holds. Ranges on fields an RPC lacks (max_tokens on Recommend; candidates on
// Generate) never match that RPC.
struct RuleMatchConfig {
  std::vector<std::string> rpc;         // generate | generate_stream | recommend
  std::vector<std::string> class_hint;  // unspecified | realtime | complex
  std::vector<std::string> model;       // the request's `model` field; "" = a request naming no model
  RangeConfig max_tokens;               // Generate: sampling.max_tokens as sent (0 = server default)
  RangeConfig prompt_tokens;            // Generate prompt / Recommend context, in the first local pool's tokens
  RangeConfig candidates;               // Recommend: number of candidates
  RangeConfig candidate_tokens;         // Recommend: tokens in all candidates together
  RangeConfig latency_budget_ms;        // as sent (0 = none)
  bool operator==(const RuleMatchConfig&) const = default;
};

struct ClassRuleConfig {
  std::string name;
  RuleMatchConfig match;
  std::string cls = "realtime";  // realtime | complex (YAML key `class`)
  bool operator==(const ClassRuleConfig&) const = default;
};

struct ClassificationConfig {
  // A class_hint other than UNSPECIFIED decides before any rule (rules matching such hints are unreachable).
  bool honor_class_hint = true;
  std::string generate_default = "complex";
  std::string generate_stream_default = "complex";
  std::string recommend_default = "realtime";
  // First match wins. Without a `classification.rules` key: the one rule below (tiny budgeted Generates).
  std::vector<ClassRuleConfig> rules = {DefaultSmallGenerateRule()};

  static ClassRuleConfig DefaultSmallGenerateRule() {
    ClassRuleConfig r;
    r.name = "small-generate";
    r.match.rpc = {"generate", "generate_stream"};
    r.match.max_tokens = {1, 16};
    r.match.latency_budget_ms = {1, std::nullopt};
    r.cls = "realtime";
    return r;
  }
  bool operator==(const ClassificationConfig&) const = default;
};

struct UpstreamHealthConfig {
  double interval_ms = 1000;  // grpc.health.v1 Check per replica
  double timeout_ms = 500;
  int32_t unhealthy_threshold = 2;  // consecutive failures that eject a replica
  int32_t healthy_threshold = 1;    // consecutive successes that re-admit it
  bool operator==(const UpstreamHealthConfig&) const = default;
};

struct UpstreamBreakerConfig {
  int32_t failure_threshold = 5;  // consecutive failed calls that open the breaker
  double open_ms = 2000;          // open -> half-open after this long; one probe call decides
  bool operator==(const UpstreamBreakerConfig&) const = default;
};

// How an edge daemon authenticates itself to an upstream and checks the upstream (docs/security.md).
struct UpstreamTlsConfig {
  bool enabled = false;     // TLS to every replica
  std::string ca_file;      // roots that sign the upstream's certificate ("" = the system's roots)
  std::string cert_file;    // client certificate chain for mutual TLS (with key_file)
  std::string key_file;
  std::string server_name;  // name the upstream's certificate must carry ("" = the host of dns, else of each target)
  bool operator==(const UpstreamTlsConfig&) const = default;
};

struct UpstreamConfig {
  std::string name;
  std::vector<std::string> targets;      // host:port replicas; or
  std::string dns;                       // host:port resolved (all A/AAAA records) at start-up, then
  double dns_refresh_ms = 30000;         // again this often (0: never); used with dns only
  std::vector<std::string> classes;      // classes routed here when a request names no model
  std::vector<std::string> models;       // model names forwarded here
  bool overflow = false;                 // realtime work the local pool refuses (RESOURCE_EXHAUSTED) goes here
  int32_t max_attempts = 2;              // tries per call; a retry only when nothing was sent and UNAVAILABLE
  double keepalive_time_ms = 10000;      // HTTP/2 keepalive ping period
  double keepalive_timeout_ms = 5000;
  UpstreamHealthConfig health;
  UpstreamBreakerConfig breaker;
  UpstreamTlsConfig tls;
  // A file holding the bearer token sent as `authorization: Bearer <token>` on every forwarded call ("" = none).
  std::string token_file;
  bool operator==(const UpstreamConfig&) const = default;
};

struct ResponseCacheConfig {
  bool enabled = false;
  int64_t max_bytes = 64LL << 20;  // entries evicted least recently used beyond this
  double ttl_ms = 1000;
  bool operator==(const ResponseCacheConfig&) const = default;
};

// The inferd.v1.Control operator service (proto/inferd/v1/control.proto) on the gRPC port; off unless enabled.
// Enabled needs allowed_addresses, token_file or both; with both a call must pass both checks.
struct ControlConfig {
  bool enabled = false;
  std::vector<std::string> allowed_addresses;  // client IP addresses (127.0.0.1, ::1); empty = any address
  std::string token_file;  // server.auth.token_file's format; a token needs the `control` permission
  double drain_timeout_seconds = 60;  // after a reload switched, the old model's in-flight requests get this long
  // Scheduling of a reload's load and warm-up beside the serving model (Control and SIGHUP reloads): their
  // threads at "low" (nice 19), "idle" (SCHED_IDLE) or "normal" priority, and the warm-up's steps on at most
  // reload_warmup_threads intra-op threads (0 = as the pool's num_threads).
  std::string reload_priority = "low";
  int32_t reload_warmup_threads = 1;
  bool operator==(const ControlConfig&) const = default;
};

struct Config {
  ServerConfig server;
  HttpConfig http;
  MetricsConfig metrics;
  LoggingConfig logging;
  std::vector<ModelPoolConfig> models;
  ClassificationConfig classification;
  std::vector<UpstreamConfig> upstreams;
  ResponseCacheConfig cache;  // realtime Recommend responses of local pools
  ControlConfig control;
  std::string source_path;    // file it was read from ("" for a string)
  bool operator==(const Config&) const = default;
};

// Thrown for any invalid configuration. what() lists every problem, one per line,
// each as "<file>: <key.path>: <reason>".
class ConfigError : public std::runtime_error {
 public:
  explicit ConfigError(const std::string& what) : std::runtime_error(what) {}
};

// Parses and validates. `source_name` is used in messages and to resolve relative model paths
// (its directory). Throws ConfigError.
Config LoadConfigFile(const std::string& path);
Config ParseConfig(const std::string& yaml_text, const std::string& source_name = "<string>");

}  // namespace inferd
