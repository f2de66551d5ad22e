// The tokenizer the fuzz targets share: $INFERD_FUZZ_TOKENIZER_DIR, else the DeepSeek-V3 tokenizer of
// ../shared/testdata (compiled in as INFERD_FUZZ_DEFAULT_TOKENIZER_DIR). Loaded once per process.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "inferd/tokenizer.h"

inline const std::shared_ptr<const inferd::Tokenizer>& FuzzTokenizer() {
  static const std::shared_ptr<const inferd::Tokenizer> tok = [] {
    const char* env = std::getenv("INFERD_FUZZ_TOKENIZER_DIR");
    const std::string dir = env != nullptr && *env != '\0' ? env : INFERD_FUZZ_DEFAULT_TOKENIZER_DIR;
    auto loaded = inferd::Tokenizer::Load(dir);
    if (!loaded.ok()) {
      std::fprintf(stderr, "cannot load the tokenizer from %s: %s\n", dir.c_str(), loaded.status().message().c_str());
      std::abort();
    }
    return *loaded;
  }();
  return tok;
}
