// TokenAuthenticator: bearer tokens checked against a file of SHA-256 token hashes, each with the RPC groups
// its token may call. No gRPC or HTTP types: a front end passes the `authorization` header value it received
// and the permission its RPC needs.
//
// Token file (server.auth.token_file), one token per line; `#` starts a comment, blank lines are skipped:
//   <identity> sha256:<64 lowercase hex digits of SHA-256(token)> <permission>[,<permission>...]
// identity: 1..64 of [A-Za-z0-9_.-], unique in the file; it names the caller in logs, errors and rate
// limits. Permissions: inference (Generate, GenerateStream, Recommend), feedback (Feedback), control (the
// inferd.v1.Control operator service, with control.token_file).
// Make a hash with: printf %s "$TOKEN" | sha256sum
//
// Secrets: the file holds hashes only; a presented token is hashed once and compared with every entry in
// constant time (CRYPTO_memcmp over all entries, no early exit), and neither tokens nor hashes appear in
// messages or logs. Immutable after Load; Authenticate is safe from any number of threads.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "inferd/status.h"

namespace inferd::auth {

enum class Permission : uint8_t { kInference = 1, kFeedback = 2, kControl = 4 };

const char* PermissionName(Permission p);

struct Identity {
  std::string name;
  uint8_t permissions = 0;  // bit set of Permission values
  bool Has(Permission p) const { return (permissions & static_cast<uint8_t>(p)) != 0; }
};

class TokenAuthenticator {
 public:
  // Parses a token file's text. INVALID_ARGUMENT "<source>:<line>: <problem>" for the first bad line, and
  // for a file with no tokens.
  static StatusOr<std::shared_ptr<const TokenAuthenticator>> Parse(std::string_view text, const std::string& source);
  // Reads and parses `path`; NOT_FOUND naming the path when it cannot be read.
  static StatusOr<std::shared_ptr<const TokenAuthenticator>> Load(const std::string& path);

  // `authorization`: the header value as received ("Bearer <token>"), or empty when absent.
  // UNAUTHENTICATED "missing bearer token" / "malformed authorization header (expected 'Bearer <token>')" /
  // "unknown bearer token"; PERMISSION_DENIED "identity '<name>' may not call <rpc> (needs permission
  // <permission>)". `rpc` names the call in that message.
  StatusOr<Identity> Authorize(std::string_view authorization, Permission needed, std::string_view rpc) const;

  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    std::array<uint8_t, 32> hash;  // SHA-256 of the token
    Identity identity;
  };
  std::vector<Entry> entries_;
};

// SHA-256 of `data` as 64 lowercase hex digits.
std::string Sha256Hex(std::string_view data);

}  // namespace inferd::auth
