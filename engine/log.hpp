// Logging for library code: compiled out below the `log_level` flag, and
// routed through a sink the application may replace (the default writes one
// line to stderr). The engine logs rarely: start-up choices, refusals of
// resources, never per message.
#pragma once

#include <cstdarg>

#include "ringlink_config.hpp"

namespace ringlink {

using LogLevel = config::LogLevel;
using LogSink = void (*)(LogLevel, const char* line) noexcept;

// Replaces the sink (any thread; takes effect for later lines). nullptr
// restores the default.
void set_log_sink(LogSink sink) noexcept;

void log_line(LogLevel level, const char* fmt, ...) noexcept __attribute__((format(printf, 2, 3)));

#define RINGLINK_LOG(level, ...)                                              \
  do {                                                                        \
    if constexpr (static_cast<int>(level) >= static_cast<int>(::ringlink::config::log_level)) \
      ::ringlink::log_line(level, __VA_ARGS__);                               \
  } while (0)

}  // namespace ringlink
