// Observability end to end, with the real parts: the inferd binary, the Debian `prometheus` server loaded
// with configs/prometheus/*.yml, the Debian Alertmanager, and a webhook receiver in this process, all on
// loopback. The daemon sees a stand-in libnvidia-ml.so.1 (tests/metrics/fake_nvml.cpp) on its
// LD_LIBRARY_PATH so that the GPU tier exists without a driver; everything else it exports is real.
// Every wait polls for a condition with a deadline; nothing sleeps for a fixed time to let things happen.
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "daemon_process.h"
#include "inferd/v1/inferd.grpc.pb.h"
#include "test_env.h"

namespace inferd::e2e {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

std::string RulesDir() {
  return SourceDir() + "/configs/prometheus";
}
std::string Dashboard() {
  return SourceDir() + "/configs/grafana/inferd.json";
}

// Polls `ready` every 100 ms until it returns true or `timeout` passes.
bool PollUntil(std::chrono::milliseconds timeout, const std::function<bool()>& ready) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (ready()) return true;
    std::this_thread::sleep_for(milliseconds(100));
  }
  return ready();
}

std::string UrlEncode(const std::string& s) {
  std::string out;
  char buf[4];
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

// Alertmanager's webhook target: accepts POSTs on 127.0.0.1 and keeps their bodies.
class WebhookReceiver {
 public:
  WebhookReceiver() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd_, 16) != 0) {
      throw std::runtime_error("webhook receiver: cannot listen");
    }
    socklen_t len = sizeof addr;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~WebhookReceiver() {
    stop_ = true;
    thread_.join();
    close(fd_);
  }
  int port() const { return port_; }
  std::vector<std::string> bodies() const {
    std::lock_guard<std::mutex> lock(mu_);
    return bodies_;
  }

 private:
  void Serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      std::string req;
      char buf[4096];
      size_t need = std::string::npos;
      while (true) {
        ssize_t n = recv(c, buf, sizeof buf, 0);
        if (n <= 0) break;
        req.append(buf, static_cast<size_t>(n));
        const size_t head = req.find("\r\n\r\n");
        if (head != std::string::npos && need == std::string::npos) {
          std::smatch m;
          const std::string headers = req.substr(0, head);
          static const std::regex kLength("[Cc]ontent-[Ll]ength: *([0-9]+)");
          need = head + 4 + (std::regex_search(headers, m, kLength) ? std::stoul(m[1]) : 0);
        }
        if (need != std::string::npos && req.size() >= need) break;
      }
      const size_t head = req.find("\r\n\r\n");
      if (head != std::string::npos) {
        std::lock_guard<std::mutex> lock(mu_);
        bodies_.push_back(req.substr(head + 4));
      }
      const std::string ok = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
      (void)!send(c, ok.data(), ok.size(), MSG_NOSIGNAL);
      close(c);
    }
  }

  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  std::vector<std::string> bodies_;
  std::thread thread_;
};

// The daemon with a tiny realtime SLO, fed one round of every RPC.
class ObservabilityTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(MakeTempDir("inferd-obs-e2e-"));
    grpc_port_ = FreePort();
    metrics_port_ = FreePort();
    std::ostringstream c;
    c << "server:\n  grpc_address: \"127.0.0.1:" << grpc_port_ << "\"\n  drain_grace_seconds: 2\n"
      << "metrics:\n  address: \"127.0.0.1:" << metrics_port_ << "\"\n  realtime_slo_ms: 0.001\n"
      << "  experiment_variants: [control, treatment]\n"
      << "models:\n  - name: default\n    path: " << E2eModelDir() << "\n"
      << "    scheduler: {realtime_deadline_ms: 10000}\n"  // serving, not admission, is under test here
      // The edge tier's series: a response cache, and an upstream (the daemon itself) for a model no test
      // request names.
      << "cache: {enabled: true, max_bytes: 1MiB, ttl_ms: 60000}\n"
      << "upstreams:\n  - name: self\n    targets: [\"" << Grpc()
      << "\"]\n    models: [nobody-asks]\n"
      // The Control service's series (exported only while it is on).
      << "control: {enabled: true, allowed_addresses: [127.0.0.1]}\n";
    WriteFile(*dir_ + "/inferd.yaml", c.str());
    daemon_ = new Process("/usr/bin/env",
                          {"LD_LIBRARY_PATH=" + inferd_test::TestEnvPath("INFERD_FAKE_NVML_DIR"), InferdBinary(),
                           "--config", *dir_ + "/inferd.yaml"},
                          *dir_ + "/inferd.log");
    ASSERT_TRUE(WaitServing(Grpc(), seconds(120))) << daemon_->Log();
    stub_ = v1::Inference::NewStub(grpc::CreateChannel(Grpc(), grpc::InsecureChannelCredentials())).release();
    SendEveryRpc();
  }
  static void TearDownTestSuite() {
    delete stub_;
    delete daemon_;
    std::filesystem::remove_all(*dir_);
    delete dir_;
  }

  static std::string Grpc() { return "127.0.0.1:" + std::to_string(grpc_port_); }

  // `variant`: the inferd-variant request metadata, when not empty.
  static std::string Recommend(const std::string& variant = "") {
    v1::RecommendRequest rec;
    rec.set_context("The customer bought a tent and");
    const char* items[] = {" a sleeping bag", " a stove", " a lamp"};
    for (uint64_t i = 0; i < 3; ++i) {
      auto* cand = rec.add_candidates();
      cand->set_item_id(10 + i);
      cand->set_text(items[i]);
    }
    v1::RecommendResponse resp;
    grpc::ClientContext ctx;
    if (!variant.empty()) ctx.AddMetadata("inferd-variant", variant);
    grpc::Status st = stub_->Recommend(&ctx, rec, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp.request_id();
  }

  static void Feedback(const std::string& id, const std::function<void(v1::FeedbackRequest*)>& set) {
    v1::FeedbackRequest req;
    req.set_request_id(id);
    set(&req);
    v1::FeedbackResponse resp;
    grpc::ClientContext ctx;
    grpc::Status st = stub_->Feedback(&ctx, req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
  }

  // Recommend, Generate (complex, and realtime through the tiny-budget rule), GenerateStream, Feedback of
  // every kind against the ids they returned, one Feedback naming an id never served, one bad request.
  static void SendEveryRpc() {
    const std::string rec_id = Recommend("treatment");
    v1::GenerateRequest gen;
    gen.set_prompt("Describe this product: a blue ceramic mug.");
    gen.set_request_id("obs-gen-1");
    gen.mutable_sampling()->set_max_tokens(6);
    gen.mutable_sampling()->set_ignore_eos(true);
    v1::GenerateResponse resp;
    {
      grpc::ClientContext ctx;
      ASSERT_TRUE(stub_->Generate(&ctx, gen, &resp).ok());
    }
    v1::GenerateRequest rt = gen;
    rt.set_request_id("obs-gen-rt");
    rt.mutable_sampling()->set_max_tokens(3);
    rt.set_latency_budget_ms(30000);
    {
      grpc::ClientContext ctx;
      ASSERT_TRUE(stub_->Generate(&ctx, rt, &resp).ok());
    }
    {
      grpc::ClientContext ctx;
      auto reader = stub_->GenerateStream(&ctx, gen);
      v1::GenerateDelta d;
      while (reader->Read(&d)) {
      }
      ASSERT_TRUE(reader->Finish().ok());
    }
    v1::GenerateRequest bad = gen;
    bad.mutable_sampling()->set_top_p(1.5f);
    {
      grpc::ClientContext ctx;
      ASSERT_EQ(stub_->Generate(&ctx, bad, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    }
    Feedback(rec_id, [](v1::FeedbackRequest* r) {
      r->set_impression(true);
      r->set_count(3);
    });
    Feedback(rec_id, [](v1::FeedbackRequest* r) { r->set_click(true); });
    Feedback(rec_id, [](v1::FeedbackRequest* r) { r->set_conversion(true); });
    Feedback("obs-gen-1", [](v1::FeedbackRequest* r) { r->set_quality_score(0.75); });
    Feedback("never-served", [](v1::FeedbackRequest* r) { r->set_click(true); });
  }

  static std::string* dir_;
  static int grpc_port_, metrics_port_;
  static Process* daemon_;
  static v1::Inference::Stub* stub_;
};

std::string* ObservabilityTest::dir_ = nullptr;
int ObservabilityTest::grpc_port_ = 0;
int ObservabilityTest::metrics_port_ = 0;
Process* ObservabilityTest::daemon_ = nullptr;
v1::Inference::Stub* ObservabilityTest::stub_ = nullptr;

// Metric names (inferd_*, process_*) that `text` mentions, skipping the parts of recorded names
// (level:metric:operation), and recorded names themselves.
void NamesIn(const std::string& text, std::set<std::string>* metrics, std::set<std::string>* recorded) {
  static const std::regex kName("[a-zA-Z_:][a-zA-Z0-9_:]*");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), kName); it != std::sregex_iterator(); ++it) {
    const std::string n = it->str();
    if (n.find(':') != std::string::npos) {
      if (std::count(n.begin(), n.end(), ':') == 2) recorded->insert(n);
    } else if (n.rfind("inferd_", 0) == 0 || n.rfind("process_", 0) == 0) {
      metrics->insert(n);
    }
  }
}

std::set<std::string> SampleNames(const std::string& exposition) {
  std::set<std::string> names;
  std::istringstream in(exposition);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    names.insert(line.substr(0, line.find_first_of("{ ")));
  }
  return names;
}

TEST_F(ObservabilityTest, EveryMetricNamedInRulesAndDashboardExistsInARealScrape) {
  int status = 0;
  auto body = HttpGet(metrics_port_, "/metrics", &status);
  ASSERT_TRUE(body.has_value());
  ASSERT_EQ(status, 200);
  WriteFile(*dir_ + "/scrape.txt", *body);
  std::string out;
  EXPECT_EQ(RunCommand(std::string(PROMTOOL) + " check metrics < " + *dir_ + "/scrape.txt", &out), 0) << out;

  const std::set<std::string> scraped = SampleNames(*body);
  std::set<std::string> metrics, recorded;
  const std::string recording = ReadFile(RulesDir() + "/recording_rules.yml");
  const std::string alerts = ReadFile(RulesDir() + "/alert_rules.yml");
  const std::string dashboard = ReadFile(Dashboard());
  ASSERT_FALSE(recording.empty());
  ASSERT_FALSE(alerts.empty());
  ASSERT_FALSE(dashboard.empty());
  static const std::regex kComment("#[^\n]*");
  NamesIn(std::regex_replace(recording, kComment, ""), &metrics, &recorded);
  NamesIn(std::regex_replace(alerts, kComment, ""), &metrics, &recorded);
  // Only the panels' queries, not titles and legends.
  std::string queries;
  const nlohmann::json dash = nlohmann::json::parse(dashboard);
  for (const auto& p : dash.at("panels")) {
    for (const auto& t : p.value("targets", nlohmann::json::array())) queries += t.at("expr").get<std::string>() + "\n";
  }
  for (const auto& v : dash.at("templating").at("list")) queries += v.value("query", "") + "\n";
  NamesIn(queries, &metrics, &recorded);
  EXPECT_GT(metrics.size(), 40u);

  for (const std::string& m : metrics) EXPECT_TRUE(scraped.count(m)) << m << " is named but not in the scrape";
  static const std::regex kRecord("record: *([a-zA-Z0-9_:]+)");
  std::set<std::string> defined;
  for (auto it = std::sregex_iterator(recording.begin(), recording.end(), kRecord); it != std::sregex_iterator();
       ++it) {
    defined.insert((*it)[1]);
  }
  for (const std::string& r : recorded) EXPECT_TRUE(defined.count(r)) << r << " is used but never recorded";

  // Each dashboard row (tier) has panels.
  std::vector<std::string> rows;
  for (const auto& p : dash.at("panels")) {
    if (p.at("type") == "row") rows.push_back(p.at("title"));
  }
  EXPECT_EQ(rows, (std::vector<std::string>{"Hardware", "Model", "Business", "Edge"}));
}

// Every family the daemon exports is in the README's series table and nothing else is; every alert has a
// README row, a runbook section and a promtool unit test.
TEST_F(ObservabilityTest, ReadmeRunbookAndRuleTestsCoverEverySeriesAndAlert) {
  auto body = HttpGet(metrics_port_, "/metrics");
  ASSERT_TRUE(body.has_value());
  std::set<std::string> families;
  static const std::regex kType("# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) ");
  for (auto it = std::sregex_iterator(body->begin(), body->end(), kType); it != std::sregex_iterator(); ++it) {
    families.insert((*it)[1]);
  }
  const std::string readme = ReadFile(SourceDir() + "/README.md");
  const size_t ops = readme.find("## Operations");
  ASSERT_NE(ops, std::string::npos);
  const std::string operations = readme.substr(ops, readme.find("\n## ", ops + 1) - ops);
  std::set<std::string> documented;
  static const std::regex kSeries("`((inferd|process)_[a-z0-9_]+)`");
  for (auto it = std::sregex_iterator(operations.begin(), operations.end(), kSeries); it != std::sregex_iterator();
       ++it) {
    documented.insert((*it)[1]);
  }
  for (const std::string& f : families) EXPECT_TRUE(documented.count(f)) << f << " is exported but not in the README";
  for (const std::string& d : documented) EXPECT_TRUE(families.count(d)) << d << " is in the README but not exported";

  const std::string alerts = ReadFile(RulesDir() + "/alert_rules.yml");
  const std::string runbook = ReadFile(SourceDir() + "/docs/runbook.md");
  const std::string tests = ReadFile(RulesDir() + "/tests/service_alerts_test.yml") +
                            ReadFile(RulesDir() + "/tests/baseline_alerts_test.yml");
  static const std::regex kAlert("- alert: *([A-Za-z0-9]+)");
  int n = 0;
  for (auto it = std::sregex_iterator(alerts.begin(), alerts.end(), kAlert); it != std::sregex_iterator(); ++it) {
    const std::string name = (*it)[1];
    ++n;
    EXPECT_NE(operations.find("`" + name + "`"), std::string::npos) << name << " not in the README";
    EXPECT_NE(runbook.find("\n## " + name + "\n"), std::string::npos) << name << " has no runbook section";
    EXPECT_NE(tests.find("alertname: " + name + "\n"), std::string::npos) << name << " has no promtool test";
  }
  EXPECT_EQ(n, 15);
}

TEST_F(ObservabilityTest, PrometheusEvaluatesOurRulesAndAlertmanagerDeliversTheSloAlert) {
  WebhookReceiver hook;
  const int am_port = FreePort();
  const int prom_port = FreePort();
  const std::string d = *dir_;
  WriteFile(d + "/alertmanager.yml",
            "route:\n  receiver: test\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 1s\n"
            "  repeat_interval: 1h\nreceivers:\n  - name: test\n    webhook_configs:\n      - url: http://127.0.0.1:" +
                std::to_string(hook.port()) + "/alerts\n");
  Process am(ALERTMANAGER,
             {"--config.file=" + d + "/alertmanager.yml", "--storage.path=" + d + "/am",
              "--web.listen-address=127.0.0.1:" + std::to_string(am_port), "--cluster.listen-address="},
             d + "/alertmanager.log");

  // Our rule files, with every `for:` cut to 1s so that the test does not wait minutes; the expressions
  // are the shipped ones.
  static const std::regex kFor("for: *[0-9]+[smh]");
  WriteFile(d + "/recording_rules.yml", ReadFile(RulesDir() + "/recording_rules.yml"));
  WriteFile(d + "/alert_rules.yml", std::regex_replace(ReadFile(RulesDir() + "/alert_rules.yml"), kFor, "for: 1s"));
  WriteFile(d + "/prometheus.yml",
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "rule_files:\n  - " +
                d + "/recording_rules.yml\n  - " + d +
                "/alert_rules.yml\n"
                "alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:" +
                std::to_string(am_port) +
                "']\n"
                "scrape_configs:\n  - job_name: inferd\n    static_configs:\n      - targets: ['127.0.0.1:" +
                std::to_string(metrics_port_) + "']\n");
  Process prom(PROMETHEUS,
               {"--config.file=" + d + "/prometheus.yml", "--storage.tsdb.path=" + d + "/tsdb",
                "--web.listen-address=127.0.0.1:" + std::to_string(prom_port)},
               d + "/prometheus.log");
  auto ready = [](int port) {
    int st = 0;
    return HttpGet(port, "/-/ready", &st).has_value() && st == 200;
  };
  ASSERT_TRUE(PollUntil(seconds(60), [&] { return ready(am_port); })) << am.Log();
  ASSERT_TRUE(PollUntil(seconds(60), [&] { return ready(prom_port); })) << prom.Log();

  // The first value of an instant query, or NaN when it returns nothing.
  auto query = [&](const std::string& q) {
    auto body = HttpGet(prom_port, "/api/v1/query?query=" + UrlEncode(q));
    if (!body) return std::nan("");
    const nlohmann::json j = nlohmann::json::parse(*body, nullptr, false);
    if (j.is_discarded() || j.value("status", "") != "success") return std::nan("");
    const auto& r = j["data"]["result"];
    if (!r.is_array() || r.empty()) return std::nan("");
    return std::stod(r[0]["value"][1].get<std::string>());
  };
  ASSERT_TRUE(PollUntil(seconds(30), [&] { return query("up{job=\"inferd\"}") == 1; })) << prom.Log();

  // One series of each tier, with the values the traffic above produced.
  EXPECT_EQ(query("sum(inferd_recommendation_impressions_total{model=\"default\",class=\"realtime\"})"), 3);
  EXPECT_EQ(query("sum(inferd_recommendation_clicks_total{class=\"realtime\"})"), 1);
  EXPECT_EQ(query("sum(inferd_recommendation_impressions_total{variant=\"treatment\"})"), 3);
  EXPECT_EQ(query("sum(inferd_recommendation_impressions_total{variant=\"control\"})"), 0);
  EXPECT_EQ(query("sum(inferd_recommendation_conversions_total{class=\"realtime\"})"), 1);
  EXPECT_EQ(query("sum(inferd_quality_score_count{class=\"complex\"})"), 1);
  EXPECT_EQ(query("inferd_feedback_unknown_request_total"), 1);
  EXPECT_GE(query("sum(inferd_requests_total{outcome=\"scored\"})"), 1);
  EXPECT_EQ(query("sum(inferd_requests_total{class=\"complex\",outcome=\"max_tokens\"})"), 2);
  EXPECT_EQ(query("sum(inferd_grpc_requests_total{method=\"Generate\",code=\"INVALID_ARGUMENT\"})"), 1);
  EXPECT_EQ(query("sum(inferd_classifications_total{rule=\"small-generate\",class=\"realtime\"})"), 1);
  EXPECT_EQ(query("inferd_gateway_running_requests{model=\"default\"}"), 0);
  EXPECT_EQ(query("inferd_gpu_utilization_ratio{gpu=\"0\"}"), 0.93);  // the stand-in NVML's reading
  EXPECT_GT(query("process_resident_memory_bytes{job=\"inferd\"}"), 0);
  EXPECT_EQ(query("inferd_realtime_latency_slo_seconds"), 0.000001);

  // Recording rules need a rate over scrapes that saw traffic: keep Recommends, each with one impression
  // and one click, flowing until p99 exists.
  ASSERT_TRUE(PollUntil(seconds(60), [&] {
    const std::string id = Recommend();
    Feedback(id, [](v1::FeedbackRequest* r) { r->set_impression(true); });
    Feedback(id, [](v1::FeedbackRequest* r) { r->set_click(true); });
    const double p99 = query("model_class:inferd_request_duration_seconds:p99_5m{class=\"realtime\"}");
    return std::isfinite(p99) && p99 > 0;
  })) << prom.Log();
  // A group's rules land one after another within an evaluation: poll for the later ones as well.
  EXPECT_TRUE(
      PollUntil(seconds(10), [&] { return query("model_class:inferd_grpc_requests:rate5m{class=\"realtime\"}") > 0; }));
  EXPECT_TRUE(PollUntil(seconds(10), [&] { return query("model:inferd_engine_busy:ratio_rate5m") >= 0; }));
  double ctr = 0;
  EXPECT_TRUE(PollUntil(seconds(10), [&] {
    ctr = query("model_class:inferd_recommendation_click_through:ratio_rate1h{class=\"realtime\"}");
    return std::isfinite(ctr);
  }));
  // One click per impression since Prometheus started; rate() over 1h of a few seconds of data
  // extrapolates each counter toward its own zero (3 impressions and 1 click came before), so not exactly 1.
  EXPECT_GT(ctr, 0.5);
  EXPECT_LE(ctr, 1.05);

  // Any realtime p99 is above a 1 us SLO: the alert fires and Alertmanager posts it to the receiver.
  nlohmann::json delivered;
  ASSERT_TRUE(PollUntil(seconds(90),
                        [&] {
                          for (const std::string& b : hook.bodies()) {
                            const nlohmann::json j = nlohmann::json::parse(b, nullptr, false);
                            if (j.is_discarded()) continue;
                            for (const auto& a : j.value("alerts", nlohmann::json::array())) {
                              if (a["labels"].value("alertname", "") == "InferdRealtimeP99AboveSlo") {
                                delivered = a;
                                return true;
                              }
                            }
                          }
                          return false;
                        }))
      << "no alert delivered; alertmanager log:\n"
      << am.Log() << "\nprometheus log:\n"
      << prom.Log();
  EXPECT_EQ(delivered.value("status", ""), "firing");
  EXPECT_EQ(delivered["labels"].value("model", ""), "default");
  EXPECT_EQ(delivered["labels"].value("class", ""), "realtime");
  EXPECT_EQ(delivered["labels"].value("severity", ""), "critical");
  EXPECT_EQ(delivered["annotations"].value("runbook_url", ""), "docs/runbook.md#inferdrealtimep99aboveslo");
  EXPECT_NE(delivered["annotations"].value("description", "").find("Realtime p99 over 5m is "), std::string::npos);
}

}  // namespace
}  // namespace inferd::e2e
