// The inferd.v1.Inference service: validates and decodes requests into native types at once,
// classifies and routes them to a pool's Engine, and encodes what comes back.
// Threading: gRPC's sync server calls the handlers on its own threads; every member is thread-safe.
// Handlers block on the engine's RequestStream and poll ServerContext::IsCancelled every
// `poll_interval`, cancelling the engine request (which frees its KV blocks) when the client goes away.
//
// GenerateStream protocol: each message holds only what is new (text and token infos); the first carries
// request_id, the last finish_reason and usage. A request that fails after streaming (deadline, engine
// error) still gets that last message (finish_reason DEADLINE / ERROR), then the error status; one that
// fails before any output ends with the status alone.
// Errors: INVALID_ARGUMENT names the proto field; RESOURCE_EXHAUSTED carries trailing metadata
// `retry-after-ms` (decimal milliseconds); UNAVAILABLE while not serving, without pools, or while the
// engine drains; NOT_FOUND for an unknown model; DEADLINE_EXCEEDED at min(gRPC deadline,
// now + latency_budget_ms); CANCELLED when the client cancels.
// Recommend encodings: PLAIN, COMPACT, or DIFF against a response still in the LRU store whose hash
// matches previous_response_hash and only when smaller than COMPACT; otherwise DIFF answers COMPACT.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "inferd/status.h"
#include "inferd/v1/inferd.grpc.pb.h"
#include "server/business_stats.h"
#include "server/request_attribution.h"
#include "server/response_store.h"
#include "server/rpc_stats.h"
#include "server/serving_pool.h"

namespace inferd::server {

struct InferenceServiceOptions {
  size_t response_store_entries = 4096;         // recent Recommend rankings kept for DIFF
  std::chrono::milliseconds poll_interval{20};  // client-cancel check period while waiting
  size_t attribution_entries = 65536;           // request ids remembered for Feedback attribution
  // Values the `inferd-variant` request metadata may carry (metrics.experiment_variants); any other value,
  // or none, counts as variant "none".
  std::vector<std::string> experiment_variants;
};

// inferd::StatusCode -> grpc::StatusCode, one to one.
grpc::Status ToGrpcStatus(const Status& status);

class InferenceService final : public inferd::v1::Inference::Service {
 public:
  // Throws std::invalid_argument naming the pool when a pool lacks an engine or tokenizer, or two
  // pools share a name. Starts not serving: every RPC answers UNAVAILABLE until SetServing(true).
  explicit InferenceService(std::vector<ServingPool> pools, InferenceServiceOptions options = {});

  void SetServing(bool serving) { serving_.store(serving); }
  BusinessStats business_stats() const { return business_.Snapshot(); }
  RpcStats rpc_stats() const { return rpc_stats_.Snapshot(); }

  grpc::Status Generate(grpc::ServerContext* ctx, const v1::GenerateRequest* req, v1::GenerateResponse* resp) override;
  grpc::Status GenerateStream(grpc::ServerContext* ctx, const v1::GenerateRequest* req,
                              grpc::ServerWriter<v1::GenerateDelta>* writer) override;
  grpc::Status Recommend(grpc::ServerContext* ctx, const v1::RecommendRequest* req,
                         v1::RecommendResponse* resp) override;
  grpc::Status Feedback(grpc::ServerContext* ctx, const v1::FeedbackRequest* req, v1::FeedbackResponse* resp) override;

 private:
  struct Prepared;  // a decoded, routed Generate

  // UNAVAILABLE without pools or while not serving.
  Status Admit() const;
  // The handlers behind the overrides; each fills `tag` as it routes, and the override counts the result.
  grpc::Status ServeGenerate(grpc::ServerContext* ctx, const v1::GenerateRequest* req, v1::GenerateResponse* resp,
                             RpcTag* tag);
  grpc::Status ServeGenerateStream(grpc::ServerContext* ctx, const v1::GenerateRequest* req,
                                   grpc::ServerWriter<v1::GenerateDelta>* writer, RpcTag* tag);
  grpc::Status ServeRecommend(grpc::ServerContext* ctx, const v1::RecommendRequest* req, v1::RecommendResponse* resp,
                              RpcTag* tag);
  grpc::Status ServeFeedback(const v1::FeedbackRequest* req, RpcTag* tag);
  size_t PoolIndex(const ServingPool* pool) const { return static_cast<size_t>(pool - pools_.data()); }
  // The variant slot of the request's `inferd-variant` metadata: 0 unless it is a configured value.
  uint32_t VariantOf(const grpc::ServerContext& ctx) const;

  // The pool named `model`, or when empty the first pool serving `cls`. NOT_FOUND otherwise.
  StatusOr<const ServingPool*> Route(const std::string& model, RequestClass cls) const;
  StatusOr<Prepared> PrepareGenerate(grpc::ServerContext* ctx, const v1::GenerateRequest& req, RpcTag* tag);
  grpc::Status EncodeRanking(const v1::RecommendRequest& req, const RequestOutcome& outcome, double precision,
                             v1::RecommendResponse* resp);
  // prefix + 8 hex digits of a per-process salt + "-" + a hex counter: unique within a process and
  // unlikely to repeat across restarts (a stale response id is caught by the hash check anyway).
  std::string NewId(const char* prefix);

  const std::vector<ServingPool> pools_;
  const InferenceServiceOptions options_;
  std::atomic<bool> serving_{false};
  ResponseStore responses_;
  BusinessStatsRecorder business_;
  RpcStatsRecorder rpc_stats_;
  RequestAttribution attribution_;
  const uint32_t id_salt_;
  std::atomic<uint64_t> next_id_{1};
};

}  // namespace inferd::server
