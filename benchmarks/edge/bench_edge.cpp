// bench_edge: latency of the edge/central topology through gRPC on loopback, against daemons run.sh starts.
//   --mode hop:      the same call straight to the central daemon and through the edge (forwarded),
//                    alternating so both see the same machine load; added latency = edge - direct per
//                    percentile. Calls: a 1-token Generate (8-token prompt; count/5 of them), a Generate the
//                    central daemon rejects in validation (the hop without model time), a forwarded Feedback.
//   --mode cache:    one realtime Recommend repeated against the edge: every call after the first is a
//                    response-cache hit (checked: from_cache); client-side round trip, alternating with a
//                    bare RPC (a local Feedback) so the hit's own cost shows as the difference.
//   --mode realtime: local realtime Recommends on the edge (a distinct context each, so no cache hits) while
//                    a background thread forwards one complex Generate every 20 ms (they fail fast when the
//                    central daemon is down). Run once with central up, once with it killed.
// Prints one JSON object per mode: count, p50_us, p90_us, p99_us, max_us (nearest-rank percentiles).
#include <grpcpp/grpcpp.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "inferd/v1/inferd.grpc.pb.h"

namespace {

using Clock = std::chrono::steady_clock;

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
  return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
}

void Print(const char* mode, const char* what, const std::vector<double>& us) {
  std::printf(
      "{\"mode\": \"%s\", \"what\": \"%s\", \"count\": %zu, \"p50_us\": %.1f, \"p90_us\": %.1f, "
      "\"p99_us\": %.1f, \"max_us\": %.1f}\n",
      mode, what, us.size(), Percentile(us, 50), Percentile(us, 90), Percentile(us, 99),
      *std::max_element(us.begin(), us.end()));
  std::fflush(stdout);
}

std::unique_ptr<inferd::v1::Inference::Stub> Stub(const std::string& address) {
  return inferd::v1::Inference::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
}

inferd::v1::GenerateRequest TinyGenerate() {
  inferd::v1::GenerateRequest g;
  g.mutable_prompt_token_ids()->add_ids(0);
  for (int i = 1; i < 8; ++i) g.mutable_prompt_token_ids()->add_ids(1000 + i * 37);
  g.mutable_sampling()->set_max_tokens(1);
  g.mutable_sampling()->set_ignore_eos(true);
  return g;
}

inferd::v1::RecommendRequest Rec(const std::string& context) {
  inferd::v1::RecommendRequest r;
  r.set_context(context);
  const char* items[] = {" a sleeping bag", " a stove", " a lamp", " socks",
                         " a tent peg",     " a map",   " a rope", " a torch"};
  for (uint64_t i = 0; i < 8; ++i) {
    auto* c = r.add_candidates();
    c->set_item_id(100 + i);
    c->set_text(items[i]);
  }
  r.set_top_k(5);
  r.set_encoding(inferd::v1::RESPONSE_ENCODING_COMPACT);
  return r;
}

template <typename F>
double TimeUs(F&& f) {
  const auto t0 = Clock::now();
  f();
  return std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_edge: edge/central latency through gRPC"};
  std::string mode, edge, central, label = "up";
  int count = 1000, warmup = 50;
  app.add_option("--mode", mode)->required()->check(CLI::IsMember({"hop", "cache", "realtime"}));
  app.add_option("--edge", edge)->required();
  app.add_option("--central", central);
  app.add_option("--count", count);
  app.add_option("--warmup", warmup);
  app.add_option("--label", label, "realtime: how the central daemon is (up | down), for the output");
  CLI11_PARSE(app, argc, argv);

  auto edge_stub = Stub(edge);
  auto check = [](const grpc::Status& st, const char* what) {
    if (!st.ok()) {
      std::fprintf(stderr, "%s failed: %d %s\n", what, st.error_code(), st.error_message().c_str());
      std::exit(1);
    }
  };

  if (mode == "hop") {
    // Three pairs, each alternating direct / through the edge: a 1-token Generate (model time included), a
    // Generate the central daemon rejects in validation (sampling.top_p 1.5; the edge forwards it through
    // the same per-call path without looking), and a Feedback for the central model (forwarded inline).
    auto central_stub = Stub(central);
    const inferd::v1::GenerateRequest g = TinyGenerate();
    inferd::v1::GenerateRequest bad = g;
    bad.mutable_sampling()->set_top_p(1.5f);
    inferd::v1::FeedbackRequest fb;
    fb.set_request_id("bench");
    fb.set_model("full");
    fb.set_impression(true);
    auto expect = [](grpc::StatusCode want) {
      return [want](const grpc::Status& st, const char* what) {
        if (st.error_code() != want) {
          std::fprintf(stderr, "%s: got %d %s\n", what, st.error_code(), st.error_message().c_str());
          std::exit(1);
        }
      };
    };
    struct Pair {
      const char* name;
      std::function<grpc::Status(inferd::v1::Inference::Stub&)> call;
      grpc::StatusCode want;
    };
    const std::vector<Pair> pairs = {
        {"generate_1_token",
         [&](inferd::v1::Inference::Stub& s) {
           grpc::ClientContext ctx;
           inferd::v1::GenerateResponse resp;
           return s.Generate(&ctx, g, &resp);
         },
         grpc::StatusCode::OK},
        {"generate_rejected_upstream",
         [&](inferd::v1::Inference::Stub& s) {
           grpc::ClientContext ctx;
           inferd::v1::GenerateResponse resp;
           return s.Generate(&ctx, bad, &resp);
         },
         grpc::StatusCode::INVALID_ARGUMENT},
        {"feedback",
         [&](inferd::v1::Inference::Stub& s) {
           grpc::ClientContext ctx;
           inferd::v1::FeedbackResponse resp;
           return s.Feedback(&ctx, fb, &resp);
         },
         grpc::StatusCode::OK},
    };
    for (const Pair& p : pairs) {
      std::vector<double> direct, via_edge;
      const int n = std::string(p.name) == "generate_1_token" ? std::max(1, count / 5) : count;
      for (int i = 0; i < warmup + n; ++i) {
        grpc::Status st;
        const double d = TimeUs([&] { st = p.call(*central_stub); });
        expect(p.want)(st, "direct");
        const double e = TimeUs([&] { st = p.call(*edge_stub); });
        expect(p.want)(st, "through the edge");
        if (i < warmup) continue;
        direct.push_back(d);
        via_edge.push_back(e);
      }
      Print("hop", (std::string(p.name) + "_direct").c_str(), direct);
      Print("hop", (std::string(p.name) + "_through_edge").c_str(), via_edge);
      std::printf("{\"mode\": \"hop\", \"what\": \"%s_added\", \"p50_us\": %.1f, \"p99_us\": %.1f}\n", p.name,
                  Percentile(via_edge, 50) - Percentile(direct, 50), Percentile(via_edge, 99) - Percentile(direct, 99));
    }
  } else if (mode == "cache") {
    // Alternating with the cheapest RPC the edge answers itself (a Feedback for an id it never served:
    // validated, counted, OK), so that "added" is what a hit costs beyond a bare gRPC round trip here.
    const inferd::v1::RecommendRequest r = Rec("Cache benchmark: the customer bought a tent and");
    inferd::v1::FeedbackRequest fb;
    fb.set_request_id("bench-cache-baseline");
    fb.set_impression(true);
    std::vector<double> us, bare;
    for (int i = 0; i < warmup + count; ++i) {
      inferd::v1::RecommendResponse resp;
      const double t = TimeUs([&] {
        grpc::ClientContext ctx;
        check(edge_stub->Recommend(&ctx, r, &resp), "Recommend");
      });
      const double b = TimeUs([&] {
        grpc::ClientContext ctx;
        inferd::v1::FeedbackResponse fr;
        check(edge_stub->Feedback(&ctx, fb, &fr), "Feedback");
      });
      if (i == 0) continue;  // the miss that fills the cache
      if (!resp.from_cache()) {
        std::fprintf(stderr, "call %d was not a cache hit (ttl too short?)\n", i);
        return 1;
      }
      if (i >= warmup) {
        us.push_back(t);
        bare.push_back(b);
      }
    }
    Print("cache", "recommend_cache_hit", us);
    Print("cache", "feedback_bare_rpc", bare);
    std::printf("{\"mode\": \"cache\", \"what\": \"hit_added_over_bare_rpc\", \"p50_us\": %.1f, \"p99_us\": %.1f}\n",
                Percentile(us, 50) - Percentile(bare, 50), Percentile(us, 99) - Percentile(bare, 99));
  } else {
    std::atomic<bool> stop{false};
    std::atomic<int> forwarded_ok{0}, forwarded_failed{0};
    std::thread background([&] {
      auto stub = Stub(edge);
      inferd::v1::GenerateRequest g = TinyGenerate();
      g.mutable_sampling()->set_max_tokens(8);
      while (!stop.load()) {
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
        inferd::v1::GenerateResponse resp;
        (stub->Generate(&ctx, g, &resp).ok() ? forwarded_ok : forwarded_failed).fetch_add(1);
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    });
    std::vector<double> us;
    // Distinct per run too, so that repeated rounds against one edge never hit its cache.
    const std::string run = std::to_string(Clock::now().time_since_epoch().count() % 1000003);
    for (int i = 0; i < warmup + count; ++i) {
      const inferd::v1::RecommendRequest r =
          Rec("Realtime " + std::to_string(i) + " " + label + " " + run + ": a tent and");
      inferd::v1::RecommendResponse resp;
      const double t = TimeUs([&] {
        grpc::ClientContext ctx;
        check(edge_stub->Recommend(&ctx, r, &resp), "Recommend");
      });
      if (resp.from_cache()) {
        std::fprintf(stderr, "unexpected cache hit\n");
        return 1;
      }
      if (i >= warmup) us.push_back(t);
    }
    stop.store(true);
    background.join();
    Print("realtime", ("edge_local_recommend_central_" + label).c_str(), us);
    std::printf("{\"mode\": \"realtime\", \"forwarded_ok\": %d, \"forwarded_failed\": %d}\n", forwarded_ok.load(),
                forwarded_failed.load());
  }
  return 0;
}
