#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/regex.h"

#include <pcre2.h>

#include <stdexcept>

#include "tokenizer/unicode_delta_tables.h"

namespace inferd::tokenizer {
namespace {

// Per-thread match scratch: one ovector pair is enough (only the whole match is used) and a JIT stack
// large enough for long runs in patterns such as \s+(?!\S).
struct ThreadScratch {
  pcre2_match_data* match_data = nullptr;
  pcre2_match_context* match_context = nullptr;
  pcre2_jit_stack* jit_stack = nullptr;
  ThreadScratch() {
    match_data = pcre2_match_data_create(1, nullptr);
    match_context = pcre2_match_context_create(nullptr);
    jit_stack = pcre2_jit_stack_create(64 * 1024, 16 * 1024 * 1024, nullptr);
    pcre2_jit_stack_assign(match_context, nullptr, jit_stack);
  }
  ~ThreadScratch() {
    pcre2_jit_stack_free(jit_stack);
    pcre2_match_context_free(match_context);
    pcre2_match_data_free(match_data);
  }
};

ThreadScratch& Scratch() {
  thread_local ThreadScratch scratch;
  return scratch;
}

// Oniguruma's \s in UTF-8 mode: \t \n \v \f \r, U+0085, Space_Separator, U+2028, U+2029 (PCRE2 adds U+180E).
constexpr const char* kOnigSpace =
    "\\t\\n\\x0B\\f\\r\\x20\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}";

const char* UnicodeDeltaFor(const std::string& property) {
  for (const UnicodeDelta& d : kUnicodeDeltas)
    if (property == d.property) return d.class_body;
  return nullptr;
}

}  // namespace

std::string OnigToPcre2(const std::string& p) {
  std::string out;
  out.reserve(p.size() + 16);
  int class_depth = 0;
  auto unsupported = [&](const std::string& what) {
    return std::runtime_error("regex '" + p + "': " + what + " inside a character class is not supported");
  };
  for (size_t i = 0; i < p.size(); ++i) {
    char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      char n = p[i + 1];
      if (n == 'h' || n == 'H') {  // Oniguruma: hex digit
        if (class_depth > 0) {
          if (n == 'H') throw unsupported("\\H");
          out += "0-9a-fA-F";
        } else {
          out += n == 'h' ? "[0-9a-fA-F]" : "[^0-9a-fA-F]";
        }
        ++i;
        continue;
      }
      if (n == 's' || n == 'S') {
        if (class_depth > 0) {
          if (n == 'S') throw unsupported("\\S");
          out += kOnigSpace;
        } else {
          out += n == 's' ? "[" : "[^";
          out += kOnigSpace;
          out += "]";
        }
        ++i;
        continue;
      }
      if ((n == 'p' || n == 'P') && i + 2 < p.size() && p[i + 2] == '{') {
        size_t close = p.find('}', i + 3);
        if (close == std::string::npos) throw std::runtime_error("regex '" + p + "': unterminated \\p{");
        std::string name = p.substr(i + 3, close - i - 3);
        bool negated = n == 'P';
        if (!name.empty() && name[0] == '^') {
          negated = !negated;
          name.erase(0, 1);
        }
        const char* delta = UnicodeDeltaFor(name);
        const std::string prop = std::string(negated ? "\\P{" : "\\p{") + name + "}";
        if (delta == nullptr) {
          out += prop;
        } else if (class_depth > 0) {
          if (negated) throw unsupported("\\P{" + name + "}");
          out += "\\p{" + name + "}" + delta;
        } else {
          out += std::string(negated ? "[^" : "[") + "\\p{" + name + "}" + delta + "]";
        }
        i = close;
        continue;
      }
      out += c;
      out += n;
      ++i;
      continue;
    }
    if (c == '[') {
      // A ']' right after '[' or '[^' is a literal in both syntaxes.
      ++class_depth;
      out += c;
      if (i + 1 < p.size() && p[i + 1] == '^') {
        out += '^';
        ++i;
      }
      if (i + 1 < p.size() && p[i + 1] == ']') {
        out += ']';
        ++i;
      }
      continue;
    }
    if (c == ']' && class_depth > 0) --class_depth;
    out += c;
  }
  return out;
}

Regex::Regex(const std::string& pattern, bool literal) : pattern_(pattern) {
  std::string translated = literal ? pattern : OnigToPcre2(pattern);
  uint32_t options = PCRE2_UTF | PCRE2_NO_UTF_CHECK;
  if (literal) {
    options |= PCRE2_LITERAL;
  } else {
    options |= PCRE2_UCP | PCRE2_MULTILINE;
  }
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(), options,
                        &error_code, &error_offset, nullptr);
  if (code_ == nullptr) {
    PCRE2_UCHAR buffer[256];
    pcre2_get_error_message(error_code, buffer, sizeof(buffer));
    throw std::runtime_error("regex '" + pattern + "': " + reinterpret_cast<const char*>(buffer) +
                             " at offset " + std::to_string(error_offset));
  }
  jit_ = pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE) == 0;
}

Regex::~Regex() { pcre2_code_free(code_); }

bool Regex::Find(std::string_view text, size_t start, size_t* match_start, size_t* match_end) const {
  ThreadScratch& s = Scratch();
  auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  int rc = jit_ ? pcre2_jit_match(code_, subject, text.size(), start, 0, s.match_data, s.match_context)
                : pcre2_match(code_, subject, text.size(), start, PCRE2_NO_UTF_CHECK, s.match_data,
                              s.match_context);
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  if (rc < 0) {
    PCRE2_UCHAR buffer[256];
    pcre2_get_error_message(rc, buffer, sizeof(buffer));
    throw std::runtime_error("regex '" + pattern_ + "': match failed: " +
                             reinterpret_cast<const char*>(buffer));
  }
  const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(s.match_data);
  *match_start = ov[0];
  *match_end = ov[1];
  return true;
}

}  // namespace inferd::tokenizer
