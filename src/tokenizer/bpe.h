// BPE model of tokenizer.json (merges as "a b" strings or [a, b] pairs, byte_fallback, unk, fuse_unk,
// ignore_merges). Immutable after load; EncodeWord is safe from many threads.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "inferd/batch.h"

namespace inferd::tokenizer {

// Open-addressing map from a (left id, right id) pair to (rank, merged id). Built once, then read-only.
class MergeMap {
 public:
  void Build(const std::vector<std::pair<uint64_t, uint64_t>>& entries);
  // Returns (rank << 32 | merged id), or kNone.
  uint64_t Find(TokenId left, TokenId right) const {
    if (slots_.empty()) return kNone;
    uint64_t key = (uint64_t(uint32_t(left)) << 32) | uint32_t(right);
    size_t h = (key * 0x9E3779B97F4A7C15ull) >> shift_;
    while (true) {
      const Slot& s = slots_[h];
      if (s.key == key) return s.value;
      if (s.key == kEmpty) return kNone;
      h = (h + 1) & mask_;
    }
  }
  static constexpr uint64_t kNone = ~0ull;

 private:
  static constexpr uint64_t kEmpty = ~0ull;
  struct Slot {
    uint64_t key;
    uint64_t value;
  };
  std::vector<Slot> slots_;
  size_t mask_ = 0;
  int shift_ = 64;
};

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

using VocabMap = std::unordered_map<std::string, TokenId, StringHash, std::equal_to<>>;

class BpeModel {
 public:
  // Builds from the "model" field. Throws std::runtime_error naming the field.
  static BpeModel FromJson(const nlohmann::json& j, const std::string& where);

  // Appends the ids of one pre-tokenized piece. With `byte_level`, `word` is raw UTF-8 whose bytes map
  // to the ByteLevel alphabet; otherwise its characters are the initial symbols.
  void EncodeWord(std::string_view word, bool byte_level, std::vector<TokenId>* out) const;

  const VocabMap& vocab() const { return vocab_; }
  // Token strings by id; empty for ids the model does not define.
  const std::vector<std::string>& id_to_token() const { return id_to_token_; }

 private:
  struct Symbol {
    TokenId id;
    int32_t prev;
    int32_t next;
    int32_t len;  // bytes of the word covered; 0 once merged into its left neighbour
  };
  void InitialSymbols(std::string_view word, bool byte_level, std::vector<Symbol>* symbols) const;
  void MergeSmall(std::vector<Symbol>* symbols, std::vector<TokenId>* out) const;
  void MergeHeap(std::vector<Symbol>* symbols, std::vector<TokenId>* out) const;

  VocabMap vocab_;
  std::vector<std::string> id_to_token_;
  MergeMap merges_;
  std::array<TokenId, 256> byte_ids_{};  // id of each byte's ByteLevel character, -1 when missing
  std::array<TokenId, 256> fallback_ids_{};  // id of "<0xHH>", -1 when missing
  TokenId unk_id_ = -1;
  bool byte_fallback_ = false;
  bool fuse_unk_ = false;
  bool ignore_merges_ = false;
};

// The ByteLevel alphabet: the UTF-8 form of the character byte `b` maps to.
const std::array<std::string, 256>& ByteLevelChars();

}  // namespace inferd::tokenizer
