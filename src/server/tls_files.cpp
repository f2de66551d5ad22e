#include "server/tls_files.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>

namespace inferd::server {
namespace {

StatusOr<std::string> ReadFile(const std::string& path, const std::string& key) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return InvalidArgument(key + ": cannot read " + path + ": " + std::strerror(errno));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
using Bio = std::unique_ptr<BIO, BioDeleter>;
Bio MemBio(const std::string& pem) {
  return Bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

// Number of PEM certificates in `pem`; 0 when none parses.
int CountCerts(const std::string& pem) {
  Bio bio = MemBio(pem);
  int n = 0;
  while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    X509_free(x);
    ++n;
  }
  ERR_clear_error();
  return n;
}

Status CheckKeyPair(const std::string& cert_pem, const std::string& key_pem, const PemPaths& c,
                    const std::string& prefix) {
  Bio cb = MemBio(cert_pem);
  X509* cert = PEM_read_bio_X509(cb.get(), nullptr, nullptr, nullptr);
  if (cert == nullptr) {
    ERR_clear_error();
    return InvalidArgument(prefix + ".cert_file: " + c.cert_file + " holds no PEM certificate");
  }
  Bio kb = MemBio(key_pem);
  EVP_PKEY* key = PEM_read_bio_PrivateKey(kb.get(), nullptr, nullptr, nullptr);
  Status st;
  if (key == nullptr) {
    st = InvalidArgument(prefix + ".key_file: " + c.key_file + " holds no PEM private key (or it is encrypted)");
  } else if (X509_check_private_key(cert, key) != 1) {
    st = InvalidArgument(prefix + ".key_file: " + c.key_file + " does not match the certificate in " + c.cert_file);
  }
  ERR_clear_error();
  EVP_PKEY_free(key);
  X509_free(cert);
  return st;
}

Status WritePrivate(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (out) out << data;
  out.close();
  if (!out || chmod(path.c_str(), 0600) != 0) return Internal("cannot write " + path + ": " + std::strerror(errno));
  return Status::Ok();
}

}  // namespace

StatusOr<PemFiles> ReadPemFiles(const PemPaths& paths, const std::string& prefix) {
  PemFiles out;
  if (paths.cert_file.empty() != paths.key_file.empty()) {
    return InvalidArgument(prefix + ".cert_file and " + prefix + ".key_file: name both or neither");
  }
  if (!paths.cert_file.empty()) {
    StatusOr<std::string> cert = ReadFile(paths.cert_file, prefix + ".cert_file");
    if (!cert.ok()) return cert.status();
    StatusOr<std::string> key = ReadFile(paths.key_file, prefix + ".key_file");
    if (!key.ok()) return key.status();
    if (Status st = CheckKeyPair(*cert, *key, paths, prefix); !st.ok()) return st;
    out.cert = *std::move(cert);
    out.key = *std::move(key);
  }
  if (!paths.ca_file.empty()) {
    const std::string key = prefix + "." + paths.ca_key;
    StatusOr<std::string> ca = ReadFile(paths.ca_file, key);
    if (!ca.ok()) return ca.status();
    if (CountCerts(*ca) == 0) return InvalidArgument(key + ": " + paths.ca_file + " holds no PEM certificate");
    out.ca = *std::move(ca);
  }
  return out;
}

TlsFiles::TlsFiles(const TlsConfig& config, std::string key_prefix)
    : config_(config), key_prefix_(std::move(key_prefix)) {
  const char* tmp = std::getenv("TMPDIR");
  std::string templ = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/inferd-tls-XXXXXX";
  if (mkdtemp(templ.data()) == nullptr) {
    throw std::runtime_error(key_prefix_ + ": cannot create a private directory: " + std::strerror(errno));
  }
  dir_ = templ;
  if (Status st = WriteGeneration(1); !st.ok()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
    throw std::runtime_error(st.message());
  }
  generation_ = 1;
}

TlsFiles::~TlsFiles() {
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

Status TlsFiles::WriteGeneration(int n) {
  StatusOr<PemFiles> pem = ReadPemFiles({config_.cert_file, config_.key_file, config_.client_ca_file}, key_prefix_);
  if (!pem.ok()) return pem.status();
  const std::string gen = "gen-" + std::to_string(n);
  const std::string gen_dir = dir_ + "/" + gen;
  if (mkdir(gen_dir.c_str(), 0700) != 0) return Internal("cannot create " + gen_dir + ": " + std::strerror(errno));
  if (Status st = WritePrivate(gen_dir + "/cert.pem", pem->cert); !st.ok()) return st;
  if (Status st = WritePrivate(gen_dir + "/key.pem", pem->key); !st.ok()) return st;
  if (!pem->ca.empty()) {
    if (Status st = WritePrivate(gen_dir + "/ca.pem", pem->ca); !st.ok()) return st;
  }
  const std::string link_tmp = dir_ + "/current.new";
  unlink(link_tmp.c_str());
  if (symlink(gen.c_str(), link_tmp.c_str()) != 0 || rename(link_tmp.c_str(), (dir_ + "/current").c_str()) != 0) {
    return Internal("cannot switch " + dir_ + "/current: " + std::strerror(errno));
  }
  return Status::Ok();
}

Status TlsFiles::Reload() {
  const int n = generation_ + 1;
  Status st = WriteGeneration(n);
  std::error_code ec;
  if (!st.ok()) {
    std::filesystem::remove_all(dir_ + "/gen-" + std::to_string(n), ec);
    return st;
  }
  // The previous generation stays one more reload: a watcher may still be reading it.
  std::filesystem::remove_all(dir_ + "/gen-" + std::to_string(generation_ - 1), ec);
  generation_ = n;
  return Status::Ok();
}

}  // namespace inferd::server
