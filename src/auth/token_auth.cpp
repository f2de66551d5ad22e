#include "auth/token_auth.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <fstream>
#include <sstream>
#include <unordered_set>

namespace inferd::auth {
namespace {

constexpr std::string_view kHashPrefix = "sha256:";
constexpr size_t kMaxIdentityBytes = 64;

std::array<uint8_t, 32> Sha256(std::string_view data) {
  std::array<uint8_t, 32> out{};
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data());
  return out;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

bool ValidIdentity(std::string_view name) {
  if (name.empty() || name.size() > kMaxIdentityBytes) return false;
  for (char c : name) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

}  // namespace

const char* PermissionName(Permission p) {
  switch (p) {
    case Permission::kInference:
      return "inference";
    case Permission::kFeedback:
      return "feedback";
    case Permission::kControl:
      return "control";
  }
  return "?";
}

std::string Sha256Hex(std::string_view data) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (uint8_t b : Sha256(data)) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
  return out;
}

StatusOr<std::shared_ptr<const TokenAuthenticator>> TokenAuthenticator::Parse(std::string_view text,
                                                                              const std::string& source) {
  auto auth = std::shared_ptr<TokenAuthenticator>(new TokenAuthenticator());
  std::unordered_set<std::string> names;
  std::istringstream in{std::string(text)};
  std::string raw;
  for (int line_no = 1; std::getline(in, raw); ++line_no) {
    std::string_view line = raw;
    if (size_t hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    line = Trim(line);
    if (line.empty()) continue;
    auto bad = [&](const std::string& what) {
      return InvalidArgument(source + ":" + std::to_string(line_no) + ": " + what);
    };
    std::istringstream fields{std::string(line)};
    std::string name, hash, perms, extra;
    fields >> name >> hash >> perms;
    if (perms.empty()) return bad("expected '<identity> sha256:<hex> <permission>[,<permission>]'");
    if (fields >> extra) return bad("unexpected text after the permissions");
    if (!ValidIdentity(name)) return bad("identity: use 1 to 64 of A-Z a-z 0-9 _ - .");
    if (!names.insert(name).second) return bad("identity '" + name + "' appears twice");
    Entry e;
    e.identity.name = name;
    if (hash.size() != kHashPrefix.size() + 64 || hash.compare(0, kHashPrefix.size(), kHashPrefix) != 0) {
      return bad("hash of '" + name + "': expected sha256: and 64 lowercase hex digits");
    }
    for (size_t i = 0; i < 32; ++i) {
      const int hi = HexDigit(hash[kHashPrefix.size() + 2 * i]);
      const int lo = HexDigit(hash[kHashPrefix.size() + 2 * i + 1]);
      if (hi < 0 || lo < 0) return bad("hash of '" + name + "': expected sha256: and 64 lowercase hex digits");
      e.hash[i] = static_cast<uint8_t>(hi * 16 + lo);
    }
    std::istringstream plist(perms);
    std::string p;
    while (std::getline(plist, p, ',')) {
      if (p == "inference") {
        e.identity.permissions |= static_cast<uint8_t>(Permission::kInference);
      } else if (p == "feedback") {
        e.identity.permissions |= static_cast<uint8_t>(Permission::kFeedback);
      } else if (p == "control") {
        e.identity.permissions |= static_cast<uint8_t>(Permission::kControl);
      } else {
        return bad("permission '" + p.substr(0, 32) + "' of '" + name + "': expected inference, feedback or control");
      }
    }
    auth->entries_.push_back(std::move(e));
  }
  if (auth->entries_.empty()) return InvalidArgument(source + ": no tokens (every caller would be refused)");
  return std::shared_ptr<const TokenAuthenticator>(std::move(auth));
}

StatusOr<std::shared_ptr<const TokenAuthenticator>> TokenAuthenticator::Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound(path + ": cannot read the token file");
  std::stringstream ss;
  ss << in.rdbuf();
  return Parse(ss.str(), path);
}

StatusOr<Identity> TokenAuthenticator::Authorize(std::string_view authorization, Permission needed,
                                                 std::string_view rpc) const {
  if (authorization.empty()) {
    return Unauthenticated("missing bearer token (send the header or metadata 'authorization: Bearer <token>')");
  }
  constexpr std::string_view kScheme = "Bearer ";
  if (authorization.size() <= kScheme.size() || authorization.substr(0, kScheme.size()) != kScheme) {
    return Unauthenticated("malformed authorization header (expected 'Bearer <token>')");
  }
  const std::array<uint8_t, 32> presented = Sha256(authorization.substr(kScheme.size()));
  // Every entry is compared; the match is selected without a data-dependent branch.
  size_t match = entries_.size();
  for (size_t i = 0; i < entries_.size(); ++i) {
    const size_t equal = CRYPTO_memcmp(presented.data(), entries_[i].hash.data(), presented.size()) == 0;
    match = equal * i + (1 - equal) * match;
  }
  if (match == entries_.size()) return Unauthenticated("unknown bearer token");
  const Identity& id = entries_[match].identity;
  if (!id.Has(needed)) {
    return PermissionDenied("identity '" + id.name + "' may not call " + std::string(rpc) + " (needs permission " +
                            PermissionName(needed) + ")");
  }
  return id;
}

}  // namespace inferd::auth
