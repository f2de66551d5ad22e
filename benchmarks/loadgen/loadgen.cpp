// loadgen: a gRPC load generator for inferd, as a user measures it.
//   Open loop (--rate R: Poisson arrivals, R requests/s) or closed loop (--concurrency C: C requests in
//   flight). Requests are drawn from a YAML scenario (scenarios/*.yaml): classes with weights, each a
//   Recommend (context words, candidate count, words per candidate, top_k), a Generate or a GenerateStream
//   (prompt tokens, max_tokens, sampling), with an SLO.
//   Per class: requests/s, tokens/s, latency p50/p90/p99, time to first token and inter-token latency
//   (streams), goodput (requests meeting their SLO per second), errors by gRPC code, and lost requests: one
//   that neither completed nor failed `--drain-s` after the run ended. A run with a lost request exits 3.
//   --rates r1,r2,... runs one open-loop run per rate (a latency-throughput sweep); plot.py draws it.
//   JSON on stdout (or --out); a progress line on stderr each second.
#include <grpcpp/grpcpp.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "inferd/v1/inferd.grpc.pb.h"

namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;
namespace v1 = inferd::v1;

struct Range {
  int min = 1;
  int max = 1;
  int Draw(std::mt19937_64& rng) const { return std::uniform_int_distribution<int>(min, max)(rng); }
};

enum class Rpc { kRecommend, kGenerate, kGenerateStream };

struct ClassSpec {
  std::string name;
  Rpc rpc = Rpc::kRecommend;
  double weight = 1;
  std::string model;
  double slo_ms = 0;       // whole request; 0 = none
  double ttft_slo_ms = 0;  // streams: first token; 0 = none
  double deadline_ms = 0;  // gRPC deadline; 0 = none
  // Recommend
  Range context_words{8, 24};
  Range candidates{4, 12};
  Range candidate_words{2, 6};
  int top_k = 5;
  // Generate
  Range prompt_tokens{16, 64};
  Range max_tokens{16, 64};
  double temperature = 0;
  double top_p = 0;
  bool ignore_eos = true;
};

struct Scenario {
  std::string name;
  uint64_t seed = 1;
  int vocab = 32000;  // prompt token ids are drawn from [100, vocab)
  std::vector<ClassSpec> classes;
};

[[noreturn]] void Fail(const std::string& msg) {
  std::fprintf(stderr, "loadgen: %s\n", msg.c_str());
  std::exit(2);
}

void OnlyKeys(const YAML::Node& n, const std::string& path, const std::set<std::string>& allowed) {
  if (!n.IsMap()) Fail(path + ": expected a mapping");
  for (const auto& kv : n) {
    const std::string k = kv.first.as<std::string>();
    if (!allowed.count(k)) Fail(path + "." + k + ": unknown key");
  }
}

Range ReadRange(const YAML::Node& n, const std::string& path, Range def) {
  if (!n) return def;
  if (n.IsScalar()) {
    const int v = n.as<int>();
    return {v, v};
  }
  OnlyKeys(n, path, {"min", "max"});
  Range r{n["min"] ? n["min"].as<int>() : def.min, n["max"] ? n["max"].as<int>() : def.max};
  if (r.min < 0 || r.max < r.min) Fail(path + ": need 0 <= min <= max");
  return r;
}

Scenario LoadScenario(const std::string& file) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(file);
  } catch (const std::exception& e) {
    Fail(file + ": " + e.what());
  }
  OnlyKeys(root, file, {"name", "seed", "vocab", "classes"});
  Scenario s;
  s.name = root["name"] ? root["name"].as<std::string>() : file;
  if (root["seed"]) s.seed = root["seed"].as<uint64_t>();
  if (root["vocab"]) s.vocab = root["vocab"].as<int>();
  if (s.vocab <= 100) Fail(file + ".vocab: must be above 100");
  if (!root["classes"] || !root["classes"].IsSequence() || root["classes"].size() == 0) {
    Fail(file + ".classes: a non-empty list is required");
  }
  for (size_t i = 0; i < root["classes"].size(); ++i) {
    const YAML::Node c = root["classes"][i];
    const std::string path = file + ".classes[" + std::to_string(i) + "]";
    OnlyKeys(c, path,
             {"name", "rpc", "weight", "model", "slo_ms", "ttft_slo_ms", "deadline_ms", "context_words", "candidates",
              "candidate_words", "top_k", "prompt_tokens", "max_tokens", "temperature", "top_p", "ignore_eos"});
    ClassSpec k;
    k.name = c["name"] ? c["name"].as<std::string>() : "class" + std::to_string(i);
    const std::string rpc = c["rpc"] ? c["rpc"].as<std::string>() : "recommend";
    if (rpc == "recommend") {
      k.rpc = Rpc::kRecommend;
    } else if (rpc == "generate") {
      k.rpc = Rpc::kGenerate;
    } else if (rpc == "generate_stream") {
      k.rpc = Rpc::kGenerateStream;
    } else {
      Fail(path + ".rpc: one of recommend, generate, generate_stream, found '" + rpc + "'");
    }
    if (c["weight"]) k.weight = c["weight"].as<double>();
    if (!(k.weight > 0)) Fail(path + ".weight: must be positive");
    if (c["model"]) k.model = c["model"].as<std::string>();
    if (c["slo_ms"]) k.slo_ms = c["slo_ms"].as<double>();
    if (c["ttft_slo_ms"]) k.ttft_slo_ms = c["ttft_slo_ms"].as<double>();
    if (c["deadline_ms"]) k.deadline_ms = c["deadline_ms"].as<double>();
    k.context_words = ReadRange(c["context_words"], path + ".context_words", k.context_words);
    k.candidates = ReadRange(c["candidates"], path + ".candidates", k.candidates);
    k.candidate_words = ReadRange(c["candidate_words"], path + ".candidate_words", k.candidate_words);
    if (c["top_k"]) k.top_k = c["top_k"].as<int>();
    k.prompt_tokens = ReadRange(c["prompt_tokens"], path + ".prompt_tokens", k.prompt_tokens);
    k.max_tokens = ReadRange(c["max_tokens"], path + ".max_tokens", k.max_tokens);
    if (c["temperature"]) k.temperature = c["temperature"].as<double>();
    if (c["top_p"]) k.top_p = c["top_p"].as<double>();
    if (c["ignore_eos"]) k.ignore_eos = c["ignore_eos"].as<bool>();
    if (k.rpc == Rpc::kRecommend && k.candidates.min < 1) Fail(path + ".candidates: at least 1");
    s.classes.push_back(k);
  }
  return s;
}

const std::vector<std::string>& Words() {
  static const std::vector<std::string> w = {
      "tent",     "stove", "lamp",     "socks",      "jacket",  "boots",   "map",    "rope",  "knife",  "bottle",
      "the",      "a",     "for",      "with",       "and",     "blue",    "red",    "light", "warm",   "small",
      "bought",   "needs", "camping",  "hiking",     "winter",  "summer",  "trail",  "river", "mug",    "ceramic",
      "customer", "bag",   "sleeping", "chair",      "table",   "cooler",  "filter", "pump",  "helmet", "gloves",
      "scarf",    "hat",   "compass",  "flashlight", "battery", "charger", "solar",  "panel", "kettle", "pan"};
  return w;
}

std::string Text(int words, std::mt19937_64& rng) {
  std::string out;
  std::uniform_int_distribution<size_t> pick(0, Words().size() - 1);
  for (int i = 0; i < words; ++i) out += (i ? " " : "") + Words()[pick(rng)];
  return out;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
  return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
}

json Summary(const std::vector<double>& ms) {
  return {{"count", ms.size()},
          {"p50", Percentile(ms, 50)},
          {"p90", Percentile(ms, 90)},
          {"p99", Percentile(ms, 99)},
          {"max", ms.empty() ? 0.0 : *std::max_element(ms.begin(), ms.end())}};
}

double Ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

struct ClassStats {
  uint64_t sent = 0, ok = 0, met_slo = 0, lost = 0;
  uint64_t tokens = 0;  // generated tokens (Generate) or prompt tokens scored (Recommend), of OK requests
  std::map<std::string, uint64_t> errors;
  std::vector<double> latency_ms, ttft_ms, itl_ms;
};

// One RPC in flight. Owned by the Runner's `live_` map until it completes.
struct Call {
  uint64_t id = 0;
  size_t cls = 0;
  bool recorded = false;  // issued after warm-up
  bool lost = false;      // still in flight when the drain ended: counted as lost, not by its outcome
  Clock::time_point start;
  Clock::time_point first_token{}, last_token{};
  uint64_t stream_tokens = 0;
  std::vector<double> itl_ms;
  grpc::ClientContext ctx;
  v1::RecommendRequest rec;
  v1::RecommendResponse rec_resp;
  v1::GenerateRequest gen;
  v1::GenerateResponse gen_resp;
};

class Runner;

class StreamReactor : public grpc::ClientReadReactor<v1::GenerateDelta> {
 public:
  StreamReactor(Runner* runner, Call* call) : runner_(runner), call_(call) {}
  void Start(v1::Inference::Stub* stub) {
    stub->async()->GenerateStream(&call_->ctx, &call_->gen, this);
    StartRead(&msg_);
    StartCall();
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    const auto now = Clock::now();
    const int n = msg_.tokens_size();
    if (n > 0) {
      if (call_->stream_tokens == 0) {
        call_->first_token = now;
      } else {
        // The gap since the previous delta, spread over the tokens this delta carries.
        const double gap = Ms(now - call_->last_token) / n;
        for (int i = 0; i < n; ++i) call_->itl_ms.push_back(gap);
      }
      call_->last_token = now;
      call_->stream_tokens += static_cast<uint64_t>(n);
    }
    if (msg_.has_usage() && msg_.usage().generated_tokens() > 0) usage_tokens_ = msg_.usage().generated_tokens();
    StartRead(&msg_);
  }
  void OnDone(const grpc::Status& status) override;

 private:
  Runner* runner_;
  Call* call_;
  v1::GenerateDelta msg_;
  int64_t usage_tokens_ = -1;
};

class Runner {
 public:
  Runner(const Scenario& s, std::shared_ptr<grpc::Channel> channel)
      : scenario_(s), stub_(v1::Inference::NewStub(channel)), rng_(s.seed), stats_(s.classes.size()) {
    double total = 0;
    for (const ClassSpec& c : s.classes) total += c.weight;
    double acc = 0;
    for (const ClassSpec& c : s.classes) cumulative_.push_back(acc += c.weight / total);
  }

  // Open loop when rate > 0, else closed loop with `concurrency` in flight.
  json Run(double rate, int concurrency, double duration_s, double warmup_s, double drain_s, bool progress) {
    const auto t0 = Clock::now();
    const auto measure_from = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(warmup_s));
    const auto until =
        measure_from + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(duration_s));
    std::exponential_distribution<double> gap(rate > 0 ? rate : 1);
    auto next = t0;
    auto next_progress = t0 + std::chrono::seconds(1);
    while (true) {
      const auto now = Clock::now();
      if (now >= until) break;
      if (progress && now >= next_progress) {
        Progress(now - t0, until - t0);
        next_progress += std::chrono::seconds(1);
      }
      if (rate > 0) {
        if (now < next) {
          std::this_thread::sleep_until(std::min({next, next_progress, until}));
          continue;
        }
        next += std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(gap(rng_)));
      } else {
        std::unique_lock<std::mutex> lock(mu_);
        if (!cv_.wait_until(lock, std::min(next_progress, until),
                            [&] { return live_.size() < static_cast<size_t>(concurrency); })) {
          continue;
        }
      }
      Issue(Clock::now() >= measure_from);
    }
    const auto issued_until = Clock::now();
    // Drain: every request completes or fails, or counts as lost.
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, std::chrono::duration<double>(drain_s), [&] { return live_.empty(); });
      for (auto& [id, call] : live_) {
        if (call->recorded) stats_[call->cls].lost++;
        lost_total_++;
        call->lost = true;
        call->ctx.TryCancel();
      }
      cv_.wait_for(lock, std::chrono::seconds(10), [&] { return live_.empty(); });
    }
    if (progress) Progress(Clock::now() - t0, until - t0);
    const double seconds = std::chrono::duration<double>(issued_until - measure_from).count();
    json classes = json::object();
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t i = 0; i < stats_.size(); ++i) {
      const ClassStats& c = stats_[i];
      classes[scenario_.classes[i].name] = {
          {"sent", c.sent},
          {"ok", c.ok},
          {"lost", c.lost},
          {"errors", c.errors},
          {"requests_per_s", c.ok / seconds},
          {"goodput_per_s", c.met_slo / seconds},
          {"tokens_per_s", c.tokens / seconds},
          {"slo_ms", scenario_.classes[i].slo_ms},
          {"latency_ms", Summary(c.latency_ms)},
          {"ttft_ms", Summary(c.ttft_ms)},
          {"itl_ms", Summary(c.itl_ms)},
      };
    }
    json out = {{"scenario", scenario_.name}, {"mode", rate > 0 ? "open" : "closed"},
                {"measured_s", seconds},      {"warmup_s", warmup_s},
                {"lost", lost_total_},        {"classes", classes}};
    if (rate > 0) {
      out["rate_per_s"] = rate;
    } else {
      out["concurrency"] = concurrency;
    }
    return out;
  }

  uint64_t lost() const { return lost_total_; }

  void Finish(Call* call, const grpc::Status& st, int64_t generated, int64_t prompt_tokens) {
    const auto end = Clock::now();
    std::lock_guard<std::mutex> lock(mu_);
    auto it = live_.find(call->id);
    if (it == live_.end()) return;
    if (call->recorded && !call->lost) {
      ClassStats& c = stats_[call->cls];
      const ClassSpec& spec = scenario_.classes[call->cls];
      if (st.ok()) {
        c.ok++;
        const double ms = Ms(end - call->start);
        c.latency_ms.push_back(ms);
        const bool stream = spec.rpc == Rpc::kGenerateStream;
        double ttft = -1;
        if (stream && call->stream_tokens > 0) {
          ttft = Ms(call->first_token - call->start);
          c.ttft_ms.push_back(ttft);
          c.itl_ms.insert(c.itl_ms.end(), call->itl_ms.begin(), call->itl_ms.end());
        }
        bool met = spec.slo_ms <= 0 || ms <= spec.slo_ms;
        if (stream && spec.ttft_slo_ms > 0) met = met && ttft >= 0 && ttft <= spec.ttft_slo_ms;
        if (met) c.met_slo++;
        c.tokens += static_cast<uint64_t>(spec.rpc == Rpc::kRecommend ? prompt_tokens : generated);
      } else {
        c.errors[CodeName(st.error_code())]++;
      }
    }
    completed_++;
    if (!st.ok()) failed_++;
    live_.erase(it);
    cv_.notify_all();
  }

 private:
  static std::string CodeName(grpc::StatusCode code) {
    static const char* kNames[] = {
        "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
        "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
        "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
        "DATA_LOSS", "UNAUTHENTICATED"};
    const int c = static_cast<int>(code);
    return c >= 0 && c <= 16 ? kNames[c] : "CODE_" + std::to_string(c);
  }

  void Progress(Clock::duration elapsed, Clock::duration total) {
    std::lock_guard<std::mutex> lock(mu_);
    static const bool tty = isatty(2) != 0;  // a terminal gets one line rewritten, a log one line each
    std::fprintf(stderr,
                 tty ? "\r[%5.1fs/%5.1fs] sent %llu done %llu in flight %zu failed %llu"
                     : "[%5.1fs/%5.1fs] sent %llu done %llu in flight %zu failed %llu\n",
                 Ms(elapsed) / 1000, Ms(total) / 1000, static_cast<unsigned long long>(sent_),
                 static_cast<unsigned long long>(completed_), live_.size(), static_cast<unsigned long long>(failed_));
    std::fflush(stderr);
  }

  void Issue(bool recorded) {
    const double u = std::uniform_real_distribution<double>(0, 1)(rng_);
    const size_t cls =
        std::min<size_t>(std::lower_bound(cumulative_.begin(), cumulative_.end(), u) - cumulative_.begin(),
                         scenario_.classes.size() - 1);
    const ClassSpec& spec = scenario_.classes[cls];
    auto owned = std::make_unique<Call>();
    Call* call = owned.get();
    call->cls = cls;
    call->recorded = recorded;
    if (spec.deadline_ms > 0) {
      call->ctx.set_deadline(std::chrono::system_clock::now() +
                             std::chrono::microseconds(static_cast<int64_t>(spec.deadline_ms * 1000)));
    }
    if (spec.rpc == Rpc::kRecommend) {
      call->rec.set_model(spec.model);
      call->rec.set_context(Text(spec.context_words.Draw(rng_), rng_));
      const int n = spec.candidates.Draw(rng_);
      for (int i = 0; i < n; ++i) {
        auto* c = call->rec.add_candidates();
        c->set_item_id(static_cast<uint64_t>(i + 1));
        c->set_text(" " + Text(spec.candidate_words.Draw(rng_), rng_));
      }
      call->rec.set_top_k(spec.top_k);
    } else {
      call->gen.set_model(spec.model);
      const int n = std::max(1, spec.prompt_tokens.Draw(rng_));
      std::uniform_int_distribution<int> tok(100, scenario_.vocab - 1);
      for (int i = 0; i < n; ++i) call->gen.mutable_prompt_token_ids()->add_ids(tok(rng_));
      auto* s = call->gen.mutable_sampling();
      s->set_max_tokens(std::max(1, spec.max_tokens.Draw(rng_)));
      s->set_temperature(static_cast<float>(spec.temperature));
      s->set_top_p(static_cast<float>(spec.top_p));
      s->set_ignore_eos(spec.ignore_eos);
      if (spec.temperature > 0) s->set_seed(rng_());
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      call->id = ++sent_;
      if (recorded) stats_[cls].sent++;
      call->start = Clock::now();
      live_.emplace(call->id, std::move(owned));
    }
    switch (spec.rpc) {
      case Rpc::kRecommend:
        stub_->async()->Recommend(&call->ctx, &call->rec, &call->rec_resp, [this, call](grpc::Status st) {
          Finish(call, st, 0, call->rec_resp.usage().prompt_tokens());
        });
        break;
      case Rpc::kGenerate:
        stub_->async()->Generate(&call->ctx, &call->gen, &call->gen_resp, [this, call](grpc::Status st) {
          Finish(call, st, call->gen_resp.usage().generated_tokens(), call->gen_resp.usage().prompt_tokens());
        });
        break;
      case Rpc::kGenerateStream:
        (new StreamReactor(this, call))->Start(stub_.get());
        break;
    }
  }

  const Scenario& scenario_;
  std::unique_ptr<v1::Inference::Stub> stub_;
  std::mt19937_64 rng_;
  std::vector<double> cumulative_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<uint64_t, std::unique_ptr<Call>> live_;
  std::vector<ClassStats> stats_;
  uint64_t sent_ = 0, completed_ = 0, failed_ = 0, lost_total_ = 0;
};

void StreamReactor::OnDone(const grpc::Status& status) {
  const int64_t tokens = usage_tokens_ >= 0 ? usage_tokens_ : static_cast<int64_t>(call_->stream_tokens);
  runner_->Finish(call_, status, tokens, 0);
  delete this;
}

std::string LoadAverage() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  f >> a >> b >> c;
  return a + " " + b + " " + c;
}

std::string CpuModel() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "unknown";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"loadgen: open/closed-loop gRPC load against an inferd daemon"};
  std::string target = "127.0.0.1:50051", scenario_file, out_file, rates;
  double rate = 0, duration = 30, warmup = 3, drain = 60;
  int concurrency = 0;
  bool quiet = false;
  app.add_option("--target", target, "host:port of the daemon")->capture_default_str();
  app.add_option("--scenario", scenario_file, "scenario YAML (benchmarks/loadgen/scenarios/)")->required();
  app.add_option("--rate", rate, "open loop: Poisson arrivals per second");
  app.add_option("--rates", rates, "open-loop sweep: comma-separated rates, one run each");
  app.add_option("--concurrency", concurrency, "closed loop: requests in flight");
  app.add_option("--duration", duration, "measured seconds per run")->capture_default_str();
  app.add_option("--warmup", warmup, "seconds of load before measuring")->capture_default_str();
  app.add_option("--drain-s", drain, "after the run, seconds to wait for in-flight requests before they count as lost")
      ->capture_default_str();
  app.add_option("--out", out_file, "write the JSON here instead of stdout");
  app.add_flag("--quiet", quiet, "no progress line");
  CLI11_PARSE(app, argc, argv);

  std::vector<double> sweep;
  if (!rates.empty()) {
    std::stringstream ss(rates);
    std::string item;
    while (std::getline(ss, item, ',')) sweep.push_back(std::stod(item));
  } else if (rate > 0) {
    sweep.push_back(rate);
  }
  if (sweep.empty() == (concurrency <= 0)) Fail("set exactly one of --rate, --rates and --concurrency");
  if (std::any_of(sweep.begin(), sweep.end(), [](double r) { return !(r > 0); })) Fail("rates must be positive");

  const Scenario scenario = LoadScenario(scenario_file);
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  auto channel = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
  if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10))) {
    Fail("cannot connect to " + target);
  }
  json runs = json::array();
  uint64_t lost = 0;
  const std::string load_before = LoadAverage();
  for (size_t i = 0; i < std::max<size_t>(1, sweep.size()); ++i) {
    Runner runner(scenario, channel);
    json r = runner.Run(sweep.empty() ? 0 : sweep[i], concurrency, duration, warmup, drain, !quiet);
    if (!quiet && isatty(2)) std::fprintf(stderr, "\n");
    lost += runner.lost();
    runs.push_back(std::move(r));
  }
  const json out = {{"target", target},
                    {"cpu", CpuModel()},
                    {"cores", std::thread::hardware_concurrency()},
                    {"loadavg_before", load_before},
                    {"loadavg_after", LoadAverage()},
                    {"runs", runs}};
  if (out_file.empty()) {
    std::printf("%s\n", out.dump(2).c_str());
  } else {
    std::ofstream(out_file) << out.dump(2) << "\n";
  }
  if (lost > 0) {
    std::fprintf(stderr, "loadgen: %llu request(s) lost (neither completed nor failed)\n",
                 static_cast<unsigned long long>(lost));
    return 3;
  }
  return 0;
}
