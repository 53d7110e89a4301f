// permessage-deflate's per-message codec (RFC 7692 section 7.2) over zlib's
// raw deflate, without I/O. One Deflater and one Inflater per direction and
// context: a link with context takeover keeps its own; links without it can
// share one per window size, reset after each message.
//
//   Inflater inf{agreed_window_bits};
//   ByteBuffer out;
//   switch (inf.inflate_message(compressed_payload, out, max_message_size)) {
//     case InflateStatus::ok:        deliver out.view(); (text: check UTF-8 now)
//     case InflateStatus::too_big:   fail 1009 (out never grew past the limit)
//     case InflateStatus::corrupt:   fail 1007 (bad data, or the tail missing)
//     case InflateStatus::no_memory: fail 1011
//   }
//   if (no_context_takeover) inf.reset();
//
//   Deflater def{window_bits, mem_level};
//   if (def.deflate_message(payload, out)) send out.view() with RSV1 set;
//
// Both make their zlib state on first use and free it in release(): a link
// at rest without context takeover holds none. With the meson feature
// `deflate` disabled every call fails (init never succeeds); callers check
// config::deflate first.
//
// zlib cannot make a raw deflate stream with an 8-bit window: a Deflater
// asked for 8 reports !usable(), and its direction's messages are then sent
// uncompressed (RSV1 clear), which RFC 7692 allows for any message. An
// Inflater takes 8..15.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

struct z_stream_s;

namespace ringlink {

// A growable byte buffer that never throws and never grows past what its
// caller allows.
class ByteBuffer {
 public:
  std::span<std::byte> view() const noexcept { return {data_.get(), size_}; }
  std::size_t size() const noexcept { return size_; }
  std::size_t capacity() const noexcept { return capacity_; }
  std::byte* data() const noexcept { return data_.get(); }
  void clear() noexcept { size_ = 0; }
  // Capacity at least n, keeping the first size() bytes. False when out of memory.
  bool reserve(std::size_t n) noexcept;
  void set_size(std::size_t n) noexcept { size_ = n; }
  // Frees the memory when it grew past `keep` bytes.
  void shrink(std::size_t keep) noexcept;

 private:
  std::unique_ptr<std::byte[]> data_;
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;
};

enum class InflateStatus : std::uint8_t { ok, too_big, corrupt, no_memory };

class Inflater {
 public:
  explicit Inflater(std::uint8_t window_bits) noexcept;  // 8..15
  ~Inflater();
  Inflater(Inflater&& o) noexcept;
  Inflater& operator=(Inflater&& o) noexcept;
  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;

  // Inflates one whole message's payload (all its frames, the sender having
  // removed the 00 00 ff ff tail) into `out`, replacing its content. The
  // output never passes `max` bytes: past it, too_big. Data that is not
  // deflate, or that does not end on a block boundary once the tail is
  // added back (a truncated message), is corrupt. After anything but ok
  // the context is reset: the connection must fail anyway.
  InflateStatus inflate_message(std::span<const std::byte> in, ByteBuffer& out, std::size_t max) noexcept;
  // Forgets the sliding window (no context takeover), keeping the memory.
  void reset() noexcept;
  // Frees the zlib state; the next message makes it again.
  void release() noexcept;
  bool active() const noexcept { return z_ != nullptr; }
  std::uint8_t window_bits() const noexcept { return bits_; }
  // What zlib holds for one inflater of `bits` (window + state, approximate).
  static std::size_t state_bytes(std::uint8_t bits) noexcept { return (std::size_t{1} << bits) + 7160; }

 private:
  bool init() noexcept;
  z_stream_s* z_ = nullptr;
  std::uint8_t bits_;
};

class Deflater {
 public:
  Deflater(std::uint8_t window_bits, std::uint8_t mem_level) noexcept;  // 8..15, 1..9
  ~Deflater();
  Deflater(Deflater&& o) noexcept;
  Deflater& operator=(Deflater&& o) noexcept;
  Deflater(const Deflater&) = delete;
  Deflater& operator=(const Deflater&) = delete;

  // False for a window zlib cannot make (8): send uncompressed instead.
  bool usable() const noexcept { return bits_ >= 9; }
  // Compresses one whole message into `out` (replacing its content),
  // flushed to a byte boundary and without the 00 00 ff ff tail, ready to
  // be the payload of a frame with RSV1 set. False when out of memory (or
  // !usable()); the context is then reset.
  bool deflate_message(std::span<const std::byte> in, ByteBuffer& out) noexcept;
  void reset() noexcept;
  void release() noexcept;
  bool active() const noexcept { return z_ != nullptr; }
  std::uint8_t window_bits() const noexcept { return bits_; }
  // zlib's documented need, 2^(wb+2) + 2^(ml+9), plus its state (approximate).
  static std::size_t state_bytes(std::uint8_t bits, std::uint8_t mem_level) noexcept {
    return (std::size_t{1} << (bits + 2)) + (std::size_t{1} << (mem_level + 9)) + 5952;
  }

 private:
  bool init() noexcept;
  z_stream_s* z_ = nullptr;
  std::uint8_t bits_;
  std::uint8_t mem_level_;
};

}  // namespace ringlink
