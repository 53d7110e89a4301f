// Bytes coming in: where the backend reads to, what it received, chunks
// held while a link is paused, the read side's end, and pausing itself.
#include <algorithm>
#include <cstring>

#include "engine/reactor_internal.hpp"

namespace ringlink {

std::span<std::byte> Reactor::read_target(Link& l) noexcept {
  if (l.paused() || l.closed()) return {};
  if constexpr (config::tls) {
    if (l.has(Link::f_tls)) return tls_read_target(l);
  }
  return plain_target(l);
}

// Room for the link's next input bytes (plaintext, on a TLS link) behind
// what it holds, in its own pooled chunk.
std::span<std::byte> Reactor::plain_target(Link& l) noexcept {
  const std::size_t cap = pool_->chunk_size();
  if (l.rbuf_ == nullptr) {
    l.rbuf_ = pool_->acquire();
    if (l.rbuf_ == nullptr) {
      metrics_.pool_exhausted.add();
      pause(l, Link::p_pool);
      join_list(pool_waiting_, l, Link::f_in_pool_wait);
      return {};
    }
    l.rstart_ = l.rlen_ = 0;
  }
  if (l.rlen_ == 0) l.rstart_ = 0;
  // Move a held partial frame to the front when little room is left behind it.
  if (l.rstart_ > 0 && cap - (l.rstart_ + l.rlen_) < 2048) {
    std::memmove(l.rbuf_, l.rbuf_ + l.rstart_, l.rlen_);
    l.rstart_ = 0;
  }
  const std::size_t used = l.rstart_ + l.rlen_;
  // A full chunk of bytes not yet decoded (a link resumed after its
  // hand-off gate stopped in the middle of a chunk, and the socket's edge
  // came before the reactor's next turn took the frames): no room now. The
  // link reads again once the read-again list has taken its frames.
  if (used >= cap) {
    l.set(Link::f_readable);
    mark_ready(l);
    return {};
  }
  return {l.rbuf_ + used, cap - used};
}

void Reactor::on_readable(Link& l, bool hangup) noexcept {
  l.set(Link::f_readable);
  if (hangup) l.set(Link::f_hangup);
  if (l.paused() || l.closed()) return;
  const std::uint64_t key = l.id().raw();
  const bool more = backend_.read_pass(*this, l, l.fd_, l.has(Link::f_hangup));
  if (link_for(key) != &l) return;  // closed while reading
  // A pass that found the socket empty (EAGAIN) leaves the chunk it took for
  // the read: an idle link holds none.
  if (l.rlen_ == 0) release_rbuf(l);
  if (more) {
    mark_ready(l);
  } else if (!l.paused() && !l.has(Link::f_in_ready)) {
    l.clear(Link::f_readable);
  }
}

// epoll read into read_target(), i.e. right after the held bytes: `data`
// is where they landed.
bool Reactor::on_received(Link& l, std::byte* data, std::size_t n) noexcept {
  ++receives_since_trim_;
  if constexpr (config::tls) {
    if (l.has(Link::f_tls)) return tls_received(l, data, n, nullptr);
  }
  l.rlen_ += static_cast<std::uint32_t>(n);
  l.last_rx_ms_ = ms32();
  if (l.has(Link::f_write_shut)) {  // lingering after our close: discard
    l.rlen_ = 0;
    return true;
  }
  process_input(l);
  if (l.closed()) return false;
  if (l.rlen_ == 0) release_rbuf(l);
  return !l.paused();
}

// A completion backend hands over a chunk it filled (n bytes from its start);
// the reactor owns it from here. Returns false when the link cannot take more
// now (paused or closed): the backend stops receiving for it.
bool Reactor::on_received_buffer(Link& l, std::byte* chunk, std::size_t n) noexcept {
  ++receives_since_trim_;
  l.last_rx_ms_ = ms32();
  if (l.has(Link::f_write_shut)) {  // lingering after our close: discard
    pool_->release(chunk);
    return true;
  }
  if (l.paused() || (l.aux_ != nullptr && !l.aux_->pending.empty())) {
    stash(l, chunk, 0, static_cast<std::uint32_t>(n));
    l.set(Link::f_readable);  // resume() re-arms the receive
    return false;
  }
  if constexpr (config::tls) {
    if (l.has(Link::f_tls)) {
      const bool go_on = tls_received(l, chunk, n, chunk);
      if (!go_on && !l.closed()) l.set(Link::f_readable);
      return go_on;
    }
  }
  // read_budget: what one link may have read in a row before the others'
  // completions are served. A completion backend hands over what the kernel
  // already received (a bundle may be megabytes), so past the budget the
  // link stops receiving until the next turn and keeps the rest stashed.
  const std::uint64_t key = l.id().raw();
  if (run_key_ != key) {
    run_key_ = key;
    run_bytes_ = 0;
  }
  run_bytes_ += n;
  feed_chunk(l, chunk, 0, static_cast<std::uint32_t>(n));
  if (l.closed()) return false;
  if (!l.paused() && run_bytes_ >= config::read_budget) pause_for_budget(l);
  if (l.paused()) {
    l.set(Link::f_readable);
    return false;
  }
  return true;
}

// Until the next turn (serve_over_budget). Without room on the list the
// link simply goes on: fairness is lost for a turn, nothing else.
void Reactor::pause_for_budget(Link& l) noexcept {
  if (!push_nothrow(over_budget_, l.id())) return;
  l.paused_ |= Link::p_budget;
}

// Keeps a chunk for when the link resumes. Without memory for that, the
// bytes cannot be kept in order: the link ends (and the chunk goes back).
void Reactor::stash(Link& l, std::byte* chunk, std::uint32_t offset, std::uint32_t length) noexcept {
  LinkAux* aux = aux_of(l);
  if (aux == nullptr || !push_nothrow(aux->pending, LinkAux::Pending{chunk, offset, length})) {
    pool_->release(chunk);
    out_of_memory(l);
  }
}

// Takes `length` bytes at chunk + offset as the next input of the link. With
// nothing held the chunk becomes the link's buffer (no copy); behind a held
// partial frame the bytes are appended to it, as much as fits at a time.
void Reactor::feed_chunk(Link& l, std::byte* chunk, std::uint32_t offset, std::uint32_t length) noexcept {
  if constexpr (config::tls) {
    if (l.has(Link::f_tls)) {
      (void)tls_received(l, chunk + offset, length, chunk);
      return;
    }
  }
  while (length > 0) {
    if (l.rlen_ == 0) {
      release_rbuf(l);
      l.rbuf_ = chunk;
      l.rstart_ = offset;
      l.rlen_ = length;
      process_input(l);
      if (!l.closed() && l.rlen_ == 0) release_rbuf(l);
      return;
    }
    const std::span<std::byte> target = read_target(l);
    if (target.empty()) {  // paused
      stash(l, chunk, offset, length);
      return;
    }
    const auto k = static_cast<std::uint32_t>(std::min<std::size_t>(length, target.size()));
    std::memcpy(target.data(), chunk + offset, k);
    offset += k;
    length -= k;
    l.rlen_ += k;
    process_input(l);
    if (l.closed()) break;
    if (l.paused()) {
      if (length > 0) {
        stash(l, chunk, offset, length);
        return;
      }
      break;
    }
  }
  if (!l.closed() && l.rlen_ == 0) release_rbuf(l);
  pool_->release(chunk);
}

// Feeds chunks stashed while the link was paused, until it pauses again.
void Reactor::drain_pending(Link& l) noexcept {
  if (l.aux_ == nullptr || l.aux_->pending.empty()) return;
  std::vector<LinkAux::Pending> queue;
  queue.swap(l.aux_->pending);
  std::size_t i = 0;
  std::size_t fed = 0;
  while (i < queue.size() && !l.paused() && !l.closed()) {
    feed_chunk(l, queue[i].chunk, queue[i].offset, queue[i].length);
    fed += queue[i].length;
    ++i;
    // A long stash is taken a read budget per turn, like a socket.
    if (fed >= config::read_budget && i < queue.size() && !l.paused() && !l.closed()) pause_for_budget(l);
  }
  if (l.closed()) {
    for (; i < queue.size(); ++i) pool_->release(queue[i].chunk);
    return;
  }
  // Paused again: what feed_chunk stashed comes first, then the rest.
  if (i < queue.size()) {
    try {
      l.aux_->pending.insert(l.aux_->pending.end(), queue.begin() + static_cast<std::ptrdiff_t>(i), queue.end());
    } catch (const std::bad_alloc&) {
      for (; i < queue.size(); ++i) pool_->release(queue[i].chunk);
      out_of_memory(l);
      return;
    }
  }
  trim_aux(l);
}

void Reactor::on_read_end(Link& l, int err) noexcept {
  if (l.closed()) return;
  if (err != 0) {
    // A closing link keeps the cause it was closing for.
    const CloseReason why = l.is(LinkState::closing) ? l.close_reason_ : CloseReason::io_error;
    abort_link(l, why, close_code::abnormal, err);
    return;
  }
  // A completion backend reports the FIN as soon as it is read, maybe ahead
  // of input the link has not taken yet (paused): take that first; the
  // receive re-armed at resume() reports the FIN again.
  bool held = false;
  if constexpr (config::tls) held = l.has(Link::f_tls) && tls_of(l)->held != nullptr;
  if ((!backend_.inline_sends() || held) && (l.paused() || held || (l.aux_ != nullptr && !l.aux_->pending.empty()))) {
    l.set(Link::f_readable);
    return;
  }
  // Replies to the last messages may still sit in the queue (output is
  // corked until the turn's end): write them now, before the socket goes.
  if (l.sendq_ != nullptr && !l.sendq_->empty() && !l.has_any(Link::f_send_busy | Link::f_want_write)) {
    flush(l, true);
    if (l.closed()) return;
  }
  if (l.is(LinkState::closing)) {
    abort_link(l, l.close_reason_, l.close_code_);
    return;
  }
  if (l.is(LinkState::handshaking) && !l.has(Link::f_client)) metrics_.handshakes_failed.add();
  abort_link(l, CloseReason::peer_eof, close_code::abnormal);
}

void Reactor::release_rbuf(Link& l) noexcept {
  if (l.rbuf_ == nullptr) return;
  pool_->release(l.rbuf_);
  l.rbuf_ = nullptr;
  l.rstart_ = l.rlen_ = 0;
}

void Reactor::process_input(Link& l) noexcept {
  if (l.is(LinkState::handshaking)) {
    const bool opened = l.has(Link::f_client) ? verify_upgrade(l) : serve_upgrade(l);
    if (!opened) return;
  }
  if (l.is(LinkState::open) || l.is(LinkState::closing)) process_frames(l);
  if (l.session_ != nullptr && l.is(LinkState::open) && l.session_->at_rest()) {
    drop_session(l.session_);  // between messages: the next byte starts a fresh one
    l.session_ = nullptr;
  }
}

// The paused_links gauge and read_pauses count pauses for a cause; the
// read budget's turn-long stop (p_budget) is neither.
void Reactor::pause(Link& l, Link::Pause why) noexcept {
  if ((l.paused_ & ~Link::p_budget) == 0) {
    metrics_.paused_links.add();
    metrics_.read_pauses.add();
  }
  l.paused_ |= why;
}

void Reactor::resume(Link& l, Link::Pause why) noexcept {
  if ((l.paused_ & why) == 0) return;
  l.paused_ &= static_cast<std::uint8_t>(~why);
  if (why != Link::p_budget && (l.paused_ & ~Link::p_budget) == 0) metrics_.paused_links.sub();
  // The edge for bytes already waiting was spent while paused.
  if (!l.paused()) mark_ready(l);
}

void Reactor::mark_ready(Link& l) noexcept { join_list(read_again_, l, Link::f_in_ready); }

}  // namespace ringlink
