// Handoff: worker choice, payload copies, ring-full and per-link quota
// waits, parking, the space flag, and a two-thread run (reactor pushing,
// workers popping) that checks per-link order and that nothing is lost.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <span>
#include <thread>
#include <vector>

#include "engine/handoff.hpp"

namespace ringlink {
namespace {

using Bytes = std::vector<std::byte>;
using Push = Handoff::PushResult;

LinkId id_of(std::uint32_t slot) { return LinkId{0, slot, 1}; }

Push push_one(Handoff& h, std::uint32_t slot, std::uint8_t tag = 0) {
  const std::byte b[1] = {static_cast<std::byte>(tag)};
  return h.push(slot, id_of(slot), Opcode::binary, b);
}

TEST(Handoff, LinkAlwaysGoesToTheSameWorker) {
  Handoff h(3, 0, 16);
  ASSERT_TRUE(h.enabled());
  for (std::uint32_t s = 0; s < 12; ++s) EXPECT_EQ(h.worker_of(s), s % 3) << s;
  for (std::uint32_t s = 0; s < 6; ++s) ASSERT_EQ(push_one(h, s, static_cast<std::uint8_t>(s)), Push::ok);
  InboundMessage m;
  for (std::uint32_t expect : {1u, 4u}) {
    ASSERT_TRUE(h.pop(1, m));
    EXPECT_EQ(m.id, id_of(expect));
    EXPECT_EQ(m.payload.data()[0], static_cast<std::byte>(expect));
  }
  EXPECT_FALSE(h.pop(1, m));
  EXPECT_FALSE(h.pop(3, m));           // no such worker
  EXPECT_EQ(h.pops(), 2u);
}

TEST(Handoff, PushCopiesThePayload) {
  Handoff h(1, 0, 4);
  Bytes buf = {std::byte{1}, std::byte{2}, std::byte{3}};
  ASSERT_EQ(h.push(7, id_of(7), Opcode::text, buf), Push::ok);
  std::fill(buf.begin(), buf.end(), std::byte{0});
  ASSERT_EQ(h.push(8, id_of(8), Opcode::binary, {}), Push::ok);

  InboundMessage m;
  ASSERT_TRUE(h.pop(0, m));
  EXPECT_EQ(m.id, id_of(7));
  EXPECT_EQ(m.op, Opcode::text);
  ASSERT_EQ(m.payload.size(), 3u);
  EXPECT_NE(m.payload.data(), buf.data());
  EXPECT_EQ(m.payload.data()[0], std::byte{1});
  EXPECT_EQ(m.payload.data()[2], std::byte{3});
  ASSERT_TRUE(h.pop(0, m));
  EXPECT_EQ(m.id, id_of(8));
  EXPECT_EQ(m.payload.size(), 0u);
}

TEST(Handoff, FullRingMakesEveryLinkOfItWait) {
  Handoff h(2, 0, 4);
  for (int i = 0; i < 4; ++i) {
    EXPECT_FALSE(h.must_wait(0)) << i;
    ASSERT_EQ(push_one(h, 0), Push::ok) << i;
  }
  EXPECT_TRUE(h.must_wait(0));
  EXPECT_TRUE(h.must_wait(2));         // same ring
  EXPECT_FALSE(h.must_wait(1));        // the other worker's ring
  EXPECT_EQ(push_one(h, 2), Push::full);
  InboundMessage m;
  ASSERT_TRUE(h.pop(0, m));
  EXPECT_FALSE(h.must_wait(2));
  EXPECT_EQ(push_one(h, 2), Push::ok);
}

TEST(Handoff, QuotaCountsMessagesNotYetHandled) {
  Handoff h(1, 3, 64);
  EXPECT_FALSE(h.must_wait(5));
  ASSERT_EQ(push_one(h, 5), Push::ok);
  ASSERT_EQ(push_one(h, 5), Push::ok);
  EXPECT_FALSE(h.must_wait(5));
  ASSERT_EQ(push_one(h, 5), Push::ok);
  EXPECT_TRUE(h.must_wait(5));         // three waiting: quota reached
  EXPECT_FALSE(h.must_wait(6));        // same ring, another link
  ASSERT_EQ(push_one(h, 6), Push::ok);

  // Popped is not handled: a worker's backlog still holds them.
  InboundMessage m;
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(h.pop(0, m));
  EXPECT_TRUE(h.must_wait(5));
  h.done(5);
  EXPECT_FALSE(h.must_wait(5));        // two of slot 5 left
  ASSERT_EQ(push_one(h, 5), Push::ok);
  EXPECT_TRUE(h.must_wait(5));
  h.done(5);
  h.done(5);
  h.done(5);
  h.done(6);
  EXPECT_FALSE(h.must_wait(5));
  EXPECT_FALSE(h.must_wait(6));
}

TEST(Handoff, ZeroQuotaOnlyTheRingLimits) {
  Handoff h(1, 0, 8);
  for (int i = 0; i < 7; ++i) ASSERT_EQ(push_one(h, 3), Push::ok);
  EXPECT_FALSE(h.must_wait(3));
  ASSERT_EQ(push_one(h, 3), Push::ok);
  EXPECT_TRUE(h.must_wait(3));
}

// A slot counts every message pushed for it until it is done, whichever link
// of the slot sent it: a new link in the slot waits for the last ones of the
// link before, and is counted from there.
TEST(Handoff, ASlotCountsWhatItsLastLinkLeft) {
  Handoff h(1, 2, 64);
  ASSERT_EQ(push_one(h, 9), Push::ok);
  ASSERT_EQ(push_one(h, 9), Push::ok);
  ASSERT_TRUE(h.must_wait(9));
  InboundMessage m;
  ASSERT_TRUE(h.pop(0, m));
  h.done(9);
  ASSERT_TRUE(h.pop(0, m));
  h.done(9);
  EXPECT_FALSE(h.must_wait(9));
  ASSERT_EQ(push_one(h, 9), Push::ok);
  EXPECT_FALSE(h.must_wait(9));
  ASSERT_EQ(push_one(h, 9), Push::ok);
  EXPECT_TRUE(h.must_wait(9));
  EXPECT_FALSE(h.must_wait(100000));   // never pushed
  h.done(200000);                      // never pushed: harmless
  EXPECT_FALSE(h.must_wait(200000));
}

TEST(Handoff, ParkedLinksComeBackInOrder) {
  Handoff h(1, 0, 4);
  EXPECT_FALSE(h.has_waiting());
  EXPECT_TRUE(h.take_waiting().empty());
  ASSERT_TRUE(h.park(id_of(3)));
  ASSERT_TRUE(h.park(id_of(1)));
  ASSERT_TRUE(h.park(id_of(2)));
  EXPECT_TRUE(h.has_waiting());
  EXPECT_EQ(h.take_waiting(), (std::vector<LinkId>{id_of(3), id_of(1), id_of(2)}));
  EXPECT_FALSE(h.has_waiting());
  EXPECT_TRUE(h.take_waiting().empty());
}

TEST(Handoff, RecheckRaisesSpaceOnlyAfterAPop) {
  Handoff h(1, 0, 4);
  const std::uint64_t seen = h.pops();
  h.recheck(seen);
  EXPECT_FALSE(h.space_pending());
  ASSERT_EQ(push_one(h, 0), Push::ok);
  h.recheck(seen);
  EXPECT_FALSE(h.space_pending());     // a push is not a pop
  InboundMessage m;
  ASSERT_TRUE(h.pop(0, m));
  EXPECT_EQ(h.pops(), seen + 1);
  h.recheck(seen);
  EXPECT_TRUE(h.space_pending());
  EXPECT_TRUE(h.take_space());
  h.recheck(h.pops());
  EXPECT_FALSE(h.space_pending());
}

TEST(Handoff, NotifySpaceAnswersTrueOncePerTake) {
  Handoff h(1, 0, 4);
  EXPECT_FALSE(h.take_space());
  EXPECT_TRUE(h.notify_space());
  EXPECT_FALSE(h.notify_space());
  EXPECT_FALSE(h.notify_space());
  EXPECT_TRUE(h.space_pending());
  EXPECT_TRUE(h.take_space());
  EXPECT_FALSE(h.take_space());
  EXPECT_TRUE(h.notify_space());
  EXPECT_TRUE(h.take_space());
  h.set_space();                       // the reactor's own raise: no wake-up owed
  EXPECT_FALSE(h.notify_space());
}

// With no workers every call is a no-op or fails (no division by zero rings).
TEST(Handoff, NoWorkersEveryCallFails) {
  Handoff h(0, 4, 8);
  EXPECT_FALSE(h.enabled());
  EXPECT_NE(push_one(h, 1), Push::ok);
  InboundMessage m;
  EXPECT_FALSE(h.pop(0, m));
}

// The reactor side follows handoff_gate(): read pops, check, park, ask for
// space, recheck; a worker marks each message done and notifies. Payload =
// (slot, seq).
TEST(Handoff, TwoThreadsLoseNothingAndKeepOrder) {
  constexpr unsigned workers = 2;
  constexpr std::uint32_t links = 6;
  constexpr std::uint32_t total = 100'000;
  Handoff h(workers, 4, 16);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  auto late = [&] { return std::chrono::steady_clock::now() > deadline; };
  std::atomic<std::uint32_t> received{0};
  std::atomic<bool> stop{false};
  std::vector<std::vector<std::uint32_t>> next(workers, std::vector<std::uint32_t>(links, 0));
  std::vector<std::uint32_t> errors(workers, 0);

  std::vector<std::thread> threads;
  for (unsigned w = 0; w < workers; ++w) {
    threads.emplace_back([&, w] {
      InboundMessage m;
      while (!stop.load(std::memory_order_acquire)) {
        if (!h.pop(w, m)) {
          std::this_thread::yield();
          continue;
        }
        std::uint32_t v[2];
        if (m.payload.size() != sizeof v) { ++errors[w]; continue; }
        std::memcpy(v, m.payload.data(), sizeof v);
        if (v[0] >= links || h.worker_of(v[0]) != w || m.id != id_of(v[0]) || v[1] != next[w][v[0]]) ++errors[w];
        else ++next[w][v[0]];
        h.done(m.id.slot());
        received.fetch_add(1, std::memory_order_release);
        (void)h.notify_space();
      }
    });
  }

  // No ASSERT before the join: a failure ends the loop instead.
  std::vector<std::uint32_t> sent(links, 0);
  std::uint32_t pushed = 0;
  bool failed = false;
  while (pushed < total && !failed && !late()) {
    const std::uint32_t slot = pushed % links;
    const std::uint64_t seen = h.pops();
    if (h.must_wait(slot)) {
      failed = !h.park(id_of(slot));
      h.recheck(seen);
      while (!h.take_space() && !late()) std::this_thread::yield();
      (void)h.take_waiting();
      continue;                        // check the same slot again
    }
    const std::uint32_t v[2] = {slot, sent[slot]};
    failed = h.push(slot, id_of(slot), Opcode::binary, std::as_bytes(std::span(v))) != Push::ok;
    if (failed) break;
    ++sent[slot];
    ++pushed;
  }
  while (received.load(std::memory_order_acquire) < pushed && !late()) std::this_thread::yield();
  stop.store(true, std::memory_order_release);
  for (auto& t : threads) t.join();

  ASSERT_FALSE(failed) << "park or push failed after " << pushed;
  ASSERT_FALSE(late()) << "deadline: pushed " << pushed << ", received " << received.load();
  EXPECT_EQ(pushed, total);
  EXPECT_EQ(received.load(), total);
  EXPECT_EQ(h.pops(), 2 * total);       // each message popped, then done
  for (unsigned w = 0; w < workers; ++w) EXPECT_EQ(errors[w], 0u) << "worker " << w;
  for (std::uint32_t s = 0; s < links; ++s) EXPECT_EQ(next[h.worker_of(s)][s], sent[s]) << "slot " << s;
}

}  // namespace
}  // namespace ringlink
