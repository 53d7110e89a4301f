// WorkerBacklog: the messages a worker thread has taken from its rings but
// not yet handed to the business side, served link by link in turn rather
// than in arrival order, so a link whose messages are slow to handle delays
// only itself.
//
//   WorkerBacklog b(capacity);
//   while (!b.full() && ring.try_pop(m)) if (!b.add(m)) handle(m);   // out of memory: now
//   InboundMessage next;
//   while (b.next(next)) handle(next);
//
// Order of service: a link that had nothing waiting when its message came
// (a sparse link: one request, one reply) is served before the links with a
// backlog; after one message it joins the back of the backlog links, which
// take one message each in turn. A link's own messages always keep their
// order. This is the new-flow/old-flow split of fq_codel, with a quantum of
// one message: a link flooding the business side waits behind its own
// messages, and one that asks rarely waits for at most one message of each.
//
// Bounded: at most `capacity` messages (full() says stop popping; the rings,
// then the reactors' per-link quota, hold the rest). Single thread: the
// worker's. No allocation per message; one map node per link while it has
// messages.
#pragma once

#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "engine/handoff.hpp"

namespace ringlink {

class WorkerBacklog {
 public:
  // Without memory for `capacity` it holds nothing (add() always says no),
  // and the worker serves in arrival order.
  explicit WorkerBacklog(std::size_t capacity) noexcept;

  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  bool full() const noexcept { return size_ >= nodes_.size(); }

  // Takes `m` (moved from on success). False when full, or when the link
  // had nothing waiting and there is no memory to track it: `m` is
  // untouched and the caller serves it at once, which keeps the link's order
  // (nothing of it waits here).
  bool add(InboundMessage& m) noexcept;
  // The next message to serve; false when there is none.
  bool next(InboundMessage& out) noexcept;

 private:
  static constexpr std::uint32_t none = UINT32_MAX;
  struct Node {
    InboundMessage msg;
    std::uint32_t next = none;
  };
  struct Entry {
    std::uint32_t head = none, tail = none;
  };
  // A FIFO of link keys with room for every link that can have messages.
  class KeyQueue {
   public:
    void reserve(std::size_t n) { keys_.resize(n); }  // push() keeps within it
    bool empty() const noexcept { return count_ == 0; }
    void push(std::uint64_t k) noexcept {
      keys_[(first_ + count_) % keys_.size()] = k;
      ++count_;
    }
    std::uint64_t pop() noexcept {
      const std::uint64_t k = keys_[first_];
      first_ = (first_ + 1) % keys_.size();
      --count_;
      return k;
    }

   private:
    std::vector<std::uint64_t> keys_;
    std::size_t first_ = 0, count_ = 0;
  };

  std::vector<Node> nodes_;            // `capacity` nodes; the free ones chained from free_
  std::uint32_t free_ = none;
  std::size_t size_ = 0;
  std::unordered_map<std::uint64_t, Entry> links_;  // links with messages waiting
  KeyQueue fresh_;                     // links that had none waiting when their message came
  KeyQueue backlog_;                   // links served once with more still waiting
};

}  // namespace ringlink
