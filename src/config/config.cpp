#include "inferd/config.h"

#include <arpa/inet.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include "classify/classifier.h"
#include "config/yaml_reader.h"

namespace inferd {
namespace {

using config::YamlReader;

// "host:port" or "[v6]:port" with port 0..65535.
bool ValidAddress(const std::string& addr) {
  size_t colon = addr.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 >= addr.size()) return false;
  std::string port = addr.substr(colon + 1);
  if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos) return false;
  return std::stoi(port) <= 65535;
}

// Relative paths are resolved against the config file's directory in ParseNode; the files are read at start-up.
void ReadTls(YamlReader& r, TlsConfig* c, bool allow_client_ca) {
  r.Get("cert_file", &c->cert_file);
  r.Get("key_file", &c->key_file);
  if (allow_client_ca) r.Get("client_ca_file", &c->client_ca_file);
  if (c->cert_file.empty() != c->key_file.empty()) r.Error("", "set both cert_file and key_file, or neither");
  if (!c->client_ca_file.empty() && c->cert_file.empty()) {
    r.Error("client_ca_file", "mutual TLS needs the server's cert_file and key_file");
  }
}

void ReadServer(YamlReader& r, ServerConfig* c) {
  r.Get("grpc_address", &c->grpc_address);
  if (!ValidAddress(c->grpc_address)) r.Error("grpc_address", "expected host:port, found '" + c->grpc_address + "'");
  r.GetBytes("max_message_bytes", &c->max_message_bytes, 1024);
  r.Get("drain_grace_seconds", &c->drain_grace_seconds, 0.0, 3600.0);
  r.Get("reflection", &c->reflection);
  r.Get("max_request_id_bytes", &c->max_request_id_bytes, 1, 4096);
  r.Get("max_threads", &c->max_threads, 0, 1 << 20);
  if (c->max_threads > 0 && c->max_threads < 4) r.Error("max_threads", "must be 0 (unbounded) or at least 4");
  r.Child("tls", [&](YamlReader& t) { ReadTls(t, &c->tls, /*allow_client_ca=*/true); });
  r.Child("auth", [&](YamlReader& a) {
    a.Get("token_file", &c->auth.token_file);
    a.Child("rate_limit", [&](YamlReader& l) {
      l.Get("requests_per_second", &c->auth.rate_limit.requests_per_second, 0.0, 1e6);
      l.Get("burst", &c->auth.rate_limit.burst, 0.0, 1e6);
      if (c->auth.rate_limit.requests_per_second > 0 && c->auth.token_file.empty()) {
        l.Error("requests_per_second", "limits are per authenticated identity; set server.auth.token_file");
      }
      if (c->auth.rate_limit.burst > 0 && c->auth.rate_limit.requests_per_second == 0) {
        l.Error("burst", "needs requests_per_second > 0");
      }
    });
  });
}

void ReadHttp(YamlReader& r, HttpConfig* c) {
  r.Get("enabled", &c->enabled);
  r.Get("address", &c->address);
  if (!ValidAddress(c->address)) r.Error("address", "expected host:port, found '" + c->address + "'");
  r.GetBytes("max_body_bytes", &c->max_body_bytes, 1024);
  if (c->max_body_bytes > (int64_t{1} << 30)) r.Error("max_body_bytes", "must be at most 1GiB");
  r.GetBytes("max_header_bytes", &c->max_header_bytes, 1024);
  if (c->max_header_bytes > (int64_t{1} << 20)) r.Error("max_header_bytes", "must be at most 1MiB");
  r.Get("max_connections", &c->max_connections, 1, 65536);
  r.Get("idle_timeout_ms", &c->idle_timeout_ms, 1.0, 3.6e6);
  r.Get("read_timeout_ms", &c->read_timeout_ms, 1.0, 3.6e6);
  r.Get("request_timeout_ms", &c->request_timeout_ms, 0.0, 3.6e6);
}

void ReadMetrics(YamlReader& r, MetricsConfig* c) {
  r.Get("enabled", &c->enabled);
  r.Get("address", &c->address);
  r.Get("realtime_slo_ms", &c->realtime_slo_ms, 0.001, 3600000.0);
  r.Child("tls", [&](YamlReader& t) { ReadTls(t, &c->tls, /*allow_client_ca=*/false); });
  r.Get("header_timeout_ms", &c->header_timeout_ms, 10.0, 600000.0);
  r.Get("experiment_variants", &c->experiment_variants);
  if (c->experiment_variants.size() > 16) r.Error("experiment_variants", "at most 16 values");
  for (size_t i = 0; i < c->experiment_variants.size(); ++i) {
    const std::string& v = c->experiment_variants[i];
    const bool valid = !v.empty() && v.size() <= 32 && std::all_of(v.begin(), v.end(), [](char ch) {
      return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-';
    });
    if (!valid) r.Error("experiment_variants", "'" + v + "': use 1 to 32 of a-z, 0-9, _ and -");
    if (v == "none") r.Error("experiment_variants", "'none' is reserved for requests without a variant");
    if (std::find(c->experiment_variants.begin(), c->experiment_variants.begin() + i, v) !=
        c->experiment_variants.begin() + i) {
      r.Error("experiment_variants", "duplicate value '" + v + "'");
    }
  }
  if (!ValidAddress(c->address)) r.Error("address", "expected host:port, found '" + c->address + "'");
}

void ReadLogging(YamlReader& r, LoggingConfig* c) {
  r.GetEnum("level", &c->level, {"trace", "debug", "info", "warn", "error", "critical", "off"});
  r.GetEnum("format", &c->format, {"text", "json"});
}

void ReadKvCache(YamlReader& r, KvCacheConfig* c) {
  r.Get("block_size", &c->block_size, 1, 1024);
  if (c->block_size & (c->block_size - 1)) r.Error("block_size", "must be a power of two");
  r.GetBytes("memory_bytes", &c->memory_bytes, 1 << 20);
  r.Get("prefix_caching", &c->prefix_caching);
}

void ReadScheduler(YamlReader& r, SchedulerConfig* c) {
  r.Get("max_batched_tokens", &c->max_batched_tokens, 1, 1 << 20);
  r.Get("max_running", &c->max_running, 1, 1 << 16);
  r.Get("prefill_chunk_tokens", &c->prefill_chunk_tokens, 1, 1 << 20);
  r.Get("max_waiting_realtime", &c->max_waiting_realtime, 0, 1 << 20);
  r.Get("max_waiting_complex", &c->max_waiting_complex, 0, 1 << 20);
  r.Get("realtime_deadline_ms", &c->realtime_deadline_ms, 1.0, 3.6e6);
  r.Get("complex_max_wait_ms", &c->complex_max_wait_ms, 1.0, 3.6e6);
  r.Get("realtime_step_budget_ms", &c->realtime_step_budget_ms, 0.1, 3.6e6);
  r.Get("complex_min_share", &c->complex_min_share, 0.0, 0.9);
  r.Get("realtime_max_request_share", &c->realtime_max_request_share, 0.01, 1.0);
  r.GetEnum("realtime_overload", &c->realtime_overload, {"refuse", "best_effort"});
  if (c->prefill_chunk_tokens > c->max_batched_tokens) {
    r.Error("prefill_chunk_tokens",
            "must not exceed max_batched_tokens (" + std::to_string(c->max_batched_tokens) + ")");
  }
}

void ReadLimits(YamlReader& r, LimitsConfig* c) {
  r.Get("max_prompt_tokens", &c->max_prompt_tokens, 1, 1 << 24);
  r.Get("max_tokens", &c->max_tokens, 1, 1 << 24);
  r.Get("default_max_tokens", &c->default_max_tokens, 1, 1 << 24);
  r.Get("max_candidates", &c->max_candidates, 1, 1 << 16);
  r.Get("max_context_tokens", &c->max_context_tokens, 1, 1 << 24);
  r.Get("max_candidate_tokens", &c->max_candidate_tokens, 1, 1 << 24);
  r.Get("max_total_candidate_tokens", &c->max_total_candidate_tokens, 1, 1 << 30);
  r.Get("max_stop_strings", &c->max_stop_strings, 0, 1024);
  r.Get("max_stop_string_bytes", &c->max_stop_string_bytes, 1, 65536);
  if (c->max_candidate_tokens > c->max_total_candidate_tokens) {
    r.Error("max_candidate_tokens",
            "must not exceed max_total_candidate_tokens (" + std::to_string(c->max_total_candidate_tokens) + ")");
  }
  if (c->default_max_tokens > c->max_tokens) {
    r.Error("default_max_tokens", "must not exceed max_tokens (" + std::to_string(c->max_tokens) + ")");
  }
}

void ReadWarmup(YamlReader& r, WarmupConfig* c) {
  r.Get("enabled", &c->enabled);
  r.Get("classes", &c->classes);
  for (size_t i = 0; i < c->classes.size(); ++i) {
    const std::string& k = c->classes[i];
    if (k != "prefill" && k != "decode" && k != "recommend") {
      r.Error("classes", "unknown class '" + k.substr(0, 64) + "' (prefill, decode, recommend)");
    } else if (std::find(c->classes.begin(), c->classes.begin() + static_cast<std::ptrdiff_t>(i), k) !=
               c->classes.begin() + static_cast<std::ptrdiff_t>(i)) {
      r.Error("classes", "duplicate class '" + k + "'");
    }
  }
  if (c->enabled && c->classes.empty()) r.Error("classes", "empty while enabled; set enabled: false to skip warm-up");
}

void ReadModel(YamlReader& r, ModelPoolConfig* m, const std::filesystem::path& base_dir) {
  r.Get("name", &m->name);
  if (m->name.empty()) r.Error("name", "must not be empty");
  r.Get("path", &m->path);
  if (m->path.empty()) {
    r.Error("path", "is required (a Hugging Face checkpoint directory)");
  } else if (std::filesystem::path(m->path).is_relative()) {
    m->path = (base_dir / m->path).lexically_normal().string();
  }
  r.Get("device", &m->device);
  if (m->device != "cpu" && m->device != "cuda" && m->device.rfind("cuda:", 0) != 0) {
    r.Error("device", "must be cpu, cuda or cuda:N, found '" + m->device + "'");
  }
  r.GetEnum("dtype", &m->dtype, {"bf16", "fp16", "fp32"});
  if (m->dtype == "fp16" && m->device == "cpu")
    r.Error("dtype", "fp16 is supported on CUDA only (no fp16 CPU decode kernel); use bf16 or fp32 on cpu");
  r.Get("num_threads", &m->num_threads, 0, 1024);
  r.Get("classes", &m->classes);
  for (const auto& c : m->classes) {
    if (c != "realtime" && c != "complex") r.Error("classes", "unknown class '" + c + "' (realtime, complex)");
  }
  r.Child("kv_cache", [&](YamlReader& c) { ReadKvCache(c, &m->kv_cache); });
  r.Child("scheduler", [&](YamlReader& c) { ReadScheduler(c, &m->scheduler); });
  r.Child("limits", [&](YamlReader& c) { ReadLimits(c, &m->limits); });
  r.Child("warmup", [&](YamlReader& c) { ReadWarmup(c, &m->warmup); });
  r.GetEnum("residency", &m->residency, {"lock", "prefault", "none"});
  r.GetEnum("weights", &m->weights, {"map", "copy"});
}

void ReadRange(YamlReader& r, const char* key, RangeConfig* out) {
  r.Child(key, [&](YamlReader& c) {
    constexpr int64_t kUnset = std::numeric_limits<int64_t>::min();
    int64_t lo = kUnset, hi = kUnset;
    c.Get("min", &lo, 0, std::numeric_limits<int64_t>::max());
    c.Get("max", &hi, 0, std::numeric_limits<int64_t>::max());
    if (lo != kUnset) out->min = lo;
    if (hi != kUnset) out->max = hi;
    if (lo == kUnset && hi == kUnset) c.Error("", "set min, max or both");
  });
}

void ReadClassification(YamlReader& r, ClassificationConfig* c) {
  r.Get("honor_class_hint", &c->honor_class_hint);
  r.Child("defaults", [&](YamlReader& d) {
    d.GetEnum("generate", &c->generate_default, {"realtime", "complex"});
    d.GetEnum("generate_stream", &c->generate_stream_default, {"realtime", "complex"});
    d.GetEnum("recommend", &c->recommend_default, {"realtime", "complex"});
  });
  std::vector<ClassRuleConfig> rules;
  if (r.List("rules", [&](YamlReader& rr, size_t) {
        ClassRuleConfig rule;
        rr.Get("name", &rule.name);
        rr.GetEnum("class", &rule.cls, {"realtime", "complex"});
        rr.Child("match", [&](YamlReader& m) {
          m.Get("rpc", &rule.match.rpc);
          m.Get("class_hint", &rule.match.class_hint);
          m.Get("model", &rule.match.model);
          ReadRange(m, "max_tokens", &rule.match.max_tokens);
          ReadRange(m, "prompt_tokens", &rule.match.prompt_tokens);
          ReadRange(m, "candidates", &rule.match.candidates);
          ReadRange(m, "candidate_tokens", &rule.match.candidate_tokens);
          ReadRange(m, "latency_budget_ms", &rule.match.latency_budget_ms);
        });
        rules.push_back(std::move(rule));
      })) {
    c->rules = std::move(rules);
  }
}

void ReadUpstream(YamlReader& r, UpstreamConfig* u) {
  r.Get("name", &u->name);
  if (u->name.empty()) r.Error("name", "must not be empty");
  r.Get("targets", &u->targets);
  for (const auto& t : u->targets) {
    if (!ValidAddress(t)) r.Error("targets", "expected host:port, found '" + t + "'");
  }
  r.Get("dns", &u->dns);
  if (!u->dns.empty() && !ValidAddress(u->dns)) r.Error("dns", "expected host:port, found '" + u->dns + "'");
  if (u->targets.empty() == u->dns.empty()) r.Error("", "set exactly one of targets and dns");
  r.Get("dns_refresh_ms", &u->dns_refresh_ms, 0.0, 8.64e7);
  r.Get("classes", &u->classes);
  for (const auto& c : u->classes) {
    if (c != "realtime" && c != "complex") r.Error("classes", "unknown class '" + c + "' (realtime, complex)");
  }
  r.Get("models", &u->models);
  r.Get("overflow", &u->overflow);
  r.Get("max_attempts", &u->max_attempts, 1, 5);
  r.Get("keepalive_time_ms", &u->keepalive_time_ms, 1000.0, 3.6e6);
  r.Get("keepalive_timeout_ms", &u->keepalive_timeout_ms, 100.0, 3.6e6);
  r.Child("health", [&](YamlReader& h) {
    h.Get("interval_ms", &u->health.interval_ms, 10.0, 3.6e6);
    h.Get("timeout_ms", &u->health.timeout_ms, 1.0, 3.6e6);
    h.Get("unhealthy_threshold", &u->health.unhealthy_threshold, 1, 100);
    h.Get("healthy_threshold", &u->health.healthy_threshold, 1, 100);
  });
  r.Child("breaker", [&](YamlReader& b) {
    b.Get("failure_threshold", &u->breaker.failure_threshold, 1, 1000);
    b.Get("open_ms", &u->breaker.open_ms, 1.0, 3.6e6);
  });
  r.Child("tls", [&](YamlReader& t) {
    UpstreamTlsConfig& tls = u->tls;
    t.Get("enabled", &tls.enabled);
    t.Get("ca_file", &tls.ca_file);
    t.Get("cert_file", &tls.cert_file);
    t.Get("key_file", &tls.key_file);
    t.Get("server_name", &tls.server_name);
    const bool any =
        !tls.ca_file.empty() || !tls.cert_file.empty() || !tls.key_file.empty() || !tls.server_name.empty();
    if (any && !tls.enabled) t.Error("enabled", "must be true when other tls keys are set");
    if (tls.cert_file.empty() != tls.key_file.empty())
      t.Error("cert_file", "set both cert_file and key_file, or neither");
  });
  r.Get("token_file", &u->token_file);
}

void ReadCache(YamlReader& r, ResponseCacheConfig* c) {
  r.Get("enabled", &c->enabled);
  r.GetBytes("max_bytes", &c->max_bytes, 1024);
  r.Get("ttl_ms", &c->ttl_ms, 1.0, 8.64e7);
}

void ReadControl(YamlReader& r, ControlConfig* c) {
  r.Get("enabled", &c->enabled);
  r.Get("allowed_addresses", &c->allowed_addresses);
  for (const std::string& a : c->allowed_addresses) {
    unsigned char buf[16];
    if (inet_pton(AF_INET, a.c_str(), buf) != 1 && inet_pton(AF_INET6, a.c_str(), buf) != 1) {
      r.Error("allowed_addresses", "'" + a.substr(0, 64) + "' is not an IPv4 or IPv6 address");
    }
  }
  r.Get("token_file", &c->token_file);
  r.Get("drain_timeout_seconds", &c->drain_timeout_seconds, 0.0, 86400.0);
  r.GetEnum("reload_priority", &c->reload_priority, {"low", "idle", "normal"});
  r.Get("reload_warmup_threads", &c->reload_warmup_threads, 0, 1024);
  if (c->enabled && c->allowed_addresses.empty() && c->token_file.empty()) {
    r.Error("", "enabled without allowed_addresses or token_file would let anyone reload models; set one or both");
  }
}

Config ParseNode(const YAML::Node& root, const std::string& source_name) {
  Config cfg;
  cfg.source_path = source_name;
  std::vector<std::string> errors;
  if (!root.IsMap() && !root.IsNull()) {
    throw ConfigError(source_name + ": the top level must be a mapping");
  }
  std::filesystem::path base_dir = std::filesystem::absolute(source_name).parent_path();
  YamlReader r(root, "", &errors);
  r.Child("server", [&](YamlReader& c) { ReadServer(c, &cfg.server); });
  r.Child("http", [&](YamlReader& c) { ReadHttp(c, &cfg.http); });
  r.Child("metrics", [&](YamlReader& c) { ReadMetrics(c, &cfg.metrics); });
  r.Child("logging", [&](YamlReader& c) { ReadLogging(c, &cfg.logging); });
  bool has_models = r.List("models", [&](YamlReader& c, size_t) {
    cfg.models.emplace_back();
    ReadModel(c, &cfg.models.back(), base_dir);
  });
  r.Child("classification", [&](YamlReader& c) { ReadClassification(c, &cfg.classification); });
  r.List("upstreams", [&](YamlReader& c, size_t) {
    cfg.upstreams.emplace_back();
    ReadUpstream(c, &cfg.upstreams.back());
  });
  r.Child("cache", [&](YamlReader& c) { ReadCache(c, &cfg.cache); });
  r.Child("control", [&](YamlReader& c) { ReadControl(c, &cfg.control); });
  r.Finish();
  std::vector<std::string*> files = {&cfg.server.tls.cert_file,      &cfg.server.tls.key_file,
                                     &cfg.server.tls.client_ca_file, &cfg.server.auth.token_file,
                                     &cfg.control.token_file,        &cfg.metrics.tls.cert_file,
                                     &cfg.metrics.tls.key_file};
  for (UpstreamConfig& u : cfg.upstreams) {
    for (std::string* f : {&u.tls.ca_file, &u.tls.cert_file, &u.tls.key_file, &u.token_file}) files.push_back(f);
  }
  for (std::string* file : files) {
    if (!file->empty() && std::filesystem::path(*file).is_relative()) {
      *file = (base_dir / *file).lexically_normal().string();
    }
  }
  if ((!has_models || cfg.models.empty()) && cfg.upstreams.empty() && errors.empty()) {
    errors.push_back("models: at least one model pool is required (or an upstream to forward to)");
  }
  for (std::string& e : classify::CheckRules(cfg.classification)) errors.push_back(std::move(e));
  bool counts_tokens = false;
  for (const auto& rule : cfg.classification.rules) {
    counts_tokens = counts_tokens || rule.match.prompt_tokens.min || rule.match.prompt_tokens.max ||
                    rule.match.candidate_tokens.min || rule.match.candidate_tokens.max;
  }
  if (counts_tokens && cfg.models.empty()) {
    errors.push_back(
        "classification.rules: prompt_tokens and candidate_tokens are counted with a local model "
        "pool's tokenizer; configure one under models");
  }
  std::set<std::string> names;
  std::set<std::string> served;
  for (size_t i = 0; i < cfg.models.size(); ++i) {
    const auto& m = cfg.models[i];
    std::string path = "models[" + std::to_string(i) + "]";
    if (!names.insert(m.name).second) errors.push_back(path + ".name: duplicate model name '" + m.name + "'");
    for (const auto& c : m.classes) {
      if (!served.insert(c).second) {
        errors.push_back(path + ".classes: class '" + c + "' is already routed to another model pool");
      }
    }
  }
  int overflows = 0;
  for (size_t i = 0; i < cfg.upstreams.size(); ++i) {
    const auto& u = cfg.upstreams[i];
    std::string path = "upstreams[" + std::to_string(i) + "]";
    if (!names.insert("upstream:" + u.name).second) {
      errors.push_back(path + ".name: duplicate upstream name '" + u.name + "'");
    }
    for (const auto& m : u.models) {
      if (!names.insert(m).second) {
        errors.push_back(path + ".models: model '" + m + "' is already served by a local pool or another upstream");
      }
    }
    for (const auto& c : u.classes) {
      if (!served.insert(c).second) {
        errors.push_back(path + ".classes: class '" + c + "' is already routed to another model pool or upstream");
      }
    }
    if (u.overflow && cfg.models.empty()) {
      errors.push_back(path + ".overflow: needs a local model pool whose refusals could overflow");
    }
    if (u.overflow && ++overflows > 1) errors.push_back(path + ".overflow: only one upstream may take overflow");
    if (u.classes.empty() && u.models.empty() && !u.overflow) {
      errors.push_back(path + ": routes nothing; set classes, models or overflow");
    }
  }
  if (cfg.metrics.enabled && cfg.metrics.address == cfg.server.grpc_address) {
    errors.push_back("metrics.address: must differ from server.grpc_address");
  }
  if (cfg.http.enabled && cfg.http.address == cfg.server.grpc_address) {
    errors.push_back("http.address: must differ from server.grpc_address");
  }
  if (cfg.http.enabled && cfg.metrics.enabled && cfg.http.address == cfg.metrics.address) {
    errors.push_back("http.address: must differ from metrics.address");
  }
  if (!errors.empty()) {
    std::ostringstream msg;
    for (size_t i = 0; i < errors.size(); ++i) msg << (i ? "\n" : "") << source_name << ": " << errors[i];
    throw ConfigError(msg.str());
  }
  return cfg;
}

}  // namespace

Config ParseConfig(const std::string& yaml_text, const std::string& source_name) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    throw ConfigError(source_name + ": YAML syntax error at line " + std::to_string(e.mark.line + 1) + ", column " +
                      std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
  return ParseNode(root, source_name);
}

Config LoadConfigFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError(path + ": cannot open config file: " + std::strerror(errno));
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseConfig(ss.str(), path);
}

}  // namespace inferd
