// What few links need, kept out of Link so that idle links stay small:
// handshake parsers, the inbound rate limit, close text, the per-IP slot,
// the application timer, chunks received while paused. Reactor-internal.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/ip_limiter.hpp"
#include "engine/link_deflate.hpp"
#include "engine/token_bucket.hpp"
#include "protocol/handshake_client.hpp"
#include "protocol/handshake_server.hpp"

namespace ringlink {

// Only while a link is handshaking.
struct HandshakeState {
  UpgradeRequestParser request;
  std::optional<ClientKey> key;
  std::optional<UpgradeResponseParser> response;
  std::string offered_protocols;
  std::optional<DeflateClientOptions> deflate_offer;  // client: what we offered
};

// Per-link inbound rate limit, allocated only when configured.
struct RateState {
  TokenBucket messages;
  TokenBucket bytes;
};

struct LinkAux {
  std::unique_ptr<HandshakeState> handshake;
  std::optional<RateState> rate;
  std::string close_text;   // the close frame's reason, for on_close
  std::optional<IpKey> ip;  // counted in the per-IP limit: released with the link
  std::uint32_t app_timer_ms = 0;
  bool app_timer_armed = false;
  // Chunks a completion backend filled while the link was paused, in order;
  // at most what was in flight when reading stopped.
  struct Pending {
    std::byte* chunk;
    std::uint32_t offset, length;
  };
  std::vector<Pending> pending;
  std::unique_ptr<LinkDeflate> deflate;  // permessage-deflate in use: for the link's life
  bool empty() const noexcept {
    return !handshake && !rate && !app_timer_armed && close_text.empty() && !ip && pending.empty() && !deflate;
  }
};

}  // namespace ringlink
