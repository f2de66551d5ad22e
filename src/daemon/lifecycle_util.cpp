#include "daemon/lifecycle_util.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace inferd::daemon {
namespace {

std::string Mib(int64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  return buf;
}

}  // namespace

std::string Fnv1a64(std::string_view bytes) {
  uint64_t h = 14695981039346656037ULL;  // FNV-1a 64 offset basis
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), "fnv1a64:%016llx", static_cast<unsigned long long>(h));
  return buf;
}

StatusOr<std::string> HashFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound(path + ": cannot be read");
  std::stringstream ss;
  ss << in.rdbuf();
  return Fnv1a64(ss.str());
}

int64_t CheckpointWeightBytes(const std::string& dir) {
  int64_t total = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    if (e.path().extension() == ".safetensors" && e.is_regular_file(ec)) {
      total += static_cast<int64_t>(e.file_size(ec));
    }
  }
  return total;
}

std::optional<int64_t> ParseMemAvailable(std::string_view meminfo) {
  std::istringstream in{std::string(meminfo)};
  std::string line;
  while (std::getline(in, line)) {
    long long kib = 0;
    if (std::sscanf(line.c_str(), "MemAvailable: %lld kB", &kib) == 1) return static_cast<int64_t>(kib) * 1024;
  }
  return std::nullopt;
}

std::optional<int64_t> MemAvailableNow() {
  std::ifstream in("/proc/meminfo");
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseMemAvailable(ss.str());
}

Status CheckReloadMemory(const std::string& pool, int64_t weights, int64_t kv, std::optional<int64_t> available) {
  if (!available) return Status::Ok();
  const int64_t need = weights + kv;
  if (need <= *available) return Status::Ok();
  return ResourceExhausted("model '" + pool + "': a reload loads the new model beside the serving one and needs " +
                           Mib(need) + " (weights " + Mib(weights) + " + KV pool " + Mib(kv) + "); MemAvailable is " +
                           Mib(*available) + ", " + Mib(need - *available) + " missing");
}

ConfigChanges DiffForReload(const Config& running, const Config& next) {
  ConfigChanges out;
  auto section = [&](bool same, const char* key) {
    if (!same) out.ignored.push_back(std::string(key) + ": changed; takes effect on restart");
  };
  section(running.server == next.server, "server");
  section(running.http == next.http, "http");
  section(running.metrics == next.metrics, "metrics");
  section(running.logging == next.logging, "logging");
  section(running.classification == next.classification, "classification");
  section(running.upstreams == next.upstreams, "upstreams");
  section(running.cache == next.cache, "cache");
  section(running.control == next.control, "control");
  if (running.models.size() != next.models.size()) {
    out.ignored.push_back("models: pools added or removed; takes effect on restart");
    return out;
  }
  for (size_t i = 0; i < running.models.size(); ++i) {
    ModelPoolConfig a = running.models[i];
    const ModelPoolConfig& b = next.models[i];
    const std::string key = "models[" + std::to_string(i) + "]";
    if (a.name != b.name) {
      out.ignored.push_back(key + ".name: changed; takes effect on restart");
      continue;
    }
    const bool path_changed = a.path != b.path;
    a.path = b.path;
    if (!(a == b)) {
      out.ignored.push_back(key + " ('" + a.name + "'): keys other than path changed; takes effect on restart" +
                            (path_changed ? " (path not reloaded either)" : ""));
      continue;
    }
    if (path_changed) out.reload.push_back(i);
  }
  return out;
}

void PoolStatsMerger::Record(uint64_t generation, const EngineStats& stats) {
  EngineStats merged = stats;
  {
    // The sink runs under the lock too: two engines' merged totals must reach it in order.
    std::lock_guard<std::mutex> lock(mu_);
    Last& l = last_[generation];
    l.running = stats.running_requests;
    l.waiting = stats.waiting_requests;
    l.running_seqs = stats.running_seqs;
    l.waiting_seqs = stats.waiting_seqs;
    l.preemptions = stats.preemptions_total;
    l.prefix_queried = stats.prefix_queried_tokens_total;
    l.prefix_hit = stats.prefix_hit_tokens_total;
    l.realtime_refused = stats.realtime_refused_total;
    l.realtime_predicted_late = stats.realtime_predicted_late_total;
    l.realtime_late = stats.realtime_late_total;
    merged.running_requests = {};
    merged.waiting_requests = {};
    merged.running_seqs = {};
    merged.waiting_seqs = {};
    merged.preemptions_total = merged.prefix_queried_tokens_total = merged.prefix_hit_tokens_total = 0;
    merged.realtime_refused_total = merged.realtime_predicted_late_total = merged.realtime_late_total = 0;
    for (const auto& [gen, g] : last_) {
      for (size_t k = 0; k < static_cast<size_t>(kNumRequestClasses); ++k) {
        merged.running_requests[k] += g.running[k];
        merged.waiting_requests[k] += g.waiting[k];
        merged.running_seqs[k] += g.running_seqs[k];
        merged.waiting_seqs[k] += g.waiting_seqs[k];
      }
      merged.preemptions_total += g.preemptions;
      merged.prefix_queried_tokens_total += g.prefix_queried;
      merged.prefix_hit_tokens_total += g.prefix_hit;
      merged.realtime_refused_total += g.realtime_refused;
      merged.realtime_predicted_late_total += g.realtime_predicted_late;
      merged.realtime_late_total += g.realtime_late;
    }
    sink_(merged);
  }
}

void PoolStatsMerger::Retire(uint64_t generation) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = last_.find(generation);
  if (it == last_.end()) return;
  it->second.running = it->second.waiting = it->second.running_seqs = it->second.waiting_seqs = {};
}

}  // namespace inferd::daemon
