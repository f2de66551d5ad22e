// TlsFiles: the PEM files of a TlsConfig, checked and copied into a private directory that only Reload()
// changes, so a certificate rotation takes effect on SIGHUP (not whenever the files happen to change) and
// a bad new file never replaces a working one.
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
