// SendQueue and SendQueueCache: byte accounting, the gather list after
// partial writes, the arena and its coalesced iovecs, the batch cap, ring
// wrap-around, drop_unsent and payload sharing. Pure data, no sockets: what a
// write would send is read back from the gather list's iovecs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "engine/send_queue.hpp"

namespace ringlink {
namespace {

using Bytes = std::vector<std::byte>;

// n bytes: seed, seed+1, ... (mod 256), so each frame's bytes are its own.
Bytes pattern(std::size_t n, std::uint8_t seed) {
  Bytes b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::byte>(static_cast<std::uint8_t>(seed + i));
  return b;
}

Bytes cat(std::initializer_list<const Bytes*> parts) {
  Bytes out;
  for (const Bytes* p : parts) out.insert(out.end(), p->begin(), p->end());
  return out;
}
Bytes tail(const Bytes& b, std::size_t from) { return Bytes(b.begin() + static_cast<std::ptrdiff_t>(from), b.end()); }

// What a write of the whole gather list would put on the wire.
Bytes flatten(const msghdr& m) {
  Bytes out;
  for (std::size_t i = 0; i < m.msg_iovlen; ++i) {
    const auto* p = static_cast<const std::byte*>(m.msg_iov[i].iov_base);
    out.insert(out.end(), p, p + m.msg_iov[i].iov_len);
  }
  return out;
}

// The gather list is `iovs` iovecs reaching `frames` frames, and says exactly `wire`.
::testing::AssertionResult gathers(const SendQueue::Gather& g, std::size_t iovs, std::uint32_t frames,
                                   const Bytes& wire) {
  const bool same = flatten(g.msg) == wire;
  if (g.msg.msg_iovlen == iovs && g.frames == frames && g.want == wire.size() && same) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "iovecs " << g.msg.msg_iovlen << " (expected " << iovs << "), frames "
                                       << g.frames << " (" << frames << "), want " << g.want << " ("
                                       << wire.size() << ")" << (same ? "" : ", bytes differ");
}

bool push_data(SendQueue& q, const Bytes& h, const Bytes& p) { return q.push(h, p, {}, false); }
bool push_control(SendQueue& q, const Bytes& h, const Bytes& p) { return q.push(h, p, {}, true); }
// Never in the arena: the header stays in the frame, the payload is its own iovec.
bool push_shared(SendQueue& q, const Bytes& h, const Bytes& p, bool control = false) {
  PayloadRef ref = PayloadRef::copy_of(p);
  return ref && q.push(h, ref.bytes(), ref, control);
}
bool in_arena(SendQueue& q, std::uint32_t i, std::size_t total) {
  const SendFrame& f = q.at(i);
  return f.header_len == 0 && !f.payload && f.data != nullptr && f.length == total;
}

class SendQueueTest : public ::testing::Test {
 protected:
  std::unique_ptr<SendQueue> owned = std::make_unique<SendQueue>();
  SendQueue& q = *owned;
  // Pushes one frame per size (header h, distinct payloads); frame `control` is a control frame.
  std::vector<Bytes> push_frames(const Bytes& h, std::initializer_list<std::size_t> sizes, int control = -1) {
    std::vector<Bytes> p;
    for (std::size_t n : sizes) {
      p.push_back(pattern(n, static_cast<std::uint8_t>(p.size() * 16)));
      EXPECT_TRUE(q.push(h, p.back(), {}, static_cast<int>(p.size()) - 1 == control));
    }
    return p;
  }
};

TEST_F(SendQueueTest, BytesFollowPushAndConsume) {
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.gather().msg.msg_iovlen, 0u);
  EXPECT_TRUE(q.consume(0));
  const Bytes h1 = pattern(2, 0x10), p1 = pattern(10, 0x20), h2 = pattern(4, 0x30), p2 = pattern(100, 0x40);
  ASSERT_TRUE(push_data(q, h1, p1));
  EXPECT_EQ(q.bytes(), 12u);
  ASSERT_TRUE(push_data(q, h2, p2));
  EXPECT_EQ(q.bytes(), 116u);
  EXPECT_EQ(q.at(1).written, 0u);      // always queued unsent
  EXPECT_FALSE(q.consume(5));          // partial: frame 0 stays
  EXPECT_EQ(q.bytes(), 111u);
  EXPECT_EQ(q.count(), 2u);
  EXPECT_EQ(q.at(0).written, 5u);
  EXPECT_FALSE(q.consume(7 + 3));      // rest of frame 0, 3 bytes of frame 1
  EXPECT_EQ(q.bytes(), 101u);
  EXPECT_EQ(q.count(), 1u);
  EXPECT_EQ(q.at(0).written, 3u);
  EXPECT_TRUE(q.consume(1000));        // more than queued: empties, no underflow
  EXPECT_EQ(q.bytes(), 0u);
  EXPECT_TRUE(q.empty());
}

TEST_F(SendQueueTest, GatherResumesAfterPartialWrites) {
  const Bytes h1 = pattern(4, 0x10), p1 = pattern(8, 0x20), h2 = pattern(2, 0x30), p2 = pattern(5, 0x40);
  const Bytes all = cat({&h1, &p1, &h2, &p2});
  ASSERT_TRUE(push_shared(q, h1, p1));
  ASSERT_TRUE(push_shared(q, h2, p2));
  EXPECT_FALSE(q.consume(2));          // mid-header
  const SendQueue::Gather g1 = q.gather();
  EXPECT_TRUE(gathers(g1, 4, 2, tail(all, 2)));
  EXPECT_EQ(g1.msg.msg_iov[0].iov_base, q.at(0).header.data() + 2);
  EXPECT_FALSE(q.consume(2 + 3));      // mid-payload
  const SendQueue::Gather g2 = q.gather();
  EXPECT_TRUE(gathers(g2, 3, 2, tail(all, 7)));  // no empty iovec for the sent header
  EXPECT_EQ(g2.msg.msg_iov[0].iov_base, q.at(0).payload.data() + 3);
  EXPECT_FALSE(q.consume(5));          // exactly the rest of frame 0
  EXPECT_TRUE(gathers(q.gather(), 2, 1, cat({&h2, &p2})));
}

TEST_F(SendQueueTest, SixteenSmallFramesShareOneIovec) {
  Bytes all;
  for (std::uint32_t i = 0; i < 16; ++i) {
    const Bytes h = pattern(2 + i % 3, static_cast<std::uint8_t>(i * 13));
    const Bytes p = pattern(i * 5, static_cast<std::uint8_t>(i + 200));
    ASSERT_TRUE(push_data(q, h, p));
    ASSERT_TRUE(in_arena(q, i, h.size() + p.size())) << i;
    EXPECT_EQ(q.at(i).data, i == 0 ? q.at(0).data : q.at(i - 1).data + q.at(i - 1).length) << i;
    all = cat({&all, &h, &p});
  }
  const SendQueue::Gather g = q.gather();
  EXPECT_TRUE(gathers(g, 1, 16, all));
  EXPECT_EQ(g.msg.msg_iov[0].iov_base, q.at(0).data);
  EXPECT_FALSE(g.large);
}

TEST_F(SendQueueTest, PartialConsumeInsideArenaRun) {
  const Bytes h = pattern(2, 0xA0), p3 = pattern(7, 0x77);
  const std::vector<Bytes> p = push_frames(h, {10, 20, 30});
  const Bytes all = cat({&h, &p[0], &h, &p[1], &h, &p[2], &h, &p3});
  EXPECT_FALSE(q.consume(17));         // frame 0 and 5 bytes of frame 1
  EXPECT_EQ(q.at(0).written, 5u);
  const SendQueue::Gather g = q.gather();
  EXPECT_TRUE(gathers(g, 1, 2, Bytes(all.begin() + 17, all.end() - 9)));
  EXPECT_EQ(g.msg.msg_iov[0].iov_base, q.at(0).data + 5);
  EXPECT_FALSE(q.consume(20));         // frame 1's last 17 and 3 bytes of frame 2
  ASSERT_TRUE(push_data(q, h, p3));    // lands right after the run
  const SendQueue::Gather g2 = q.gather();
  EXPECT_TRUE(gathers(g2, 1, 2, tail(all, 37)));
  EXPECT_EQ(g2.msg.msg_iov[0].iov_base, q.at(0).data + 3);
}

TEST_F(SendQueueTest, ArenaIsReusedOnceEmpty) {
  // (Pushed before the queue empties, a frame goes after the last: PartialConsumeInsideArenaRun.)
  const Bytes h = pattern(2, 1), a = pattern(40, 2), c = pattern(60, 4);
  ASSERT_TRUE(push_data(q, h, a));
  const std::byte* base = q.at(0).data;
  EXPECT_TRUE(q.consume(42));
  ASSERT_TRUE(push_data(q, h, c));     // from the start again
  EXPECT_EQ(q.at(0).data, base);
  EXPECT_TRUE(gathers(q.gather(), 1, 1, cat({&h, &c})));
}

TEST_F(SendQueueTest, FullArenaFallsBackToOwnPayload) {
  const Bytes h = pattern(2, 0x11), h2 = pattern(3, 0x22), small = pattern(5, 0x33);
  const std::size_t each = SendQueue::arena_bytes / 4 - 2;
  const std::vector<Bytes> p = push_frames(h, {each, each, each, each});  // exactly fills the arena
  for (std::uint32_t i = 0; i < 4; ++i) ASSERT_TRUE(in_arena(q, i, each + 2)) << i;
  ASSERT_TRUE(push_data(q, h2, small));
  const SendFrame& f = q.at(4);
  EXPECT_TRUE(f.payload);
  EXPECT_EQ(f.data, f.payload.data());
  EXPECT_EQ(f.header_len, 3u);
  EXPECT_EQ(f.length, 5u);
  const SendQueue::Gather g = q.gather();  // the arena run, the header, the payload
  EXPECT_TRUE(gathers(g, 3, 5, cat({&h, &p[0], &h, &p[1], &h, &p[2], &h, &p[3], &h2, &small})));
  EXPECT_EQ(g.msg.msg_iov[0].iov_len, SendQueue::arena_bytes);
  EXPECT_TRUE(q.consume(g.want));
  ASSERT_TRUE(push_data(q, h2, small));  // room again
  EXPECT_TRUE(in_arena(q, 0, 8));
}

TEST_F(SendQueueTest, SharedPayloadIsNotCopiedAndBreaksCoalescing) {
  const Bytes h = pattern(2, 0x40), body = pattern(32, 5);
  const std::vector<Bytes> p = push_frames(h, {3, 4});
  PayloadRef shared = PayloadRef::copy_of(body);
  ASSERT_TRUE(shared);
  ASSERT_TRUE(q.push(h, shared.bytes(), shared, false));
  const std::vector<Bytes> more = push_frames(h, {5, 6});
  EXPECT_EQ(shared.use_count(), 2u);
  EXPECT_EQ(q.at(2).payload.data(), shared.data());
  EXPECT_EQ(q.at(2).data, shared.data());
  EXPECT_EQ(q.at(2).header_len, 2u);
  EXPECT_EQ(q.at(3).data, q.at(1).data + q.at(1).length);  // the arena took nothing for it
  const SendQueue::Gather g = q.gather();  // frames 0-1, header 2, payload 2, frames 3-4
  EXPECT_TRUE(gathers(g, 4, 5, cat({&h, &p[0], &h, &p[1], &h, &body, &h, &more[0], &h, &more[1]})));
  EXPECT_EQ(g.msg.msg_iov[2].iov_base, shared.data());
  EXPECT_TRUE(q.consume(g.want));
  EXPECT_EQ(shared.use_count(), 1u);   // the queue let go of it
}

TEST_F(SendQueueTest, GatherCapsAtSendBatch) {
  // Frames are taken while two iovec slots remain. Frame 0 is in the arena (one iovec), the rest are
  // shared (two each): the first gather stops a slot short of an even batch, the second fills it.
  const std::uint32_t first = 1 + (config::send_batch - 1) / 2, second = config::send_batch / 2;
  const std::uint32_t n = first + second + 1;
  if (n > SendQueue::slots) GTEST_SKIP() << "send_ring_slots below " << n;
  Bytes all;                           // 5 bytes a frame
  for (std::uint32_t i = 0; i < n; ++i) {
    const Bytes h = pattern(2, static_cast<std::uint8_t>(i)), p = pattern(3, static_cast<std::uint8_t>(i + 100));
    ASSERT_TRUE(i == 0 ? push_control(q, h, p) : push_shared(q, h, p, true));
    all = cat({&all, &h, &p});
  }
  auto frames = [&](std::uint32_t from, std::uint32_t to) {
    return Bytes(all.begin() + 5 * from, all.begin() + 5 * to);
  };
  const SendQueue::Gather g = q.gather();
  EXPECT_TRUE(gathers(g, 1 + 2 * (first - 1), first, frames(0, first)));
  EXPECT_LE(g.msg.msg_iovlen, config::send_batch);
  EXPECT_FALSE(q.consume(g.want));
  const SendQueue::Gather g2 = q.gather();
  EXPECT_TRUE(gathers(g2, 2 * second, second, frames(first, first + second)));
  EXPECT_FALSE(q.consume(g2.want));
  EXPECT_EQ(q.count(), 1u);
}

TEST_F(SendQueueTest, RingWrapsAroundInOrder) {
  // Three frames live at a time while the head goes round the ring at least
  // twice; the queue never empties, so the arena fills and later frames fall back.
  auto frame = [](std::uint32_t i) { return pattern(3, static_cast<std::uint8_t>(i * 7)); };
  const Bytes h = pattern(2, 0xF0);
  for (std::uint32_t i = 0; i < 3; ++i) ASSERT_TRUE(push_data(q, h, frame(i)));
  for (std::uint32_t next = 3; next < 2 * SendQueue::slots + SendQueue::arena_bytes / 5 + 5; ++next) {
    const Bytes a = frame(next - 3), b = frame(next - 2), c = frame(next - 1);
    ASSERT_EQ(flatten(q.gather().msg), cat({&h, &a, &h, &b, &h, &c})) << "round " << next;
    ASSERT_FALSE(q.consume(5));
    ASSERT_TRUE(push_data(q, h, frame(next)));
    ASSERT_EQ(q.bytes(), 15u);
  }
  EXPECT_TRUE(q.at(2).payload);        // past the arena's room
  // From a head in mid-ring, exactly `slots` frames fit.
  ASSERT_TRUE(q.consume(15));
  for (std::uint32_t i = 0; i < SendQueue::slots; ++i) ASSERT_TRUE(push_data(q, h, frame(i))) << i;
  EXPECT_TRUE(q.full());
  for (std::uint32_t i = 0; i < SendQueue::slots; ++i) {  // in the arena the 2 header bytes come first
    EXPECT_EQ(q.at(i).data[q.at(i).payload ? 0 : 2], frame(i)[0]) << i;
  }
}

TEST_F(SendQueueTest, FitsDataThenFullThenPushFails) {
  const Bytes h = pattern(2, 1), p = pattern(10, 2);
  ASSERT_TRUE(push_data(q, h, p));
  EXPECT_TRUE(q.fits_data(88, 100));
  EXPECT_FALSE(q.fits_data(89, 100));
  while (q.count() < SendQueue::data_slots) ASSERT_TRUE(push_data(q, h, p));
  EXPECT_FALSE(q.fits_data(0, ~std::uint64_t{0}));
  EXPECT_FALSE(q.full());              // the slots kept for control frames
  while (q.count() < SendQueue::slots) ASSERT_TRUE(push_control(q, h, p));
  EXPECT_TRUE(q.full());
  EXPECT_FALSE(push_control(q, h, p));
  EXPECT_FALSE(push_data(q, h, p));
  EXPECT_EQ(q.count(), SendQueue::slots);
  EXPECT_EQ(q.bytes(), SendQueue::slots * 12u);
}

TEST_F(SendQueueTest, DropUnsentKeepsControlPartialAndOrder) {
  const Bytes h = pattern(2, 0xEE);
  const std::vector<Bytes> p = push_frames(h, {4, 5, 6, 7, 8}, 2);
  EXPECT_FALSE(q.consume(1));          // frame 0 is partly written
  const SendQueue::Dropped d = q.drop_unsent([](std::uint32_t) { return true; });
  EXPECT_EQ(d.frames, 3u);
  EXPECT_EQ(d.bytes, (2u + 5) + (2u + 7) + (2u + 8));
  ASSERT_EQ(q.count(), 2u);
  EXPECT_EQ(q.bytes(), (2u + 4 - 1) + (2u + 6));
  // Two iovecs: the dropped frame's bytes lie between them in the arena.
  EXPECT_TRUE(gathers(q.gather(), 2, 2, tail(cat({&h, &p[0], &h, &p[2]}), 1)));
}

TEST_F(SendQueueTest, DropUnsentKeepsFramesInFlight) {
  const Bytes h = pattern(2, 0xEE);
  const std::vector<Bytes> p = push_frames(h, {4, 4, 4, 4, 4}, 3);
  q.set_in_flight(2, 12);              // frames 0 and 1 handed to the kernel, nothing written yet
  EXPECT_EQ(q.in_flight_bytes(), 12u);
  const SendQueue::Dropped d = q.drop_unsent([](std::uint32_t) { return true; });
  EXPECT_EQ(d.frames, 2u);
  EXPECT_EQ(d.bytes, 12u);
  EXPECT_EQ(q.in_flight(), 2u);
  EXPECT_EQ(q.bytes(), 18u);
  EXPECT_TRUE(gathers(q.gather(), 2, 3, cat({&h, &p[0], &h, &p[1], &h, &p[3]})));
}

TEST_F(SendQueueTest, DropUnsentStopsWhenPredicateSaysSo) {
  const Bytes h = pattern(2, 0);
  const std::vector<Bytes> p = push_frames(h, {3, 3, 3, 3, 3});
  std::vector<std::uint32_t> asked;
  const SendQueue::Dropped d = q.drop_unsent([&](std::uint32_t left) {
    asked.push_back(left);
    return left > 3;                   // keep three frames
  });
  EXPECT_EQ(d.frames, 2u);
  EXPECT_EQ(d.bytes, 10u);
  ASSERT_FALSE(asked.empty());
  EXPECT_EQ(asked.front(), 5u);        // frames in the queue, the candidate included
  EXPECT_TRUE(gathers(q.gather(), 1, 3, cat({&h, &p[2], &h, &p[3], &h, &p[4]})));
}

TEST_F(SendQueueTest, SpanPayloadAndHeaderAreCopied) {
  // One small enough for the arena, one too big for it.
  Bytes h = pattern(2, 9), body = pattern(16, 40), big = pattern(SendQueue::arena_bytes + 1, 70);
  const Bytes h0 = h, body0 = body, big0 = big;
  ASSERT_TRUE(push_data(q, h, body));
  ASSERT_TRUE(push_data(q, h, big));
  EXPECT_TRUE(in_arena(q, 0, 18));
  EXPECT_EQ(q.at(1).data, q.at(1).payload.data());
  EXPECT_NE(q.at(1).data, big.data());
  for (Bytes* b : {&h, &body, &big}) std::fill(b->begin(), b->end(), std::byte{0});
  EXPECT_TRUE(gathers(q.gather(), 3, 2, cat({&h0, &body0, &h0, &big0})));
}

TEST_F(SendQueueTest, LargeFlagAtZcThreshold) {
  if constexpr (config::zc_threshold == 0 || config::zc_threshold > (64u << 20)) {
    GTEST_SKIP() << "zc_threshold is " << config::zc_threshold;
  } else {
    const Bytes h = pattern(2, 0), small = pattern(config::zc_threshold - 1, 1), big = pattern(config::zc_threshold, 2);
    ASSERT_TRUE(push_shared(q, h, small));
    EXPECT_FALSE(q.gather().large);
    ASSERT_TRUE(push_shared(q, h, big));
    EXPECT_TRUE(q.gather().large);
    EXPECT_FALSE(q.consume(2 + small.size()));
    EXPECT_TRUE(q.gather().large);
    EXPECT_FALSE(q.consume(2 + 1));    // fewer than zc_threshold bytes remain
    EXPECT_FALSE(q.gather().large);
  }
}

TEST(SendQueueCacheTest, ReuseGivesAClearedQueue) {
  SendQueueCache cache;
  SendQueue* q = cache.acquire();
  ASSERT_NE(q, nullptr);
  PayloadRef shared = PayloadRef::copy_of(pattern(8, 3));
  ASSERT_TRUE(push_data(*q, pattern(2, 0), pattern(4, 1)));
  const std::byte* arena = q->at(0).data;
  for (bool control : {false, true}) ASSERT_TRUE(q->push(pattern(2, 0), shared.bytes(), shared, control));
  EXPECT_FALSE(q->consume(1));         // frame 0 partly written and in flight
  q->set_in_flight(1, 5);
  EXPECT_EQ(shared.use_count(), 3u);
  cache.release(q);                    // clears it: every payload let go
  EXPECT_EQ(shared.use_count(), 1u);

  SendQueue* again = cache.acquire();
  EXPECT_EQ(again, q);                 // the cached one, not a new allocation
  EXPECT_TRUE(again->empty());
  EXPECT_EQ(again->bytes(), 0u);
  EXPECT_EQ(again->in_flight() + again->in_flight_bytes(), 0u);
  EXPECT_EQ(again->gather().msg.msg_iovlen, 0u);
  ASSERT_TRUE(push_data(*again, pattern(2, 0), pattern(4, 1)));
  EXPECT_EQ(again->at(0).data, arena);  // clear() emptied the arena too
  SendQueue* other = cache.acquire();  // cache empty now: a fresh queue
  ASSERT_NE(other, nullptr);
  EXPECT_NE(other, again);
  EXPECT_TRUE(other->empty());
  cache.release(again);
  cache.release(other);
}

// A burst's queues stay with the cache, and trim() hands back the pages of
// all but the warm ones: freed into the allocator they would stay resident.
TEST(SendQueueCacheTest, BurstIsKeptThenTrimmedToWarm) {
  SendQueueCache cache;
  std::vector<SendQueue*> burst;
  for (int i = 0; i < 200; ++i) {
    SendQueue* q = cache.acquire();
    ASSERT_NE(q, nullptr);
    ASSERT_TRUE(push_data(*q, pattern(2, 0), pattern(64, static_cast<std::uint8_t>(i))));
    burst.push_back(q);
  }
  EXPECT_EQ(cache.in_use(), 200u);
  for (SendQueue* q : burst) cache.release(q);
  EXPECT_EQ(cache.in_use(), 0u);
  EXPECT_EQ(cache.cached(), 200u);       // none went back to the allocator
  const std::size_t pages = cache.trim();
  EXPECT_GE(pages, (200 - SendQueueCache::warm) * (sizeof(SendQueue) / 4096));
  EXPECT_EQ(cache.trim(), 0u);           // nothing left to hand back
  // A trimmed queue works like a new one (its pages come back as zeros).
  std::vector<SendQueue*> again;
  for (int i = 0; i < 200; ++i) {
    SendQueue* q = cache.acquire();
    ASSERT_NE(q, nullptr);
    EXPECT_TRUE(q->empty());
    ASSERT_TRUE(push_data(*q, pattern(2, 0), pattern(8, 7)));
    EXPECT_EQ(q->bytes(), 10u);
    again.push_back(q);
  }
  for (SendQueue* q : again) cache.release(q);
}

}  // namespace
}  // namespace ringlink
