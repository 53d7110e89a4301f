// permessage-deflate (RFC 7692) settings of a server, in ServerConfig::deflate.
// Off unless `enabled`, and only there when the meson feature `deflate`
// found zlib (config::deflate). What each setting costs is in the README.
//
//   ringlink::ServerConfig cfg;
//   cfg.deflate.enabled = true;                 // answer browsers' offers
//   cfg.deflate.memory_budget = 256u << 20;     // zlib contexts, whole process
//
// Memory: a link with context takeover keeps its own compressor
// (2^(wb+2) + 2^(ml+9) bytes) and decompressor (2^wb bytes) for its whole
// life. While the process's dedicated contexts stay within memory_budget,
// links get them; past it, new links are answered with no context takeover
// both ways and share one compressor and decompressor per reactor and
// window size, reset after each message: such links hold no zlib state
// between messages.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ringlink {

struct DeflateConfig {
  bool enabled = false;
  // Messages shorter than this go uncompressed (RSV1 clear): deflating a few
  // bytes costs CPU and saves nothing.
  std::uint32_t threshold = 64;
  // Largest window the server compresses with (9..15), and the largest the
  // client may compress with (8..15, honoured when the client offers
  // client_max_window_bits, as browsers do).
  std::uint8_t server_max_window_bits = 15;
  std::uint8_t client_max_window_bits = 15;
  // zlib's memLevel for our compressors (1..9): 8 is zlib's default.
  std::uint8_t mem_level = 8;
  // Ask for no context takeover from the start, for every link.
  bool server_no_context_takeover = false;
  bool client_no_context_takeover = false;
  // Bytes of dedicated zlib contexts (context takeover) the whole process
  // may hold, over every server in it; 0: none, every link shares.
  std::size_t memory_budget = std::size_t{64} << 20;
};

}  // namespace ringlink
