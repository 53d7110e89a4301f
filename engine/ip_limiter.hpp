// IpLimiter: at most N open connections per peer IP address, across every
// reactor of a server (SO_REUSEPORT spreads one address over all of them).
// Touched on accept and on close only, never per message, so one mutex is
// enough. Any thread.
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <unordered_map>

namespace ringlink {

// IPv4 addresses are kept in their IPv4-mapped IPv6 form.
using IpKey = std::array<std::uint8_t, 16>;

// False for address families other than AF_INET/AF_INET6.
bool ip_key_of(const sockaddr_storage& addr, IpKey& out) noexcept;

class IpLimiter {
 public:
  explicit IpLimiter(std::uint32_t max_per_ip) noexcept : max_(max_per_ip) {}

  // Counts one more connection from `ip`; false (nothing counted) when it
  // already has max_per_ip.
  bool acquire(const IpKey& ip) noexcept;
  void release(const IpKey& ip) noexcept;
  std::uint32_t count(const IpKey& ip) const noexcept;

 private:
  struct Hash {
    std::size_t operator()(const IpKey& k) const noexcept;
  };
  mutable std::mutex mutex_;
  std::unordered_map<IpKey, std::uint32_t, Hash> counts_;
  std::uint32_t max_;
};

}  // namespace ringlink
