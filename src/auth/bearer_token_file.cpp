#include "auth/bearer_token_file.h"

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace inferd::auth {

StatusOr<std::string> ReadBearerTokenFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return InvalidArgument("cannot read " + path + ": " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  std::string token = text.str();
  const auto space = [](unsigned char ch) { return std::isspace(ch) != 0; };
  while (!token.empty() && space(token.back())) token.pop_back();
  size_t start = 0;
  while (start < token.size() && space(token[start])) ++start;
  token.erase(0, start);
  if (token.empty()) return InvalidArgument(path + " is empty");
  for (unsigned char ch : token) {
    if (ch < 0x21 || ch > 0x7e) return InvalidArgument(path + " must hold one token of printable ASCII without spaces");
  }
  return token;
}

}  // namespace inferd::auth
