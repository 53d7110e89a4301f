// SendQueue: one link's bounded queue of outgoing frames, and the gather
// list that writes them. A shared payload (a broadcast) is referenced, never
// copied: its frame keeps the header bytes beside the reference, and the
// gather write sends both without joining them. A small frame of the
// caller's bytes is copied, header and payload together, into the queue's
// arena, where frames queued one after another sit back to back and leave
// as one iovec: sixteen echoes of a turn are one buffer for the kernel.
//
//   SendQueue& q = ...;
//   q.push(header, payload, shared, control);
//   SendQueue::Gather g = q.gather();           // iovecs of what is unsent
//   ssize_t n = sendmsg(fd, &g.msg, ...);
//   q.consume(n);                               // frames fully sent leave
//
// No I/O, metrics or policy here: the reactor decides when a queue is full,
// what to drop and what a short write means.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <array>
#include <new>
#include <cstdint>
#include <span>
#include <vector>

#include "engine/buffer_pool.hpp"
#include "engine/payload.hpp"
#include "protocol/frame.hpp"
#include "ringlink_config.hpp"

namespace ringlink {

struct SendFrame {
  PayloadRef payload;             // owns the bytes at `data`, unless they are in the arena
  const std::byte* data = nullptr;  // what follows `header`: the payload, or (arena) header and payload
  std::uint32_t written = 0;      // bytes of header + data already sent
  std::uint32_t length = 0;       // bytes at `data`
  std::array<std::byte, max_frame_header> header{};
  std::uint8_t header_len = 0;
  std::uint8_t control = 0;       // never dropped by a policy
  std::uint32_t total() const noexcept { return header_len + length; }
};

class SendQueue {
 public:
  static constexpr std::uint32_t slots = config::send_ring_slots;
  // Data frames may fill all but a few slots, which stay free for control
  // frames (pong, close) that no policy may refuse.
  static constexpr std::uint32_t data_slots = slots > 4 ? slots - 2 : slots;
  // Bytes of small frames copied in; reused each time the queue empties.
  static constexpr std::size_t arena_bytes = 4096;

  // Frames are built in their slots only when pushed: a new queue touches a
  // few words, not its slots (one is taken for every link that sends while
  // the cache is empty, e.g. a round of keepalive pings).
  SendQueue() noexcept {}
  ~SendQueue() { clear(); }
  SendQueue(const SendQueue&) = delete;
  SendQueue& operator=(const SendQueue&) = delete;

  std::uint32_t count() const noexcept { return count_; }
  bool empty() const noexcept { return count_ == 0; }
  std::uint64_t bytes() const noexcept { return bytes_; }       // unsent bytes
  bool full() const noexcept { return count_ >= slots; }
  // Would a data frame of `total` bytes pass the byte cap and the data slots?
  bool fits_data(std::size_t total, std::uint64_t max_bytes) const noexcept {
    return bytes_ + total <= max_bytes && count_ < data_slots;
  }
  SendFrame& at(std::uint32_t i) noexcept { return slot(head_ + i); }

  // Appends a frame. The payload is `shared` when given, else copied (into
  // the arena when it has room). False when the copy's memory is not to be
  // had or every slot is taken (nothing is queued then).
  [[nodiscard]] bool push(std::span<const std::byte> header, std::span<const std::byte> payload, PayloadRef shared,
                          bool control) noexcept;

  // Drops data frames not yet started, oldest first, while
  // should_drop(frames that would be left) says so; control frames, frames
  // in flight and a frame partly written stay, in order. on_drop(frame) sees
  // each dropped frame just before it goes (a publication's trailer says
  // which one was lost).
  struct Dropped {
    std::uint32_t frames = 0;
    std::uint64_t bytes = 0;
  };
  struct NoDropHook {
    void operator()(const SendFrame&) const noexcept {}
  };
  template <class F, class G = NoDropHook>
  Dropped drop_unsent(F&& should_drop, G&& on_drop = G{}) noexcept;

  // The gather list of the front frames: up to config::send_batch iovecs,
  // frames whose bytes lie back to back sharing one. It lives in the queue:
  // a completion backend reads it after the call.
  struct Gather {
    msghdr& msg;
    std::size_t want;       // bytes it covers
    std::uint32_t frames;   // frames it reaches into
    bool large;             // holds a payload of at least zc_threshold bytes
  };
  Gather gather() noexcept { return gather(count_); }
  // The same over the front `max_frames` frames only (TLS: the sealed ones).
  Gather gather(std::uint32_t max_frames) noexcept;

  // `n` bytes left from the front; returns true when the queue emptied.
  bool consume(std::size_t n) noexcept;

  // Frames a completion backend is sending: they stay put until it reports.
  std::uint32_t in_flight() const noexcept { return in_flight_; }
  std::size_t in_flight_bytes() const noexcept { return in_flight_bytes_; }
  void set_in_flight(std::uint32_t frames, std::size_t bytes) noexcept {
    in_flight_ = frames;
    in_flight_bytes_ = bytes;
  }

  // Empties the queue, letting go of every payload.
  void clear() noexcept;

  // TLS links (engine/reactor_tls.cpp): the front `sealed()` frames are
  // records ready for the wire, the rest plaintext waiting to be sealed at
  // the flush. Sealed frames are pushed as control frames, so no policy
  // drops a record (the peer's decryption would break). Plain links never
  // seal: their frames go out as they are.
  std::uint32_t sealed() const noexcept { return sealed_; }
  void mark_sealed() noexcept { sealed_ = count_; }
  // Queues records (`bytes`, copied) after the sealed frames and before any
  // plaintext still waiting: handshake messages OpenSSL wrote go out ahead
  // of the data they protect. False when out of memory or slots.
  [[nodiscard]] bool push_sealed(std::span<const std::byte> bytes) noexcept;
  // Drops the frames from index `from` on (plaintext just sealed into a
  // record); returns their bytes.
  std::uint64_t truncate(std::uint32_t from) noexcept;

 private:
  SendFrame& slot(std::uint32_t i) noexcept {
    return *std::launder(reinterpret_cast<SendFrame*>(storage_ + ((i & (slots - 1)) * sizeof(SendFrame))));
  }

  std::uint32_t head_ = 0;
  std::uint32_t count_ = 0;
  std::uint32_t in_flight_ = 0;
  std::uint32_t sealed_ = 0;
  std::uint64_t bytes_ = 0;
  std::size_t arena_used_ = 0;
  std::size_t in_flight_bytes_ = 0;
  // Only the `count_` slots from `head_` hold constructed frames.
  alignas(SendFrame) std::byte storage_[slots * sizeof(SendFrame)];
  // Written by gather() before use.
  std::array<iovec, config::send_batch> iov_;
  msghdr msg_;
  alignas(64) std::byte arena_[arena_bytes];
};

template <class F, class G>
SendQueue::Dropped SendQueue::drop_unsent(F&& should_drop, G&& on_drop) noexcept {
  Dropped d;
  std::uint32_t kept = 0;
  const std::uint32_t n = count_;
  for (std::uint32_t i = 0; i < n; ++i) {
    SendFrame& f = at(i);
    if (i >= in_flight_ && !f.control && f.written == 0 && should_drop(kept + (n - i))) {
      bytes_ -= f.total();
      ++d.frames;
      d.bytes += f.total();
      on_drop(static_cast<const SendFrame&>(f));
      f.~SendFrame();
      continue;
    }
    if (kept != i) {  // slot `kept` was emptied above
      new (&at(kept)) SendFrame(std::move(f));
      f.~SendFrame();
    }
    ++kept;
  }
  count_ = kept;
  return d;
}

// Queues come and go with bursts (a round of keepalive pings, every link
// answering a close at once), so a reactor keeps the ones it has made, in
// whole pages of their own: idle links hold none, and once the burst is over
// trim() hands the pages of all but a few warm queues back to the kernel.
// Freed into the allocator instead, a burst's queues would stay resident
// (neither mimalloc nor glibc returns such pages by itself): 15,000 links
// pinged in one turn left tens of MiB behind.
//
// Single-threaded, the reactor's, like the ChunkPool underneath.
class SendQueueCache {
 public:
  static constexpr std::size_t warm = 64;   // queues trim() leaves their pages

  SendQueueCache() noexcept;
  SendQueueCache(const SendQueueCache&) = delete;
  SendQueueCache& operator=(const SendQueueCache&) = delete;
  ~SendQueueCache() = default;
  SendQueue* acquire() noexcept;   // null when out of memory
  void release(SendQueue* q) noexcept;
  // Pages of the cached queues past the `warm` most recent back to the
  // kernel (for when the reactor is quiet); the pages handed back.
  std::size_t trim() noexcept { return pool_.trim(warm); }
  std::size_t cached() const noexcept { return pool_.cached(); }
  std::size_t in_use() const noexcept { return pool_.in_use(); }

 private:
  ChunkPool pool_;
};

}  // namespace ringlink
