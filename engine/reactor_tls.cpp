// The TLS transport between the backend's bytes and the protocol session.
// Compiled with the `tls` feature only; the reactor's other files call in
// under `if constexpr (config::tls)` for links flagged f_tls.
//
// In: ciphertext (read into tls_in_ by epoll, or the pooled chunk io_uring
// filled) is read by OpenSSL straight from where it landed (TlsLink's BIO);
// plaintext comes out into the link's receive chunk and takes the plain
// path (upgrade, frames). What a paused link has not taken stays in a
// pooled chunk the TlsLink holds, so order is kept and nothing is re-read.
//
// Out: frames are queued as plaintext like on any link, and sealed at the
// flush: the turn's small frames join into one record (up to 16 KiB of
// plaintext), large payloads are sealed as they are. The records replace the
// plaintext in the send queue and leave in the link's one gather write; the
// queue keeps them until the kernel took them (io_uring's completion
// included). What OpenSSL writes by itself (handshake, alerts, session
// tickets, KeyUpdate answers) is queued ahead of plaintext not yet sealed.
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <cstring>

#include "engine/clock.hpp"
#include "engine/log.hpp"
#include "engine/reactor_internal.hpp"
#include "engine/tls_context.hpp"
#include "engine/tls_link.hpp"

namespace ringlink {

namespace {

// The most plaintext one TLS record carries.
constexpr std::size_t record_plain = 16384;

constexpr std::string_view plaintext_body = "This port speaks TLS: use https:// or wss://\n";

// The host of a Host header value ("name:port", "[v6]:port"), for SNI and
// certificate name checks.
std::string host_of(std::string_view authority) {
  if (!authority.empty() && authority.front() == '[') {
    const std::size_t end = authority.find(']');
    return std::string(authority.substr(1, end == std::string_view::npos ? std::string_view::npos : end - 1));
  }
  const std::size_t colon = authority.rfind(':');
  return std::string(colon == std::string_view::npos ? authority : authority.substr(0, colon));
}

// The last bytes a link sends (an alert, close_notify) go straight to the
// socket: nothing of the link is in flight at these points, and the link
// ends right after. A full socket loses them, which only costs the peer
// the reason.
void send_last(int fd, const std::vector<std::byte>& bytes) noexcept {
  if (fd >= 0 && !bytes.empty()) (void)::send(fd, bytes.data(), bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
}

}  // namespace

bool Reactor::attach_tls(Link& l, ssl_st* ssl) noexcept {
  if (ssl == nullptr && tls_ctx_ != nullptr) ssl = tls_ctx_->new_session();
  if (ssl == nullptr) return false;
  if (tls_links_.size() <= l.slot_) {
    try {
      tls_links_.resize(std::max<std::size_t>(l.slot_ + 1, tls_links_.size() * 2), nullptr);
    } catch (const std::bad_alloc&) {
      SSL_free(ssl);
      return false;
    }
  }
  auto* t = new (std::nothrow) TlsLink(ssl);
  if (t == nullptr) {
    SSL_free(ssl);
    return false;
  }
  if (!t->ok()) {
    delete t;
    return false;
  }
  t->set_output(&tls_out_);
  t->started_ns = steady_now_ns();
  tls_links_[l.slot_] = t;
  l.set(Link::f_tls);
  return true;
}

bool Reactor::attach_tls_client(Link& l, const ConnectRequest& req) noexcept {
  std::string why;
  SSL* ssl = nullptr;
  try {
    if (!tls_clients_) tls_clients_ = std::make_shared<TlsClientContexts>();
    const std::string name = req.tls.server_name.empty() ? host_of(req.host_header) : req.tls.server_name;
    ssl = tls_clients_->new_session(req.tls, name, &why);
  } catch (const std::bad_alloc&) {
    why = "out of memory";
  }
  if (ssl == nullptr) {
    RINGLINK_LOG(LogLevel::warn, "reactor %u: no TLS for a client link: %s", index_, why.c_str());
    return false;
  }
  if (!attach_tls(l, ssl)) return false;
  // With epoll the first writable edge (the connection is made) sends the
  // ClientHello; a completion backend's send waits for the connection.
  if (backend_.inline_sends()) l.set(Link::f_want_write);
  if (!tls_of(l)->connect()) {
    tls_fail(l);
    return !l.closed();
  }
  tls_emit(l);
  return !l.closed();
}

void Reactor::detach_tls(Link& l) noexcept {
  TlsLink* t = tls_of(l);
  if (t != nullptr && t->held != nullptr) pool_->release(t->held);
  delete t;
  tls_links_[l.slot_] = nullptr;
  l.clear(Link::f_tls);
}

std::span<std::byte> Reactor::tls_read_target(Link& l) noexcept {
  const TlsLink& t = *tls_of(l);
  if (t.held != nullptr || t.has_buffered_plaintext()) {
    // Input from before is still waiting for room: take that first.
    l.set(Link::f_readable);
    mark_ready(l);
    return {};
  }
  if (tls_in_.size() < config::chunk_size) {
    try {
      tls_in_.resize(config::chunk_size);
    } catch (const std::bad_alloc&) {
      out_of_memory(l);
      return {};
    }
  }
  return {tls_in_.data(), tls_in_.size()};
}

// Ciphertext received: `chunk` is the pooled chunk holding it (io_uring,
// owned from here), or null when it sits in tls_in_ (epoll). False when the
// link cannot take more now.
bool Reactor::tls_received(Link& l, std::byte* data, std::size_t n, std::byte* chunk) noexcept {
  TlsLink& t = *tls_of(l);
  l.last_rx_ms_ = ms32();
  if (l.has(Link::f_write_shut)) {  // lingering after our close: discard
    if (chunk != nullptr) pool_->release(chunk);
    return true;
  }
  if (t.held != nullptr) {
    // Behind input still waiting (only a completion backend gets here): in order.
    if (chunk != nullptr) {
      stash(l, chunk, static_cast<std::uint32_t>(data - chunk), static_cast<std::uint32_t>(n));
    }
    return false;
  }
  if (!t.first_byte_seen && !l.has(Link::f_client) && n > 0) {
    t.first_byte_seen = true;
    if (tls_plaintext_on_tls_port(l, data, n)) {
      if (chunk != nullptr) pool_->release(chunk);
      return false;
    }
  }
  return tls_feed(l, data, n, chunk);
}

// Pumps `n` bytes of ciphertext through the session; what a pause leaves
// unread is kept (in `chunk` when given, else copied into one). The chunk
// is released when all was taken. Same result as tls_received.
bool Reactor::tls_feed(Link& l, const std::byte* data, std::size_t n, std::byte* chunk) noexcept {
  TlsLink& t = *tls_of(l);
  t.set_input(data, n);
  if (tls_admit(l)) tls_pump(l);
  const std::size_t left = l.closed() ? 0 : t.input_left();
  const std::byte* rest = t.input();
  t.set_input(nullptr, 0);
  if (left == 0) {
    if (chunk != nullptr) pool_->release(chunk);
    return !l.closed() && !l.paused();
  }
  if (chunk == nullptr) {
    chunk = pool_->acquire();
    if (chunk == nullptr) {
      out_of_memory(l);
      return false;
    }
    std::memcpy(chunk, rest, left);
    rest = chunk;
  }
  t.held = chunk;
  t.held_offset = static_cast<std::uint32_t>(rest - chunk);
  t.held_length = static_cast<std::uint32_t>(left);
  return false;
}

// May this server link run a handshake step now? Past the turn's budget
// (or behind others already waiting) it waits, paused, in the admission
// queue with its input held; begin_turn() admits the oldest first. A full
// queue refuses the connection.
bool Reactor::tls_admit(Link& l) noexcept {
  TlsLink& t = *tls_of(l);
  if (l.has(Link::f_client) || t.handshake_done()) return true;
  if (t.admitted) {
    t.admitted = false;
    return true;
  }
  if (tls_budget_ > 0 && tls_admission_.empty()) {
    --tls_budget_;
    return true;
  }
  if (tls_admission_.size() >= cfg_.tls_handshake_queue || !push_nothrow(tls_admission_, l.id())) {
    metrics_.tls_handshakes_shed.add();
    metrics_.handshakes_failed.add();
    t.counted = true;
    abort_link(l, CloseReason::handshake_refused, close_code::abnormal);
    return false;
  }
  metrics_.tls_handshakes_pending.add();
  metrics_.tls_handshakes_queued.add();
  pause(l, Link::p_admission);
  return false;
}

void Reactor::tls_admit_queued() noexcept {
  while (tls_budget_ > 0 && !tls_admission_.empty()) {
    const LinkId id = tls_admission_.front();
    tls_admission_.pop_front();
    metrics_.tls_handshakes_pending.sub();
    Link* l = find(id);
    if (l == nullptr) continue;  // ended while waiting (timeout, reset)
    --tls_budget_;
    tls_of(*l)->admitted = true;
    resume(*l, Link::p_admission);  // read again this turn: the held input first
  }
}

// A paused link resumed (or found room): what it holds goes first. False
// when the link cannot read on now.
bool Reactor::tls_resume(Link& l) noexcept {
  TlsLink& t = *tls_of(l);
  if (t.held == nullptr) {
    if (t.has_buffered_plaintext()) tls_pump(l);
    return !l.closed() && !l.paused();
  }
  std::byte* chunk = t.held;
  t.held = nullptr;
  return tls_feed(l, chunk + t.held_offset, t.held_length, chunk);
}

// Plaintext out of the session into the link's receive chunk and through
// the plain path, until OpenSSL needs more ciphertext, the link pauses, or
// it ends. Whatever OpenSSL wrote meanwhile is queued.
void Reactor::tls_pump(Link& l) noexcept {
  TlsLink& t = *tls_of(l);
  for (;;) {
    if (l.closed() || l.paused()) break;
    if (l.has(Link::f_write_shut)) {  // lingering: nothing more is read
      t.set_input(nullptr, 0);
      break;
    }
    if (!t.readable()) break;
    const std::span<std::byte> target = plain_target(l);
    if (target.empty()) break;  // no room or no chunk: the link comes back
    const int r = t.read(target);
    if (!t.counted && t.handshake_done()) tls_handshake_done(l);
    // What the read wrote (handshake, tickets, a KeyUpdate answer) joins
    // this link's queue now: the handler below may flush another link, and
    // tls_out_ is shared by every link of the reactor.
    if (r != TlsLink::failed && !tls_out_.empty()) {
      tls_seal(l);
      if (l.closed()) return;
    }
    if (r > 0) {
      l.rlen_ += static_cast<std::uint32_t>(r);
      process_input(l);
      continue;
    }
    if (r == TlsLink::want_input || r == TlsLink::peer_closed) break;
    tls_fail(l);
    return;
  }
  if (l.closed()) return;
  tls_emit(l);
  if (!l.closed() && l.rlen_ == 0) release_rbuf(l);
}

// Plain HTTP sent to the TLS port (a first byte that is a letter: a
// method) gets a plain-text 400 that says so, as a person with curl or a
// browser expects; anything else is left to OpenSSL, which answers with an
// alert. True when answered.
bool Reactor::tls_plaintext_on_tls_port(Link& l, const std::byte* data, std::size_t) noexcept {
  const auto c = static_cast<unsigned char>(data[0]);
  if (c < 'A' || c > 'Z') return false;
  TlsLink& t = *tls_of(l);
  t.counted = true;
  metrics_.tls_failed_plaintext.add();
  metrics_.handshakes_failed.add();
  std::array<char, 512> out;
  const std::size_t n = write_refusal(out, 400, plaintext_body);
  if (l.sendq_ == nullptr) l.sendq_ = queues_.acquire();
  if (l.sendq_ == nullptr || !l.sendq_->push_sealed(std::as_bytes(std::span<const char>(out.data(), n)))) {
    out_of_memory(l);
    return true;
  }
  metrics_.queued_bytes.add(n);
  mark_flush(l);
  enter_closing(l, l.close_code_, CloseReason::handshake_refused, {});
  close_after_last_frame(l);
  return true;
}

// Plaintext frames waiting in the queue become records, joined into as few
// as fit; then what OpenSSL wrote (handshake, alerts, and these records)
// joins the sealed front of the queue. Until the handshake is done the
// plaintext waits (a client's upgrade request).
void Reactor::tls_seal(Link& l) noexcept {
  TlsLink& t = *tls_of(l);
  SendQueue* q = l.sendq_;
  if (q != nullptr && q->sealed() < q->count() && t.handshake_done()) {
    if (tls_plain_.size() < record_plain) {
      try {
        tls_plain_.resize(record_plain);
      } catch (const std::bad_alloc&) {
        out_of_memory(l);
        return;
      }
    }
    std::size_t joined = 0;
    bool ok = true;
    auto seal_joined = [&] {
      if (joined > 0) ok = ok && t.write(std::span<const std::byte>(tls_plain_.data(), joined));
      joined = 0;
    };
    auto put = [&](std::span<const std::byte> bytes) {
      if (bytes.empty()) return;
      if (bytes.size() >= record_plain / 2) {  // large: sealed where it lies
        seal_joined();
        ok = ok && t.write(bytes);
        return;
      }
      if (joined + bytes.size() > record_plain) seal_joined();
      std::memcpy(tls_plain_.data() + joined, bytes.data(), bytes.size());
      joined += bytes.size();
    };
    for (std::uint32_t i = q->sealed(); i < q->count() && ok; ++i) {
      SendFrame& f = q->at(i);
      put(std::span<const std::byte>(f.header.data(), f.header_len));
      put(std::span<const std::byte>(f.data, f.length));
    }
    seal_joined();
    if (!ok) {
      tls_fail(l);
      return;
    }
    metrics_.queued_bytes.sub(q->truncate(q->sealed()));
  }
  if (tls_out_.empty()) return;
  if (l.sendq_ == nullptr) l.sendq_ = queues_.acquire();
  if (l.sendq_ == nullptr) {
    tls_out_.clear();
    out_of_memory(l);
    return;
  }
  const bool pushed = !l.sendq_->full() && l.sendq_->push_sealed(tls_out_);
  const std::size_t n = tls_out_.size();
  tls_out_.clear();
  if (tls_out_.capacity() > (1u << 20)) std::vector<std::byte>().swap(tls_out_);  // after a huge message
  if (!pushed) {
    // Every slot holds records the peer does not read: as for control
    // frames on a plain link, the link cannot go on within bounds.
    abort_link(l, CloseReason::slow_consumer, close_code::policy_violation);
    return;
  }
  metrics_.queued_bytes.add(n);
  metrics_.queued_bytes_high_water.raise_to(metrics_.queued_bytes.get());
}

// After a read or a handshake step: OpenSSL's output (and, once the
// handshake is done, plaintext that waited for it) joins the turn's flush.
void Reactor::tls_emit(Link& l) noexcept {
  tls_seal(l);
  if (l.closed() || l.sendq_ == nullptr || l.sendq_->sealed() == 0) return;
  if (!l.has_any(Link::f_want_write | Link::f_send_busy)) mark_flush(l);
}

void Reactor::tls_handshake_done(Link& l) noexcept {
  TlsLink& t = *tls_of(l);
  t.counted = true;
  metrics_.tls_handshake((steady_now_ns() - t.started_ns) / 1000);
}

// A fatal TLS error: the alert OpenSSL wrote goes out, the link ends.
void Reactor::tls_fail(Link& l) noexcept {
  TlsLink& t = *tls_of(l);
  const bool cert = t.failure() == TlsLink::Failure::certificate;
  if (!t.counted) {
    t.counted = true;
    (cert ? metrics_.tls_failed_certificate : metrics_.tls_failed_protocol).add();
    if (!l.has(Link::f_client)) metrics_.handshakes_failed.add();
  }
  if (!l.has(Link::f_send_busy)) send_last(l.fd_, tls_out_);
  tls_out_.clear();
  if (l.has(Link::f_client)) {
    abort_link(l, CloseReason::io_error, close_code::abnormal, cert ? -EKEYREJECTED : -EPROTO);
  } else {
    abort_link(l, CloseReason::protocol_error, close_code::abnormal);
  }
}

// Our close_notify, just before the server's FIN.
void Reactor::tls_close_notify(Link& l) noexcept {
  tls_of(l)->shutdown();
  if (!l.has(Link::f_send_busy)) send_last(l.fd_, tls_out_);
  tls_out_.clear();
}

// The peer's stream ended (FIN, or an error such as a reset). Inside a
// record, that is a truncation: a peer that died mid-write, or one that cut
// its stream on purpose. Counted apart from the plain end the close reason
// (peer_eof, io_error) already says.
void Reactor::tls_stream_ended(Link& l) noexcept {
  if (tls_of(l)->mid_record()) metrics_.tls_truncated.add();
}

void Reactor::tls_timed_out(Link& l) noexcept {
  TlsLink& t = *tls_of(l);
  if (t.counted || t.handshake_done()) return;
  t.counted = true;
  metrics_.tls_failed_timeout.add();
}

}  // namespace ringlink
