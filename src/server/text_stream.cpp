#include "server/text_stream.h"

#include <string>
#include <utility>
#include <vector>

namespace inferd::server {
namespace {

class TokenizerTextStream final : public TextStream {
 public:
  explicit TokenizerTextStream(DecodeStream stream) : stream_(std::move(stream)) {}

  Delta Push(TokenId token) override {
    Delta d;
    d.text = stream_.Push(token);
    d.stopped = stream_.stopped();
    return d;
  }
  std::string Flush() override { return stream_.Finish(); }

 private:
  DecodeStream stream_;
};

}  // namespace

TextStreamFactory TokenizerTextStreamFactory(std::shared_ptr<const Tokenizer> tokenizer) {
  return [tokenizer = std::move(tokenizer)](const std::vector<TokenId>& /*prompt*/,
                                            const std::vector<std::string>& stop) -> std::unique_ptr<TextStream> {
    StreamOptions options;
    options.stop_strings = stop;
    return std::make_unique<TokenizerTextStream>(tokenizer->NewStream(std::move(options)));
  };
}

}  // namespace inferd::server
