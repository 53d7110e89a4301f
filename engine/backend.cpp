#include "engine/backend.hpp"

#include <atomic>

#include "engine/log.hpp"

namespace ringlink {

int AutoBackend::open(ChunkPool& pool, std::string* why) noexcept {
  std::string reason;
  if (uring_.open(pool, &reason) == 0) {
    uring_on_ = true;
    return 0;
  }
  // Once per process, not once per reactor.
  static std::atomic<bool> logged{false};
  if (!logged.exchange(true)) RINGLINK_LOG(LogLevel::warn, "io_uring unavailable (%s); using epoll", reason.c_str());
  if (why != nullptr) why->swap(reason);  // a swap: no copy that could fail
  return epoll_.open(pool);
}

}  // namespace ringlink
