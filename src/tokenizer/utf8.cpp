#include "tokenizer/utf8.h"

namespace inferd::tokenizer {
namespace {

// Result of examining the sequence at s[i]: `len` bytes form a character when `complete`; otherwise `len`
// bytes are a maximal invalid subpart (len >= 1), or a valid prefix cut by the end of input (`truncated`).
struct SeqCheck {
  size_t len;
  bool complete;
  bool truncated;
};

inline SeqCheck Check(std::string_view s, size_t i) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  unsigned char c = p[i];
  if (c < 0x80) return {1, true, false};
  size_t need;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    need = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    need = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return {1, false, false};
  }
  for (size_t k = 1; k < need; ++k) {
    if (i + k >= n) return {k, false, true};
    unsigned char b = p[i + k];
    unsigned char l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
    if (b < l || b > h) return {k, false, false};
  }
  return {need, true, false};
}

}  // namespace

size_t ValidSequenceLength(std::string_view s, size_t i) {
  SeqCheck r = Check(s, i);
  return r.complete ? r.len : 0;
}

size_t FindInvalidUtf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    // ASCII fast path, 8 bytes at a time.
    while (i + 8 <= n) {
      uint64_t w;
      __builtin_memcpy(&w, p + i, 8);
      if (w & 0x8080808080808080ull) break;
      i += 8;
    }
    if (i >= n) break;
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    SeqCheck r = Check(s, i);
    if (!r.complete) return i;
    i += r.len;
  }
  return std::string_view::npos;
}

size_t AppendLossyUtf8(std::string_view s, std::string* out, bool hold_incomplete_tail) {
  size_t i = 0;
  const size_t n = s.size();
  size_t run_start = 0;  // start of the current run of valid bytes not yet appended
  while (i < n) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    SeqCheck r = Check(s, i);
    if (r.complete) {
      i += r.len;
      continue;
    }
    out->append(s.data() + run_start, i - run_start);
    if (r.truncated && hold_incomplete_tail) return n - i;
    out->append(kReplacementChar);
    i += r.len;
    run_start = i;
  }
  out->append(s.data() + run_start, n - run_start);
  return 0;
}

void AppendCodePoint(char32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace inferd::tokenizer
