// SHA-1 and base64 from nettle: the handshake needs them once per connection,
// so there is nothing to gain from a hand-rolled version, and nettle's are
// constant-size, allocation-free calls.
#include "protocol/sha1_base64.hpp"

#include <nettle/base64.h>
#include <nettle/sha1.h>

#include <cstdint>

#include "protocol/handshake_server.hpp"

namespace ringlink {
namespace detail {
namespace {

constexpr bool is_base64_alphabet(char c) noexcept {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

}  // namespace

bool is_valid_client_key(std::string_view key) noexcept {
  // 16 bytes are 128 bits: 21 full sextets plus 2 bits, so 22 characters and
  // two '=' of padding. Checking the shape first keeps nettle's lenient
  // decoder (it skips whitespace) from accepting anything else.
  if (key.size() != 24 || key[22] != '=' || key[23] != '=') return false;
  for (std::size_t i = 0; i < 22; ++i) {
    if (!is_base64_alphabet(key[i])) return false;
  }
  base64_decode_ctx ctx;
  base64_decode_init(&ctx);
  std::array<std::uint8_t, BASE64_DECODE_LENGTH(24)> decoded{};
  std::size_t decoded_length = decoded.size();
  if (base64_decode_update(&ctx, &decoded_length, decoded.data(), key.size(), key.data()) == 0) {
    return false;
  }
  return base64_decode_final(&ctx) != 0 && decoded_length == 16;
}

std::array<char, 24> base64_encode_nonce(std::span<const std::byte, 16> nonce) noexcept {
  static_assert(BASE64_ENCODE_RAW_LENGTH(16) == 24);
  std::array<char, 24> out{};
  base64_encode_raw(out.data(), nonce.size(), reinterpret_cast<const std::uint8_t*>(nonce.data()));
  return out;
}

}  // namespace detail

std::array<char, 28> compute_accept_key(std::string_view key) noexcept {
  sha1_ctx ctx;
  sha1_init(&ctx);
  sha1_update(&ctx, key.size(), reinterpret_cast<const std::uint8_t*>(key.data()));
  sha1_update(&ctx, detail::websocket_guid.size(),
              reinterpret_cast<const std::uint8_t*>(detail::websocket_guid.data()));
  std::array<std::uint8_t, SHA1_DIGEST_SIZE> digest{};
  sha1_digest(&ctx, digest.size(), digest.data());
  static_assert(BASE64_ENCODE_RAW_LENGTH(SHA1_DIGEST_SIZE) == 28);
  std::array<char, 28> out{};
  base64_encode_raw(out.data(), digest.size(), digest.data());
  return out;
}

}  // namespace ringlink
