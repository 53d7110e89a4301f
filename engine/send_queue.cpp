#include "engine/send_queue.hpp"

#include <cstring>
#include <limits>
#include <new>

namespace ringlink {

bool SendQueue::push(std::span<const std::byte> header, std::span<const std::byte> payload, PayloadRef shared,
                     bool control) noexcept {
  if (full()) return false;
  const std::size_t total = header.size() + payload.size();
  if (!shared && total <= arena_bytes - arena_used_) {
    std::byte* at_arena = arena_ + arena_used_;
    if (!header.empty()) std::memcpy(at_arena, header.data(), header.size());
    if (!payload.empty()) std::memcpy(at_arena + header.size(), payload.data(), payload.size());
    arena_used_ += total;
    SendFrame& f = *new (&at(count_)) SendFrame{};
    f.data = at_arena;
    f.length = static_cast<std::uint32_t>(total);
    f.control = control ? 1 : 0;
  } else {
    if (!shared && !payload.empty()) {
      shared = PayloadRef::allocate(payload.size());
      if (!shared) return false;
      std::memcpy(shared.data(), payload.data(), payload.size());
    }
    SendFrame& f = *new (&at(count_)) SendFrame{};
    f.payload = std::move(shared);
    f.data = f.payload.data();
    f.header_len = static_cast<std::uint8_t>(header.size());
    if (!header.empty()) std::memcpy(f.header.data(), header.data(), header.size());
    f.length = static_cast<std::uint32_t>(payload.size());
    f.control = control ? 1 : 0;
  }
  ++count_;
  bytes_ += total;
  return true;
}

bool SendQueue::push_sealed(std::span<const std::byte> bytes) noexcept {
  if (!push({}, bytes, {}, true)) return false;
  // Rotate the new frame back to the end of the sealed ones.
  if (sealed_ + 1 < count_) {
    SendFrame moved = std::move(at(count_ - 1));
    for (std::uint32_t i = count_ - 1; i > sealed_; --i) at(i) = std::move(at(i - 1));
    at(sealed_) = std::move(moved);
  }
  ++sealed_;
  return true;
}

SendQueue::Gather SendQueue::gather(std::uint32_t max_frames) noexcept {
  std::size_t cnt = 0;
  std::size_t want = 0;
  bool large = false;
  auto add = [&](const std::byte* p, std::size_t n) {
    if (cnt > 0 && static_cast<const std::byte*>(iov_[cnt - 1].iov_base) + iov_[cnt - 1].iov_len == p) {
      iov_[cnt - 1].iov_len += n;  // back to back in the arena
    } else {
      iov_[cnt++] = {const_cast<std::byte*>(p), n};
    }
    want += n;
  };
  std::uint32_t frames = 0;
  // Each frame adds at most two iovecs.
  const std::uint32_t limit = max_frames < count_ ? max_frames : count_;
  while (frames < limit && cnt + 2 <= iov_.size()) {
    SendFrame& f = at(frames++);
    std::size_t skip = f.written;
    if (skip < f.header_len) {
      add(f.header.data() + skip, f.header_len - skip);
      skip = 0;
    } else {
      skip -= f.header_len;
    }
    if (f.length > skip) {
      add(f.data + skip, f.length - skip);
      if (config::zc_threshold > 0 && f.length - skip >= config::zc_threshold) large = true;
    }
  }
  msg_ = msghdr{};
  msg_.msg_iov = iov_.data();
  msg_.msg_iovlen = cnt;
  return Gather{msg_, want, frames, large};
}

bool SendQueue::consume(std::size_t n) noexcept {
  while (n > 0 && count_ > 0) {
    SendFrame& f = at(0);
    const std::size_t left = f.total() - f.written;
    if (n < left) {
      f.written += static_cast<std::uint32_t>(n);
      bytes_ -= n;
      return false;
    }
    n -= left;
    bytes_ -= left;
    f.~SendFrame();
    head_ = (head_ + 1) & (slots - 1);
    --count_;
    if (sealed_ > 0) --sealed_;
  }
  if (count_ != 0) return false;
  arena_used_ = 0;
  return true;
}

void SendQueue::clear() noexcept {
  for (std::uint32_t i = 0; i < count_; ++i) at(i).~SendFrame();
  head_ = count_ = in_flight_ = sealed_ = 0;
  in_flight_bytes_ = 0;
  bytes_ = 0;
  arena_used_ = 0;
}

std::uint64_t SendQueue::truncate(std::uint32_t from) noexcept {
  std::uint64_t dropped = 0;
  while (count_ > from) {
    SendFrame& f = at(count_ - 1);
    dropped += f.total() - f.written;
    f.~SendFrame();
    --count_;
  }
  bytes_ -= dropped;
  if (sealed_ > count_) sealed_ = count_;
  if (count_ == 0) arena_used_ = 0;
  return dropped;
}

// Every queue a reactor made stays in the pool's free list (address space
// only once trimmed), so the cache has no upper bound of its own: at most as
// many queues as links that had output at one time.
static_assert(alignof(SendQueue) <= ChunkPool::padding, "a pool chunk's data is aligned to its padding");

SendQueueCache::SendQueueCache() noexcept
    : pool_(std::numeric_limits<std::size_t>::max(), sizeof(SendQueue), warm) {}

SendQueue* SendQueueCache::acquire() noexcept {
  std::byte* p = pool_.acquire();
  return p != nullptr ? new (p) SendQueue : nullptr;
}

void SendQueueCache::release(SendQueue* q) noexcept {
  q->~SendQueue();
  // Keep room for every queue made so far; should the room not grow, the
  // queue goes back to the allocator, which is only memory kept longer.
  if (pool_.cached() >= pool_.max_cached()) pool_.set_max_cached(2 * pool_.max_cached());
  pool_.release(reinterpret_cast<std::byte*>(q));
}

}  // namespace ringlink
