// TlsFiles: the PEM files of a TlsConfig, checked and copied into a private directory that only Reload()
// changes, so a certificate rotation takes effect on SIGHUP (not whenever the files happen to change) and
// a bad new file never replaces a working one. ReadPemFiles is the check itself, for TLS clients that keep
// the PEM text in memory (upstream/: an edge's credentials towards its central daemon).
//
// Layout: <dir>/current -> <dir>/gen-<n>/{cert.pem,key.pem,ca.pem}; `current` is a symlink swapped with
// rename(2), so a reader resolving current/ sees one generation whole. <dir> is mkdtemp'd (mode 0700) and
// removed by the destructor. No gRPC types: gRPC's FileWatcherCertificateProvider and the metrics server's
// OpenSSL context both read the paths below.
#pragma once

#include <string>

#include "inferd/config.h"
#include "inferd/status.h"

namespace inferd::server {

// The text of a certificate chain, its private key and trust roots.
struct PemFiles {
  std::string cert;  // "" when no certificate file is named
  std::string key;   // "" when no key file is named
  std::string ca;    // "" when no CA file is named
  bool operator==(const PemFiles&) const = default;
};

// Which files ReadPemFiles reads ("" = none) and the key names its messages use: `<prefix>.cert_file`,
// `<prefix>.key_file`, `<prefix>.<ca_key>`.
struct PemPaths {
  std::string cert_file;
  std::string key_file;
  std::string ca_file;
  std::string ca_key = "client_ca_file";
};

// Reads and checks the named files: each one readable, the certificate file holding a PEM certificate and
// the key file an unencrypted PEM private key matching it (named together), the CA file at least one PEM
// certificate. INVALID_ARGUMENT naming the key and the file at the first problem.
StatusOr<PemFiles> ReadPemFiles(const PemPaths& paths, const std::string& prefix);

class TlsFiles {
 public:
  // Checks and copies the files; throws std::runtime_error naming the config key and file on failure
  // (unreadable, not PEM, key not matching the certificate).
  TlsFiles(const TlsConfig& config, std::string key_prefix);
  ~TlsFiles();
  TlsFiles(const TlsFiles&) = delete;
  TlsFiles& operator=(const TlsFiles&) = delete;

  // Re-reads the configured files into a new generation and swaps `current` to it; on any problem keeps
  // the current generation and returns the problem (naming the key and file).
  Status Reload();

  std::string cert_path() const { return dir_ + "/current/cert.pem"; }
  std::string key_path() const { return dir_ + "/current/key.pem"; }
  // Empty when the config names no client CA.
  std::string ca_path() const { return config_.client_ca_file.empty() ? "" : dir_ + "/current/ca.pem"; }
  int generation() const { return generation_; }

 private:
  Status WriteGeneration(int n);

  const TlsConfig config_;
  const std::string key_prefix_;  // "server.tls" or "metrics.tls", for messages
  std::string dir_;
  int generation_ = 0;
};

}  // namespace inferd::server
