#include "server/inference_service.h"

#include <grpcpp/server_context.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>
#include <random>
#include <stdexcept>
#include <type_traits>
#include <unordered_set>

#include "inferd/ranking_codec.h"
#include "server/local_backend.h"
#include "server/ranking_proto.h"
#include "server/request_decode.h"

namespace inferd::server {
namespace {

constexpr const char* kRetryAfterKey = "retry-after-ms";
constexpr int64_t kFallbackRetryAfterMs = 100;

double Seconds(TimePoint a, TimePoint b) {
  return std::chrono::duration<double>(b - a).count();
}

grpc::StatusCode ToGrpcCode(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return grpc::StatusCode::OK;
    case StatusCode::kCancelled:
      return grpc::StatusCode::CANCELLED;
    case StatusCode::kUnknown:
      return grpc::StatusCode::UNKNOWN;
    case StatusCode::kInvalidArgument:
      return grpc::StatusCode::INVALID_ARGUMENT;
    case StatusCode::kDeadlineExceeded:
      return grpc::StatusCode::DEADLINE_EXCEEDED;
    case StatusCode::kNotFound:
      return grpc::StatusCode::NOT_FOUND;
    case StatusCode::kAlreadyExists:
      return grpc::StatusCode::ALREADY_EXISTS;
    case StatusCode::kPermissionDenied:
      return grpc::StatusCode::PERMISSION_DENIED;
    case StatusCode::kResourceExhausted:
      return grpc::StatusCode::RESOURCE_EXHAUSTED;
    case StatusCode::kFailedPrecondition:
      return grpc::StatusCode::FAILED_PRECONDITION;
    case StatusCode::kAborted:
      return grpc::StatusCode::ABORTED;
    case StatusCode::kOutOfRange:
      return grpc::StatusCode::OUT_OF_RANGE;
    case StatusCode::kUnimplemented:
      return grpc::StatusCode::UNIMPLEMENTED;
    case StatusCode::kInternal:
      return grpc::StatusCode::INTERNAL;
    case StatusCode::kUnavailable:
      return grpc::StatusCode::UNAVAILABLE;
    case StatusCode::kDataLoss:
      return grpc::StatusCode::DATA_LOSS;
    case StatusCode::kUnauthenticated:
      return grpc::StatusCode::UNAUTHENTICATED;
  }
  return grpc::StatusCode::UNKNOWN;
}

// A refused Submit; RESOURCE_EXHAUSTED carries its retry hint.
Status Refused(const Submitted& result, std::chrono::milliseconds* retry_after) {
  if (result.status.code() == StatusCode::kResourceExhausted) {
    *retry_after = std::max(std::chrono::milliseconds(1), result.retry_after);
  }
  return result.status;
}

// A request's final status. RESOURCE_EXHAUSTED here comes from the scheduler's admission check after
// Submit accepted the request, which gives no hint: send a fixed one.
Status OutcomeStatus(const RequestOutcome& outcome, std::chrono::milliseconds* retry_after) {
  if (outcome.status.code() == StatusCode::kResourceExhausted) {
    *retry_after = std::chrono::milliseconds(kFallbackRetryAfterMs);
  }
  return outcome.status;
}

// The earlier of now + latency_budget_ms (when > 0) and the transport's deadline (when the client set one).
std::optional<TimePoint> RequestDeadline(const CallContext& call, uint32_t latency_budget_ms) {
  std::optional<TimePoint> deadline;
  if (latency_budget_ms > 0) deadline = Clock::now() + std::chrono::milliseconds(latency_budget_ms);
  const std::optional<TimePoint> transport = call.deadline();
  if (transport && (!deadline || *transport < *deadline)) deadline = transport;
  return deadline;
}

// A gRPC call as the service core sees it.
class GrpcCall final : public CallContext {
 public:
  explicit GrpcCall(grpc::ServerContextBase* ctx) : ctx_(ctx) {}
  bool IsCancelled() override { return ctx_->IsCancelled(); }
  std::optional<TimePoint> deadline() const override {
    const auto grpc_deadline = ctx_->deadline();
    if (grpc_deadline == std::chrono::system_clock::time_point::max()) return std::nullopt;
    const auto left = grpc_deadline - std::chrono::system_clock::now();
    return Clock::now() + std::chrono::duration_cast<Clock::duration>(left);
  }
  std::string_view variant() const override {
    const auto& md = ctx_->client_metadata();
    const auto it = md.find("inferd-variant");
    if (it == md.end()) return {};
    return {it->second.data(), it->second.size()};
  }

 private:
  grpc::ServerContextBase* ctx_;
};

// The call's status for gRPC; RESOURCE_EXHAUSTED carries trailing metadata `retry-after-ms`.
grpc::Status ToGrpc(grpc::ServerContextBase* ctx, const CallResult& result) {
  if (result.status.code() == StatusCode::kResourceExhausted) {
    ctx->AddTrailingMetadata(kRetryAfterKey, std::to_string(std::max<int64_t>(1, result.retry_after.count())));
  }
  return ToGrpcStatus(result.status);
}

v1::FinishReason ToProto(FinishReason reason) {
  switch (reason) {
    case FinishReason::kEos:
      return v1::FINISH_REASON_STOP;
    case FinishReason::kStopString:
      return v1::FINISH_REASON_STOP_STRING;
    case FinishReason::kMaxTokens:
      return v1::FINISH_REASON_LENGTH;
    case FinishReason::kContextLength:
      return v1::FINISH_REASON_CONTEXT;
    case FinishReason::kCancelled:
      return v1::FINISH_REASON_CANCELLED;
    case FinishReason::kDeadlineExceeded:
      return v1::FINISH_REASON_DEADLINE;
    case FinishReason::kError:
      return v1::FINISH_REASON_ERROR;
    case FinishReason::kNone:
    case FinishReason::kScored:
      break;
  }
  return v1::FINISH_REASON_UNSPECIFIED;
}

void FillUsage(const RequestOutcome& o, v1::Usage* usage) {
  const RequestTimings& t = o.timings;
  usage->set_prompt_tokens(o.prompt_tokens);
  usage->set_generated_tokens(o.generated_tokens);
  usage->set_cached_prompt_tokens(o.cached_prompt_tokens);
  if (t.first_scheduled != TimePoint{}) usage->set_queue_seconds(Seconds(t.arrival, t.first_scheduled));
  if (!t.token_times.empty()) usage->set_time_to_first_token_seconds(Seconds(t.arrival, t.first_token));
  if (t.end != TimePoint{}) usage->set_total_seconds(Seconds(t.arrival, t.end));
}

void AppendTokens(const TokenDelta& d, google::protobuf::RepeatedPtrField<v1::TokenInfo>* out) {
  const bool has_top = d.top_logprobs.size() == d.token_ids.size();
  for (size_t i = 0; i < d.token_ids.size(); ++i) {
    v1::TokenInfo* info = out->Add();
    info->set_token_id(d.token_ids[i]);
    if (i < d.logprobs.size()) info->set_logprob(d.logprobs[i]);
    if (!has_top) continue;
    for (const TokenLogprob& alt : d.top_logprobs[i]) {
      v1::TokenLogprob* p = info->add_top();
      p->set_token_id(alt.token);
      p->set_logprob(alt.logprob);
    }
  }
}

void Merge(TokenDelta&& from, TokenDelta* into) {
  into->token_ids.insert(into->token_ids.end(), from.token_ids.begin(), from.token_ids.end());
  into->text += from.text;
  into->logprobs.insert(into->logprobs.end(), from.logprobs.begin(), from.logprobs.end());
  for (auto& t : from.top_logprobs) into->top_logprobs.push_back(std::move(t));
}

enum class WaitEnd { kFinished, kCancelled };

// Reads `stream` until it finishes, handing each delta to on_delta(delta, last), where `last` says the
// stream has finished and `delta` holds everything that was left. Cancels the backend request and
// returns kCancelled when the client cancels or on_delta returns false (the client is gone). A finished
// stream (a cache hit) is read out without asking the transport about the client: for gRPC's sync server
// that question polls the call's completion queue (tens of microseconds), and there is nothing to cancel.
template <typename OnDelta>
WaitEnd Consume(CallContext& call, Backend* engine, RequestStream* stream, std::chrono::milliseconds poll,
                OnDelta&& on_delta) {
  for (;;) {
    if (!stream->finished() && call.IsCancelled()) {
      engine->Cancel(stream->id());
      return WaitEnd::kCancelled;
    }
    TokenDelta d;
    const RequestStream::ReadResult rr = stream->Read(&d, poll);
    if (rr == RequestStream::ReadResult::kTimeout) continue;
    if (rr == RequestStream::ReadResult::kFinished) return WaitEnd::kFinished;
    // Once finished, no delta arrives after the ones still queued: fold them into this one.
    const bool last = stream->finished();
    if (last) {
      TokenDelta more;
      while (stream->Read(&more, std::chrono::milliseconds(0)) == RequestStream::ReadResult::kDelta) {
        Merge(std::move(more), &d);
      }
    }
    if (!on_delta(std::move(d), last)) {
      engine->Cancel(stream->id());
      return WaitEnd::kCancelled;
    }
    if (last) return WaitEnd::kFinished;
  }
}

Status ClientCancelled() {
  return Cancelled("cancelled by the client");
}

void LogEnd(classify::Rpc rpc, const std::string& request_id, const Status& st) {
  if (!spdlog::should_log(spdlog::level::debug)) return;
  spdlog::debug("{} request_id={} ended {}", classify::RpcName(rpc), request_id.empty() ? "-" : request_id,
                StatusCodeName(st.code()));
}

}  // namespace

grpc::Status ToGrpcStatus(const Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return {ToGrpcCode(status.code()), BoundMessage(status.message())};
}

namespace {

std::vector<std::string> PoolNames(const std::vector<ServingPool>& pools) {
  std::vector<std::string> names;
  for (const ServingPool& p : pools) names.push_back(p.name);
  return names;
}

// What RpcStats calls each route: the local pools by name, then "upstream:<name>" for each upstream.
std::vector<std::string> RouteNames(const std::vector<ServingPool>& pools, const std::vector<BackendRoute>& upstreams) {
  std::vector<std::string> names = PoolNames(pools);
  for (size_t i = 0; i < upstreams.size(); ++i) {
    names.push_back("upstream:" + (upstreams[i].name.empty() ? std::to_string(i) : upstreams[i].name));
  }
  return names;
}

std::vector<std::string> RuleNames(const classify::ClassifierStats& stats) {
  std::vector<std::string> names;
  for (const auto& d : stats.decisions) names.push_back(d.name);
  return names;
}

}  // namespace

struct InferenceService::Prepared {
  const BackendRoute* route = nullptr;
  CallOptions options;
  Submitted sub;
};

InferenceService::InferenceService(std::vector<ServingPool> pools, InferenceServiceOptions options)
    : pools_(std::move(pools)),
      options_(std::move(options)),
      classifier_(options_.classification),
      responses_(options_.response_store_entries),
      business_(PoolNames(pools_), options_.experiment_variants),
      rpc_stats_(RouteNames(pools_, options_.upstreams), RuleNames(classifier_.stats())),
      attribution_(options_.attribution_entries),
      id_salt_(std::random_device{}()) {
  std::unordered_set<std::string> names;
  for (const ServingPool& p : pools_) {
    if (p.engine == nullptr) throw std::invalid_argument("model pool '" + p.name + "': no engine");
    if (p.tokenizer == nullptr) throw std::invalid_argument("model pool '" + p.name + "': no tokenizer");
    if (!names.insert(p.name).second) throw std::invalid_argument("model pool '" + p.name + "': duplicate name");
    routes_.push_back(
        BackendRoute{std::make_shared<LocalBackend>(p, options_.cache), p.classes, {p.name}, false, p.name});
  }
  for (const BackendRoute& r : options_.upstreams) {
    if (r.backend == nullptr) throw std::invalid_argument("upstream route without a backend");
    for (const std::string& m : r.models) {
      if (!names.insert(m).second) throw std::invalid_argument("model '" + m + "': routed to two backends");
    }
    routes_.push_back(r);
  }
  for (const BackendRoute& r : routes_) {
    if (r.overflow) overflow_ = &r;
  }
  if (!pools_.empty()) {
    precheck_limits_ = pools_.front().limits;
    precheck_bytes_per_token_ = pools_.front().tokenizer->max_bytes_per_token();
  }
  for (const ServingPool& p : pools_) {
    LimitsConfig& l = precheck_limits_;
    l.max_prompt_tokens = std::max(l.max_prompt_tokens, p.limits.max_prompt_tokens);
    l.max_candidates = std::max(l.max_candidates, p.limits.max_candidates);
    l.max_context_tokens = std::max(l.max_context_tokens, p.limits.max_context_tokens);
    l.max_candidate_tokens = std::max(l.max_candidate_tokens, p.limits.max_candidate_tokens);
    l.max_total_candidate_tokens = std::max(l.max_total_candidate_tokens, p.limits.max_total_candidate_tokens);
    l.max_stop_strings = std::max(l.max_stop_strings, p.limits.max_stop_strings);
    l.max_stop_string_bytes = std::max(l.max_stop_string_bytes, p.limits.max_stop_string_bytes);
    const size_t bpt = p.tokenizer->max_bytes_per_token();
    precheck_bytes_per_token_ = bpt == 0 ? 0 : std::max(precheck_bytes_per_token_, bpt);
  }
}

uint32_t InferenceService::VariantOf(std::string_view v) const {
  for (size_t i = 0; i < options_.experiment_variants.size(); ++i) {
    if (options_.experiment_variants[i] == v) return static_cast<uint32_t>(i + 1);
  }
  return 0;
}

std::string InferenceService::NewId(const char* prefix) {
  const uint64_t n = next_id_.fetch_add(1);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%s%08x-%llx", prefix, static_cast<unsigned>(id_salt_),
                static_cast<unsigned long long>(n));
  return buf;
}

Status InferenceService::Admit() const {
  if (routes_.empty()) return Unavailable("no model pool is attached to this server");
  if (!serving_.load()) return Unavailable("not serving (starting up or draining)");
  return Status::Ok();
}

StatusOr<const BackendRoute*> InferenceService::Route(const std::string& model, RequestClass cls) const {
  if (!model.empty()) {
    std::string names;
    for (const BackendRoute& r : routes_) {
      for (const std::string& m : r.models) {
        if (m == model) return &r;
        names += (names.empty() ? "" : ", ") + m;
      }
    }
    return NotFound("model: no model pool named " + Excerpt(model) + " (serving: " + names + ")");
  }
  for (const BackendRoute& r : routes_) {
    if (std::find(r.classes.begin(), r.classes.end(), cls) != r.classes.end()) return &r;
  }
  return NotFound(std::string("model: no model pool serves the ") + RequestClassName(cls) +
                  " class; name a model or change class_hint");
}

template <typename Req>
Status InferenceService::Start(CallContext& call, classify::Rpc rpc, const Req& req, Prepared* prep, CallInfo* info) {
  if (Status s = Classify(call, rpc, req, prep, info); !s.ok()) return s;
  return Submit(call, rpc, req, prep, info);
}

template <typename Req>
Status InferenceService::Classify(CallContext& call, classify::Rpc rpc, const Req& req, Prepared* prep,
                                  CallInfo* info) {
  RpcTag* tag = &info->tag;
  if (Status s = ValidateRequestId(req.request_id(), options_.max_request_id_bytes); !s.ok()) return s;
  const Tokenizer* counter =
      classifier_.needs_token_counts() && !pools_.empty() ? pools_.front().tokenizer.get() : nullptr;
  // Rules that count tokens would tokenize before any pool's caps are checked: bound that work first by
  // the loosest local caps (each local pool checks its own caps again when decoding).
  if (counter != nullptr) {
    Status pre = [&] {
      if constexpr (std::is_same_v<Req, v1::RecommendRequest>) {
        return PrecheckRecommend(req, precheck_limits_, precheck_bytes_per_token_);
      } else {
        return PrecheckGenerate(req, precheck_limits_, precheck_bytes_per_token_);
      }
    }();
    if (!pre.ok()) return pre;
  }
  StatusOr<classify::RequestFeatures> features = [&] {
    if constexpr (std::is_same_v<Req, v1::RecommendRequest>) {
      return RecommendFeatures(req, counter);
    } else {
      return GenerateFeatures(req, rpc, counter);
    }
  }();
  if (!features.ok()) return features.status();
  const classify::Decision decision = classifier_.Classify(*features);
  tag->cls = decision.cls;
  StatusOr<const BackendRoute*> route = Route(req.model(), decision.cls);
  if (!route.ok()) return route.status();
  prep->route = *route;
  tag->pool = static_cast<size_t>(*route - routes_.data());
  rpc_stats_.RecordClass(*tag->pool, static_cast<size_t>(decision.source), decision.cls);
  prep->options.cls = decision.cls;
  prep->options.deadline = RequestDeadline(call, req.latency_budget_ms());
  prep->options.request_id =
      req.request_id().empty() ? NewId(rpc == classify::Rpc::kRecommend ? "rec-" : "gen-") : req.request_id();
  if (spdlog::should_log(spdlog::level::debug)) {
    const int64_t left_ms =
        prep->options.deadline
            ? std::chrono::duration_cast<std::chrono::milliseconds>(*prep->options.deadline - Clock::now()).count()
            : -1;
    spdlog::debug("{} request_id={} class={} rule={} backend={} deadline_in_ms={}", classify::RpcName(rpc),
                  prep->options.request_id, RequestClassName(decision.cls), classifier_.SourceName(decision.source),
                  prep->route->backend->description(), left_ms);
  }
  info->request_id = prep->options.request_id;
  return Status::Ok();
}

template <typename Req>
Status InferenceService::Submit(CallContext& call, classify::Rpc rpc, const Req& req, Prepared* prep, CallInfo* info) {
  RpcTag* tag = &info->tag;
  const RequestClass cls = prep->options.cls;
  auto submit = [&](Backend& backend) {
    if constexpr (std::is_same_v<Req, v1::RecommendRequest>) {
      return backend.Recommend(req, prep->options);
    } else {
      return backend.Generate(req, prep->options);
    }
  };
  prep->sub = submit(*prep->route->backend);
  if (prep->sub.status.code() == StatusCode::kResourceExhausted && cls == RequestClass::kRealtime &&
      overflow_ != nullptr && prep->route != overflow_ && prep->route < routes_.data() + pools_.size()) {
    spdlog::debug("{} request_id={} overflows to {}", classify::RpcName(rpc), prep->options.request_id,
                  overflow_->backend->description());
    Submitted over = submit(*overflow_->backend);
    if (over.status.ok()) {
      prep->route = overflow_;
      prep->sub = std::move(over);
      tag->pool = static_cast<size_t>(overflow_ - routes_.data());
    }
  }
  if (!prep->sub.status.ok()) return Refused(prep->sub, &info->retry_after);
  Accepted(call, req, prep, info);
  return Status::Ok();
}

template <typename Req>
void InferenceService::Accepted(CallContext& call, const Req& req, Prepared* prep, CallInfo* info) {
  const RpcTag* tag = &info->tag;
  const bool local = *tag->pool < pools_.size();
  if (local) {
    call.Routed(pools_[*tag->pool].name, &pools_[*tag->pool]);
  } else {
    const std::vector<std::string>& served = prep->route->models;
    call.Routed(!req.model().empty() ? req.model()
                : served.empty()     ? prep->route->backend->description()
                                     : served[0],
                nullptr);
  }
  if (local) {
    attribution_.Remember(prep->options.request_id, {*tag->pool, prep->options.cls, VariantOf(call.variant())});
  }
  if (prep->sub.stream != nullptr && prep->sub.stream->id() != 0) {
    info->inflight_token = inflight_.Add(prep->options.request_id, prep->route->backend.get(), prep->sub.stream->id());
  }
}

template <typename Impl>
CallResult InferenceService::Run(RpcMethod method, classify::Rpc rpc, Impl&& impl) {
  CallInfo info;
  const Status st = impl(&info);
  return End(method, rpc, info, st);
}

CallResult InferenceService::End(RpcMethod method, classify::Rpc rpc, const CallInfo& info, const Status& st) {
  if (info.inflight_token != 0) inflight_.Remove(info.inflight_token);
  rpc_stats_.RecordRpc(info.tag.pool, info.tag.cls, method, static_cast<int>(st.code()));
  LogEnd(rpc, info.request_id, st);
  CallResult result{st, info.retry_after, nullptr};
  if (info.tag.pool && *info.tag.pool < pools_.size()) result.pool = &pools_[*info.tag.pool];
  return result;
}

CallResult InferenceService::CallGenerate(CallContext& call, const v1::GenerateRequest& req,
                                          v1::GenerateResponse* resp) {
  return Run(RpcMethod::kGenerate, classify::Rpc::kGenerate,
             [&](CallInfo* info) { return GenerateImpl(call, req, resp, info); });
}

CallResult InferenceService::CallGenerateStream(CallContext& call, const v1::GenerateRequest& req,
                                                const DeltaWriter& write) {
  return Run(RpcMethod::kGenerateStream, classify::Rpc::kGenerateStream,
             [&](CallInfo* info) { return GenerateStreamImpl(call, req, write, info); });
}

CallResult InferenceService::CallRecommend(CallContext& call, const v1::RecommendRequest& req,
                                           v1::RecommendResponse* resp) {
  return Run(RpcMethod::kRecommend, classify::Rpc::kRecommend,
             [&](CallInfo* info) { return RecommendImpl(call, req, resp, info); });
}

std::vector<std::string> InferenceService::model_names() const {
  std::vector<std::string> names;
  for (const BackendRoute& r : routes_) names.insert(names.end(), r.models.begin(), r.models.end());
  return names;
}

grpc::Status InferenceService::Generate(grpc::ServerContext* ctx, const v1::GenerateRequest* req,
                                        v1::GenerateResponse* resp) {
  GrpcCall call(ctx);
  return ToGrpc(ctx, CallGenerate(call, *req, resp));
}

grpc::Status InferenceService::GenerateStream(grpc::ServerContext* ctx, const v1::GenerateRequest* req,
                                              grpc::ServerWriter<v1::GenerateDelta>* writer) {
  GrpcCall call(ctx);
  return ToGrpc(ctx, CallGenerateStream(call, *req, [writer](const v1::GenerateDelta& d) { return writer->Write(d); }));
}

grpc::Status InferenceService::Recommend(grpc::ServerContext* ctx, const v1::RecommendRequest* req,
                                         v1::RecommendResponse* resp) {
  GrpcCall call(ctx);
  return ToGrpc(ctx, CallRecommend(call, *req, resp));
}

Status InferenceService::GenerateImpl(CallContext& call, const v1::GenerateRequest& req_ref, v1::GenerateResponse* resp,
                                      CallInfo* info) {
  const v1::GenerateRequest* req = &req_ref;
  std::string* request_id = &info->request_id;
  if (Status s = Admit(); !s.ok()) return s;
  Prepared prep;
  Status started = Start(call, classify::Rpc::kGenerate, *req, &prep, info);
  *request_id = prep.options.request_id;
  if (!started.ok()) return started;
  Backend* backend = prep.route->backend.get();
  RequestStream* stream = prep.sub.stream.get();

  resp->set_request_id(*request_id);
  const WaitEnd end = Consume(call, backend, stream, options_.poll_interval, [&](TokenDelta&& d, bool) {
    resp->mutable_text()->append(d.text);
    AppendTokens(d, resp->mutable_tokens());
    return true;
  });
  if (end == WaitEnd::kCancelled) return ClientCancelled();
  const RequestOutcome& o = stream->Wait();
  if (!o.status.ok()) return OutcomeStatus(o, &info->retry_after);
  resp->set_finish_reason(ToProto(o.finish_reason));
  FillUsage(o, resp->mutable_usage());
  return Status::Ok();
}

Status InferenceService::GenerateStreamImpl(CallContext& call, const v1::GenerateRequest& req_ref,
                                            const DeltaWriter& write, CallInfo* info) {
  const v1::GenerateRequest* req = &req_ref;
  std::string* request_id = &info->request_id;
  if (Status s = Admit(); !s.ok()) return s;
  Prepared prep;
  Status started = Start(call, classify::Rpc::kGenerateStream, *req, &prep, info);
  *request_id = prep.options.request_id;
  if (!started.ok()) return started;
  Backend* backend = prep.route->backend.get();
  RequestStream* stream = prep.sub.stream.get();

  bool first = true;
  // The message closing the stream: finish_reason and usage, plus whatever the last delta held.
  auto finish = [&](v1::GenerateDelta* msg) {
    const RequestOutcome& o = stream->Wait();
    msg->set_finish_reason(ToProto(o.finish_reason));
    FillUsage(o, msg->mutable_usage());
  };
  bool sent_last = false;
  const WaitEnd end = Consume(call, backend, stream, options_.poll_interval, [&](TokenDelta&& d, bool last) {
    v1::GenerateDelta msg;
    if (first) msg.set_request_id(*request_id);
    first = false;
    msg.set_text(std::move(d.text));
    AppendTokens(d, msg.mutable_tokens());
    if (last) {
      finish(&msg);
      sent_last = true;
    }
    return write(msg);
  });
  if (end == WaitEnd::kCancelled) return ClientCancelled();
  const RequestOutcome& o = stream->Wait();
  // A request that failed before producing anything ends with the status alone.
  if (!sent_last && (o.status.ok() || !first)) {
    v1::GenerateDelta msg;
    if (first) msg.set_request_id(*request_id);
    finish(&msg);
    if (!write(msg)) return ClientCancelled();
  }
  return OutcomeStatus(o, &info->retry_after);
}

Status InferenceService::RecommendImpl(CallContext& call, const v1::RecommendRequest& req, v1::RecommendResponse* resp,
                                       CallInfo* info) {
  Prepared prep;
  double precision = 0;
  if (Status s = RecommendClassify(call, req, &prep, &precision, info); !s.ok()) return s;
  if (Status s = Submit(call, classify::Rpc::kRecommend, req, &prep, info); !s.ok()) return s;
  return RecommendFinish(call, req, resp, &prep, precision, info);
}

Status InferenceService::RecommendClassify(CallContext& call, const v1::RecommendRequest& req, Prepared* prep,
                                           double* precision, CallInfo* info) {
  if (Status s = Admit(); !s.ok()) return s;
  StatusOr<double> p = DecodeRankingOptions(req);
  if (!p.ok()) return p.status();
  *precision = *p;
  return Classify(call, classify::Rpc::kRecommend, req, prep, info);
}

Status InferenceService::RecommendFinish(CallContext& call, const v1::RecommendRequest& req,
                                         v1::RecommendResponse* resp, Prepared* prep, double precision,
                                         CallInfo* info) {
  Backend* backend = prep->route->backend.get();
  RequestStream* stream = prep->sub.stream.get();
  const WaitEnd end = Consume(call, backend, stream, options_.poll_interval, [](TokenDelta&&, bool) { return true; });
  if (end == WaitEnd::kCancelled) return ClientCancelled();
  const RequestOutcome& o = stream->Wait();
  if (!o.status.ok()) return OutcomeStatus(o, &info->retry_after);
  if (prep->sub.on_success) prep->sub.on_success(o);

  resp->set_request_id(info->request_id);
  resp->set_from_cache(prep->sub.from_cache);
  FillUsage(o, resp->mutable_usage());
  return EncodeRanking(req, o, precision, prep->sub.checkpoint_id, resp);
}

// What a callback call keeps while it is handed from gRPC's thread to a pool thread.
struct InferenceService::AsyncRecommend {
  explicit AsyncRecommend(grpc::ServerContextBase* ctx) : call(ctx) {}
  GrpcCall call;
  CallInfo info;
  Prepared prep;
  double precision = 0;
};

Status InferenceService::NoThreadFree(CallInfo* info) {
  info->retry_after = std::chrono::milliseconds(kFallbackRetryAfterMs);
  return ResourceExhausted("server.max_threads: every thread for calls that wait is busy; retry later");
}

void InferenceService::RecommendCallback(grpc::CallbackServerContext* ctx, const v1::RecommendRequest* req,
                                         v1::RecommendResponse* resp, const Offload& offload, Done done) {
  auto s = std::make_shared<AsyncRecommend>(ctx);
  auto end = [this, ctx](AsyncRecommend& a, const Status& st, const Done& d) {
    d(ToGrpc(ctx, End(RpcMethod::kRecommend, classify::Rpc::kRecommend, a.info, st)));
  };
  // Rules that count tokens tokenize while classifying: all of it runs where it may take a while.
  if (classifier_.needs_token_counts()) {
    const bool ran =
        offload([this, ctx, s, req, resp, done] { done(ToGrpc(ctx, CallRecommend(s->call, *req, resp))); });
    if (!ran) end(*s, NoThreadFree(&s->info), done);
    return;
  }
  if (Status st = RecommendClassify(s->call, *req, &s->prep, &s->precision, &s->info); !st.ok()) {
    return end(*s, st, done);
  }
  if (std::optional<Submitted> hit = s->prep.route->backend->RecommendCached(*req, s->prep.options)) {
    s->prep.sub = *std::move(hit);
    Accepted(s->call, *req, &s->prep, &s->info);
    return end(*s, RecommendFinish(s->call, *req, resp, &s->prep, s->precision, &s->info), done);
  }
  const bool ran = offload([this, s, req, resp, done, end] {
    Status st = Submit(s->call, classify::Rpc::kRecommend, *req, &s->prep, &s->info);
    if (st.ok()) st = RecommendFinish(s->call, *req, resp, &s->prep, s->precision, &s->info);
    end(*s, st, done);
  });
  if (!ran) end(*s, NoThreadFree(&s->info), done);
}

Status InferenceService::EncodeRanking(const v1::RecommendRequest& req, const RequestOutcome& o, double precision,
                                       const std::string& checkpoint_id, v1::RecommendResponse* resp) {
  Ranking ranking;
  ranking.ids.reserve(o.ranked.size());
  ranking.scores.reserve(o.ranked.size());
  for (const ScoredCandidate& c : o.ranked) {
    ranking.ids.push_back(req.candidates(c.index).item_id());
    ranking.scores.push_back(req.score_by_mean() ? c.mean_logprob : c.sum_logprob);
  }
  auto entry = std::make_shared<ResponseStore::Entry>();
  entry->hash = RankingHash(ranking.ids);
  entry->ids = ranking.ids;
  entry->checkpoint_id = checkpoint_id;
  const std::string response_id = NewId("r");
  resp->set_response_id(response_id);
  resp->set_response_hash(entry->hash);

  // The base is looked up before this response is stored, so a full store cannot evict it first.
  std::shared_ptr<const ResponseStore::Entry> base;
  if (req.encoding() == v1::RESPONSE_ENCODING_DIFF && !req.previous_response_id().empty()) {
    base = responses_.Get(req.previous_response_id());
    if (base != nullptr && (base->hash != req.previous_response_hash() || base->checkpoint_id != checkpoint_id)) {
      base = nullptr;
    }
  }
  responses_.Put(response_id, std::move(entry));

  if (req.encoding() == v1::RESPONSE_ENCODING_PLAIN) {
    v1::PlainRanking* plain = resp->mutable_plain();
    for (const ScoredCandidate& c : o.ranked) {
      v1::ScoredItem* item = plain->add_items();
      item->set_item_id(req.candidates(c.index).item_id());
      item->set_sum_logprob(c.sum_logprob);
      item->set_mean_logprob(c.mean_logprob);
      item->set_num_tokens(c.num_tokens);
    }
    return Status::Ok();
  }
  StatusOr<CompactRanking> compact = EncodeCompact(ranking, precision);
  if (!compact.ok()) return Internal("ranking encoder: " + compact.status().message());
  ToProto(*compact, resp->mutable_compact());
  if (base == nullptr) return Status::Ok();

  StatusOr<RankingDiff> diff = EncodeDiff(base->ids, ranking, precision);
  if (!diff.ok()) return Internal("ranking encoder: " + diff.status().message());
  diff->base_response_id = req.previous_response_id();
  v1::RankingDiff diff_proto;
  ToProto(*diff, &diff_proto);
  // A diff is only worth sending when it is smaller than the compact form.
  if (diff_proto.ByteSizeLong() < resp->compact().ByteSizeLong()) *resp->mutable_diff() = std::move(diff_proto);
  return Status::Ok();
}

grpc::Status InferenceService::Feedback(grpc::ServerContext* ctx, const v1::FeedbackRequest* req,
                                        v1::FeedbackResponse*) {
  return FeedbackCounted(ctx, req);
}

grpc::Status InferenceService::FeedbackCounted(grpc::ServerContextBase* ctx, const v1::FeedbackRequest* req) {
  RpcTag tag;
  grpc::Status st = FeedbackImpl(ctx, req, &tag);
  rpc_stats_.RecordRpc(tag.pool, tag.cls, RpcMethod::kFeedback, st.error_code());
  return st;
}

void InferenceService::FeedbackCallback(grpc::CallbackServerContext* ctx, const v1::FeedbackRequest* req,
                                        v1::FeedbackResponse*, const Offload& offload, Done done) {
  // Only feedback for a model of an upstream waits (it is forwarded there); the rest is answered here.
  const std::string& model = req->model();
  const bool local =
      model.empty() || std::any_of(pools_.begin(), pools_.end(), [&](const ServingPool& p) { return p.name == model; });
  if (local) return done(FeedbackCounted(ctx, req));
  if (offload([this, ctx, req, done] { done(FeedbackCounted(ctx, req)); })) return;
  CallInfo info;
  const Status busy = NoThreadFree(&info);
  rpc_stats_.RecordRpc(std::nullopt, std::nullopt, RpcMethod::kFeedback, static_cast<int>(busy.code()));
  done(ToGrpc(ctx, CallResult{busy, info.retry_after, nullptr}));
}

grpc::Status InferenceService::FeedbackImpl(grpc::ServerContextBase* ctx, const v1::FeedbackRequest* req, RpcTag* tag) {
  // Fields that need no pool are checked first, so malformed feedback is INVALID_ARGUMENT even
  // while no pool is attached.
  auto bad = [](const std::string& msg) { return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, msg); };
  if (req->request_id().empty()) return bad("request_id: must not be empty");
  if (Status s = ValidateRequestId(req->request_id(), options_.max_request_id_bytes); !s.ok()) return ToGrpcStatus(s);
  using Event = BusinessStatsRecorder::Event;
  std::optional<Event> event;
  switch (req->event_case()) {
    case v1::FeedbackRequest::kImpression:
      if (!req->impression()) return bad("impression: must be true when set");
      event = Event::kImpression;
      break;
    case v1::FeedbackRequest::kClick:
      if (!req->click()) return bad("click: must be true when set");
      event = Event::kClick;
      break;
    case v1::FeedbackRequest::kConversion:
      if (!req->conversion()) return bad("conversion: must be true when set");
      event = Event::kConversion;
      break;
    case v1::FeedbackRequest::kQualityScore: {
      const double q = req->quality_score();
      if (!(q >= 0.0 && q <= 1.0)) {
        char buf[32];
        std::snprintf(buf, sizeof(buf), "%g", q);
        return bad(std::string("quality_score: must be in [0, 1], got ") + buf);
      }
      if (req->count() > 1) return bad("count: must be 0 or 1 with quality_score");
      break;
    }
    case v1::FeedbackRequest::EVENT_NOT_SET:
      return bad("event: set one of impression, click, conversion, quality_score");
  }

  if (Status s = Admit(); !s.ok()) return ToGrpcStatus(s);
  const std::string& model = req->model();
  if (!model.empty() &&
      std::none_of(pools_.begin(), pools_.end(), [&](const ServingPool& p) { return p.name == model; })) {
    // A model of an upstream: the feedback belongs to the daemon that served it.
    for (const BackendRoute& r : routes_) {
      if (std::find(r.models.begin(), r.models.end(), model) == r.models.end()) continue;
      tag->pool = static_cast<size_t>(&r - routes_.data());
      return ToGrpcStatus(r.backend->Feedback(*req, RequestDeadline(GrpcCall(ctx), 0)));
    }
    return {grpc::StatusCode::NOT_FOUND, "model: no model pool named " + Excerpt(model)};
  }
  // Counted against the local pool and class that served the named request; an id no longer (or never)
  // remembered is counted apart, whatever `model` says.
  const std::optional<RequestAttribution::Entry> served = attribution_.Find(req->request_id());
  if (!served) {
    business_.RecordUnknownRequest();
    return grpc::Status::OK;
  }
  tag->pool = served->pool;
  tag->cls = served->cls;
  if (event) {
    business_.Record(served->pool, served->cls, served->variant, *event, req->count() == 0 ? 1 : req->count());
  } else {
    business_.RecordQuality(served->pool, served->cls, served->variant, req->quality_score());
  }
  return grpc::Status::OK;
}

}  // namespace inferd::server
