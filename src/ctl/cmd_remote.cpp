// inferctl remote generate|recommend: a command-line client of a running inferd (the real gRPC API).
#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "ctl/client_channel.h"
#include "ctl/command.h"
#include "inferd/status.h"
#include "inferd/v1/inferd.grpc.pb.h"
#include "server/ranking_proto.h"

namespace inferd::ctl {
namespace {

struct RemoteArgs : ClientOptions {
  std::string model;
};

struct GenerateArgs {
  std::string prompt;
  int32_t max_tokens = 0;
  float temperature = 0;
  int64_t seed = -1;
  std::vector<std::string> stop;
  bool stream = false;
};

struct RecommendArgs {
  std::string context;
  std::vector<std::string> items;  // "ID=text"
  int32_t top_k = 0;
  bool by_mean = false;
  std::string encoding = "compact";
};

std::unique_ptr<v1::Inference::Stub> Stub(const RemoteArgs& r) {
  return v1::Inference::NewStub(MakeChannel(r));
}

[[noreturn]] void Fail(const grpc::Status& st) {
  throw std::runtime_error(std::string("RPC failed: ") + StatusCodeName(static_cast<StatusCode>(st.error_code())) +
                           " " + st.error_message());
}

void RunGenerate(const RemoteArgs& r, const GenerateArgs& g) {
  v1::GenerateRequest req;
  req.set_model(r.model);
  req.set_prompt(g.prompt);
  auto* s = req.mutable_sampling();
  s->set_max_tokens(g.max_tokens);
  s->set_temperature(g.temperature);
  if (g.seed >= 0) s->set_seed(static_cast<uint64_t>(g.seed));
  for (const auto& stop : g.stop) s->add_stop(stop);
  auto stub = Stub(r);
  grpc::ClientContext ctx;
  Prepare(&ctx, r);
  if (!g.stream) {
    v1::GenerateResponse resp;
    grpc::Status st = stub->Generate(&ctx, req, &resp);
    if (!st.ok()) Fail(st);
    std::printf("%s\n", resp.text().c_str());
    std::fprintf(stderr, "[%s, %d prompt + %d generated tokens, %.3fs]\n",
                 v1::FinishReason_Name(resp.finish_reason()).c_str(), resp.usage().prompt_tokens(),
                 resp.usage().generated_tokens(), resp.usage().total_seconds());
    return;
  }
  auto reader = stub->GenerateStream(&ctx, req);
  v1::GenerateDelta delta;
  while (reader->Read(&delta)) {
    std::fputs(delta.text().c_str(), stdout);
    std::fflush(stdout);
    if (delta.finish_reason() != v1::FINISH_REASON_UNSPECIFIED) {
      std::fprintf(stderr, "\n[%s]\n", v1::FinishReason_Name(delta.finish_reason()).c_str());
    }
  }
  grpc::Status st = reader->Finish();
  if (!st.ok()) Fail(st);
  std::printf("\n");
}

void RunRecommend(const RemoteArgs& r, const RecommendArgs& a) {
  v1::RecommendRequest req;
  req.set_model(r.model);
  req.set_context(a.context);
  for (const auto& item : a.items) {
    size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0) throw std::runtime_error("--item: expected ID=text, got '" + item + "'");
    auto* c = req.add_candidates();
    try {
      c->set_item_id(std::stoull(item.substr(0, eq)));
    } catch (const std::exception&) {
      throw std::runtime_error("--item: '" + item.substr(0, eq) + "' is not an unsigned integer id");
    }
    c->set_text(item.substr(eq + 1));
  }
  req.set_top_k(a.top_k);
  req.set_score_by_mean(a.by_mean);
  req.set_encoding(a.encoding == "plain" ? v1::RESPONSE_ENCODING_PLAIN : v1::RESPONSE_ENCODING_COMPACT);
  auto stub = Stub(r);
  grpc::ClientContext ctx;
  Prepare(&ctx, r);
  v1::RecommendResponse resp;
  grpc::Status st = stub->Recommend(&ctx, req, &resp);
  if (!st.ok()) Fail(st);
  auto ranking = server::DecodeRankingResponse(resp, a.by_mean);
  if (!ranking.ok()) throw std::runtime_error("cannot decode the ranking: " + ranking.status().ToString());
  nlohmann::json out = nlohmann::json::array();
  for (size_t i = 0; i < ranking->ids.size(); ++i) {
    out.push_back({{"item_id", ranking->ids[i]}, {"score", ranking->scores[i]}});
  }
  std::printf("%s\n", out.dump().c_str());
  std::fprintf(stderr, "[%zu bytes on the wire]\n", resp.ByteSizeLong());
}

void AddRemoteCommands(CLI::App& app) {
  auto* remote = app.add_subcommand("remote", "Client of a running inferd (gRPC)");
  remote->require_subcommand(1);
  auto r = std::make_shared<RemoteArgs>();
  AddClientOptions(remote, r.get());
  remote->add_option("--model", r->model, "model pool name; empty = routed by request class");

  auto g = std::make_shared<GenerateArgs>();
  auto* gen = remote->add_subcommand("generate", "Generate text (unary, or streamed with --stream)");
  gen->add_option("--prompt", g->prompt, "prompt text")->required();
  gen->add_option("--max-tokens", g->max_tokens, "0 = the server's default");
  gen->add_option("--temperature", g->temperature, "0 = greedy");
  gen->add_option("--seed", g->seed, "reproducible sampling");
  gen->add_option("--stop", g->stop, "stop string (repeatable)");
  gen->add_flag("--stream", g->stream, "print text as it is generated");
  gen->callback([r, g] { RunGenerate(*r, *g); });

  auto a = std::make_shared<RecommendArgs>();
  auto* rec = remote->add_subcommand("recommend", "Rank candidates as continuations of a context; prints JSON");
  rec->add_option("--context", a->context, "shared context text")->required();
  rec->add_option("--item", a->items, "candidate as ID=text (repeatable)")->required();
  rec->add_option("--top-k", a->top_k, "0 = rank all");
  rec->add_flag("--by-mean", a->by_mean, "rank by mean token log-probability instead of the sum");
  rec->add_option("--encoding", a->encoding, "response form on the wire")
      ->check(CLI::IsMember({"plain", "compact"}))
      ->capture_default_str();
  rec->callback([r, a] { RunRecommend(*r, *a); });
}

INFERD_CTL_COMMAND(AddRemoteCommands);

}  // namespace
}  // namespace inferd::ctl
