// The inferd.v1.Inference service: validates what it needs, classifies each request (classify::Classifier,
// config rules), routes it to a Backend (a local pool, or an upstream inferd) and encodes what comes back.
// Routing: a request naming a model goes to the backend serving that model name; otherwise to the first
// backend (local pools first, then upstreams) serving its class. A realtime request a local pool refuses
// with RESOURCE_EXHAUSTED goes to the overflow upstream when one is configured.
// Threading: gRPC's sync server calls the handlers on its own threads, its callback API calls
// RecommendCallback and FeedbackCallback on its polling threads; every member is thread-safe.
// Handlers block on the backend's RequestStream and poll ServerContext::IsCancelled every
// `poll_interval`, cancelling the backend request (which frees its KV blocks, here or upstream) when the
// client goes away. Each decision and each RPC's end are logged at debug level with the request id.
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
// matches previous_response_hash, served by the same model load (never across a reload), and only when
// smaller than COMPACT; otherwise DIFF answers COMPACT.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cache/response_cache.h"
#include "classify/classifier.h"
#include "inferd/config.h"
#include "inferd/status.h"
#include "inferd/v1/inferd.grpc.pb.h"
#include "server/backend.h"
#include "server/business_stats.h"
#include "server/call_context.h"
#include "server/inflight_requests.h"
#include "server/request_attribution.h"
#include "server/response_store.h"
#include "server/rpc_stats.h"
#include "server/serving_pool.h"

namespace inferd::server {

// A non-local backend and what is routed to it.
struct BackendRoute {
  std::shared_ptr<Backend> backend;   // must not be null; shared with whoever made it
  std::vector<RequestClass> classes;  // classes routed here when a request names no model
  std::vector<std::string> models;    // model names routed here
  bool overflow = false;              // takes realtime work a local pool refuses with RESOURCE_EXHAUSTED
  std::string name;  // the pool or upstream name; an upstream's RPCs are counted as model "upstream:<name>"
};

struct InferenceServiceOptions {
  size_t response_store_entries = 4096;         // recent Recommend rankings kept for DIFF
  std::chrono::milliseconds poll_interval{20};  // client-cancel check period while waiting
  size_t attribution_entries = 65536;           // request ids remembered for Feedback attribution
  // Values the `inferd-variant` request metadata may carry (metrics.experiment_variants); any other value,
  // or none, counts as variant "none".
  std::vector<std::string> experiment_variants;
  ClassificationConfig classification;          // rules and per-RPC defaults
  std::vector<BackendRoute> upstreams;          // routed after the local pools
  std::shared_ptr<cache::ResponseCache> cache;  // realtime Recommends of local pools; null = no cache
  size_t max_request_id_bytes = 256;            // server.max_request_id_bytes
};

// inferd::StatusCode -> grpc::StatusCode, one to one.
grpc::Status ToGrpcStatus(const Status& status);

class InferenceService final : public inferd::v1::Inference::Service {
 public:
  // Throws std::invalid_argument naming the pool when a pool lacks an engine or tokenizer, or two
  // pools share a name, or with the first problem of the classification rules.
  // Starts not serving: every RPC answers UNAVAILABLE until SetServing(true).
  explicit InferenceService(std::vector<ServingPool> pools, InferenceServiceOptions options = {});

  void SetServing(bool serving) { serving_.store(serving); }
  bool serving() const { return serving_.load(); }
  const std::vector<ServingPool>& pools() const { return pools_; }
  // Every model name a request may name: local pools in order, then upstream models.
  std::vector<std::string> model_names() const;
  BusinessStats business_stats() const { return business_.Snapshot(); }
  // RPCs by local pool, class, method and code, and class decisions by rule kind, since start (a copy).
  RpcStats rpc_stats() const { return rpc_stats_.Snapshot(); }
  // Counts a call a front end refused before handing it here (authentication, rate limit, bytes that do not
  // parse) in rpc_stats() with model and class unset ("none"), as the service's own early refusals.
  void RecordRefused(RpcMethod method, StatusCode code) {
    rpc_stats_.RecordRpc(std::nullopt, std::nullopt, method, static_cast<int>(code));
  }
  // Decisions by rule since start (for metrics/).
  classify::ClassifierStats classifier_stats() const { return classifier_.stats(); }
  // Ends every in-flight Generate, GenerateStream or Recommend with this request id with CANCELLED (its
  // caller sees CANCELLED); returns how many there were.
  int32_t Abort(const std::string& request_id) { return inflight_.Abort(request_id); }

  grpc::Status Generate(grpc::ServerContext* ctx, const v1::GenerateRequest* req, v1::GenerateResponse* resp) override;
  grpc::Status GenerateStream(grpc::ServerContext* ctx, const v1::GenerateRequest* req,
                              grpc::ServerWriter<v1::GenerateDelta>* writer) override;
  grpc::Status Recommend(grpc::ServerContext* ctx, const v1::RecommendRequest* req,
                         v1::RecommendResponse* resp) override;
  grpc::Status Feedback(grpc::ServerContext* ctx, const v1::FeedbackRequest* req, v1::FeedbackResponse* resp) override;

  // Recommend and Feedback for gRPC's callback API, whose threads serve every call and must not block.
  // What cannot wait (a refusal before submitting, a Recommend the response cache answers by its texts, a
  // Feedback for a local pool) is answered on the calling thread; the rest is handed to `offload`, which
  // runs it on a thread that may block, or returns false when no thread is free (the call then ends
  // RESOURCE_EXHAUSTED with retry-after-ms). `done` gets the call's status exactly once, on either thread;
  // ctx, req and resp must stay valid until then.
  using Offload = std::function<bool(std::function<void()>)>;
  using Done = std::function<void(grpc::Status)>;
  void RecommendCallback(grpc::CallbackServerContext* ctx, const v1::RecommendRequest* req, v1::RecommendResponse* resp,
                         const Offload& offload, Done done);
  void FeedbackCallback(grpc::CallbackServerContext* ctx, const v1::FeedbackRequest* req, v1::FeedbackResponse* resp,
                        const Offload& offload, Done done);

  // The same three calls for any transport (the RPCs above adapt gRPC to them; http/ adapts HTTP): the
  // same admission, validation, classification, routing, stats and encoding. Each blocks until the request
  // ends, polling call.IsCancelled() every poll_interval. GenerateStream hands `write` each message in the
  // order of the GenerateStream protocol above; it is called on this thread only.
  CallResult CallGenerate(CallContext& call, const v1::GenerateRequest& req, v1::GenerateResponse* resp);
  CallResult CallGenerateStream(CallContext& call, const v1::GenerateRequest& req, const DeltaWriter& write);
  CallResult CallRecommend(CallContext& call, const v1::RecommendRequest& req, v1::RecommendResponse* resp);

 private:
  struct Prepared;  // a classified, routed, submitted request
  // What a call learns as it goes; Run records and logs it once at the end.
  struct CallInfo {
    std::string request_id;
    RpcTag tag;  // class, and the local pool once routed to one
    std::chrono::milliseconds retry_after{0};
    uint64_t inflight_token = 0;  // InflightRequests entry while the request runs; 0 = none
  };

  // UNAVAILABLE without backends or while not serving.
  Status Admit() const;
  // The backend serving model name `model`, or when empty the first one serving `cls`. NOT_FOUND otherwise.
  StatusOr<const BackendRoute*> Route(const std::string& model, RequestClass cls) const;
  struct AsyncRecommend;  // a RecommendCallback call handed to another thread
  // Classify, then Submit; `prep` holds the outcome of each step.
  // Fills info->tag as it goes and info->retry_after when refused.
  template <typename Req>
  Status Start(CallContext& call, classify::Rpc rpc, const Req& req, Prepared* prep, CallInfo* info);
  // Validates the request id, classifies (tokenizing only when rules count tokens) and routes: prep->route
  // and prep->options, info->request_id and info->tag. Never blocks.
  template <typename Req>
  Status Classify(CallContext& call, classify::Rpc rpc, const Req& req, Prepared* prep, CallInfo* info);
  // Submits to prep->route (realtime work a local pool refuses goes to the overflow upstream), then Accepted.
  template <typename Req>
  Status Submit(CallContext& call, classify::Rpc rpc, const Req& req, Prepared* prep, CallInfo* info);
  // Bookkeeping of a submitted request (prep->sub OK): Routed, Feedback attribution, the in-flight entry.
  template <typename Req>
  void Accepted(CallContext& call, const Req& req, Prepared* prep, CallInfo* info);
  // Runs impl(&info), then End.
  template <typename Impl>
  CallResult Run(RpcMethod method, classify::Rpc rpc, Impl&& impl);
  // Counts and logs the call's end; once per call.
  CallResult End(RpcMethod method, classify::Rpc rpc, const CallInfo& info, const Status& st);
  // RecommendImpl in its steps: Admit, ranking options and Classify; then (after Submit) reading the
  // stream and encoding the response, which blocks unless the stream already finished (a cache hit).
  Status RecommendClassify(CallContext& call, const v1::RecommendRequest& req, Prepared* prep, double* precision,
                           CallInfo* info);
  Status RecommendFinish(CallContext& call, const v1::RecommendRequest& req, v1::RecommendResponse* resp,
                         Prepared* prep, double precision, CallInfo* info);
  // RESOURCE_EXHAUSTED for a call no thread was free to wait for; sets info->retry_after.
  static Status NoThreadFree(CallInfo* info);
  grpc::Status FeedbackCounted(grpc::ServerContextBase* ctx, const v1::FeedbackRequest* req);
  Status GenerateImpl(CallContext& call, const v1::GenerateRequest& req, v1::GenerateResponse* resp, CallInfo* info);
  Status GenerateStreamImpl(CallContext& call, const v1::GenerateRequest& req, const DeltaWriter& write,
                            CallInfo* info);
  Status RecommendImpl(CallContext& call, const v1::RecommendRequest& req, v1::RecommendResponse* resp, CallInfo* info);
  grpc::Status FeedbackImpl(grpc::ServerContextBase* ctx, const v1::FeedbackRequest* req, RpcTag* tag);
  // The variant slot of an `inferd-variant` value: 0 unless it is a configured value.
  uint32_t VariantOf(std::string_view variant) const;
  // A DIFF base counts only when it was served by the same model load (`checkpoint_id`).
  Status EncodeRanking(const v1::RecommendRequest& req, const RequestOutcome& outcome, double precision,
                       const std::string& checkpoint_id, v1::RecommendResponse* resp);
  // prefix + 8 hex digits of a per-process salt + "-" + a hex counter: unique within a process and
  // unlikely to repeat across restarts (a stale response id is caught by the hash check anyway).
  std::string NewId(const char* prefix);

  const std::vector<ServingPool> pools_;
  const InferenceServiceOptions options_;
  // Byte-level prechecks before classification: the element-wise loosest limits of the local pools and the
  // largest bytes per token of their tokenizers (0 when one is unknown, which skips byte checks).
  LimitsConfig precheck_limits_;
  size_t precheck_bytes_per_token_ = 0;
  const classify::Classifier classifier_;
  std::vector<BackendRoute> routes_;  // local pools in order, then options_.upstreams
  const BackendRoute* overflow_ = nullptr;
  std::atomic<bool> serving_{false};
  ResponseStore responses_;
  BusinessStatsRecorder business_;
  RpcStatsRecorder rpc_stats_;
  RequestAttribution attribution_;
  InflightRequests inflight_;
  const uint32_t id_salt_;
  std::atomic<uint64_t> next_id_{1};
};

}  // namespace inferd::server
