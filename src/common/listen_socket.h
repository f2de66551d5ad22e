// A TCP listening socket for the daemon's own HTTP servers (metrics/, http/): resolve host:port (numeric
// port; "[v6]:port" accepted), bind the first usable address with SO_REUSEADDR, listen. The caller owns the
// descriptor (close it).
#pragma once

#include <string>

namespace inferd {

struct ListeningSocket {
  int fd = -1;   // SOCK_CLOEXEC, blocking
  int port = 0;  // the bound port (the chosen one for port 0)
};

// `key` names the config key in errors. Throws std::runtime_error "<key>: expected host:port, got ...",
// "<key>: cannot resolve <address> (...)" or "<key>: cannot listen on <address> (<errno text>)".
ListeningSocket Listen(const std::string& address, const std::string& key, int backlog);

}  // namespace inferd
