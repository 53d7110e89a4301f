#include "engine/log.hpp"

#include <atomic>
#include <cstdio>

namespace ringlink {
namespace {

void stderr_sink(LogLevel level, const char* line) noexcept {
  static constexpr const char* names[] = {"trace", "debug", "info", "warn", "error", "off"};
  std::fprintf(stderr, "ringlink %s: %s\n", names[static_cast<int>(level)], line);
}

std::atomic<LogSink> g_sink{&stderr_sink};

}  // namespace

void set_log_sink(LogSink sink) noexcept { g_sink.store(sink ? sink : &stderr_sink); }

void log_line(LogLevel level, const char* fmt, ...) noexcept {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  g_sink.load()(level, buf);
}

}  // namespace ringlink
