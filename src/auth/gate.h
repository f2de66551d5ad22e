// Gate: what every front end (gRPC's InferenceFront, the HTTP OpenAiFrontend) enforces before a request
// reaches the service: the bearer token and its permission (TokenAuthenticator), then the identity's rate
// limit (RateLimiter). One Gate is shared by all front ends, so an identity's rate limit counts its calls
// over every protocol and a token reload (SIGHUP) applies to all of them at once. No gRPC or HTTP types.
// Threading: Admit and SetTokens are safe from any number of threads.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "auth/rate_limiter.h"
#include "auth/token_auth.h"
#include "inferd/status.h"

namespace inferd::auth {

struct Admission {
  // OK, or UNAUTHENTICATED / PERMISSION_DENIED (TokenAuthenticator::Authorize's messages), or
  // RESOURCE_EXHAUSTED "rate limit of identity '<name>' reached; retry after N ms (server.auth.rate_limit)".
  Status status;
  std::chrono::milliseconds retry_after{0};  // > 0 exactly when the rate limit refused
  std::string identity;                      // the caller's name; "" when authentication is off
};

class Gate {
 public:
  // tokens null: no authentication (and no rate limit: limits are per identity). limiter null: no limit.
  Gate(std::shared_ptr<const TokenAuthenticator> tokens, std::shared_ptr<RateLimiter> limiter);

  // From the config's values: token_file "" = open; requests_per_second 0 = no limit; burst 0 = one second's
  // worth (at least 1). NOT_FOUND / INVALID_ARGUMENT from TokenAuthenticator::Load for a bad token file.
  static StatusOr<std::shared_ptr<Gate>> Load(const std::string& token_file, double requests_per_second, double burst);

  bool authenticates() const;

  // `authorization`: the Authorization header / metadata value as received ("" when absent). `rpc` names
  // the call in messages. A refused call takes no rate-limit token.
  Admission Admit(std::string_view authorization, Permission needed, std::string_view rpc,
                  RateLimiter::Clock::time_point now) const;

  // Replaces the token set (a reload); null is ignored, so authentication can never be switched off this way.
  void SetTokens(std::shared_ptr<const TokenAuthenticator> tokens);

 private:
  mutable std::mutex mu_;  // guards tokens_
  std::shared_ptr<const TokenAuthenticator> tokens_;
  const std::shared_ptr<RateLimiter> limiter_;
};

}  // namespace inferd::auth
