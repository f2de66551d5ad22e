// Input: a mode byte, then text or token ids. Properties:
//  - Encode accepts valid UTF-8 and rejects invalid UTF-8 with INVALID_ARGUMENT, unless
//    replace_invalid_utf8 is set; ids are in [0, vocab_size).
//  - Decode(Encode(text, no special tokens)) == text for valid UTF-8 (the tokenizer is byte-level, lossless).
//  - Decode of arbitrary ids returns valid UTF-8, and a DecodeStream fed the same ids emits exactly
//    Decode(ids, skip_special_tokens=true) (tokenizer.h's invariant without stop strings).
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_check.h"
#include "fuzz_tokenizer.h"

namespace {

// RFC 3629 well-formedness, written apart from tokenizer/utf8 so the property has its own oracle.
bool IsValidUtf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<unsigned char>(s[i]);
    size_t len = 0;
    uint32_t cp = 0;
    if (b < 0x80) {
      ++i;
      continue;
    } else if ((b & 0xE0) == 0xC0) {
      len = 2, cp = b & 0x1F;
    } else if ((b & 0xF0) == 0xE0) {
      len = 3, cp = b & 0x0F;
    } else if ((b & 0xF8) == 0xF0) {
      len = 4, cp = b & 0x07;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    for (size_t k = 1; k < len; ++k) {
      const auto c = static_cast<unsigned char>(s[i + k]);
      if ((c & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (c & 0x3F);
    }
    const uint32_t min_cp[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)FuzzTokenizer();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const inferd::Tokenizer& tok = *FuzzTokenizer();
  FuzzedDataProvider in(data, size);
  const uint8_t mode = in.ConsumeIntegral<uint8_t>();
  if ((mode & 1) == 0) {
    const std::string text = in.ConsumeRemainingBytesAsString();
    inferd::EncodeOptions opts;
    opts.add_special_tokens = (mode & 2) != 0;
    opts.split_special_tokens = (mode & 4) != 0;
    opts.replace_invalid_utf8 = (mode & 8) != 0;
    const bool valid = IsValidUtf8(text);
    auto ids = tok.Encode(text, opts);
    if (!valid && !opts.replace_invalid_utf8) {
      FUZZ_CHECK(!ids.ok() && ids.status().code() == inferd::StatusCode::kInvalidArgument, "invalid UTF-8 accepted");
      return 0;
    }
    FUZZ_CHECK(ids.ok(), "%s", ids.status().message().c_str());
    for (inferd::TokenId id : *ids) FUZZ_CHECK(id >= 0 && id < tok.vocab_size(), "id %d", id);
    if (valid && !opts.add_special_tokens) {
      const std::string back = tok.Decode(*ids, /*skip_special_tokens=*/false);
      FUZZ_CHECK(back == text, "round trip of %zu bytes gave %zu bytes", text.size(), back.size());
    }
    return 0;
  }
  std::vector<inferd::TokenId> ids;
  while (in.remaining_bytes() > 0 && ids.size() < 256) {
    ids.push_back(in.ConsumeIntegralInRange<inferd::TokenId>(0, tok.vocab_size() - 1));
  }
  const bool skip = (mode & 2) != 0;
  const std::string text = tok.Decode(ids, skip);
  FUZZ_CHECK(IsValidUtf8(text), "Decode returned invalid UTF-8");
  inferd::DecodeStream stream = tok.NewStream();
  std::string streamed;
  for (inferd::TokenId id : ids) streamed += stream.Push(id);
  streamed += stream.Finish();
  FUZZ_CHECK(streamed == tok.Decode(ids, true), "stream emitted %zu bytes, Decode %zu", streamed.size(),
             tok.Decode(ids, true).size());
  return 0;
}
