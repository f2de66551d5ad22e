#include "server/local_backend.h"

#include "server/request_decode.h"

namespace inferd::server {
namespace {

Submitted FromSubmit(SubmitResult r) {
  Submitted s;
  s.status = std::move(r.status);
  s.retry_after = r.retry_after;
  s.stream = std::move(r.stream);
  return s;
}

Submitted Refusal(Status status) {
  Submitted s;
  s.status = std::move(status);
  return s;
}

}  // namespace

LocalBackend::LocalBackend(ServingPool pool, std::shared_ptr<cache::ResponseCache> cache)
    : pool_(std::move(pool)), cache_(std::move(cache)), description_("model pool '" + pool_.name + "'") {}

Submitted LocalBackend::Generate(const v1::GenerateRequest& request, const CallOptions& options) {
  StatusOr<GenerateRequest> native = DecodeGenerate(request, pool_);
  if (!native.ok()) return Refusal(native.status());
  native->cls = options.cls;
  native->deadline = options.deadline;
  return FromSubmit(pool_.engine->Submit(std::move(native).value()));
}

Submitted LocalBackend::Recommend(const v1::RecommendRequest& request, const CallOptions& options) {
  StatusOr<RecommendRequest> native = DecodeRecommend(request, pool_);
  if (!native.ok()) return Refusal(native.status());
  native->cls = options.cls;
  native->deadline = options.deadline;
  if (cache_ == nullptr || options.cls != RequestClass::kRealtime) {
    return FromSubmit(pool_.engine->Submit(std::move(native).value()));
  }
  const cache::CacheKey key = cache::RecommendKey(pool_.name, pool_.checkpoint_id, native->context, native->candidates,
                                                  native->top_k, static_cast<int32_t>(native->rank_by));
  if (std::shared_ptr<const cache::CachedRanking> hit = cache_->Get(key)) {
    RequestOutcome o;
    o.status = Status::Ok();
    o.finish_reason = FinishReason::kScored;
    o.cls = options.cls;
    o.timings.arrival = o.timings.end = Clock::now();
    o.prompt_tokens = hit->prompt_tokens;
    o.cached_prompt_tokens = hit->prompt_tokens;
    o.ranked = hit->ranked;
    Submitted s;
    s.stream = std::make_shared<RequestStream>(0);
    s.stream->Finish(std::move(o));
    s.from_cache = true;
    return s;
  }
  Submitted s = FromSubmit(pool_.engine->Submit(std::move(native).value()));
  if (s.status.ok()) {
    s.on_success = [cache = cache_, key](const RequestOutcome& o) {
      auto entry = std::make_shared<cache::CachedRanking>();
      entry->ranked = o.ranked;
      entry->prompt_tokens = o.prompt_tokens;
      cache->Put(key, std::move(entry));
    };
  }
  return s;
}

void LocalBackend::Cancel(RequestId id) {
  if (id != 0) pool_.engine->Cancel(id);
}

Status LocalBackend::Feedback(const v1::FeedbackRequest&, std::optional<TimePoint>) {
  return Status::Ok();
}

}  // namespace inferd::server
