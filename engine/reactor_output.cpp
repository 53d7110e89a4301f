// Bytes going out: frames built (and masked, on client links), admitted by
// the queueing policy, written at once when nothing waits, else queued and
// flushed as one gather write; the backend's reports of what left.
#include <cerrno>
#include <cstring>

#include "engine/reactor_internal.hpp"
#include "protocol/codec.hpp"

namespace ringlink {

void Reactor::fill_mask(MaskKey& key) noexcept {
  const std::uint64_t r = rng_();
  std::memcpy(key.data(), &r, key.size());
}

SendResult Reactor::send_frame(Link& l, Opcode op, std::span<const std::byte> payload, PayloadRef shared) noexcept {
  const bool control = is_control(static_cast<std::uint8_t>(op));
  if (!l.is(LinkState::open) && !(control && l.is(LinkState::closing))) return SendResult::closed;
  if (control && payload.size() > max_control_payload) payload = payload.first(max_control_payload);
  FrameHeader h;
  h.fin = true;
  h.opcode = static_cast<std::uint8_t>(op);
  // permessage-deflate: data frames above the threshold, RSV1 set. A
  // broadcast payload (its frame header made once for every link) keeps its
  // one encoding and goes uncompressed; a payload sent to one link through
  // Server::send is compressed like any other.
  std::span<const std::byte> deflated;
  const bool shared_frame = shared && shared.frame_header_len() != 0;
  if (shared_frame && (std::to_integer<unsigned>(shared.frame_header()[0]) & 0x40) != 0) {
    // Compressed once for many (Reactor::broadcast): RSV1 on this frame too,
    // should a client link have to rebuild the header to mask it.
    h.rsv = 0x4;
    payload = shared.bytes();
  } else if (!control && !shared_frame && l.aux_ != nullptr) {
    // (A link without LinkAux has no deflate state: the out-of-line calls
    // are skipped for the common uncompressed echo.)
    if (deflates_in_own_context(l, payload.size())) {
      // The link's compressor keeps what it compressed: a message its queue
      // then refused would leave the peer's context behind ours, and every
      // later message would inflate to garbage. So it is admitted first, at
      // the most deflate can make of it.
      const std::size_t most = max_frame_header + payload.size() + (payload.size() >> 12) + (payload.size() >> 14) + 64;
      if (!make_room(l, most, false)) return SendResult::closed;
      const SendResult pre = admit(l, most, false);
      if (pre == SendResult::backpressured || pre == SendResult::closed) return pre;
    }
    if (deflate_for(l, payload, deflated)) {
      payload = deflated;
      h.rsv = 0x4;
      shared.reset();  // the compressed copy is what leaves
    }
  }
  h.payload_length = payload.size();
  std::array<std::byte, max_frame_header> hdr;
  std::size_t hl = 0;
  if (l.has(Link::f_client)) {
    // Client frames are masked with a fresh key, so the payload is copied:
    // into a reused scratch buffer, from which enqueue() copies only what the
    // socket did not take at once.
    h.masked = true;
    fill_mask(h.mask);
    try {
      mask_scratch_.resize(payload.size());
    } catch (const std::bad_alloc&) {
      out_of_memory(l);
      return SendResult::closed;
    }
    if (!payload.empty()) {
      std::memcpy(mask_scratch_.data(), payload.data(), payload.size());
      apply_mask(std::span<std::byte>(mask_scratch_), h.mask, 0);
    }
    payload = std::span<const std::byte>(mask_scratch_);
    shared.reset();
  }
  if (shared && shared.frame_header_len() != 0 && !l.has(Link::f_client)) {
    hl = shared.frame_header_len();
    std::memcpy(hdr.data(), shared.frame_header_storage().data(), hl);
  } else if (!h.masked && h.payload_length < 126) {
    // The usual reply: two bytes, no length field, no key (RFC 6455 5.2, the
    // encoding either codec's encoder would produce), built here rather than
    // through encode_header's general cases.
    hdr[0] = std::byte{static_cast<std::uint8_t>(0x80 | ((h.rsv & 0x7) << 4) | (h.opcode & 0x0F))};
    hdr[1] = std::byte{static_cast<std::uint8_t>(h.payload_length)};
    hl = 2;
  } else {
    FrameEncoder enc;
    hl = enc.encode_header(std::span<std::byte, max_frame_header>(hdr), h);
  }
  const SendResult r = enqueue(l, std::span<const std::byte>(hdr.data(), hl), payload, std::move(shared), control);
  if (mask_scratch_.capacity() > (1u << 20)) std::vector<std::byte>().swap(mask_scratch_);  // after a huge message
  if (!control && (r == SendResult::queued || r == SendResult::queued_dropping_older)) metrics_.messages_out.add();
  return r;
}

void Reactor::send_close_frame(Link& l, std::uint16_t code, std::string_view reason) noexcept {
  std::array<std::byte, max_control_payload> body;
  const std::uint16_t wire = code == close_code::no_status ? code : sendable_or_normal(code);
  const std::size_t n = write_close_payload(std::span<std::byte, max_control_payload>(body), wire, reason);
  (void)send_frame(l, Opcode::close, std::span<const std::byte>(body.data(), n), {});
}

void Reactor::send_http(Link& l, std::string_view bytes) noexcept {
  (void)enqueue(l, {}, std::as_bytes(std::span<const char>(bytes.data(), bytes.size())), {}, true);
}

// A burst within one turn (a handler sending much, many cross-thread
// sends) is written as soon as it passes the high-water mark or half the
// slots, or would not fit the queue's caps: memory stays bounded, and the
// outbound policy judges only what the socket did not take, as without
// corking. Not from inside a send that would call on_drain or end the
// link: those wait for the turn's flush. False when the link ended.
bool Reactor::make_room(Link& l, std::size_t total, bool control) noexcept {
  if (l.sendq_ != nullptr && !l.sendq_->empty() &&
      (l.sendq_->bytes() >= config::cork_high_water || l.sendq_->count() >= SendQueue::slots / 2 ||
       (!control && !l.sendq_->fits_data(total, cfg_.max_queued_bytes))) &&
      !l.has_any(Link::f_want_write | Link::f_send_busy | Link::f_drain_wanted | Link::f_close_after_flush) &&
      l.fd_ >= 0) {
    flush(l, true);
    return !l.closed();
  }
  return true;
}

// Output is corked: a frame only joins the link's queue, and the link joins
// the turn's flush list once; flush_all() gives each link one gather write
// at the turn's end, after the reads and commands, before the reactor
// sleeps (so no latency is added). Sixteen replies to sixteen messages of
// one read leave in one write.
SendResult Reactor::enqueue(Link& l, std::span<const std::byte> header, std::span<const std::byte> payload,
                            PayloadRef shared, bool control) noexcept {
  const std::size_t total = header.size() + payload.size();
  if (!make_room(l, total, control)) return SendResult::closed;
  const SendResult result = admit(l, total, control);
  if (result == SendResult::backpressured || result == SendResult::closed) return result;

  if (l.sendq_ == nullptr) l.sendq_ = queues_.acquire();
  if (l.sendq_ == nullptr) {
    out_of_memory(l);
    return SendResult::closed;
  }
  if (l.sendq_->full()) {
    // Only control frames get here: a peer that never reads while provoking
    // pongs. Nothing more can be queued without unbounded memory.
    abort_link(l, CloseReason::slow_consumer, close_code::policy_violation);
    return SendResult::closed;
  }
  if (!l.sendq_->push(header, payload, std::move(shared), control)) {
    out_of_memory(l);
    return SendResult::closed;
  }
  metrics_.queued_bytes.add(total);
  metrics_.queued_bytes_high_water.raise_to(metrics_.queued_bytes.get());
  if (!l.has_any(Link::f_want_write | Link::f_send_busy)) mark_flush(l);
  return result;
}

// The outbound policy, when a data frame does not fit the link's queue.
// Control frames are always admitted: no policy may refuse a pong or close.
SendResult Reactor::admit(Link& l, std::size_t total, bool control) noexcept {
  SendQueue* q = l.sendq_;
  if (control || q == nullptr || q->empty() || q->fits_data(total, cfg_.max_queued_bytes)) return SendResult::queued;
  switch (cfg_.outbound_policy) {
    case OutboundPolicy::reject:
      break;
    case OutboundPolicy::close_slow:
      // What the peer has not read yet is dropped now (a frame already
      // partly written must finish, or the stream would break), so the
      // slow link holds no memory while its close waits to go out.
      count_dropped(q->drop_unsent([](std::uint32_t) { return true; },
                                   [&](const SendFrame& f) { note_dropped_frame(l.id(), f); }));
      send_close_and_wait(l, cfg_.close_slow_code, "slow consumer", CloseReason::slow_consumer);
      return SendResult::closed;
    case OutboundPolicy::drop_oldest:
      // A link that keeps its compression context loses no queued frame:
      // the peer's context needs every one (it is refused, as under reject).
      if (deflates_in_own_context(l, cfg_.deflate.threshold)) break;
      // Oldest first, until the new frame fits.
      count_dropped(q->drop_unsent(
          [&](std::uint32_t frames_left) {
            return q->bytes() + total > cfg_.max_queued_bytes || frames_left >= SendQueue::data_slots;
          },
          [&](const SendFrame& f) { note_dropped_frame(l.id(), f); }));
      if (q->fits_data(total, cfg_.max_queued_bytes)) return SendResult::queued_dropping_older;
      break;
  }
  l.set(Link::f_drain_wanted);
  metrics_.send_backpressured.add();
  return SendResult::backpressured;
}

void Reactor::count_dropped(const SendQueue::Dropped& d) noexcept {
  metrics_.queued_bytes.sub(d.bytes);
  metrics_.send_dropped.add(d.frames);
}

void Reactor::mark_flush(Link& l) noexcept { join_list(flush_list_, l, Link::f_in_flush); }

void Reactor::on_writable(Link& l) noexcept {
  l.clear(Link::f_want_write);
  flush(l);
}

void Reactor::flush(Link& l, bool now) noexcept {
  while (l.sendq_ != nullptr && !l.sendq_->empty() && !l.closed() &&
         !l.has_any(Link::f_want_write | Link::f_send_busy)) {
    SendQueue& q = *l.sendq_;
    std::uint32_t ready = q.count();
    if constexpr (config::tls) {
      if (l.has(Link::f_tls)) {
        // Plaintext queued this turn becomes records now, sealed together
        // (reactor_tls.cpp); until the handshake is done it waits.
        if (q.sealed() < q.count()) tls_seal(l);
        if (l.closed() || l.sendq_ == nullptr) return;
        ready = q.sealed();
        if (ready == 0) return;
      }
    }
    const SendQueue::Gather g = q.gather(ready);
    const ssize_t r = now ? backend_.send_now(l.id().raw(), l.fd_, g.msg)
                          : backend_.send(l.id().raw(), l.fd_, g.msg, g.large);
    metrics_.write_calls.add();
    if (r >= 0 && static_cast<std::size_t>(r) < g.want) metrics_.partial_writes.add();
    if (now && (r == -EAGAIN || (r >= 0 && static_cast<std::size_t>(r) < g.want))) {
      if (r > 0) after_sent(l, static_cast<std::size_t>(r));
      mark_flush(l);  // the rest goes the backend's way at the turn's end
      return;
    }
    if (r == -EINPROGRESS) {  // a completion backend took it: on_sent() follows
      q.set_in_flight(g.frames, g.want);
      l.set(Link::f_send_busy);
      return;
    }
    if (r == -EAGAIN) {
      l.set(Link::f_want_write);
      return;
    }
    if (r < 0) {
      abort_link(l, CloseReason::io_error, close_code::abnormal);
      return;
    }
    after_sent(l, static_cast<std::size_t>(r));
    if (static_cast<std::size_t>(r) < g.want) {
      l.set(Link::f_want_write);
      return;
    }
  }
}

void Reactor::after_sent(Link& l, std::size_t n) noexcept {
  metrics_.bytes_out.add(n);
  SendQueue* q = l.sendq_;
  if (q == nullptr) return;
  const std::uint64_t before = q->bytes();
  const bool emptied = q->consume(n);
  metrics_.queued_bytes.sub(before - q->bytes());
  if (!emptied) return;
  queues_.release(q);
  l.sendq_ = nullptr;
  if (l.has(Link::f_close_after_flush)) {
    half_close_and_linger(l);
    return;
  }
  if (l.has(Link::f_drain_wanted) && l.is(LinkState::open)) {
    l.clear(Link::f_drain_wanted);
    call_handler(l, [&] { handler_.on_drain(l); });
  }
}

// A completion backend's send finished: res bytes left, or -errno.
void Reactor::on_sent(Link& l, ssize_t res) noexcept {
  l.clear(Link::f_send_busy);
  if (l.sendq_ != nullptr) {
    if (res >= 0 && static_cast<std::size_t>(res) < l.sendq_->in_flight_bytes()) metrics_.partial_writes.add();
    l.sendq_->set_in_flight(0, 0);
  }
  if (res < 0) {
    abort_link(l, CloseReason::io_error, close_code::abnormal, static_cast<int>(res));
    return;
  }
  after_sent(l, static_cast<std::size_t>(res));
  // The rest (a short send, or frames queued meanwhile) leaves at the end of
  // this turn, with every other link's sends, in one submission.
  if (!l.closed() && l.sendq_ != nullptr && !l.sendq_->empty()) mark_flush(l);
}

}  // namespace ringlink
