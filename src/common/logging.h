// Process-wide logging set-up (spdlog). Modules log through spdlog's default logger.
#pragma once

#include <string>

namespace inferd {

enum class LogFormat { kText, kJson };

// Parses "trace|debug|info|warn|error|critical|off"; returns false on an unknown name.
bool ParseLogLevel(const std::string& name, int* level_out);

// Replaces the default logger: stderr sink, human-readable text or one JSON object per line.
// `level` is a spdlog::level::level_enum value.
void SetupLogging(LogFormat format, int level);

}  // namespace inferd
