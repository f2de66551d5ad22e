// PoolSlot: the model a pool serves now. A reload (Control.ReloadPool, SIGHUP) swaps the whole generation
// (engine, tokenizer, context limit, checkpoint identity) at once; a request takes the current generation when
// it is submitted and holds it until its call ends, so a swap never moves or fails a running request and the
// replaced generation lives while anyone holds it. Drain stops new requests (UNAVAILABLE) without a swap.
// Thread-safe: every method may be called from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "inferd/engine.h"
#include "inferd/tokenizer.h"

namespace inferd::server {

struct PoolGeneration {
  Engine* engine = nullptr;                    // not null; kept alive by `owner` (or by whoever made it)
  std::shared_ptr<const Tokenizer> tokenizer;  // not null
  int32_t max_model_len = 4096;
  std::string checkpoint_id;    // unique per load: part of response cache keys and DIFF base checks
  std::shared_ptr<void> owner;  // owns the engine and model; may be null when the engine outlives the slot
};

class PoolSlot {
 public:
  explicit PoolSlot(std::shared_ptr<const PoolGeneration> first);

  // The serving generation, or null while draining (then new requests get UNAVAILABLE).
  std::shared_ptr<const PoolGeneration> Acquire() const;
  // Makes `next` the serving generation and accepts requests again; returns the one it replaced. The
  // replaced one is remembered (weakly) so Cancel still reaches its requests while they finish.
  std::shared_ptr<const PoolGeneration> Swap(std::shared_ptr<const PoolGeneration> next);
  // Refuses new requests until the next Swap; the current generation stays for Current().
  void StopAccepting();
  bool accepting() const;
  // The last swapped-in generation, accepting or not (for listing and draining).
  std::shared_ptr<const PoolGeneration> Current() const;
  // Cancels engine request `id` in the current generation and in replaced ones still alive. Engines of one
  // pool number their requests in disjoint ranges (EngineOptions::first_request_id), so at most one matches.
  void Cancel(RequestId id) const;
  // Replaced generations still held by in-flight requests.
  int32_t retired_alive() const;

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const PoolGeneration> current_;                     // guarded by mu_
  bool accepting_ = true;                                             // guarded by mu_
  mutable std::vector<std::weak_ptr<const PoolGeneration>> retired_;  // guarded by mu_; pruned when expired
};

}  // namespace inferd::server
