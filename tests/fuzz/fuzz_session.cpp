// libFuzzer target for Session. Input: one flags byte, four seed bytes, then
// the wire bytes. The wire is fed whole and again split at points drawn from
// the seed (with release_buffers() called at random between feeds); both runs
// must give the same events. Each read sits in a heap block of its exact size
// so that ASan sees any access past it.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "protocol/session.hpp"

namespace {

using ringlink::Role;
using ringlink::Session;
using ringlink::SessionEvent;
using ringlink::SessionEventKind;
using ringlink::SessionState;

struct Ev {
  SessionEventKind kind;
  int opcode;
  std::string payload;
  int code;
  std::string reason;
  bool reply;
  bool operator==(const Ev&) const = default;
};

[[noreturn]] void bug() { std::abort(); }

void check(bool ok) {
  if (!ok) bug();
}

std::vector<Ev> drive(const std::uint8_t* wire, std::size_t size, Role role, std::size_t max_size,
                      std::size_t hold, const std::vector<std::size_t>& cuts, std::mt19937* rng) {
  Session s{role, max_size};
  std::vector<Ev> out;
  std::vector<std::byte> kept;
  std::size_t start = 0;
  for (std::size_t k = 0; k <= cuts.size(); ++k) {
    const std::size_t end = k < cuts.size() ? cuts[k] : size;
    // The caller's buffer: what it kept plus this read, exactly sized.
    const std::size_t n = kept.size() + (end - start);
    std::unique_ptr<std::byte[]> buf(new std::byte[n ? n : 1]);
    if (!kept.empty()) std::memcpy(buf.get(), kept.data(), kept.size());
    if (end > start) std::memcpy(buf.get() + kept.size(), wire + start, end - start);
    start = end;
    std::size_t off = 0;
    for (;;) {
      std::span<std::byte> in(buf.get() + off, n - off);
      const SessionEvent ev = s.feed(in, hold);
      check(ev.consumed <= in.size());
      if (ev.zero_copy && !ev.payload.empty()) {
        check(ev.payload.data() >= in.data() &&
              ev.payload.data() + ev.payload.size() <= in.data() + in.size());
      }
      off += ev.consumed;
      if (ev.kind == SessionEventKind::need_more) break;
      check(ev.kind != SessionEventKind::fail || ev.consumed == in.size());
      check(ev.kind == SessionEventKind::message || ev.kind == SessionEventKind::ping ||
                ev.kind == SessionEventKind::pong || ev.kind == SessionEventKind::close ||
                ev.kind == SessionEventKind::fail);
      check(ev.payload.size() <= max_size);
      if (ev.kind == SessionEventKind::ping || ev.kind == SessionEventKind::pong) {
        check(ev.payload.size() <= ringlink::max_control_payload);
      }
      if (ev.kind == SessionEventKind::close || ev.kind == SessionEventKind::fail) {
        check(s.state() == SessionState::closed);
      }
      // Touch every payload byte: ASan flags a span into freed memory.
      out.push_back(Ev{ev.kind, static_cast<int>(ev.opcode),
                       std::string(reinterpret_cast<const char*>(ev.payload.data()), ev.payload.size()),
                       ev.code, std::string(ev.reason), ev.reply});
      if (rng && (*rng)() % 4 == 0) s.release_buffers();
    }
    check(s.buffered_bytes() <= max_size + ringlink::max_control_payload);
    kept.assign(buf.get() + off, buf.get() + n);
    if (rng && (*rng)() % 4 == 0) s.release_buffers();
  }
  if (s.state() == SessionState::closed) check(s.buffered_bytes() == 0);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 5) return 0;
  const std::uint8_t flags = data[0];
  std::uint32_t seed;
  std::memcpy(&seed, data + 1, 4);
  const std::uint8_t* wire = data + 5;
  const std::size_t wire_size = size - 5;

  const Role role = (flags & 1) ? Role::client : Role::server;
  static constexpr std::size_t holds[] = {0, 16, 131, 4096};
  const std::size_t hold = holds[(flags >> 1) & 3];
  // Small limits make 1009 and the assembly bounds reachable.
  static constexpr std::size_t limits[] = {125, 1000, 70000, 1 << 20};
  const std::size_t max_size = limits[(flags >> 3) & 3];

  const std::vector<Ev> whole = drive(wire, wire_size, role, max_size, hold, {}, nullptr);

  std::mt19937 rng(seed);
  std::vector<std::size_t> cuts;
  if (wire_size > 1) {
    const std::size_t count = (flags & 0x20) ? wire_size - 1 : rng() % std::min<std::size_t>(wire_size, 64);
    if (flags & 0x20) {
      for (std::size_t i = 1; i < wire_size; ++i) cuts.push_back(i);  // byte by byte
    } else {
      for (std::size_t i = 0; i < count; ++i) cuts.push_back(1 + rng() % (wire_size - 1));
      std::sort(cuts.begin(), cuts.end());
      cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
    }
  }
  const std::vector<Ev> split = drive(wire, wire_size, role, max_size, hold, cuts, &rng);
  check(whole == split);
  return 0;
}
