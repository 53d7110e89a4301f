#include "engine/link_deflate.hpp"

namespace ringlink {

namespace {
std::atomic<std::size_t> budget_in_use{0};
}

bool DeflateBudget::try_take(std::size_t bytes, std::size_t limit) noexcept {
  std::size_t now = budget_in_use.load(std::memory_order_relaxed);
  do {
    if (bytes > limit || now > limit - bytes) return false;
  } while (!budget_in_use.compare_exchange_weak(now, now + bytes, std::memory_order_relaxed));
  return true;
}

void DeflateBudget::give_back(std::size_t bytes) noexcept {
  budget_in_use.fetch_sub(bytes, std::memory_order_relaxed);
}

std::size_t DeflateBudget::in_use() noexcept { return budget_in_use.load(std::memory_order_relaxed); }

LinkDeflate::LinkDeflate(const DeflateParams& agreed, bool client, std::uint8_t level, std::size_t charge) noexcept
    : params(agreed),
      tx_bits(client ? agreed.client_max_window_bits : agreed.server_max_window_bits),
      rx_bits(client ? agreed.server_max_window_bits : agreed.client_max_window_bits),
      tx_takeover(!(client ? agreed.client_no_context_takeover : agreed.server_no_context_takeover)),
      rx_takeover(!(client ? agreed.server_no_context_takeover : agreed.client_no_context_takeover)),
      mem_level(level),
      charged(charge) {}

LinkDeflate::~LinkDeflate() {
  if (charged != 0) DeflateBudget::give_back(charged);
}

std::size_t LinkDeflate::dedicated_bytes(const DeflateParams& p, bool client, std::uint8_t mem_level) noexcept {
  const std::uint8_t tx = client ? p.client_max_window_bits : p.server_max_window_bits;
  const std::uint8_t rx = client ? p.server_max_window_bits : p.client_max_window_bits;
  const bool tx_keep = !(client ? p.client_no_context_takeover : p.server_no_context_takeover);
  const bool rx_keep = !(client ? p.server_no_context_takeover : p.client_no_context_takeover);
  std::size_t n = 0;
  if (tx_keep && tx >= 9) n += Deflater::state_bytes(tx, mem_level);
  if (rx_keep) n += Inflater::state_bytes(rx);
  return n;
}

}  // namespace ringlink
