// inferctl: client of a running inferd and offline tool for checkpoints and tokenizers.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <vector>

#include "ctl/command.h"

namespace inferd::ctl {
namespace {
std::vector<CommandAdder>& Registry() {
  static std::vector<CommandAdder> adders;
  return adders;
}
}  // namespace

bool RegisterCommand(CommandAdder adder) {
  Registry().push_back(adder);
  return true;
}

void AddAllCommands(CLI::App& app) {
  for (CommandAdder adder : Registry()) adder(app);
}

}  // namespace inferd::ctl

int main(int argc, char** argv) {
  CLI::App app{"inferctl: client and offline tool for inferd"};
  app.set_version_flag("--version", std::string("inferctl ") + INFERD_VERSION);
  app.require_subcommand(1);
  inferd::ctl::AddAllCommands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "inferctl: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
