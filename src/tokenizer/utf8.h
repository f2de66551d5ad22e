// UTF-8 helpers shared by the tokenizer: validation, lossy decoding (Rust from_utf8_lossy semantics:
// one U+FFFD per maximal invalid subpart), code point iteration.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace inferd::tokenizer {

inline constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";

// Length of the valid UTF-8 sequence starting at s[i] (1..4), or 0 when it is invalid or truncated.
size_t ValidSequenceLength(std::string_view s, size_t i);

// Byte offset of the first invalid byte, or npos when `s` is valid UTF-8.
size_t FindInvalidUtf8(std::string_view s);

// Appends lossy-decoded `s` to `out`. When `hold_incomplete_tail` is set, a trailing sequence that is a
// valid but incomplete prefix of a character is not decoded; its length is returned (0 otherwise).
size_t AppendLossyUtf8(std::string_view s, std::string* out, bool hold_incomplete_tail);

// Decodes the code point at s[*i] (which must be valid UTF-8) and advances *i.
inline char32_t NextCodePoint(std::string_view s, size_t* i) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data()) + *i;
  unsigned char c = p[0];
  if (c < 0x80) {
    *i += 1;
    return c;
  }
  if (c < 0xE0) {
    *i += 2;
    return (char32_t(c & 0x1F) << 6) | (p[1] & 0x3F);
  }
  if (c < 0xF0) {
    *i += 3;
    return (char32_t(c & 0x0F) << 12) | (char32_t(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
  }
  *i += 4;
  return (char32_t(c & 0x07) << 18) | (char32_t(p[1] & 0x3F) << 12) | (char32_t(p[2] & 0x3F) << 6) |
         (p[3] & 0x3F);
}

// Decodes the code point that ends at s[*end - 1] (valid UTF-8) and moves *end to its first byte.
inline char32_t PrevCodePoint(std::string_view s, size_t* end) {
  size_t start = *end - 1;
  while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
  size_t i = start;
  char32_t cp = NextCodePoint(s, &i);
  *end = start;
  return cp;
}

inline size_t Utf8CharLength(unsigned char lead) {
  return lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
}

void AppendCodePoint(char32_t cp, std::string* out);

}  // namespace inferd::tokenizer
