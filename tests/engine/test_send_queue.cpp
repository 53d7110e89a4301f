// SendQueue and SendQueueCache: byte accounting, the gather list after
// partial writes, the batch cap, ring wrap-around, drop_unsent and payload
// sharing. Pure data, no sockets: what a write would send is read back from
// the gather list's iovecs.
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

bool push_data(SendQueue& q, const Bytes& h, const Bytes& p, std::size_t written = 0) {
  return q.push(h, p, {}, false, written);
}
bool push_control(SendQueue& q, const Bytes& h, const Bytes& p) { return q.push(h, p, {}, true, 0); }

class SendQueueTest : public ::testing::Test {
 protected:
  std::unique_ptr<SendQueue> owned = std::make_unique<SendQueue>();
  SendQueue& q = *owned;
  // Pushes one frame per size (header h, distinct payloads); frame `control` is a control frame.
  std::vector<Bytes> push_frames(const Bytes& h, std::initializer_list<std::size_t> sizes, int control = -1) {
    std::vector<Bytes> p;
    for (std::size_t n : sizes) {
      p.push_back(pattern(n, static_cast<std::uint8_t>(p.size() * 16)));
      EXPECT_TRUE(q.push(h, p.back(), {}, static_cast<int>(p.size()) - 1 == control, 0));
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
  EXPECT_EQ(q.count(), 2u);

  EXPECT_FALSE(q.consume(5));          // partial: frame 0 stays
  EXPECT_EQ(q.bytes(), 111u);
  EXPECT_EQ(q.count(), 2u);
  EXPECT_EQ(q.at(0).written, 5u);
  EXPECT_FALSE(q.consume(7));          // rest of frame 0
  EXPECT_EQ(q.bytes(), 104u);
  EXPECT_EQ(q.count(), 1u);
  EXPECT_EQ(q.at(0).written, 0u);
  EXPECT_TRUE(q.consume(104));
  EXPECT_EQ(q.bytes(), 0u);
  EXPECT_TRUE(q.empty());

  // A frame pushed after an inline write counts only what is left.
  ASSERT_TRUE(push_data(q, h2, p2, 3));
  EXPECT_EQ(q.bytes(), 101u);
  EXPECT_EQ(q.at(0).written, 3u);
  EXPECT_TRUE(q.consume(1000));        // more than queued: empties, no underflow
  EXPECT_EQ(q.bytes(), 0u);
}

TEST_F(SendQueueTest, GatherResumesAfterPartialWrites) {
  const Bytes h1 = pattern(4, 0x10), p1 = pattern(8, 0x20), h2 = pattern(2, 0x30), p2 = pattern(5, 0x40);
  const Bytes all = cat({&h1, &p1, &h2, &p2});
  ASSERT_TRUE(push_data(q, h1, p1));
  ASSERT_TRUE(push_data(q, h2, p2));
  EXPECT_FALSE(q.consume(2));          // mid-header
  const SendQueue::Gather g1 = q.gather();
  EXPECT_EQ(g1.frames, 2u);
  EXPECT_EQ(g1.want, 17u);
  ASSERT_EQ(g1.msg.msg_iovlen, 4u);
  EXPECT_EQ(g1.msg.msg_iov[0].iov_len, 2u);
  EXPECT_EQ(flatten(g1.msg), tail(all, 2));

  EXPECT_FALSE(q.consume(2 + 3));      // mid-payload
  const SendQueue::Gather g2 = q.gather();
  EXPECT_EQ(g2.want, 5u + 7u);
  ASSERT_EQ(g2.msg.msg_iovlen, 3u);    // no empty iovec for the sent header
  EXPECT_EQ(g2.msg.msg_iov[0].iov_base, q.at(0).payload.data() + 3);
  EXPECT_EQ(flatten(g2.msg), tail(all, 7));

  EXPECT_FALSE(q.consume(5));          // exactly the rest of frame 0
  const SendQueue::Gather g3 = q.gather();
  EXPECT_EQ(g3.frames, 1u);
  EXPECT_EQ(flatten(g3.msg), cat({&h2, &p2}));
}

TEST_F(SendQueueTest, GatherCapsAtSendBatch) {
  const std::uint32_t n = static_cast<std::uint32_t>(std::min<std::size_t>(SendQueue::slots, config::send_batch + 3));
  const std::uint32_t batch = static_cast<std::uint32_t>(std::min<std::size_t>(n, config::send_batch));
  Bytes expected;
  for (std::uint32_t i = 0; i < n; ++i) {
    const Bytes h = pattern(2, static_cast<std::uint8_t>(i)), p = pattern(3, static_cast<std::uint8_t>(i + 100));
    ASSERT_TRUE(push_control(q, h, p));
    if (i < batch) expected = cat({&expected, &h, &p});
  }
  const SendQueue::Gather g = q.gather();
  EXPECT_EQ(g.frames, batch);
  EXPECT_EQ(g.want, batch * 5u);
  EXPECT_EQ(g.msg.msg_iovlen, batch * 2u);
  EXPECT_EQ(flatten(g.msg), expected);
  EXPECT_EQ(q.consume(g.want), n == batch);
  EXPECT_EQ(q.count(), n - batch);
}

TEST_F(SendQueueTest, RingWrapsAroundInOrder) {
  // Three frames live at a time while the head goes round the ring twice.
  auto frame = [](std::uint32_t i) { return pattern(3, static_cast<std::uint8_t>(i * 7)); };
  const Bytes h = pattern(2, 0xF0);
  for (std::uint32_t i = 0; i < 3; ++i) ASSERT_TRUE(push_data(q, h, frame(i)));
  for (std::uint32_t next = 3; next < 2 * SendQueue::slots + 5; ++next) {
    const Bytes a = frame(next - 3), b = frame(next - 2), c = frame(next - 1);
    ASSERT_EQ(flatten(q.gather().msg), cat({&h, &a, &h, &b, &h, &c})) << "round " << next;
    ASSERT_FALSE(q.consume(5));
    ASSERT_TRUE(push_data(q, h, frame(next)));
    ASSERT_EQ(q.bytes(), 15u);
  }
  // From a head in mid-ring, exactly `slots` frames fit.
  ASSERT_TRUE(q.consume(15));
  for (std::uint32_t i = 0; i < SendQueue::slots; ++i) ASSERT_TRUE(push_data(q, h, frame(i))) << i;
  EXPECT_TRUE(q.full());
  for (std::uint32_t i = 0; i < SendQueue::slots; ++i) EXPECT_EQ(q.at(i).payload.data()[0], frame(i)[0]) << i;
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
  EXPECT_EQ(flatten(q.gather().msg), tail(cat({&h, &p[0], &h, &p[2]}), 1));
  EXPECT_TRUE(q.consume(q.bytes()));
}

TEST_F(SendQueueTest, DropUnsentKeepsFramesInFlight) {
  const Bytes h = pattern(2, 0xEE);
  const std::vector<Bytes> p = push_frames(h, {4, 4, 4, 4, 4}, 3);
  q.set_in_flight(2);                  // frames 0 and 1 handed to the kernel, nothing written yet
  const SendQueue::Dropped d = q.drop_unsent([](std::uint32_t) { return true; });
  EXPECT_EQ(d.frames, 2u);
  EXPECT_EQ(d.bytes, 12u);
  EXPECT_EQ(q.in_flight(), 2u);
  ASSERT_EQ(q.count(), 3u);
  EXPECT_EQ(q.bytes(), 18u);
  EXPECT_EQ(flatten(q.gather().msg), cat({&h, &p[0], &h, &p[1], &h, &p[3]}));
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
  EXPECT_EQ(q.count(), 3u);
  EXPECT_EQ(flatten(q.gather().msg), cat({&h, &p[2], &h, &p[3], &h, &p[4]}));
}

TEST_F(SendQueueTest, SharedPayloadIsNotCopied) {
  const Bytes body = pattern(32, 5);
  PayloadRef shared = PayloadRef::copy_of(body);
  ASSERT_TRUE(shared);
  const Bytes h = pattern(2, 9);
  ASSERT_TRUE(q.push(h, shared.bytes(), shared, false, 0));
  EXPECT_EQ(q.at(0).payload.data(), shared.data());
  EXPECT_EQ(shared.use_count(), 2u);
  const SendQueue::Gather g = q.gather();
  ASSERT_EQ(g.msg.msg_iovlen, 2u);
  EXPECT_EQ(g.msg.msg_iov[1].iov_base, shared.data());
  EXPECT_TRUE(q.consume(g.want));
  EXPECT_EQ(shared.use_count(), 1u);   // the queue let go of it
}

TEST_F(SendQueueTest, SpanPayloadAndHeaderAreCopied) {
  Bytes h = pattern(2, 9), body = pattern(16, 40);
  const Bytes h0 = h, body0 = body;
  ASSERT_TRUE(push_data(q, h, body));
  EXPECT_NE(q.at(0).payload.data(), body.data());
  std::fill(h.begin(), h.end(), std::byte{0});
  std::fill(body.begin(), body.end(), std::byte{0});
  EXPECT_EQ(flatten(q.gather().msg), cat({&h0, &body0}));
}

TEST_F(SendQueueTest, LargeFlagAtZcThreshold) {
  if constexpr (config::zc_threshold == 0 || config::zc_threshold > (64u << 20)) {
    GTEST_SKIP() << "zc_threshold is " << config::zc_threshold;
  } else {
    const Bytes h = pattern(2, 0), small = pattern(config::zc_threshold - 1, 1), big = pattern(config::zc_threshold, 2);
    ASSERT_TRUE(push_data(q, h, small));
    EXPECT_FALSE(q.gather().large);
    ASSERT_TRUE(push_data(q, h, big));
    EXPECT_TRUE(q.gather().large);
    EXPECT_FALSE(q.consume(2 + small.size()));
    EXPECT_TRUE(q.gather().large);
    EXPECT_TRUE(q.consume(2 + big.size()));
    EXPECT_FALSE(q.gather().large);
  }
}

TEST(SendQueueCacheTest, ReuseGivesAClearedQueue) {
  SendQueueCache cache;
  SendQueue* q = cache.acquire();
  ASSERT_NE(q, nullptr);
  PayloadRef shared = PayloadRef::copy_of(pattern(8, 3));
  ASSERT_TRUE(q->push(pattern(2, 0), shared.bytes(), shared, false, 1));
  ASSERT_TRUE(q->push(pattern(2, 0), shared.bytes(), shared, true, 0));
  q->set_in_flight(1);
  EXPECT_EQ(shared.use_count(), 3u);
  cache.release(q);                    // clears it: every payload let go
  EXPECT_EQ(shared.use_count(), 1u);

  SendQueue* again = cache.acquire();
  EXPECT_EQ(again, q);                 // the cached one, not a new allocation
  EXPECT_TRUE(again->empty());
  EXPECT_EQ(again->bytes(), 0u);
  EXPECT_EQ(again->in_flight(), 0u);
  EXPECT_EQ(again->gather().msg.msg_iovlen, 0u);
  SendQueue* other = cache.acquire();  // cache empty now: a fresh queue
  ASSERT_NE(other, nullptr);
  EXPECT_NE(other, again);
  EXPECT_TRUE(other->empty());
  cache.release(again);
  cache.release(other);
}

}  // namespace
}  // namespace ringlink
