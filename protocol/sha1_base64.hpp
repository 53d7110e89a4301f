// SHA-1 and base64 for the opening handshake (RFC 6455 section 4), over
// nettle. Internal to protocol/: the public entry points are
// compute_accept_key (handshake_server.hpp) and make_client_key
// (handshake_client.hpp), which use these.
//
//   if (!detail::is_valid_client_key(value)) refuse 400;
//   std::array<char, 24> key = detail::base64_encode_nonce(nonce);
#pragma once

#include <array>
#include <cstddef>
#include <span>
#include <string_view>

namespace ringlink::detail {

// The GUID RFC 6455 appends to the client key before hashing.
inline constexpr std::string_view websocket_guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

// True when `key` is the canonical base64 of exactly 16 bytes: 22 alphabet
// characters then "==" (24 in all), no whitespace, and the 4 bits the last
// character carries beyond the 128 are zero (nettle refuses them otherwise,
// and every client encodes them so).
bool is_valid_client_key(std::string_view key) noexcept;

// base64 of a 16-byte nonce: always 24 characters ending in "==".
std::array<char, 24> base64_encode_nonce(std::span<const std::byte, 16> nonce) noexcept;

}  // namespace ringlink::detail
