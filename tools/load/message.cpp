#include "tools/load/message.hpp"

#include <array>
#include <cstring>
#include <string_view>

namespace ringlink::load {
namespace {

constexpr std::uint32_t magic = 0x314C4C52;  // "RLL1" read little endian

constexpr char alphabet[65] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

constexpr std::array<std::int8_t, 256> make_decode_table() {
  std::array<std::int8_t, 256> t{};
  for (auto& v : t) v = -1;
  for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(alphabet[i])] = static_cast<std::int8_t>(i);
  return t;
}
constexpr auto decode_table = make_decode_table();

void put32(std::byte* p, std::uint32_t v) noexcept {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::byte>(v >> (8 * i));
}
void put64(std::byte* p, std::uint64_t v) noexcept {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<std::byte>(v >> (8 * i));
}
std::uint32_t get32(const std::byte* p) noexcept {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<std::uint8_t>(p[i]);
  return v;
}
std::uint64_t get64(const std::byte* p) noexcept {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<std::uint8_t>(p[i]);
  return v;
}

std::uint64_t mix(std::uint64_t z) noexcept {  // splitmix64's finaliser
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

std::uint32_t header_check(const MessageStamp& s, std::uint32_t size) noexcept {
  std::uint64_t h = mix(s.seq ^ (static_cast<std::uint64_t>(s.conn) << 32 | size));
  h = mix(h ^ s.intended_ns);
  h = mix(h ^ s.sent_ns);
  return static_cast<std::uint32_t>(h ^ (h >> 32));
}

// The filler stream: splitmix64 seeded by the message identity.
class Filler {
 public:
  explicit Filler(const MessageStamp& s) noexcept : state_(mix(s.seq * 0x9E3779B97F4A7C15ULL ^ s.conn)) {}
  std::uint64_t next() noexcept {
    state_ += 0x9E3779B97F4A7C15ULL;
    return mix(state_);
  }

 private:
  std::uint64_t state_;
};

void encode_header(std::byte* out, const MessageStamp& s, std::uint32_t size) noexcept {
  put32(out, magic);
  put32(out + 4, s.conn);
  put64(out + 8, s.seq);
  put64(out + 16, s.intended_ns);
  put64(out + 24, s.sent_ns);
  put32(out + 32, size);
  put32(out + 36, header_check(s, size));
}

// base64url without padding: 40 bytes -> 54 digits.
void to_base64(const std::byte* in, std::size_t n, char* out) noexcept {
  std::size_t o = 0;
  std::size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    const std::uint32_t v = static_cast<std::uint32_t>(in[i]) << 16 | static_cast<std::uint32_t>(in[i + 1]) << 8 |
                            static_cast<std::uint32_t>(in[i + 2]);
    out[o++] = alphabet[v >> 18];
    out[o++] = alphabet[(v >> 12) & 63];
    out[o++] = alphabet[(v >> 6) & 63];
    out[o++] = alphabet[v & 63];
  }
  if (n - i == 1) {
    const std::uint32_t v = static_cast<std::uint32_t>(in[i]) << 16;
    out[o++] = alphabet[v >> 18];
    out[o++] = alphabet[(v >> 12) & 63];
  } else if (n - i == 2) {
    const std::uint32_t v = static_cast<std::uint32_t>(in[i]) << 16 | static_cast<std::uint32_t>(in[i + 1]) << 8;
    out[o++] = alphabet[v >> 18];
    out[o++] = alphabet[(v >> 12) & 63];
    out[o++] = alphabet[(v >> 6) & 63];
  }
}

// The inverse; false on a digit outside the alphabet or non-zero spare bits.
bool from_base64(const std::byte* in, std::size_t digits, std::byte* out) noexcept {
  std::uint32_t acc = 0;
  int bits = 0;
  std::size_t o = 0;
  for (std::size_t i = 0; i < digits; ++i) {
    const std::int8_t d = decode_table[static_cast<std::uint8_t>(in[i])];
    if (d < 0) return false;
    acc = (acc << 6) | static_cast<std::uint32_t>(d);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = static_cast<std::byte>(acc >> bits);
      acc &= (1u << bits) - 1;
    }
  }
  return acc == 0;
}

}  // namespace

const char* to_string(MessageCheck c) noexcept {
  switch (c) {
    case MessageCheck::ok: return "ok";
    case MessageCheck::too_short: return "too_short";
    case MessageCheck::bad_header: return "bad_header";
    case MessageCheck::bad_filler: return "bad_filler";
    case MessageCheck::count_: break;
  }
  return "unknown";
}

namespace {

constexpr std::string_view json_record = R"({"id":1042,"user":"ringlink","room":"lobby","tags":["a","b"],"ok":true},)";

// The byte of a fixed filler at offset i after the header.
std::byte fixed_filler(FillerKind kind, bool text, std::size_t i) noexcept {
  if (kind == FillerKind::json) return static_cast<std::byte>(json_record[i % json_record.size()]);
  return text ? std::byte{'0'} : std::byte{0};
}

}  // namespace

const char* to_string(FillerKind k) noexcept {
  switch (k) {
    case FillerKind::random: return "random";
    case FillerKind::json: return "json";
    case FillerKind::zeros: return "zeros";
  }
  return "?";
}

void write_message(std::span<std::byte> out, const MessageStamp& stamp, bool text, FillerKind kind) noexcept {
  const auto size = static_cast<std::uint32_t>(out.size());
  std::byte* p = out.data();
  std::size_t at = 0;
  if (text) {
    std::byte header[binary_header_size];
    encode_header(header, stamp, size);
    to_base64(header, binary_header_size, reinterpret_cast<char*>(p));
    at = text_header_size;
  } else {
    encode_header(p, stamp, size);
    at = binary_header_size;
  }
  if (kind != FillerKind::random) {
    for (std::size_t i = 0; at + i < out.size(); ++i) p[at + i] = fixed_filler(kind, text, i);
    return;
  }
  Filler filler(stamp);
  while (at < out.size()) {
    std::uint64_t w = filler.next();
    const std::size_t n = std::min<std::size_t>(8, out.size() - at);
    if (text) {
      for (std::size_t i = 0; i < n; ++i, w >>= 8) p[at + i] = static_cast<std::byte>(alphabet[w & 63]);
    } else {
      for (std::size_t i = 0; i < n; ++i, w >>= 8) p[at + i] = static_cast<std::byte>(w);
    }
    at += n;
  }
}

MessageCheck read_message(std::span<const std::byte> in, bool text, MessageStamp& out, FillerKind kind) noexcept {
  if (in.size() < min_message_size(text)) return MessageCheck::too_short;
  std::byte decoded[binary_header_size + 1];
  const std::byte* h = in.data();
  if (text) {
    if (!from_base64(in.data(), text_header_size, decoded)) return MessageCheck::bad_header;
    h = decoded;
  }
  if (get32(h) != magic) return MessageCheck::bad_header;
  MessageStamp s;
  s.conn = get32(h + 4);
  s.seq = get64(h + 8);
  s.intended_ns = get64(h + 16);
  s.sent_ns = get64(h + 24);
  const std::uint32_t size = get32(h + 32);
  if (size != in.size() || get32(h + 36) != header_check(s, size)) return MessageCheck::bad_header;
  out = s;

  std::size_t at = min_message_size(text);
  const std::byte* p = in.data();
  if (kind != FillerKind::random) {
    for (std::size_t i = 0; at + i < in.size(); ++i) {
      if (p[at + i] != fixed_filler(kind, text, i)) return MessageCheck::bad_filler;
    }
    return MessageCheck::ok;
  }
  Filler filler(s);
  if (!text) {
    // Whole words where they fit: the common case costs one compare per 8 bytes.
    for (; at + 8 <= in.size(); at += 8) {
      if (get64(p + at) != filler.next()) return MessageCheck::bad_filler;
    }
  }
  while (at < in.size()) {
    std::uint64_t w = filler.next();
    const std::size_t n = std::min<std::size_t>(8, in.size() - at);
    for (std::size_t i = 0; i < n; ++i, w >>= 8) {
      const auto expect = text ? static_cast<std::byte>(alphabet[w & 63]) : static_cast<std::byte>(w);
      if (p[at + i] != expect) return MessageCheck::bad_filler;
    }
    at += n;
  }
  return MessageCheck::ok;
}

}  // namespace ringlink::load
