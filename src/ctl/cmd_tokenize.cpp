// inferctl tokenize / detokenize: offline use of a checkpoint's tokenizer.
#include <CLI/CLI.hpp>
#include <iostream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "ctl/command.h"
#include "inferd/tokenizer.h"

namespace inferd::ctl {
namespace {

struct TokenizeArgs {
  std::string model;
  std::string text;
  bool no_bos = false;
  bool split_special = false;
};

struct DetokenizeArgs {
  std::string model;
  std::string ids;
  bool skip_special = false;
};

std::string ReadStdin() {
  std::string s((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  return s;
}

void RunTokenize(const TokenizeArgs& args, bool has_text) {
  auto tok = Tokenizer::LoadOrThrow(args.model);
  const std::string text = has_text ? args.text : ReadStdin();
  EncodeOptions opts;
  opts.add_special_tokens = !args.no_bos;
  opts.split_special_tokens = args.split_special;
  auto ids = tok->Encode(text, opts);
  if (!ids.ok()) throw std::runtime_error(ids.status().message());
  std::cout << nlohmann::json(*ids).dump() << "\n";
}

void RunDetokenize(const DetokenizeArgs& args, bool has_ids) {
  auto tok = Tokenizer::LoadOrThrow(args.model);
  const std::string input = has_ids ? args.ids : ReadStdin();
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(input);
  } catch (const nlohmann::json::parse_error& e) {
    throw std::runtime_error(std::string("ids: not a JSON array of integers (") + e.what() + ")");
  }
  if (!j.is_array()) throw std::runtime_error("ids: expected a JSON array of integers");
  std::vector<TokenId> ids;
  for (size_t i = 0; i < j.size(); ++i) {
    if (!j[i].is_number_integer() || j[i].get<int64_t>() < 0 || j[i].get<int64_t>() >= tok->vocab_size())
      throw std::runtime_error("ids[" + std::to_string(i) + "]: expected an integer in [0, " +
                               std::to_string(tok->vocab_size()) + ")");
    ids.push_back(static_cast<TokenId>(j[i].get<int64_t>()));
  }
  std::cout << tok->Decode(ids, args.skip_special);
  std::cout.flush();
}

}  // namespace

void AddTokenizeCommands(CLI::App& app) {
  auto targs = std::make_shared<TokenizeArgs>();
  CLI::App* t = app.add_subcommand("tokenize", "Print the token ids of text (from --text or stdin) as a JSON array");
  t->add_option("--model", targs->model, "checkpoint or tokenizer directory")->required();
  CLI::Option* text_opt = t->add_option("--text", targs->text, "text to encode (default: read stdin)");
  t->add_flag("--no-bos", targs->no_bos, "do not add BOS/EOS even when tokenizer_config.json asks for them");
  t->add_flag("--split-special", targs->split_special, "encode special-token strings in the text as plain text");
  t->callback([targs, text_opt] { RunTokenize(*targs, text_opt->count() > 0); });

  auto dargs = std::make_shared<DetokenizeArgs>();
  CLI::App* d = app.add_subcommand("detokenize", "Print the text of a JSON array of ids (from --ids or stdin)");
  d->add_option("--model", dargs->model, "checkpoint or tokenizer directory")->required();
  CLI::Option* ids_opt = d->add_option("--ids", dargs->ids, "JSON array of ids (default: read stdin)");
  d->add_flag("--skip-special", dargs->skip_special, "leave special tokens out of the text");
  d->callback([dargs, ids_opt] { RunDetokenize(*dargs, ids_opt->count() > 0); });
}

INFERD_CTL_COMMAND(AddTokenizeCommands);

}  // namespace inferd::ctl
