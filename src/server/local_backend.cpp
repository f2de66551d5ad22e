#include "server/local_backend.h"

#include <unordered_set>

#include "server/request_decode.h"

namespace inferd::server {
namespace {

// A cache hit as a finished stream.
Submitted FromCache(const cache::CachedRanking& hit, RequestClass cls, std::string checkpoint_id) {
  RequestOutcome o;
  o.status = Status::Ok();
  o.finish_reason = FinishReason::kScored;
  o.cls = cls;
  o.timings.arrival = o.timings.end = Clock::now();
  o.prompt_tokens = hit.prompt_tokens;
  o.cached_prompt_tokens = hit.prompt_tokens;
  o.ranked = hit.ranked;
  Submitted s;
  s.stream = std::make_shared<RequestStream>(0);
  s.stream->Finish(std::move(o));
  s.from_cache = true;
  s.checkpoint_id = std::move(checkpoint_id);
  return s;
}

// RecommendTextKey of `req` for one pool generation.
cache::CacheKey TextKey(const v1::RecommendRequest& req, const std::string& model, const std::string& checkpoint_id) {
  std::vector<std::string_view> texts;
  texts.reserve(req.candidates_size());
  for (const v1::Candidate& c : req.candidates()) texts.emplace_back(c.text());
  return cache::RecommendTextKey(
      model, checkpoint_id, req.context(), texts, req.top_k(),
      static_cast<int32_t>(req.score_by_mean() ? ScoreBy::kMeanLogprob : ScoreBy::kSumLogprob));
}

// The item ids are the one input a text key leaves out that DecodeRecommend checks: they must not repeat.
bool DistinctItemIds(const v1::RecommendRequest& req) {
  std::unordered_set<uint64_t> seen;
  seen.reserve(req.candidates_size());
  for (const v1::Candidate& c : req.candidates()) {
    if (!seen.insert(c.item_id()).second) return false;
  }
  return true;
}

Submitted FromSubmit(SubmitResult r, std::shared_ptr<const PoolGeneration> gen) {
  Submitted s;
  s.status = std::move(r.status);
  s.retry_after = r.retry_after;
  s.stream = std::move(r.stream);
  s.checkpoint_id = gen->checkpoint_id;
  s.hold = std::move(gen);
  return s;
}

Submitted Refusal(Status status) {
  Submitted s;
  s.status = std::move(status);
  return s;
}

std::shared_ptr<PoolSlot> SlotOf(const ServingPool& p) {
  if (p.slot != nullptr) return p.slot;
  auto gen = std::make_shared<PoolGeneration>();
  gen->engine = p.engine;
  gen->tokenizer = p.tokenizer;
  gen->max_model_len = p.max_model_len;
  gen->checkpoint_id = p.checkpoint_id;
  return std::make_shared<PoolSlot>(std::move(gen));
}

// `pool` with the fields a generation decides.
ServingPool WithGeneration(const ServingPool& pool, const PoolGeneration& gen) {
  ServingPool p = pool;
  p.engine = gen.engine;
  p.tokenizer = gen.tokenizer;
  p.max_model_len = gen.max_model_len;
  p.checkpoint_id = gen.checkpoint_id;
  return p;
}

}  // namespace

LocalBackend::LocalBackend(ServingPool pool, std::shared_ptr<cache::ResponseCache> cache)
    : pool_(std::move(pool)),
      slot_(SlotOf(pool_)),
      cache_(std::move(cache)),
      description_("model pool '" + pool_.name + "'") {}

std::shared_ptr<const PoolGeneration> LocalBackend::Acquire(Submitted* refusal) const {
  std::shared_ptr<const PoolGeneration> gen = slot_->Acquire();
  if (gen == nullptr) *refusal = Refusal(Unavailable(description_ + " is draining"));
  return gen;
}

Submitted LocalBackend::Generate(const v1::GenerateRequest& request, const CallOptions& options) {
  Submitted refused;
  std::shared_ptr<const PoolGeneration> gen = Acquire(&refused);
  if (gen == nullptr) return refused;
  StatusOr<GenerateRequest> native = DecodeGenerate(request, WithGeneration(pool_, *gen));
  if (!native.ok()) return Refusal(native.status());
  native->cls = options.cls;
  native->deadline = options.deadline;
  Engine* engine = gen->engine;
  return FromSubmit(engine->Submit(std::move(native).value()), std::move(gen));
}

std::optional<Submitted> LocalBackend::HitByTexts(const v1::RecommendRequest& request, const CallOptions& options,
                                                  const PoolGeneration& gen, const cache::CacheKey& text_key) const {
  if (!DistinctItemIds(request)) return std::nullopt;
  std::shared_ptr<const cache::CachedRanking> hit = cache_->Get(text_key, /*count_miss=*/false);
  if (hit == nullptr) return std::nullopt;
  return FromCache(*hit, options.cls, gen.checkpoint_id);
}

std::optional<Submitted> LocalBackend::RecommendCached(const v1::RecommendRequest& request,
                                                       const CallOptions& options) {
  if (cache_ == nullptr || options.cls != RequestClass::kRealtime) return std::nullopt;
  std::shared_ptr<const PoolGeneration> gen = slot_->Acquire();
  if (gen == nullptr) return std::nullopt;  // draining: Recommend says so
  return HitByTexts(request, options, *gen, TextKey(request, pool_.name, gen->checkpoint_id));
}

Submitted LocalBackend::Recommend(const v1::RecommendRequest& request, const CallOptions& options) {
  Submitted refused;
  std::shared_ptr<const PoolGeneration> gen = Acquire(&refused);
  if (gen == nullptr) return refused;
  const bool cached = cache_ != nullptr && options.cls == RequestClass::kRealtime;
  // A repeat of a request served before is found by its texts, without tokenizing them.
  std::optional<cache::CacheKey> text_key;
  if (cached) {
    text_key = TextKey(request, pool_.name, gen->checkpoint_id);
    if (std::optional<Submitted> hit = HitByTexts(request, options, *gen, *text_key)) return *std::move(hit);
  }
  StatusOr<RecommendRequest> native = DecodeRecommend(request, WithGeneration(pool_, *gen));
  if (!native.ok()) return Refusal(native.status());
  native->cls = options.cls;
  native->deadline = options.deadline;
  Engine* engine = gen->engine;
  if (!cached) return FromSubmit(engine->Submit(std::move(native).value()), std::move(gen));
  const cache::CacheKey key = cache::RecommendKey(pool_.name, gen->checkpoint_id, native->context, native->candidates,
                                                  native->top_k, static_cast<int32_t>(native->rank_by));
  if (std::shared_ptr<const cache::CachedRanking> hit = cache_->Get(key)) {
    cache_->AddAlias(key, *text_key);
    return FromCache(*hit, options.cls, gen->checkpoint_id);
  }
  Submitted s = FromSubmit(engine->Submit(std::move(native).value()), std::move(gen));
  if (s.status.ok()) {
    s.on_success = [cache = cache_, key, alias = *text_key](const RequestOutcome& o) {
      auto entry = std::make_shared<cache::CachedRanking>();
      entry->ranked = o.ranked;
      entry->prompt_tokens = o.prompt_tokens;
      cache->Put(key, std::move(entry), alias);
    };
  }
  return s;
}

void LocalBackend::Cancel(RequestId id) {
  if (id != 0) slot_->Cancel(id);
}

Status LocalBackend::Feedback(const v1::FeedbackRequest&, std::optional<TimePoint>) {
  return Status::Ok();
}

}  // namespace inferd::server
