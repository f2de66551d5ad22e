// TextStream adapter over the tokenizer's DecodeStream: what the engine uses to detokenize and match
// stop strings. The daemon passes TokenizerTextStreamFactory(tokenizer) to Engine::Create.
#pragma once

#include <memory>

#include "inferd/engine.h"
#include "inferd/tokenizer.h"

namespace inferd::server {

// Each stream decodes with skip_special_tokens and stops at the first stop string to complete
// (DecodeStream semantics). The factory holds `tokenizer` (non-null) for as long as it lives.
TextStreamFactory TokenizerTextStreamFactory(std::shared_ptr<const Tokenizer> tokenizer);

}  // namespace inferd::server
