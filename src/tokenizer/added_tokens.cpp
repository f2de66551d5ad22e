#include "tokenizer/added_tokens.h"

#include <algorithm>
#include <cstring>

#include "tokenizer/unicode_props.h"
#include "tokenizer/utf8.h"

namespace inferd::tokenizer {

void TokenTrie::Add(std::string_view pattern, int32_t value) {
  if (pattern.empty()) return;
  int32_t node = 0;
  for (unsigned char b : pattern) {
    int32_t c = Child(node, b);
    if (c < 0) {
      c = static_cast<int32_t>(nodes_.size());
      nodes_.emplace_back();
      auto& ch = nodes_[node].children;
      ch.insert(std::lower_bound(ch.begin(), ch.end(), std::make_pair(b, int32_t(-1))), {b, c});
    }
    node = c;
  }
  // The first token with a given content wins, as the first pattern does in tokenizers' Aho-Corasick.
  if (nodes_[node].value < 0) nodes_[node].value = value;
  first_byte_[static_cast<unsigned char>(pattern[0])] = true;
}

int32_t TokenTrie::Child(int32_t node, unsigned char b) const {
  const auto& ch = nodes_[node].children;
  auto it = std::lower_bound(ch.begin(), ch.end(), std::make_pair(b, int32_t(-1)));
  return it != ch.end() && it->first == b ? it->second : -1;
}

bool TokenTrie::FindNext(std::string_view text, size_t pos, size_t* ms, size_t* me, int32_t* value) const {
  if (empty()) return false;
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  for (size_t i = pos; i < n; ++i) {
    if (!first_byte_[p[i]]) continue;
    int32_t node = 0, best = -1;
    size_t best_end = 0;
    for (size_t k = i; k < n; ++k) {
      node = Child(node, p[k]);
      if (node < 0) break;
      if (nodes_[node].value >= 0) {
        best = nodes_[node].value;
        best_end = k + 1;
      }
    }
    if (best >= 0) {
      *ms = i;
      *me = best_end;
      *value = best;
      return true;
    }
  }
  return false;
}

void AddedVocabulary::Build(std::vector<AddedToken> tokens, const std::vector<std::string>& normalized_contents) {
  tokens_ = std::move(tokens);
  // tokenizers lists special tokens before the others when it builds its matchers.
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t i = 0; i < tokens_.size(); ++i) {
      const AddedToken& t = tokens_[i];
      if (t.special != (pass == 0)) continue;
      if (t.normalized) {
        normalized_trie_.Add(normalized_contents[i], static_cast<int32_t>(i));
      } else {
        raw_trie_.Add(t.content, static_cast<int32_t>(i));
      }
    }
  }
}

namespace {

bool EndsWithWord(std::string_view s) {
  if (s.empty()) return false;
  size_t end = s.size();
  return IsWordChar(PrevCodePoint(s, &end));
}

bool StartsWithWord(std::string_view s) {
  if (s.empty()) return false;
  size_t i = 0;
  return IsWordChar(NextCodePoint(s, &i));
}

// Start of the whitespace run that ends `s`.
size_t TrailingSpaceStart(std::string_view s) {
  size_t end = s.size();
  while (end > 0) {
    size_t prev = end;
    if (!IsWhiteSpace(PrevCodePoint(s, &prev))) break;
    end = prev;
  }
  return end;
}

// Length of the whitespace run that starts `s`.
size_t LeadingSpaceLength(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    size_t next = i;
    if (!IsWhiteSpace(NextCodePoint(s, &next))) break;
    i = next;
  }
  return i;
}

}  // namespace

void AddedVocabulary::Split(std::string_view text, bool normalized_pass, bool skip_special,
                            std::vector<AddedSplit>* out) const {
  const TokenTrie& trie = normalized_pass ? normalized_trie_ : raw_trie_;
  size_t start_offset = 0;
  size_t pos = 0, ms, me;
  int32_t idx;
  while (pos < text.size() && trie.FindNext(text, pos, &ms, &me, &idx)) {
    pos = me;  // a discarded match still consumes its bytes, as the Aho-Corasick iterator does
    const AddedToken& t = tokens_[idx];
    if (skip_special && t.special) continue;
    size_t start = ms, stop = me;
    if (t.single_word) {
      bool start_space = start == 0 || !EndsWithWord(text.substr(0, start));
      bool stop_space = stop == text.size() || !StartsWithWord(text.substr(stop));
      if (!start_space || !stop_space) continue;
    }
    if (t.lstrip) start = std::max(TrailingSpaceStart(text.substr(0, start)), start_offset);
    if (t.rstrip) stop += LeadingSpaceLength(text.substr(stop));
    if (start_offset < start) out->push_back({start_offset, start, -1});
    out->push_back({start, stop, idx});
    start_offset = stop;
  }
  if (start_offset < text.size()) out->push_back({start_offset, text.size(), -1});
}

}  // namespace inferd::tokenizer
