// Pre-tokenizers of tokenizer.json: Split (all behaviors, invert), Digits, ByteLevel, Sequence.
// The pipeline runs depth first: each piece a step produces goes through the remaining steps and then to
// the sink before the step's next piece, so pieces are string_views into the input (or into the per-call
// arena for text a step prepends). Immutable after load; Run is safe from many threads.
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "tokenizer/regex.h"

namespace inferd::tokenizer {

enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

// A piece of text with its range [start, end) inside the text being split and whether it matched.
struct Span {
  size_t start;
  size_t end;
  bool is_match;
};

// Applies `behavior` to the match list (as tokenizers' NormalizedString::split) and appends the surviving
// non-empty pieces of `text` to `out`.
void ApplySplitBehavior(std::string_view text, const std::vector<Span>& spans, SplitBehavior behavior,
                        std::vector<std::string_view>* out);

// Per-call scratch: per-step piece lists and storage for text that steps prepend.
struct PreTokenizeScratch {
  std::vector<std::vector<std::string_view>> levels;
  std::vector<Span> spans;
  std::deque<std::string> arena;
};

class PreTokenizerStep {
 public:
  virtual ~PreTokenizerStep() = default;
  // Appends the pieces of `piece` (non-empty, in order) to `out`.
  virtual void Split(std::string_view piece, std::vector<std::string_view>* out,
                     PreTokenizeScratch* scratch) const = 0;
};

class PreTokenizerPipeline {
 public:
  // Builds from the "pre_tokenizer" field (null allowed). Throws std::runtime_error naming the component.
  static PreTokenizerPipeline FromJson(const nlohmann::json& j, const std::string& where);

  // Calls sink(piece) for every final piece of `text`, in order.
  template <typename Sink>
  void Run(std::string_view text, PreTokenizeScratch* scratch, Sink&& sink) const {
    if (text.empty()) return;
    if (scratch->levels.size() < steps_.size()) scratch->levels.resize(steps_.size());
    RunFrom(0, text, scratch, sink);
  }

  // True when the last step is ByteLevel: pieces are raw UTF-8 that the model maps byte by byte.
  bool byte_level() const { return byte_level_; }

 private:
  template <typename Sink>
  void RunFrom(size_t depth, std::string_view piece, PreTokenizeScratch* scratch, Sink& sink) const {
    if (depth == steps_.size()) {
      sink(piece);
      return;
    }
    std::vector<std::string_view>& out = scratch->levels[depth];
    out.clear();
    steps_[depth]->Split(piece, &out, scratch);
    for (size_t k = 0; k < out.size(); ++k) RunFrom(depth + 1, out[k], scratch, sink);
  }

  std::vector<std::shared_ptr<const PreTokenizerStep>> steps_;
  bool byte_level_ = false;
};

}  // namespace inferd::tokenizer
