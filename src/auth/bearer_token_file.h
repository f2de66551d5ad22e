// The client side of bearer tokens: a file holding the one token a client sends as
// `authorization: Bearer <token>` (an edge daemon's upstreams[].token_file). The token never appears in
// messages.
#pragma once

#include <string>

#include "inferd/status.h"

namespace inferd::auth {

// The token in `path`, surrounding whitespace dropped. INVALID_ARGUMENT naming the path when it cannot be
// read, holds nothing, or holds anything but printable ASCII without spaces.
StatusOr<std::string> ReadBearerTokenFile(const std::string& path);

}  // namespace inferd::auth
