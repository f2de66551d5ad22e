// PCRE2 (JIT) regex with the matching semantics the `tokenizers` library gets from Oniguruma:
// UTF + Unicode properties for \s \d \w, ^ and $ at line boundaries, \h = hex digit.
// Immutable after construction and shared by threads; match scratch is thread-local.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

struct pcre2_real_code_8;

namespace inferd::tokenizer {

class Regex {
 public:
  // Compiles an Oniguruma-syntax pattern (or a literal when `literal`). Throws std::runtime_error
  // naming the pattern on a syntax error.
  Regex(const std::string& pattern, bool literal);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Finds the first match in text starting at or after `start`. `text` must be valid UTF-8.
  // Returns false when there is none.
  bool Find(std::string_view text, size_t start, size_t* match_start, size_t* match_end) const;

  // Calls fn(match_start, match_end) for each non-overlapping match, left to right. After an empty match
  // the search resumes one character later (as Oniguruma's find_iter does).
  template <typename Fn>
  void ForEachMatch(std::string_view text, Fn&& fn) const {
    size_t pos = 0;
    size_t ms, me;
    while (pos <= text.size() && Find(text, pos, &ms, &me)) {
      fn(ms, me);
      if (me == ms) {
        if (me >= text.size()) break;
        pos = me + 1;
        while (pos < text.size() && (static_cast<unsigned char>(text[pos]) & 0xC0) == 0x80) ++pos;
      } else {
        pos = me;
      }
    }
  }

  const std::string& pattern() const { return pattern_; }

 private:
  std::string pattern_;
  pcre2_real_code_8* code_ = nullptr;
  bool jit_ = false;
};

// Rewrites Oniguruma-only syntax into PCRE2 syntax (\h, \H, \p{^X}). Exposed for tests.
std::string OnigToPcre2(const std::string& pattern);

}  // namespace inferd::tokenizer
