// A link's permessage-deflate state: what was agreed, and the dedicated
// zlib contexts of a link with context takeover. Links without context
// takeover use their reactor's shared contexts and hold none. The process
// budget for dedicated contexts (DeflateConfig::memory_budget) is charged
// when the link is set up and given back when this is destroyed.
// Reactor-internal.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "protocol/deflate_codec.hpp"
#include "protocol/deflate_negotiation.hpp"

namespace ringlink {

// Bytes of dedicated contexts held in this process (every server).
class DeflateBudget {
 public:
  // Takes `bytes` when the total stays within `limit`.
  static bool try_take(std::size_t bytes, std::size_t limit) noexcept;
  static void give_back(std::size_t bytes) noexcept;
  static std::size_t in_use() noexcept;
};

struct LinkDeflate {
  LinkDeflate(const DeflateParams& agreed, bool client, std::uint8_t mem_level, std::size_t charged) noexcept;
  ~LinkDeflate();
  LinkDeflate(const LinkDeflate&) = delete;
  LinkDeflate& operator=(const LinkDeflate&) = delete;

  // Bytes the dedicated contexts of a link with these parameters need.
  static std::size_t dedicated_bytes(const DeflateParams& p, bool client, std::uint8_t mem_level) noexcept;

  DeflateParams params;
  std::uint8_t tx_bits, rx_bits;   // our compressor's window, our decompressor's
  bool tx_takeover, rx_takeover;   // keep the context between messages
  std::uint8_t mem_level;
  std::size_t charged;             // budget taken for this link
  std::optional<Deflater> tx;      // dedicated, made on the first message
  std::optional<Inflater> rx;
};

}  // namespace ringlink
