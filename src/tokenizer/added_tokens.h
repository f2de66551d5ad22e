// Added tokens of tokenizer.json: split the input on them before normalization / pre-tokenization, with
// tokenizers' semantics (leftmost-longest match; non-normalized tokens are matched on the raw text first,
// normalized ones on the normalized remaining pieces; special / lstrip / rstrip / single_word).
// Immutable after load.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "inferd/batch.h"

namespace inferd::tokenizer {

struct AddedToken {
  std::string content;
  TokenId id = 0;
  bool special = false;
  bool normalized = true;
  bool lstrip = false;
  bool rstrip = false;
  bool single_word = false;
};

// A piece of the input: either an added token (`token` >= 0, index into the token list) or plain text.
struct AddedSplit {
  size_t start;
  size_t end;
  int32_t token;
};

// Leftmost-longest multi-pattern matcher over bytes (a trie; patterns are whole UTF-8 strings).
class TokenTrie {
 public:
  void Add(std::string_view pattern, int32_t value);
  // Finds the leftmost match starting at or after `pos`, the longest one there. Returns false if none.
  bool FindNext(std::string_view text, size_t pos, size_t* ms, size_t* me, int32_t* value) const;
  bool empty() const { return nodes_.size() <= 1; }

 private:
  struct Node {
    int32_t value = -1;
    std::vector<std::pair<unsigned char, int32_t>> children;  // sorted by byte
  };
  int32_t Child(int32_t node, unsigned char b) const;
  std::vector<Node> nodes_ = std::vector<Node>(1);
  bool first_byte_[256] = {};
};

class AddedVocabulary {
 public:
  // `tokens` in file order; `normalized_contents[i]` is tokens[i].content after the normalizer.
  void Build(std::vector<AddedToken> tokens, const std::vector<std::string>& normalized_contents);

  // Splits `text` on the non-normalized (`normalized_pass` false) or normalized tokens, appending the
  // pieces in order. Special tokens are not matched when `skip_special`.
  void Split(std::string_view text, bool normalized_pass, bool skip_special, std::vector<AddedSplit>* out) const;

  const std::vector<AddedToken>& tokens() const { return tokens_; }
  bool has_normalized() const { return !normalized_trie_.empty(); }
  bool has_raw() const { return !raw_trie_.empty(); }

 private:
  std::vector<AddedToken> tokens_;
  TokenTrie raw_trie_;
  TokenTrie normalized_trie_;
};

}  // namespace inferd::tokenizer
