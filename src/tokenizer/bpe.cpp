#include "tokenizer/bpe.h"

#include <nlohmann/json.hpp>
#include <queue>
#include <stdexcept>

#include "tokenizer/utf8.h"

namespace inferd::tokenizer {
namespace {

// Words up to this many symbols merge by rescanning pair ranks; longer ones use a heap.
constexpr size_t kSmallWord = 48;

std::array<std::string, 256> BuildByteLevelChars() {
  std::array<char32_t, 256> map{};
  std::array<bool, 256> direct{};
  for (int b = '!'; b <= '~'; ++b) direct[b] = true;
  for (int b = 0xA1; b <= 0xAC; ++b) direct[b] = true;
  for (int b = 0xAE; b <= 0xFF; ++b) direct[b] = true;
  char32_t n = 0;
  for (int b = 0; b < 256; ++b) map[b] = direct[b] ? char32_t(b) : 256 + n++;
  std::array<std::string, 256> out;
  for (int b = 0; b < 256; ++b) AppendCodePoint(map[b], &out[b]);
  return out;
}

}  // namespace

const std::array<std::string, 256>& ByteLevelChars() {
  static const std::array<std::string, 256> chars = BuildByteLevelChars();
  return chars;
}

void MergeMap::Build(const std::vector<std::pair<uint64_t, uint64_t>>& entries) {
  size_t cap = 16;
  while (cap < entries.size() * 2) cap <<= 1;
  slots_.assign(cap, Slot{kEmpty, 0});
  mask_ = cap - 1;
  shift_ = 64 - __builtin_ctzll(cap);
  for (const auto& [key, value] : entries) {
    size_t h = (key * 0x9E3779B97F4A7C15ull) >> shift_;
    while (slots_[h].key != kEmpty && slots_[h].key != key) h = (h + 1) & mask_;
    slots_[h] = Slot{key, value};  // a later duplicate pair overwrites, as tokenizers' HashMap collect does
  }
}

BpeModel BpeModel::FromJson(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) throw std::runtime_error(where + ": expected an object");
  if (!j.contains("type") || !j["type"].is_string())
    throw std::runtime_error(where + ".type: missing (expected \"BPE\")");
  const std::string type = j["type"].get<std::string>();
  if (type != "BPE")
    throw std::runtime_error(where + ".type: model type '" + type + "' is not supported (supported: BPE)");
  auto opt_string_null = [&](const char* key) {
    if (j.contains(key) && !j[key].is_null() && !(j[key].is_string() && j[key].get<std::string>().empty()))
      throw std::runtime_error(where + "." + key + ": only null is supported");
  };
  opt_string_null("continuing_subword_prefix");
  opt_string_null("end_of_word_suffix");
  if (j.contains("dropout") && !j["dropout"].is_null()) {
    if (!j["dropout"].is_number()) throw std::runtime_error(where + ".dropout: expected null or a number");
    if (j["dropout"].get<double>() != 0.0)
      throw std::runtime_error(where + ".dropout: BPE dropout is not supported (must be null or 0)");
  }
  BpeModel m;
  auto get_bool = [&](const char* key) {
    if (!j.contains(key) || j[key].is_null()) return false;
    if (!j[key].is_boolean()) throw std::runtime_error(where + "." + key + ": expected a boolean");
    return j[key].get<bool>();
  };
  m.byte_fallback_ = get_bool("byte_fallback");
  m.fuse_unk_ = get_bool("fuse_unk");
  m.ignore_merges_ = get_bool("ignore_merges");

  if (!j.contains("vocab")) throw std::runtime_error(where + ".vocab: missing");
  const auto& vocab = j["vocab"];
  if (!vocab.is_object()) throw std::runtime_error(where + ".vocab: expected an object of token -> id");
  m.vocab_.reserve(vocab.size());
  TokenId max_id = -1;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 ||
        it.value().get<int64_t>() > INT32_MAX)
      throw std::runtime_error(where + ".vocab[\"" + it.key() + "\"]: expected a non-negative integer id");
    TokenId id = static_cast<TokenId>(it.value().get<int64_t>());
    m.vocab_[it.key()] = id;
    max_id = std::max(max_id, id);
  }
  m.id_to_token_.assign(static_cast<size_t>(max_id + 1), std::string());
  for (const auto& [tok, id] : m.vocab_) m.id_to_token_[id] = tok;

  if (!j.contains("merges")) throw std::runtime_error(where + ".merges: missing");
  const auto& merges = j["merges"];
  if (!merges.is_array()) throw std::runtime_error(where + ".merges: expected an array");
  std::vector<std::pair<uint64_t, uint64_t>> entries;
  entries.reserve(merges.size());
  auto lookup = [&](const std::string& tok, size_t i) {
    auto it = m.vocab_.find(tok);
    if (it == m.vocab_.end())
      throw std::runtime_error(where + ".merges[" + std::to_string(i) + "]: token '" + tok +
                               "' is not in the vocabulary");
    return it->second;
  };
  for (size_t i = 0; i < merges.size(); ++i) {
    const auto& e = merges[i];
    std::string a, b;
    if (e.is_string()) {
      const std::string s = e.get<std::string>();
      size_t sp = s.find(' ');
      if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
        throw std::runtime_error(where + ".merges[" + std::to_string(i) + "]: expected \"a b\", got '" + s + "'");
      a = s.substr(0, sp);
      b = s.substr(sp + 1);
    } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
      a = e[0].get<std::string>();
      b = e[1].get<std::string>();
    } else {
      throw std::runtime_error(where + ".merges[" + std::to_string(i) +
                               "]: expected a string \"a b\" or a pair [a, b]");
    }
    TokenId ia = lookup(a, i), ib = lookup(b, i), merged = lookup(a + b, i);
    uint64_t key = (uint64_t(uint32_t(ia)) << 32) | uint32_t(ib);
    entries.emplace_back(key, (uint64_t(i) << 32) | uint32_t(merged));
  }
  m.merges_.Build(entries);

  if (j.contains("unk_token") && !j["unk_token"].is_null()) {
    if (!j["unk_token"].is_string()) throw std::runtime_error(where + ".unk_token: expected a string or null");
    auto it = m.vocab_.find(j["unk_token"].get<std::string>());
    // tokenizers only uses unk when it is in the vocabulary.
    if (it != m.vocab_.end()) m.unk_id_ = it->second;
  }
  const auto& chars = ByteLevelChars();
  for (int b = 0; b < 256; ++b) {
    auto it = m.vocab_.find(chars[b]);
    m.byte_ids_[b] = it == m.vocab_.end() ? -1 : it->second;
    char buf[8];
    std::snprintf(buf, sizeof(buf), "<0x%02X>", b);
    auto fb = m.vocab_.find(std::string_view(buf));
    m.fallback_ids_[b] = fb == m.vocab_.end() ? -1 : fb->second;
  }
  return m;
}

// Initial symbols as tokenizers' BPE::merge_word builds them. A character missing from the vocabulary
// becomes its "<0xHH>" byte tokens when all exist (byte_fallback), else an unk that stays pending (fused
// with following unks when fuse_unk) until the next in-vocabulary character, so byte-fallback tokens
// that come between are emitted before it, as tokenizers does.
void BpeModel::InitialSymbols(std::string_view word, bool byte_level, std::vector<Symbol>* symbols) const {
  symbols->clear();
  int32_t pending_unk_len = 0;
  auto found = [&](TokenId id, int32_t len) {
    if (pending_unk_len > 0) {
      symbols->push_back({unk_id_, 0, 0, pending_unk_len});
      pending_unk_len = 0;
    }
    symbols->push_back({id, 0, 0, len});
  };
  auto missing = [&](std::string_view ch) {
    if (byte_fallback_) {
      bool all = true;
      for (unsigned char b : ch) all = all && fallback_ids_[b] >= 0;
      if (all) {
        for (unsigned char b : ch) symbols->push_back({fallback_ids_[b], 0, 0, 1});
        return;
      }
    }
    if (unk_id_ < 0) return;  // no unk: the character is dropped
    const int32_t len = static_cast<int32_t>(ch.size());
    if (pending_unk_len > 0 && !fuse_unk_) {
      symbols->push_back({unk_id_, 0, 0, pending_unk_len});
      pending_unk_len = 0;
    }
    pending_unk_len += len;
  };
  if (byte_level) {
    const auto& chars = ByteLevelChars();
    for (unsigned char b : word) {
      TokenId id = byte_ids_[b];
      if (id >= 0) {
        found(id, 1);
      } else {
        missing(chars[b]);
      }
    }
  } else {
    size_t i = 0;
    while (i < word.size()) {
      size_t len = Utf8CharLength(static_cast<unsigned char>(word[i]));
      std::string_view ch = word.substr(i, len);
      auto it = vocab_.find(ch);
      if (it != vocab_.end()) {
        found(it->second, static_cast<int32_t>(len));
      } else {
        missing(ch);
      }
      i += len;
    }
  }
  if (pending_unk_len > 0) symbols->push_back({unk_id_, 0, 0, pending_unk_len});
}

void BpeModel::MergeSmall(std::vector<Symbol>* symbols, std::vector<TokenId>* out) const {
  // ranks[i]: merge value of the pair (ids[i], ids[i + 1]).
  TokenId ids[kSmallWord];
  uint64_t ranks[kSmallWord];
  size_t n = symbols->size();
  for (size_t i = 0; i < n; ++i) ids[i] = (*symbols)[i].id;
  for (size_t i = 0; i + 1 < n; ++i) ranks[i] = merges_.Find(ids[i], ids[i + 1]);
  while (n > 1) {
    uint64_t best = MergeMap::kNone;
    size_t best_i = 0;
    for (size_t i = 0; i + 1 < n; ++i) {
      // Values order by rank first (rank in the high half); the strict < keeps the leftmost on ties.
      if (ranks[i] < best) {
        best = ranks[i];
        best_i = i;
      }
    }
    if (best == MergeMap::kNone) break;
    ids[best_i] = static_cast<TokenId>(best & 0xFFFFFFFFu);
    for (size_t k = best_i + 1; k + 1 < n; ++k) ids[k] = ids[k + 1];
    for (size_t k = best_i + 1; k + 2 < n; ++k) ranks[k] = ranks[k + 1];
    --n;
    if (best_i > 0) ranks[best_i - 1] = merges_.Find(ids[best_i - 1], ids[best_i]);
    if (best_i + 1 < n) ranks[best_i] = merges_.Find(ids[best_i], ids[best_i + 1]);
  }
  out->insert(out->end(), ids, ids + n);
}

void BpeModel::MergeHeap(std::vector<Symbol>* symbols, std::vector<TokenId>* out) const {
  std::vector<Symbol>& s = *symbols;
  const int32_t n = static_cast<int32_t>(s.size());
  for (int32_t i = 0; i < n; ++i) {
    s[i].prev = i - 1;
    s[i].next = i + 1 < n ? i + 1 : -1;
  }
  struct Cand {
    uint32_t rank;
    int32_t pos;
    TokenId new_id;
  };
  auto later = [](const Cand& a, const Cand& b) { return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos; };
  std::vector<Cand> storage;
  storage.reserve(static_cast<size_t>(n));
  std::priority_queue<Cand, std::vector<Cand>, decltype(later)> heap(later, std::move(storage));
  auto push = [&](int32_t pos) {
    if (pos < 0 || s[pos].next < 0) return;
    uint64_t v = merges_.Find(s[pos].id, s[s[pos].next].id);
    if (v != MergeMap::kNone) heap.push({uint32_t(v >> 32), pos, TokenId(v & 0xFFFFFFFFu)});
  };
  for (int32_t i = 0; i + 1 < n; ++i) push(i);
  while (!heap.empty()) {
    Cand top = heap.top();
    heap.pop();
    Symbol& left = s[top.pos];
    if (left.len == 0 || left.next < 0) continue;
    uint64_t v = merges_.Find(left.id, s[left.next].id);
    if (v == MergeMap::kNone || TokenId(v & 0xFFFFFFFFu) != top.new_id || uint32_t(v >> 32) != top.rank)
      continue;
    Symbol& right = s[left.next];
    left.id = top.new_id;
    left.len += right.len;
    left.next = right.next;
    right.len = 0;
    if (left.next >= 0) s[left.next].prev = top.pos;
    push(left.prev);
    push(top.pos);
  }
  for (int32_t i = 0; i >= 0 && i < n; i = s[i].next) out->push_back(s[i].id);
}

void BpeModel::EncodeWord(std::string_view word, bool byte_level, std::vector<TokenId>* out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    VocabMap::const_iterator it;
    if (byte_level) {
      std::string mapped;
      const auto& chars = ByteLevelChars();
      for (unsigned char b : word) mapped += chars[b];
      it = vocab_.find(mapped);
    } else {
      it = vocab_.find(word);
    }
    if (it != vocab_.end()) {
      out->push_back(it->second);
      return;
    }
  }
  if (byte_level && word.size() == 1 && byte_ids_[static_cast<unsigned char>(word[0])] >= 0) {
    out->push_back(byte_ids_[static_cast<unsigned char>(word[0])]);
    return;
  }
  thread_local std::vector<Symbol> symbols;
  InitialSymbols(word, byte_level, &symbols);
  if (symbols.size() <= 1) {
    for (const Symbol& sym : symbols) out->push_back(sym.id);
    return;
  }
  if (symbols.size() <= kSmallWord) {
    MergeSmall(&symbols, out);
  } else {
    MergeHeap(&symbols, out);
  }
}

}  // namespace inferd::tokenizer
