#include "engine/ip_limiter.hpp"

#include <netinet/in.h>

#include <cstring>
#include <string_view>

namespace ringlink {

bool ip_key_of(const sockaddr_storage& addr, IpKey& out) noexcept {
  out = {};
  if (addr.ss_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&addr);
    out[10] = out[11] = 0xFF;
    std::memcpy(out.data() + 12, &v4->sin_addr, 4);
    return true;
  }
  if (addr.ss_family == AF_INET6) {
    std::memcpy(out.data(), &reinterpret_cast<const sockaddr_in6*>(&addr)->sin6_addr, 16);
    return true;
  }
  return false;
}

std::size_t IpLimiter::Hash::operator()(const IpKey& k) const noexcept {
  return std::hash<std::string_view>{}(std::string_view(reinterpret_cast<const char*>(k.data()), k.size()));
}

bool IpLimiter::acquire(const IpKey& ip) noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  try {
    std::uint32_t& n = counts_[ip];
    if (n >= max_) return false;
    ++n;
    return true;
  } catch (...) {  // out of memory: refuse rather than count wrongly
    return false;
  }
}

void IpLimiter::release(const IpKey& ip) noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = counts_.find(ip);
  if (it == counts_.end()) return;
  if (--it->second == 0) counts_.erase(it);
}

std::uint32_t IpLimiter::count(const IpKey& ip) const noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = counts_.find(ip);
  return it == counts_.end() ? 0 : it->second;
}

}  // namespace ringlink
