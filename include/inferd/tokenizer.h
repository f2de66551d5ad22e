// Tokenizer facade: Hugging Face tokenizer.json + tokenizer_config.json (DeepSeek family) in C++.
//
// Ownership and threading: Tokenizer::Load returns a shared_ptr<const Tokenizer>; every const method may be
// called from any number of threads at once (no locks on the encode path; per-thread scratch only).
// A DecodeStream belongs to one request and to one thread at a time; it keeps a shared_ptr to its tokenizer.
//
// Semantics follow the `tokenizers` library (the reference the tests compare against):
//   Encode(text) == tokenizers' encode(text, add_special_tokens=False).ids, with BOS/EOS added per
//   tokenizer_config.json (add_bos_token / add_eos_token) when EncodeOptions::add_special_tokens is set,
//   as transformers' encode does.
//   Decode(ids) == tokenizers' decode(ids, skip_special_tokens): invalid UTF-8 produced by byte tokens is
//   replaced by U+FFFD per maximal invalid subpart (Rust from_utf8_lossy).
// Input text must be valid UTF-8: Encode rejects invalid UTF-8 with INVALID_ARGUMENT naming the byte
// offset, unless EncodeOptions::replace_invalid_utf8 is set, which replaces each maximal invalid subpart
// with U+FFFD first (same ids as the reference gets for bytes.decode("utf-8", errors="replace")).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "inferd/batch.h"
#include "inferd/status.h"

namespace inferd {

namespace tokenizer {
class TokenizerImpl;
}  // namespace tokenizer

struct EncodeOptions {
  bool add_special_tokens = true;     // BOS/EOS as tokenizer_config.json asks
  bool split_special_tokens = false;  // true: special-token strings in text are encoded as plain text
  bool replace_invalid_utf8 = false;  // false: invalid UTF-8 is an INVALID_ARGUMENT error
};

struct ChatToolCall {
  std::string type = "function";
  std::string name;
  std::string arguments;  // JSON text, rendered verbatim
};

// One chat turn. role: "system", "user", "assistant" or "tool"; other roles render nothing (as the
// DeepSeek-V3 template does). An assistant turn without content renders its tool_calls.
struct ChatMessage {
  std::string role;
  std::optional<std::string> content;
  std::vector<ChatToolCall> tool_calls;
};

struct StreamOptions {
  bool skip_special_tokens = true;
  // Generation stops at the first stop string to complete in the decoded text (earliest end; on a tie
  // the earliest start). The stop string and everything after it are not emitted.
  std::vector<std::string> stop_strings;
};

class Tokenizer;

// Incremental detokenizer for one growing token sequence.
// Invariant: the concatenation of every Push() result and the final Finish() equals
// Decode(all pushed ids, skip_special_tokens) cut before the stop string that stopped it, if any.
// A delta never ends inside a UTF-8 character; text that may be the start of a stop string is held back.
class DecodeStream {
 public:
  DecodeStream(std::shared_ptr<const Tokenizer> tokenizer, StreamOptions options);
  DecodeStream(const DecodeStream&);  // an independent copy of the stream's state
  DecodeStream& operator=(const DecodeStream&);
  DecodeStream(DecodeStream&&) noexcept;
  DecodeStream& operator=(DecodeStream&&) noexcept;
  ~DecodeStream();

  // Appends one token; returns the newly final text (often empty). Returns "" once stopped().
  std::string Push(TokenId id);
  // Ends the sequence: returns everything still held back (an incomplete UTF-8 tail becomes U+FFFD).
  std::string Finish();
  bool stopped() const { return stopped_; }
  // Index into stop_strings of the stop string that matched; -1 if none.
  int stop_index() const { return stop_index_; }

 private:
  std::string Emit(bool final_flush);

  std::shared_ptr<const Tokenizer> tokenizer_;
  StreamOptions options_;
  std::string pending_bytes_;  // decoded bytes not yet turned into text (an incomplete UTF-8 tail)
  std::string pending_text_;   // text held back because it may start a stop string
  size_t max_stop_len_ = 0;
  bool stopped_ = false;
  bool finished_ = false;
  bool any_token_ = false;  // for decoders that join tokens with spaces
  int stop_index_ = -1;
};

class Tokenizer : public std::enable_shared_from_this<Tokenizer> {
 public:
  // Loads tokenizer.json and tokenizer_config.json from `dir` (a checkpoint or a tokenizer-only directory).
  // Errors name the file and the field; unsupported components are rejected by name.
  static StatusOr<std::shared_ptr<const Tokenizer>> Load(const std::string& dir);
  // Same, throwing std::runtime_error with the status message.
  static std::shared_ptr<const Tokenizer> LoadOrThrow(const std::string& dir);

  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  StatusOr<std::vector<TokenId>> Encode(std::string_view text, const EncodeOptions& options = {}) const;
  std::string Decode(std::span<const TokenId> ids, bool skip_special_tokens = false) const;

  // Renders the chat template of tokenizer_config.json (DeepSeek-V3 template semantics, equal to
  // transformers' apply_chat_template(..., tokenize=False)). UNIMPLEMENTED for other templates.
  StatusOr<std::string> ApplyChatTemplate(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const;
  bool has_chat_template() const;

  DecodeStream NewStream(StreamOptions options = {}) const;

  std::optional<TokenId> bos_id() const;
  std::optional<TokenId> eos_id() const;
  bool add_bos_token() const;
  bool add_eos_token() const;
  // One past the largest id (model vocabulary and added tokens).
  int32_t vocab_size() const;
  std::optional<TokenId> TokenToId(std::string_view token) const;
  std::optional<std::string> IdToToken(TokenId id) const;
  bool IsSpecial(TokenId id) const;
  // An upper bound on the input bytes one token of Encode's output covers (the longest token's bytes), so
  // a text of B bytes encodes to at least B / max_bytes_per_token() tokens; 0 when a normalizer makes the
  // bound unknown.
  size_t max_bytes_per_token() const { return max_bytes_per_token_; }

  // Private implementation; exposed for the stream and for tests of the internals.
  const tokenizer::TokenizerImpl& impl() const { return *impl_; }

 private:
  explicit Tokenizer(std::unique_ptr<tokenizer::TokenizerImpl> impl);
  std::unique_ptr<tokenizer::TokenizerImpl> impl_;
  size_t max_bytes_per_token_ = 0;
};

}  // namespace inferd
