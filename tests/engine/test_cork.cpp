// Corked output: a link's frames of one turn leave in one gather write at the
// turn's end; past cork_high_water they leave at once; the kernel taking a
// write only in part keeps the order. Counted through the reactor's
// write_calls and partial_writes metrics, on whichever backend this build runs.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "engine/reactor.hpp"
#include "tests/engine/reactor_harness.hpp"
#include "tests/wire_client.hpp"

using namespace ringlink;
using ringlink::test::Harness;
using ringlink::wire::WireConn;

namespace {

// Text is echoed; "burst N SIZE" answers with N binary messages of SIZE
// bytes, each starting with its 4-byte sequence number, all from one call.
struct Sender : Handler {
  void on_message(Link& l, std::span<std::byte> p, Opcode op) override {
    const std::string s(reinterpret_cast<const char*>(p.data()), p.size());
    unsigned n = 0, size = 0;
    if (op == Opcode::text && std::sscanf(s.c_str(), "burst %u %u", &n, &size) == 2) {
      std::vector<std::byte> msg(size);
      for (std::uint32_t i = 0; i < n; ++i) {
        std::memcpy(msg.data(), &i, sizeof i);
        results.push_back(l.send(msg));
      }
      return;
    }
    (void)l.send(p, op);
  }
  std::vector<SendResult> results;
};

std::uint64_t writes(Harness& t) { return t.reactor().metrics().write_calls.get(); }

// The `n` frames of a burst, each `size` bytes, arrived in sequence.
void expect_burst(const std::vector<wire::RxFrame>& frames, unsigned n, unsigned size) {
  ASSERT_EQ(frames.size(), n);
  for (std::uint32_t i = 0; i < n; ++i) {
    ASSERT_EQ(frames[i].payload.size(), size);
    std::uint32_t seq;
    std::memcpy(&seq, frames[i].payload.data(), sizeof seq);
    ASSERT_EQ(seq, i);
  }
}

}  // namespace

// Sixteen messages that arrive in one read are answered in one write.
TEST(Cork, SixteenRepliesLeaveInOneWrite) {
  Sender h;
  Harness t(ServerConfig{}, h);
  WireConn c;
  ASSERT_TRUE(t.open(c));
  wire::Bytes sixteen;
  for (int i = 0; i < 16; ++i) {
    const wire::Bytes f = wire::frame(0x1, wire::bytes("m" + std::to_string(i)));
    sixteen.insert(sixteen.end(), f.begin(), f.end());
  }
  const std::uint64_t in0 = t.reactor().metrics().messages_in.get();
  const std::uint64_t w0 = writes(t);
  ASSERT_TRUE(c.write(sixteen));  // one segment on loopback
  ASSERT_GE(t.pump_until([&] { return t.reactor().metrics().messages_in.get() > in0; }), 0);
  // Precondition: the sixteen were read in one turn (else there is no claim).
  ASSERT_EQ(t.reactor().metrics().messages_in.get() - in0, 16u);
  for (int i = 0; i < 16; ++i) {
    auto f = t.next_frame(c);
    ASSERT_TRUE(f);
    EXPECT_EQ(f->text(), "m" + std::to_string(i));
  }
  EXPECT_EQ(writes(t) - w0, 1u);
  EXPECT_EQ(t.reactor().metrics().partial_writes.get(), 0u);
}

// A burst past cork_high_water within one handler call is written as soon
// as the queue passes the mark, the rest at the turn's end: memory stays
// bounded by the mark plus one frame, and order is kept.
TEST(Cork, HighWaterWritesEarly) {
  Sender h;
  Harness t(ServerConfig{}, h);
  WireConn c;
  ASSERT_TRUE(t.open(c));
  c.start_reader();
  constexpr unsigned n = 8, size = 16 * 1024;
  // What the queue holds before each push decides an early write.
  std::uint64_t expected = 0, queued = 0;
  for (unsigned i = 0; i < n; ++i) {
    if (queued >= config::cork_high_water) {
      ++expected;
      queued = 0;
    }
    queued += size + 4;  // header of a 16 KiB frame: 4 bytes
  }
  ++expected;  // the turn's flush
  const std::uint64_t w0 = writes(t);
  ASSERT_TRUE(c.send_text("burst " + std::to_string(n) + " " + std::to_string(size)));
  ASSERT_GE(t.pump_until([&] { return c.frame_count() >= n; }), 0);
  expect_burst(c.frames(), n, size);
  EXPECT_GE(expected, 2u);
  EXPECT_EQ(writes(t) - w0, expected);
  EXPECT_LE(t.reactor().metrics().queued_bytes_high_water.get(), config::cork_high_water + size + 4);
  for (SendResult r : h.results) EXPECT_EQ(r, SendResult::queued);
}

// More than the socket buffers hold, to a peer that reads only later: the
// kernel takes writes in part (counted), the rest waits for the socket,
// and every byte arrives in order once the peer reads.
TEST(Cork, PartialWritesKeepOrder) {
  ServerConfig cfg;
  cfg.max_queued_bytes = 64u << 20;
  Sender h;
  Harness t(cfg, h);
  WireConn c;
  ASSERT_TRUE(t.open(c));
  constexpr unsigned n = 200, size = 64 * 1024;  // 12.5 MiB: past loopback's socket buffers
  ASSERT_TRUE(c.send_text("burst " + std::to_string(n) + " " + std::to_string(size)));
  t.pump(20);  // nobody reads yet: the socket fills
  EXPECT_GT(t.reactor().metrics().partial_writes.get(), 0u);
  EXPECT_GT(t.reactor().metrics().queued_bytes.get(), 0u);
  c.start_reader();
  ASSERT_GE(t.pump_until([&] { return c.frame_count() >= n; }, 20000), 0);
  expect_burst(c.frames(), n, size);
  for (SendResult r : h.results) EXPECT_EQ(r, SendResult::queued);
  EXPECT_EQ(t.reactor().metrics().queued_bytes.get(), 0u);
}
