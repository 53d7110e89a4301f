// The payload every ringlink-load message carries, and its checks.
//
//   MessageStamp s{.conn = 7, .seq = 42, .intended_ns = t0, .sent_ns = now};
//   write_message(buffer, s, /*text=*/false);      // fills the whole buffer
//   MessageStamp back;
//   if (read_message(received, false, back) != MessageCheck::ok) { /* count a mismatch */ }
//
// Layout (binary, little endian, 40 bytes), then filler up to the size:
//   magic u32 "RLL1" | conn u32 | seq u64 | intended_ns u64 | sent_ns u64 |
//   size u32 (whole payload) | check u32 (hash of the fields above)
// Text messages carry the same 40 bytes as 54 base64url digits, then filler
// from the same alphabet, so every text payload is ASCII (valid UTF-8).
// The filler is a pseudo-random stream seeded by (conn, seq), or with
// FillerKind json/zeros a fixed pattern: a receiver regenerates it, so any
// changed byte of an echo is found without keeping a copy of what was sent.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace ringlink::load {

inline constexpr std::size_t binary_header_size = 40;
inline constexpr std::size_t text_header_size = 54;

constexpr std::size_t min_message_size(bool text) noexcept { return text ? text_header_size : binary_header_size; }

struct MessageStamp {
  std::uint32_t conn = 0;         // index of the sending connection
  std::uint64_t seq = 0;          // per sending connection, from 0
  std::uint64_t intended_ns = 0;  // when the schedule wanted it sent (CLOCK_MONOTONIC)
  std::uint64_t sent_ns = 0;      // when it was handed to the link
};

enum class MessageCheck : std::uint8_t {
  ok,
  too_short,      // shorter than the header: not one of ours, or truncated
  bad_header,     // magic, header check or size field wrong: header corrupted
  bad_filler,     // header intact, some byte after it changed
  count_,
};
const char* to_string(MessageCheck c) noexcept;

// What follows the header (--payload): the pseudo-random stream (random:
// incompressible), a JSON-like record repeated (json: compresses as chat or
// API traffic does), or zeros ('0' in text). Each is regenerated and checked
// by the receiver.
enum class FillerKind : std::uint8_t { random, json, zeros };
const char* to_string(FillerKind k) noexcept;

// Fills all of `out` (out.size() >= min_message_size(text)).
void write_message(std::span<std::byte> out, const MessageStamp& stamp, bool text,
                   FillerKind kind = FillerKind::random) noexcept;
// Checks every byte of `in`; fills `out` when the header is intact.
MessageCheck read_message(std::span<const std::byte> in, bool text, MessageStamp& out,
                          FillerKind kind = FillerKind::random) noexcept;

}  // namespace ringlink::load
