// libFuzzer target for inflating hostile permessage-deflate payloads. The
// first byte picks the window (8..15) and the cap (64 B .. 1 MiB); the rest
// is split in two messages inflated with context takeover. Invariants: the
// output never passes the cap, not even in capacity once the buffer was
// empty; whatever inflated is deflated and inflated back to the same bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "protocol/deflate_codec.hpp"

namespace {

using namespace ringlink;

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::uint8_t bits = static_cast<std::uint8_t>(8 + (data[0] & 7));
  const std::size_t cap = std::size_t{64} << ((data[0] >> 3) & 15);  // up to 2 MiB
  const std::size_t split = data[1] % (size - 1);
  const auto* body = reinterpret_cast<const std::byte*>(data + 2);
  const std::size_t n = size - 2;
  const std::span<const std::byte> parts[2] = {{body, std::min(split, n)}, {body + std::min(split, n), n - std::min(split, n)}};
  Inflater inf{bits};
  for (const auto& part : parts) {
    ByteBuffer out;
    const InflateStatus st = inf.inflate_message(part, out, cap);
    check(out.size() <= cap && out.capacity() <= cap);
    if (st != InflateStatus::ok) return 0;
    Deflater def{15, 8};
    Inflater back{15};
    ByteBuffer wire, again;
    check(def.deflate_message(out.view(), wire));
    check(back.inflate_message(wire.view(), again, cap) == InflateStatus::ok);
    check(again.size() == out.size());
    check(out.size() == 0 || std::memcmp(again.data(), out.data(), out.size()) == 0);
  }
  return 0;
}
