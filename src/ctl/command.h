// inferctl subcommand registry: each cmd_*.cpp registers its subcommands at static-init time.
#pragma once

#include <CLI/CLI.hpp>

namespace inferd::ctl {

using CommandAdder = void (*)(CLI::App& app);

// Adds `adder` to the list main() runs over; returns true so it can initialise a static.
bool RegisterCommand(CommandAdder adder);
void AddAllCommands(CLI::App& app);

}  // namespace inferd::ctl

#define INFERD_CTL_COMMAND(adder) \
  [[maybe_unused]] static const bool inferd_ctl_registered_##adder = ::inferd::ctl::RegisterCommand(adder)
