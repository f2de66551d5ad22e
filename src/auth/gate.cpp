#include "auth/gate.h"

#include <algorithm>
#include <utility>

namespace inferd::auth {

Gate::Gate(std::shared_ptr<const TokenAuthenticator> tokens, std::shared_ptr<RateLimiter> limiter)
    : tokens_(std::move(tokens)), limiter_(std::move(limiter)) {}

StatusOr<std::shared_ptr<Gate>> Gate::Load(const std::string& token_file, double requests_per_second, double burst) {
  if (token_file.empty()) return std::make_shared<Gate>(nullptr, nullptr);
  StatusOr<std::shared_ptr<const TokenAuthenticator>> tokens = TokenAuthenticator::Load(token_file);
  if (!tokens.ok()) return tokens.status();
  std::shared_ptr<RateLimiter> limiter;
  if (requests_per_second > 0) {
    limiter =
        std::make_shared<RateLimiter>(requests_per_second, burst > 0 ? burst : std::max(1.0, requests_per_second));
  }
  return std::make_shared<Gate>(*std::move(tokens), std::move(limiter));
}

bool Gate::authenticates() const {
  std::lock_guard<std::mutex> lock(mu_);
  return tokens_ != nullptr;
}

Admission Gate::Admit(std::string_view authorization, Permission needed, std::string_view rpc,
                      RateLimiter::Clock::time_point now) const {
  std::shared_ptr<const TokenAuthenticator> tokens;
  {
    std::lock_guard<std::mutex> lock(mu_);
    tokens = tokens_;
  }
  Admission out;
  if (tokens == nullptr) return out;
  StatusOr<Identity> id = tokens->Authorize(authorization, needed, rpc);
  if (!id.ok()) {
    out.status = id.status();
    return out;
  }
  out.identity = id->name;
  if (limiter_ == nullptr) return out;
  const std::chrono::milliseconds wait = limiter_->Acquire(id->name, now);
  if (wait.count() > 0) {
    out.retry_after = wait;
    out.status = ResourceExhausted("rate limit of identity '" + id->name + "' reached; retry after " +
                                   std::to_string(wait.count()) + " ms (server.auth.rate_limit)");
  }
  return out;
}

void Gate::SetTokens(std::shared_ptr<const TokenAuthenticator> tokens) {
  if (tokens == nullptr) return;
  std::lock_guard<std::mutex> lock(mu_);
  tokens_ = std::move(tokens);
}

}  // namespace inferd::auth
