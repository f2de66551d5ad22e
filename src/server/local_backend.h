// LocalBackend: a model pool's Engine behind the Backend seam. Decodes (tokenizes) with the pool's
// tokenizer and limits, submits to the engine, and for realtime Recommends consults the response cache
// (when given): a hit is a finished stream with from_cache; a miss fills the cache once the ranking is OK.
// The cache is asked first by the request's texts (cache::RecommendTextKey, an alias set once a request
// with those texts was tokenized and validated under the same model load), then by its token ids; a hit
// by texts skips tokenizing, and answers only a request whose item ids are distinct (the one check of
// DecodeRecommend the texts do not decide; a request failing it goes the long way to get its error).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "cache/response_cache.h"
#include "server/backend.h"
#include "server/serving_pool.h"

namespace inferd::server {

class LocalBackend final : public Backend {
 public:
  // Without pool.slot, `pool.engine` must outlive this object and serves every request; with it, each
  // request is served by the slot's generation when it arrives (UNAVAILABLE while the slot drains).
  // `cache` may be null (no caching).
  LocalBackend(ServingPool pool, std::shared_ptr<cache::ResponseCache> cache);

  const std::string& description() const override { return description_; }
  Submitted Generate(const v1::GenerateRequest& request, const CallOptions& options) override;
  Submitted Recommend(const v1::RecommendRequest& request, const CallOptions& options) override;
  std::optional<Submitted> RecommendCached(const v1::RecommendRequest& request, const CallOptions& options) override;
  void Cancel(RequestId id) override;
  // Business feedback of local pools is recorded by the front end; this only answers OK.
  Status Feedback(const v1::FeedbackRequest& request, std::optional<TimePoint> deadline) override;

  const ServingPool& pool() const { return pool_; }
  const std::shared_ptr<PoolSlot>& slot() const { return slot_; }

 private:
  // The pool as the request's generation sees it; null with UNAVAILABLE in *refusal while draining.
  std::shared_ptr<const PoolGeneration> Acquire(Submitted* refusal) const;
  // A hit of `text_key` (the request's RecommendTextKey under `gen`) for a realtime request with distinct
  // item ids; none otherwise. Counts no miss.
  std::optional<Submitted> HitByTexts(const v1::RecommendRequest& request, const CallOptions& options,
                                      const PoolGeneration& gen, const cache::CacheKey& text_key) const;

  const ServingPool pool_;
  const std::shared_ptr<PoolSlot> slot_;  // pool_.slot, or one made from pool_'s fields
  const std::shared_ptr<cache::ResponseCache> cache_;
  const std::string description_;
};

}  // namespace inferd::server
