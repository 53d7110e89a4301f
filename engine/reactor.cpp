#include "engine/reactor.hpp"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>
#include <optional>

#include "engine/clock.hpp"
#include "engine/log.hpp"
#include "engine/server.hpp"
#include "engine/token_bucket.hpp"
#include "protocol/codec.hpp"

namespace ringlink {

// One queued frame: header bytes kept beside a reference to the payload, so a
// gather write sends both without joining them.
struct SendFrame {
  PayloadRef payload;
  std::uint32_t written = 0;      // bytes of header + payload already sent
  std::uint32_t length = 0;       // payload bytes
  std::array<std::byte, max_frame_header> header{};
  std::uint8_t header_len = 0;
  std::uint8_t control = 0;       // never dropped by a policy
  std::uint32_t total() const noexcept { return header_len + length; }
};

// A link's bounded send ring. Allocated when the first frame must wait and
// returned to a per-reactor cache when it empties: idle links hold none.
struct SendQueue {
  std::array<SendFrame, config::send_ring_slots> frames{};
  std::uint32_t head = 0;
  std::uint32_t count = 0;
  std::uint32_t in_flight = 0;    // leading frames a completion backend is sending: they stay put
  std::uint64_t bytes = 0;        // unsent bytes of queued frames
  // The gather list of the send in flight; a completion backend reads it
  // after flush() returns, so it lives here rather than on the stack.
  std::array<iovec, config::send_batch * 2> iov{};
  msghdr msg{};
  SendFrame& at(std::uint32_t i) noexcept { return frames[(head + i) & (config::send_ring_slots - 1)]; }
};

// Only while a link is handshaking.
struct HandshakeState {
  UpgradeRequestParser request;
  std::optional<ClientKey> key;
  std::optional<UpgradeResponseParser> response;
  std::string offered_protocols;
};

// Per-link inbound rate limit, allocated only when configured.
struct RateState {
  TokenBucket messages;
  TokenBucket bytes;
};

// What few links need, kept out of Link so that idle links stay small.
struct LinkAux {
  std::unique_ptr<HandshakeState> handshake;
  std::optional<RateState> rate;
  std::string close_text;   // the close frame's reason, for on_close
  std::optional<IpKey> ip;  // counted in the per-IP limit: released with the link
  std::uint32_t app_timer_ms = 0;
  bool app_timer_armed = false;
  // Chunks a completion backend filled while the link was paused, in order;
  // at most what was in flight when reading stopped.
  struct Pending {
    std::byte* chunk;
    std::uint32_t offset, length;
  };
  std::vector<Pending> pending;
  bool empty() const noexcept {
    return !handshake && !rate && !app_timer_armed && close_text.empty() && !ip && pending.empty();
  }
};

// Stable link storage: blocks of slots that never move, so other threads may
// read a slot's generation while the reactor adds blocks.
struct Reactor::Slab {
  static constexpr std::uint32_t block_bits = 10;  // 1024 links (112 KiB) per block
  static constexpr std::uint32_t block_size = 1u << block_bits;
  static constexpr std::uint32_t max_blocks = max_slots_per_reactor >> block_bits;

  std::unique_ptr<std::atomic<Link*>[]> blocks{new std::atomic<Link*>[max_blocks]};
  std::uint32_t used = 0;               // slots ever handed out
  std::vector<std::uint32_t> free_slots;

  Slab() {
    for (std::uint32_t i = 0; i < max_blocks; ++i) blocks[i].store(nullptr, std::memory_order_relaxed);
  }
  ~Slab() {
    for (std::uint32_t i = 0; i < max_blocks; ++i) delete[] blocks[i].load(std::memory_order_relaxed);
  }
  Link* at(std::uint32_t slot) const noexcept {
    if (slot >= max_slots_per_reactor) return nullptr;
    Link* b = blocks[slot >> block_bits].load(std::memory_order_acquire);
    return b ? &b[slot & (block_size - 1)] : nullptr;
  }
  // Returns a free slot or nullptr when the cap is reached.
  Link* take(std::uint32_t cap) noexcept {
    if (!free_slots.empty()) {
      std::uint32_t s = free_slots.back();
      free_slots.pop_back();
      return at(s);
    }
    if (used >= cap || used >= max_slots_per_reactor) return nullptr;
    std::uint32_t s = used;
    if ((s & (block_size - 1)) == 0) {
      Link* b = new (std::nothrow) Link[block_size];
      if (b == nullptr) return nullptr;
      for (std::uint32_t i = 0; i < block_size; ++i) {
        b[i].slot_ = s + i;
        b[i].generation_.store(1, std::memory_order_relaxed);
      }
      blocks[s >> block_bits].store(b, std::memory_order_release);
    }
    ++used;
    return at(s);
  }
};

namespace {

// 1 ms ticks: application timers (a load generator's send schedule) stay
// precise; 4096 slots make a 4 s round, longer timeouts take several rounds.
constexpr std::uint32_t timer_tick_ms = 1;

std::uint16_t sendable_or_normal(std::uint16_t code) noexcept {
  return close_code_sendable(code) ? code : close_code::normal;
}

CloseReason reason_for_fail(std::uint16_t code) noexcept {
  switch (code) {
    case close_code::invalid_payload: return CloseReason::invalid_utf8;
    case close_code::message_too_big: return CloseReason::too_big;
    default: return CloseReason::protocol_error;
  }
}

bool origin_allowed(const ServerConfig& cfg, std::string_view origin) noexcept {
  if (cfg.allowed_origins.empty()) return true;
  for (const auto& o : cfg.allowed_origins)
    if (o == origin) return true;
  return false;
}

}  // namespace

// ---------------------------------------------------------------------------
// Construction and the loop

Reactor::Reactor(std::uint32_t index, const ServerConfig& cfg, Handler& handler, Server* server)
    : cfg_(cfg),
      handler_(handler),
      server_(server),
      index_(index),
      slab_(std::make_unique<Slab>()),
      commands_(4096),
      clock_(&steady_now_ms) {
  if (cfg_.max_links_per_ip > 0) {
    if (server_ != nullptr) {
      ip_limiter_ = server_->ip_limiter();
    } else {
      own_ip_limiter_ = std::make_unique<IpLimiter>(cfg_.max_links_per_ip);
      ip_limiter_ = own_ip_limiter_.get();
    }
  }
  std::uint64_t seed = 0;
  if (::getrandom(&seed, sizeof seed, 0) != sizeof seed) seed = steady_now_ns() ^ (index * 0x9E3779B97F4A7C15ull);
  rng_.seed(seed);
  if (cfg_.inbound_mode == InboundMode::workers) {
    unsigned w = cfg_.workers == 0 ? 1 : cfg_.workers;
    for (unsigned i = 0; i < w; ++i)
      handoff_.push_back(std::make_unique<SpscRing<InboundMessage>>(config::recv_ring_slots));
  }
}

Reactor::~Reactor() {
  // The kernel lets go of every buffer before any is freed.
  backend_.close();
  if (slab_) {
    for (std::uint32_t s = 0; s < slab_->used; ++s) {
      Link* l = slab_->at(s);
      if (l != nullptr && l->fd_ >= 0) ::close(l->fd_);
      if (l != nullptr && l->state_ != LinkState::closed) {
        l->state_ = LinkState::closed;
        free_link(*l);
      }
    }
    for (Link* l : closed_) free_link(*l);
    closed_.clear();
    for (Link* l : lingering_) free_link(*l);
    lingering_.clear();
  }
  for (SendQueue* q : queue_cache_) delete q;
  for (Session* s : session_cache_) delete s;
}

int Reactor::open(int listen_fd) noexcept {
  listen_fd_.reset(listen_fd);
  pool_ = std::make_unique<ChunkPool>(cfg_.pool_max_chunks, config::chunk_size);
  // Create the pool's heap now, on the reactor thread, rather than in the
  // first connection's read.
  if (std::byte* warm = pool_->acquire()) pool_->release(warm);
  now_ms_ = clock_();
  timers_ = std::make_unique<TimerWheel>(now_ms_, timer_tick_ms);
  int r = backend_.open(*pool_);
  if (r < 0) return r;
  if (listen_fd_) {
    r = backend_.add_listener(listen_fd_.get(), 0);
    if (r < 0) return r;
    accepting_ = true;
  }
  return 0;
}

void Reactor::set_clock(ClockFn clock) noexcept {
  clock_ = clock;
  now_ms_ = clock_();
  if (timers_) timers_ = std::make_unique<TimerWheel>(now_ms_, timer_tick_ms);
}

int Reactor::run() noexcept {
  while (!stopped()) run_once(-1);
  return 0;
}

void Reactor::run_once(int max_wait_ms) noexcept {
  // How long may we sleep? Never past the next timer, the accept back-off or
  // the stop deadline; not at all when links wait on the ready list.
  std::int64_t timeout = -1;
  auto tighten = [&](std::int64_t ms) {
    if (ms < 0) ms = 0;
    if (timeout < 0 || ms < timeout) timeout = ms;
  };
  if (!ready_.empty() || handoff_space_.load(std::memory_order_relaxed)) tighten(0);
  if (std::int64_t t = timers_->ms_until_next(now_ms_); t >= 0) tighten(t);
  if (accept_paused_) tighten(static_cast<std::int64_t>(accept_resume_ms_ - std::min(accept_resume_ms_, now_ms_)));
  if (stopping_) tighten(static_cast<std::int64_t>(stop_deadline_ms_ - std::min(stop_deadline_ms_, now_ms_)));
  if (max_wait_ms >= 0) tighten(max_wait_ms);
  if (timeout > 3'600'000) timeout = 3'600'000;

  backend_.wait(static_cast<int>(timeout), *this);  // calls begin_turn() first
  metrics_.loop_wakeups.add();

  // Links that ran out of read budget, were resumed, or got a chunk back.
  if (!ready_.empty()) {
    std::vector<LinkId> batch;
    batch.swap(ready_);
    for (LinkId id : batch) {
      Link* l = find(id);
      if (l == nullptr) continue;
      l->flags_ &= ~Link::f_in_ready;
      if (l->paused_ != 0) continue;
      if (l->rlen_ > 0) {
        process_input(*l);
        if (l->state_ == LinkState::closed || l->paused_ != 0) continue;
        if (l->rlen_ == 0) release_rbuf(*l);
      }
      if (l->aux_ != nullptr && !l->aux_->pending.empty()) {
        drain_pending(*l);
        if (l->state_ == LinkState::closed || l->paused_ != 0) continue;
      }
      if (l->flags_ & Link::f_readable) on_readable(*l, false);
    }
  }
  if (!pool_waiting_.empty() && pool_->in_use() < pool_->max_chunks()) {
    std::vector<LinkId> waiting;
    waiting.swap(pool_waiting_);
    for (LinkId id : waiting) {
      if (Link* l = find(id)) {
        l->flags_ &= ~Link::f_in_pool_wait;
        resume(*l, Link::p_pool);
      }
    }
  }

  timers_->advance(now_ms_, [this](TimerNode& node) {
    Link* l = reinterpret_cast<Link*>(reinterpret_cast<char*>(&node) - offsetof(Link, timer_));
    on_timer(*l);
  });

  if (accept_paused_ && now_ms_ >= accept_resume_ms_ && !stopping_ && listen_fd_) {
    accept_paused_ = false;
    backend_.set_accepting(listen_fd_.get(), 0, true);
    on_acceptable(0);  // connections may have queued while we were not looking
  }

  // Commands from other threads, bounded per turn so links keep being served.
  Command cmd;
  for (int i = 0; i < 4096 && commands_.try_pop(cmd); ++i) {
    run_command(cmd);
    cmd = Command{};
  }

  if (handoff_space_.exchange(false, std::memory_order_acq_rel) && !handoff_waiting_.empty()) {
    std::vector<LinkId> waiting;
    waiting.swap(handoff_waiting_);
    for (LinkId id : waiting)
      if (Link* l = find(id)) resume(*l, Link::p_handoff);
  }

  if (!dirty_.empty()) {
    std::vector<LinkId> batch;
    batch.swap(dirty_);
    for (LinkId id : batch) {
      if (Link* l = find(id)) {
        l->flags_ &= ~Link::f_in_dirty;
        flush(*l);
      }
    }
  }

  free_closed();

  if (stopping_) check_stop();
  metrics_.loop_turn((steady_now_ns() - turn_start_ns_) / 1000);
}

bool Reactor::post(Command&& cmd) noexcept {
  if (!commands_.try_push(std::move(cmd))) {
    metrics_.commands_rejected.add();
    return false;
  }
  backend_.wake();
  return true;
}

void Reactor::on_wake() noexcept {}

// The backend calls this as soon as its wait returns, before it reports any
// event: whatever the events cause (accepts, reads, timer arming) must see
// the time after the sleep, not before it.
void Reactor::begin_turn() noexcept {
  now_ms_ = clock_();
  turn_start_ns_ = steady_now_ns();
}

bool Reactor::alive(LinkId id) const noexcept {
  if (id.reactor() != index_) return false;
  Link* l = slab_->at(id.slot());
  return l != nullptr && l->generation_.load(std::memory_order_acquire) == id.generation();
}

Link* Reactor::find(LinkId id) noexcept {
  if (id.reactor() != index_ || !id.valid()) return nullptr;
  Link* l = slab_->at(id.slot());
  if (l == nullptr || l->generation_.load(std::memory_order_relaxed) != id.generation()) return nullptr;
  if (l->state_ == LinkState::closed) return nullptr;
  return l;
}

Link* Reactor::link_for(std::uint64_t key) noexcept { return find(LinkId::from_raw(key)); }

// ---------------------------------------------------------------------------
// Link lifetime

Link* Reactor::allocate_link(int fd, bool client) noexcept {
  Link* l = slab_->take(cfg_.max_links_per_reactor);
  if (l == nullptr) return nullptr;
  l->reactor_ = this;
  l->fd_ = fd;
  l->flags_ = client ? Link::f_client : 0;
  if (cfg_.tcp_nodelay) l->flags_ |= Link::f_nodelay;
  l->paused_ = 0;
  l->state_ = LinkState::handshaking;
  l->close_code_ = close_code::abnormal;
  l->close_reason_ = static_cast<std::uint8_t>(CloseReason::peer_eof);
  l->rstart_ = l->rlen_ = 0;
  if (l->slot_ < handoff_run_.size()) {  // nothing of this link is in a hand-off ring yet
    handoff_run_[l->slot_] = 0;
    handoff_last_[l->slot_] = 0;
  }
  l->last_rx_ms_ = ms32();
  l->mark_ms_ = ms32();
  ++live_links_;
  return l;
}

void Reactor::free_link(Link& l) noexcept {
  timers_->cancel(l.timer_);
  release_rbuf(l);
  if (l.sendq_ != nullptr) {
    metrics_.queued_bytes.sub(l.sendq_->bytes);
    release_queue(l.sendq_);
    l.sendq_ = nullptr;
  }
  if (l.aux_ != nullptr && l.aux_->ip && ip_limiter_ != nullptr) ip_limiter_->release(*l.aux_->ip);
  if (l.aux_ != nullptr)
    for (const LinkAux::Pending& p : l.aux_->pending) pool_->release(p.chunk);
  delete l.aux_;
  l.aux_ = nullptr;
  if (l.session_ != nullptr) {
    drop_session(l.session_);
    l.session_ = nullptr;
  }
  l.user_data_ = nullptr;
  l.flags_ = 0;
  l.paused_ = 0;
  l.fd_ = -1;
  std::uint32_t g = l.generation_.load(std::memory_order_relaxed) + 1;
  l.generation_.store(g == 0 ? 1 : g, std::memory_order_release);
  slab_->free_slots.push_back(l.slot_);
  --live_links_;
}

void Reactor::close_now(Link& l, CloseReason why, std::uint16_t code, int error) noexcept {
  if (l.state_ == LinkState::closed) return;
  const LinkState was = l.state_;
  l.state_ = LinkState::closed;
  metrics_.closed(why);
  if (l.paused_ != 0) metrics_.paused_links.sub();
  if (l.flags_ & Link::f_opened) {
    --open_links_;
    metrics_.links_open.sub();
  }
  if (l.fd_ >= 0) {
    backend_.remove_link(l.fd_, l.id().raw());
    ::close(l.fd_);
    l.fd_ = -1;
  }
  if ((l.flags_ & Link::f_opened) && !(l.flags_ & Link::f_close_notified)) {
    l.flags_ |= Link::f_close_notified;
    const std::uint16_t reported = (l.close_code_ != close_code::abnormal) ? l.close_code_ : code;
    const std::string_view reason = l.aux_ != nullptr ? std::string_view(l.aux_->close_text) : std::string_view{};
    try {
      handler_.on_close(l, reported, reason);
    } catch (...) {
      metrics_.handler_exceptions.add();
    }
  } else if ((l.flags_ & Link::f_client) && was == LinkState::handshaking) {
    int err = -ECONNABORTED;
    std::uint16_t status = 0;
    if (why == CloseReason::handshake_timeout) err = -ETIMEDOUT;
    if (why == CloseReason::handshake_refused) {
      err = 0;
      status = code;
    }
    if (why == CloseReason::io_error && error != 0) err = error;
    try {
      handler_.on_connect_failed(LinkId{index_, l.slot_, l.generation_.load(std::memory_order_relaxed)}, l.user_data_,
                                 err, status);
    } catch (...) {
      metrics_.handler_exceptions.add();
    }
  }
  closed_.push_back(&l);
}

void Reactor::start_close(Link& l, std::uint16_t code, std::string_view reason, CloseReason why) noexcept {
  if (l.state_ == LinkState::handshaking) {
    close_now(l, why, code);
    return;
  }
  if (l.state_ != LinkState::open) return;
  if (!session_of(l).start_close()) return;
  l.close_code_ = code;
  l.close_reason_ = static_cast<std::uint8_t>(why);
  l.state_ = LinkState::closing;
  l.mark_ms_ = ms32();
  if (!reason.empty()) aux_of(l).close_text.assign(reason.substr(0, max_control_payload - 2));
  send_close_frame(l, code, reason);
  arm_timer(l);
}

// Our last frame (close, or an HTTP refusal) has left. The server half-closes
// and waits for the peer's FIN (close_timeout bounds it), so the peer reads
// our close before it sees the TCP close; closing at once could reset the
// connection while the peer's unread bytes are in flight and lose the frame.
void Reactor::finish_close(Link& l) noexcept {
  l.flags_ &= ~Link::f_close_after_flush;
  if (l.state_ == LinkState::closed) return;
  if (l.state_ == LinkState::handshaking || l.state_ == LinkState::open) l.state_ = LinkState::closing;
  l.mark_ms_ = ms32();
  if (!(l.flags_ & Link::f_client) && !(l.flags_ & Link::f_write_shut)) {
    ::shutdown(l.fd_, SHUT_WR);
    l.flags_ |= Link::f_write_shut;
    // Bytes already buffered are discarded from now on.
    l.rlen_ = 0;
    release_rbuf(l);
  }
  arm_timer(l);
}

// ---------------------------------------------------------------------------
// Accepting

void Reactor::on_acceptable(std::uint32_t listener) noexcept {
  if (!listen_fd_ || stopping_ || accept_paused_) return;
  for (;;) {
    int fd = ::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      on_accepted(listener, -errno);
      return;
    }
    on_accepted(listener, fd);
  }
}

// One accept's outcome: a new socket, or -errno.
void Reactor::on_accepted(std::uint32_t, int fd) noexcept {
  metrics_.accept_calls.add();
  if (fd < 0) {
    if (fd == -EMFILE || fd == -ENFILE || fd == -ENOBUFS || fd == -ENOMEM) {
      accept_backoff(0);
      return;
    }
    if (fd != -ECONNABORTED && fd != -EINTR && fd != -EAGAIN)
      RINGLINK_LOG(LogLevel::warn, "reactor %u: accept failed: %s", index_, std::strerror(-fd));
    return;
  }
  if (stopping_) {
    ::close(fd);
    return;
  }
  sockaddr_storage peer{};
  socklen_t peer_len = sizeof peer;
  const bool limited = ip_limiter_ != nullptr &&
                       ::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_len) == 0;
  const LinkId id = adopt(fd);
  if (!id.valid()) {
    metrics_.links_refused.add();
    return;
  }
  IpKey ip;
  if (limited && ip_key_of(peer, ip)) {
    Link& l = *find(id);
    if (ip_limiter_->acquire(ip)) {
      aux_of(l).ip = ip;
    } else {
      refuse(l, 429, "too many connections from this address\n", CloseReason::handshake_refused, true);
    }
  }
}

LinkId Reactor::adopt(int fd) noexcept {
  Link* l = allocate_link(fd, false);
  if (l == nullptr) {
    ::close(fd);
    return {};
  }
  metrics_.links_accepted.add();
  if (l->flags_ & Link::f_nodelay) set_nodelay(fd, true);  // fails harmlessly on non-TCP sockets
  const LinkId id = l->id();
  if (backend_.add_link(fd, id.raw()) < 0) {
    close_now(*l, CloseReason::io_error, close_code::abnormal);
    return {};
  }
  arm_timer(*l);
  return id;
}

// Out of descriptors: stop accepting for a while instead of spinning on a
// listener that stays readable; links already open keep being served.
void Reactor::accept_backoff(std::uint32_t) noexcept {
  metrics_.accept_backoffs.add();
  accept_paused_ = true;
  accept_resume_ms_ = now_ms_ + std::max<std::uint32_t>(cfg_.accept_backoff_ms, 1);
  backend_.set_accepting(listen_fd_.get(), 0, false);
}

// ---------------------------------------------------------------------------
// Input

std::span<std::byte> Reactor::read_target(Link& l) noexcept {
  if (l.paused_ != 0 || l.state_ == LinkState::closed) return {};
  const std::size_t cap = pool_->chunk_size();
  if (l.rbuf_ == nullptr) {
    l.rbuf_ = pool_->acquire();
    if (l.rbuf_ == nullptr) {
      metrics_.pool_exhausted.add();
      pause(l, Link::p_pool);
      if (!(l.flags_ & Link::f_in_pool_wait)) {
        l.flags_ |= Link::f_in_pool_wait;
        pool_waiting_.push_back(l.id());
      }
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
  if (used >= cap) return {};  // cannot happen: held frames fit in a chunk
  return {l.rbuf_ + used, cap - used};
}

void Reactor::on_readable(Link& l, bool hangup) noexcept {
  l.flags_ |= Link::f_readable;
  if (hangup) l.flags_ |= Link::f_hangup;
  if (l.paused_ != 0 || l.state_ == LinkState::closed) return;
  const std::uint64_t key = l.id().raw();
  const bool more = backend_.read_pass(*this, l, l.fd_, (l.flags_ & Link::f_hangup) != 0);
  if (link_for(key) != &l) return;  // closed while reading
  if (more) {
    mark_ready(l);
  } else if (l.paused_ == 0) {
    l.flags_ &= ~Link::f_readable;
  }
}

bool Reactor::on_received(Link& l, std::byte* data, std::size_t n) noexcept {
  (void)data;  // epoll reads into read_target(), i.e. right after the held bytes
  l.rlen_ += static_cast<std::uint32_t>(n);
  l.last_rx_ms_ = ms32();
  if (l.flags_ & Link::f_write_shut) {  // lingering after our close: discard
    l.rlen_ = 0;
    return true;
  }
  process_input(l);
  if (l.state_ == LinkState::closed) return false;
  if (l.rlen_ == 0) release_rbuf(l);
  return l.paused_ == 0;
}

// A completion backend hands over a chunk it filled (n bytes from its start);
// the reactor owns it from here. Returns false when the link cannot take more
// now (paused or closed): the backend stops receiving for it.
bool Reactor::on_received_buffer(Link& l, std::byte* chunk, std::size_t n) noexcept {
  l.last_rx_ms_ = ms32();
  if (l.flags_ & Link::f_write_shut) {  // lingering after our close: discard
    pool_->release(chunk);
    return true;
  }
  if (l.paused_ != 0 || (l.aux_ != nullptr && !l.aux_->pending.empty())) {
    stash(l, chunk, 0, static_cast<std::uint32_t>(n));
    l.flags_ |= Link::f_readable;  // resume() re-arms the receive
    return false;
  }
  feed_chunk(l, chunk, 0, static_cast<std::uint32_t>(n));
  if (l.state_ == LinkState::closed) return false;
  if (l.paused_ != 0) {
    l.flags_ |= Link::f_readable;
    return false;
  }
  return true;
}

void Reactor::stash(Link& l, std::byte* chunk, std::uint32_t offset, std::uint32_t length) noexcept {
  aux_of(l).pending.push_back({chunk, offset, length});
}

// Takes `length` bytes at chunk + offset as the next input of the link. With
// nothing held the chunk becomes the link's buffer (no copy); behind a held
// partial frame the bytes are appended to it, as much as fits at a time.
void Reactor::feed_chunk(Link& l, std::byte* chunk, std::uint32_t offset, std::uint32_t length) noexcept {
  while (length > 0) {
    if (l.rlen_ == 0) {
      release_rbuf(l);
      l.rbuf_ = chunk;
      l.rstart_ = offset;
      l.rlen_ = length;
      process_input(l);
      if (l.state_ != LinkState::closed && l.rlen_ == 0) release_rbuf(l);
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
    if (l.state_ == LinkState::closed) break;
    if (l.paused_ != 0) {
      if (length > 0) {
        stash(l, chunk, offset, length);
        return;
      }
      break;
    }
  }
  if (l.state_ != LinkState::closed && l.rlen_ == 0) release_rbuf(l);
  pool_->release(chunk);
}

// Feeds chunks stashed while the link was paused, until it pauses again.
void Reactor::drain_pending(Link& l) noexcept {
  if (l.aux_ == nullptr || l.aux_->pending.empty()) return;
  std::vector<LinkAux::Pending> queue;
  queue.swap(l.aux_->pending);
  std::size_t i = 0;
  while (i < queue.size() && l.paused_ == 0 && l.state_ != LinkState::closed) {
    feed_chunk(l, queue[i].chunk, queue[i].offset, queue[i].length);
    ++i;
  }
  if (l.state_ == LinkState::closed) {
    for (; i < queue.size(); ++i) pool_->release(queue[i].chunk);
    return;
  }
  // Paused again: what feed_chunk stashed comes first, then the rest.
  if (i < queue.size()) {
    LinkAux& aux = aux_of(l);
    aux.pending.insert(aux.pending.end(), queue.begin() + static_cast<std::ptrdiff_t>(i), queue.end());
  }
  trim_aux(l);
}

// A completion backend's send finished: res bytes left, or -errno.
void Reactor::on_sent(Link& l, ssize_t res) noexcept {
  l.flags_ &= ~Link::f_send_busy;
  if (l.sendq_ != nullptr) l.sendq_->in_flight = 0;
  if (res < 0) {
    close_now(l, CloseReason::io_error, close_code::abnormal, static_cast<int>(res));
    return;
  }
  after_sent(l, static_cast<std::size_t>(res));
  // The rest (a short send, or frames queued meanwhile) leaves at the end of
  // this turn, with every other link's sends, in one submission.
  if (l.state_ != LinkState::closed && l.sendq_ != nullptr && l.sendq_->count > 0) mark_dirty(l);
}

// Frees the links closed this turn, except those the kernel still holds
// requests of: those wait, and are looked at again at every turn's end.
void Reactor::free_closed() noexcept {
  if (!lingering_.empty()) {
    std::size_t kept = 0;
    for (Link* l : lingering_) {
      if (backend_.busy(l->slot_)) {
        lingering_[kept++] = l;
      } else {
        free_link(*l);
      }
    }
    lingering_.resize(kept);
  }
  for (Link* l : closed_) {
    if (backend_.busy(l->slot_)) {
      lingering_.push_back(l);
    } else {
      free_link(*l);
    }
  }
  closed_.clear();
}

void Reactor::on_read_end(Link& l, int err) noexcept {
  if (l.state_ == LinkState::closed) return;
  if (err != 0) {
    // A closing link keeps the cause it was closing for.
    const CloseReason why = l.state_ == LinkState::closing ? static_cast<CloseReason>(l.close_reason_) : CloseReason::io_error;
    close_now(l, why, close_code::abnormal, err);
    return;
  }
  if (!backend_.inline_sends()) {
    // A completion backend reports the FIN as soon as it is read, maybe
    // ahead of input the link has not taken yet (paused): take that first;
    // the receive re-armed at resume() reports the FIN again.
    if (l.paused_ != 0 || (l.aux_ != nullptr && !l.aux_->pending.empty())) {
      l.flags_ |= Link::f_readable;
      return;
    }
    // Replies to the last messages may still sit in the queue, due at the
    // turn's end: write them now, before the socket goes.
    if (l.sendq_ != nullptr && l.sendq_->count > 0 && !(l.flags_ & Link::f_send_busy)) {
      flush(l, true);
      if (l.state_ == LinkState::closed) return;
    }
  }
  if (l.state_ == LinkState::closing) {
    close_now(l, static_cast<CloseReason>(l.close_reason_), l.close_code_);
    return;
  }
  if (l.state_ == LinkState::handshaking && !(l.flags_ & Link::f_client)) metrics_.handshakes_failed.add();
  close_now(l, CloseReason::peer_eof, close_code::abnormal);
}

void Reactor::release_rbuf(Link& l) noexcept {
  if (l.rbuf_ == nullptr) return;
  pool_->release(l.rbuf_);
  l.rbuf_ = nullptr;
  l.rstart_ = l.rlen_ = 0;
}

void Reactor::process_input(Link& l) noexcept {
  if (l.state_ == LinkState::handshaking) {
    const bool opened = (l.flags_ & Link::f_client) ? process_client_handshake(l) : process_handshake(l);
    if (!opened) return;
  }
  if (l.state_ == LinkState::open || l.state_ == LinkState::closing) process_frames(l);
  if (l.session_ != nullptr && l.state_ == LinkState::open && l.session_->at_rest()) {
    drop_session(l.session_);  // between messages: the next byte starts a fresh one
    l.session_ = nullptr;
  }
}

Session& Reactor::session_of(Link& l) noexcept {
  if (l.session_ == nullptr) {
    const Role role = (l.flags_ & Link::f_client) ? Role::client : Role::server;
    if (!session_cache_.empty()) {
      l.session_ = session_cache_.back();
      session_cache_.pop_back();
      *l.session_ = Session{role};
    } else {
      l.session_ = new Session{role};
    }
  }
  return *l.session_;
}

void Reactor::drop_session(Session* s) noexcept {
  s->release_buffers();
  if (session_cache_.size() < 1024) {
    session_cache_.push_back(s);
  } else {
    delete s;
  }
}

LinkAux& Reactor::aux_of(Link& l) noexcept {
  if (l.aux_ == nullptr) l.aux_ = new LinkAux{};
  return *l.aux_;
}

void Reactor::trim_aux(Link& l) noexcept {
  if (l.aux_ != nullptr && l.aux_->empty()) {
    delete l.aux_;
    l.aux_ = nullptr;
  }
}

bool Reactor::process_handshake(Link& l) noexcept {
  LinkAux& aux = aux_of(l);
  if (!aux.handshake) aux.handshake = std::make_unique<HandshakeState>();
  auto& req = aux.handshake->request;
  const std::string_view data(reinterpret_cast<const char*>(l.rbuf_ + l.rstart_), l.rlen_);
  const ParseStatus st = req.parse(data);
  if (st == ParseStatus::incomplete) return false;

  char out[1024];

  if (st == ParseStatus::error) {
    // A well-formed GET that simply is not an upgrade is plain HTTP.
    if (req.method() == "GET" && !req.header("Upgrade").has_value() && req.head_length() > 0) {
      HttpResponse resp;
      std::string metrics_text;
      if (cfg_.metrics_endpoint && req.path() == "/metrics") {
        std::vector<const ReactorMetrics*> all;
        if (server_ != nullptr) {
          for (std::size_t i = 0; i < server_->reactor_count(); ++i) all.push_back(&server_->reactor(i).metrics());
        } else {
          all.push_back(&metrics_);
        }
        write_prometheus(metrics_text, all);
        resp = HttpResponse{200, "text/plain; version=0.0.4", metrics_text};
      } else {
        bool handled = guarded(l, [&] { resp = handler_.on_http(req.path()); });
        if (!handled || l.state_ == LinkState::closed) return false;
      }
      std::string text;
      text.reserve(128 + resp.body.size());
      text += "HTTP/1.1 ";
      text += std::to_string(resp.status);
      text += ' ';
      text += status_text(resp.status);
      text += "\r\nContent-Type: ";
      text += resp.content_type;
      text += "\r\nContent-Length: ";
      text += std::to_string(resp.body.size());
      text += "\r\nConnection: close\r\n\r\n";
      text += resp.body;
      send_raw(l, text);
      l.close_reason_ = static_cast<std::uint8_t>(CloseReason::handshake_refused);
      l.rlen_ = 0;
      l.flags_ |= Link::f_close_after_flush;
      if (l.sendq_ == nullptr) finish_close(l);
      return false;
    }
    refuse(l, req.error_status(), req.error_reason(), CloseReason::handshake_refused, false);
    return false;
  }

  if (!origin_allowed(cfg_, req.origin())) {
    refuse(l, 403, "origin not allowed\n", CloseReason::handshake_refused, true);
    return false;
  }
  UpgradeDecision decision;
  if (!guarded(l, [&] { decision = handler_.on_upgrade(req); })) return false;
  if (decision.status != 101) {
    refuse(l, decision.status, decision.body, CloseReason::handshake_refused, true);
    return false;
  }
  const std::size_t n = write_accept_response(std::span<char>(out, sizeof out), req.key(), decision.subprotocol);
  if (n == 0) {
    refuse(l, 500, {}, CloseReason::handshake_refused, true);
    return false;
  }
  const std::size_t head = req.head_length();
  l.rstart_ += static_cast<std::uint32_t>(head);
  l.rlen_ -= static_cast<std::uint32_t>(head);
  aux.handshake.reset();  // `req` dies here
  l.state_ = LinkState::open;
  send_raw(l, std::string_view(out, n));
  return l.state_ == LinkState::open && open_link(l);
}

// Answers a handshaking link with an HTTP refusal and ends it: the response
// is sent, then the server half-closes and waits for the peer (finish_close).
// Counted as a refusal (the application's or a limit's) or a failed handshake.
void Reactor::refuse(Link& l, std::uint16_t status, std::string_view body, CloseReason why,
                     bool counted_as_refusal) noexcept {
  char out[1024];
  const std::size_t n = write_refusal(std::span<char>(out, sizeof out), status, body.substr(0, 512));
  (counted_as_refusal ? metrics_.links_refused : metrics_.handshakes_failed).add();
  l.close_code_ = status;
  l.close_reason_ = static_cast<std::uint8_t>(why);
  l.rlen_ = 0;
  l.flags_ |= Link::f_close_after_flush;
  send_raw(l, std::string_view(out, n));
  if (l.state_ != LinkState::closed && l.sendq_ == nullptr && (l.flags_ & Link::f_close_after_flush)) finish_close(l);
  if (l.state_ == LinkState::closed) return;
  l.state_ = LinkState::closing;
  l.mark_ms_ = ms32();
  arm_timer(l);
}

bool Reactor::process_client_handshake(Link& l) noexcept {
  HandshakeState* hs = l.aux_->handshake.get();
  const std::string_view data(reinterpret_cast<const char*>(l.rbuf_ + l.rstart_), l.rlen_);
  const ParseStatus st = hs->response->parse(data);
  if (st == ParseStatus::incomplete) return false;
  if (st == ParseStatus::error) {
    const std::uint16_t status = hs->response->status();
    RINGLINK_LOG(LogLevel::debug, "reactor %u: upgrade refused: %s (status %u)", index_,
                 to_string(hs->response->error()), status);
    close_now(l, CloseReason::handshake_refused, status);
    return false;
  }
  const std::size_t head = hs->response->head_length();
  l.rstart_ += static_cast<std::uint32_t>(head);
  l.rlen_ -= static_cast<std::uint32_t>(head);
  l.aux_->handshake.reset();
  l.state_ = LinkState::open;
  return open_link(l);
}

// Both roles: the upgrade is done and the link carries frames from now on.
bool Reactor::open_link(Link& l) noexcept {
  l.flags_ |= Link::f_opened;
  ++open_links_;
  metrics_.links_open.add();
  l.last_rx_ms_ = ms32();
  if (cfg_.rate_messages_per_s > 0 || cfg_.rate_bytes_per_s > 0) {
    aux_of(l).rate.emplace(RateState{TokenBucket(cfg_.rate_messages_per_s, std::max(cfg_.rate_burst_messages, 1.0)),
                                     TokenBucket(cfg_.rate_bytes_per_s, std::max(cfg_.rate_burst_bytes, 1.0))});
  }
  trim_aux(l);
  arm_timer(l);
  guarded(l, [&] { handler_.on_open(l); });
  return l.state_ == LinkState::open;
}

bool Reactor::process_frames(Link& l) noexcept {
  const bool workers = cfg_.inbound_mode == InboundMode::workers;
  while (l.rlen_ > 0 && l.paused_ == 0 && l.state_ != LinkState::closed) {
    if (workers && l.state_ == LinkState::open) {
      // Lossless hand-off: stop before decoding a message that has nowhere to go.
      auto& ring = *handoff_[l.slot_ % handoff_.size()];
      const std::uint64_t pops_seen = handoff_pops_.load();
      bool over_quota = false;
      if (cfg_.handoff_quota > 0 && l.slot_ < handoff_run_.size()) {
        if (handoff_last_[l.slot_] <= ring.popped()) handoff_run_[l.slot_] = 0;  // none of its left
        over_quota = handoff_run_[l.slot_] >= cfg_.handoff_quota;
      }
      if ((over_quota || ring.size_approx() >= ring.capacity()) && cfg_.inbound_policy == InboundPolicy::pause) {
        pause(l, Link::p_handoff);
        handoff_waiting_.push_back(l.id());
        if (server_ != nullptr) server_->request_handoff_space(index_);
        // A worker that popped before it could see the request will not wake
        // us; the pop counter (sequentially consistent, like the request)
        // shows whether one did.
        if (handoff_pops_.load() != pops_seen) handoff_space_.store(true, std::memory_order_relaxed);
        return false;
      }
    }
    RateState* rate = (l.aux_ != nullptr && l.aux_->rate) ? &*l.aux_->rate : nullptr;
    if (rate != nullptr) {
      const std::uint64_t now = now_ms_;
      if (rate->messages.ms_until(1, now) > 0 || rate->bytes.ms_until(1, now) > 0) {
        metrics_.rate_limited.add();
        pause(l, Link::p_rate);
        arm_timer(l);
        return false;
      }
    }
    std::span<std::byte> in(l.rbuf_ + l.rstart_, l.rlen_);
    SessionEvent ev = session_of(l).feed(in, pool_->chunk_size());
    l.rstart_ += static_cast<std::uint32_t>(ev.consumed);
    l.rlen_ -= static_cast<std::uint32_t>(ev.consumed);
    switch (ev.kind) {
      case SessionEventKind::need_more:
        return true;
      case SessionEventKind::message:
        metrics_.messages_in.add();
        metrics_.bytes_in.add(ev.payload.size());
        if (rate != nullptr) {
          rate->messages.try_take(1, now_ms_);
          rate->bytes.try_take(static_cast<double>(ev.payload.size()), now_ms_);
        }
        if (l.state_ == LinkState::open) deliver(l, ev.payload, ev.opcode);
        break;
      case SessionEventKind::ping:
        if (l.state_ == LinkState::open) (void)send_frame(l, Opcode::pong, ev.payload, {});
        break;
      case SessionEventKind::pong:
        l.flags_ &= ~Link::f_awaiting_pong;
        if (l.state_ == LinkState::open) guarded(l, [&] { handler_.on_pong(l, ev.payload); });
        break;
      case SessionEventKind::close:
        if (ev.reply) {
          // The peer started the close: echo its code, then end the TCP side.
          l.close_code_ = ev.code;
          l.close_reason_ = static_cast<std::uint8_t>(CloseReason::peer_close);
          l.state_ = LinkState::closing;
          l.mark_ms_ = ms32();
          if (!ev.reason.empty()) aux_of(l).close_text.assign(ev.reason);
          send_close_frame(l, ev.code, {});
          l.flags_ |= Link::f_close_after_flush;
          if (l.sendq_ == nullptr && l.state_ != LinkState::closed) finish_close(l);
        } else {
          // Our close was answered: the handshake is complete. The peer's
          // reason (if any) is what on_close reports.
          if (!ev.reason.empty()) aux_of(l).close_text.assign(ev.reason);
          l.flags_ |= Link::f_close_after_flush;
          if (l.sendq_ == nullptr) finish_close(l);
        }
        l.rlen_ = 0;
        arm_timer(l);
        return false;
      case SessionEventKind::fail:
        l.close_code_ = ev.code;
        l.close_reason_ = static_cast<std::uint8_t>(reason_for_fail(ev.code));
        l.state_ = LinkState::closing;
        l.mark_ms_ = ms32();
        aux_of(l).close_text.assign(ev.reason);
        send_close_frame(l, ev.code, ev.reason);
        l.flags_ |= Link::f_close_after_flush;
        if (l.sendq_ == nullptr && l.state_ != LinkState::closed) finish_close(l);
        l.rlen_ = 0;
        arm_timer(l);
        return false;
    }
  }
  return true;
}

void Reactor::deliver(Link& l, std::span<std::byte> payload, Opcode op) noexcept {
  if (cfg_.inbound_mode == InboundMode::workers) {
    handoff(l, payload, op);
    return;
  }
  guarded(l, [&] { handler_.on_message(l, payload, op); });
}

void Reactor::handoff(Link& l, std::span<std::byte> payload, Opcode op) noexcept {
  const unsigned w = l.slot_ % static_cast<unsigned>(handoff_.size());
  InboundMessage msg;
  msg.id = l.id();
  msg.op = op;
  msg.payload = PayloadRef::allocate(payload.size());
  if (!msg.payload && !payload.empty()) {
    start_close(l, close_code::try_again_later, "out of memory", CloseReason::policy);
    return;
  }
  if (!payload.empty()) std::memcpy(msg.payload.data(), payload.data(), payload.size());
  if (handoff_[w]->try_push(std::move(msg))) {
    if (cfg_.handoff_quota > 0) {
      if (l.slot_ >= handoff_run_.size()) {
        handoff_run_.resize(l.slot_ + 1024, 0);
        handoff_last_.resize(l.slot_ + 1024, 0);
      }
      handoff_last_[l.slot_] = handoff_[w]->pushed();
      ++handoff_run_[l.slot_];
    }
    if (server_ != nullptr) server_->notify_worker(w);
    return;
  }
  // Full although checked (drop_newest / close policies do not check first).
  if (cfg_.inbound_policy == InboundPolicy::close) {
    start_close(l, close_code::policy_violation, "receiver overloaded", CloseReason::policy);
  } else {
    metrics_.inbound_dropped.add();
  }
}

bool Reactor::pop_inbound(unsigned worker, InboundMessage& out) noexcept {
  if (worker >= handoff_.size() || !handoff_[worker]->try_pop(out)) return false;
  handoff_pops_.fetch_add(1);
  return true;
}

void Reactor::notify_inbound_space() noexcept {
  if (!handoff_space_.exchange(true, std::memory_order_acq_rel)) backend_.wake();
}

void Reactor::pause(Link& l, std::uint8_t why) noexcept {
  if (l.paused_ == 0) {
    metrics_.paused_links.add();
    metrics_.read_pauses.add();
  }
  l.paused_ |= why;
}

void Reactor::resume(Link& l, std::uint8_t why) noexcept {
  if ((l.paused_ & why) == 0) return;
  l.paused_ &= static_cast<std::uint8_t>(~why);
  if (l.paused_ == 0) {
    metrics_.paused_links.sub();
    // The edge for bytes already waiting was spent while paused.
    mark_ready(l);
  }
}

void Reactor::mark_ready(Link& l) noexcept {
  if (l.flags_ & Link::f_in_ready) return;
  l.flags_ |= Link::f_in_ready;
  ready_.push_back(l.id());
}

// ---------------------------------------------------------------------------
// Output

SendQueue* Reactor::acquire_queue() noexcept {
  if (!queue_cache_.empty()) {
    SendQueue* q = queue_cache_.back();
    queue_cache_.pop_back();
    return q;
  }
  return new (std::nothrow) SendQueue{};
}

void Reactor::release_queue(SendQueue* q) noexcept {
  for (std::uint32_t i = 0; i < q->count; ++i) q->at(i).payload.reset();
  q->head = q->count = 0;
  q->bytes = 0;
  if (queue_cache_.size() < 64) {
    queue_cache_.push_back(q);
  } else {
    delete q;
  }
}

void Reactor::fill_mask(MaskKey& key) noexcept {
  const std::uint64_t r = rng_();
  std::memcpy(key.data(), &r, key.size());
}

SendResult Reactor::send_frame(Link& l, Opcode op, std::span<const std::byte> payload, PayloadRef shared) noexcept {
  const bool control = is_control(static_cast<std::uint8_t>(op));
  if (l.state_ != LinkState::open && !(control && l.state_ == LinkState::closing)) return SendResult::closed;
  if (control && payload.size() > max_control_payload) payload = payload.first(max_control_payload);
  FrameHeader h;
  h.fin = true;
  h.opcode = static_cast<std::uint8_t>(op);
  h.payload_length = payload.size();
  std::array<std::byte, max_frame_header> hdr;
  std::size_t hl = 0;
  if (l.flags_ & Link::f_client) {
    // Client frames are masked with a fresh key, so the payload is copied:
    // into a reused scratch buffer, from which enqueue() copies only what the
    // socket did not take at once.
    h.masked = true;
    fill_mask(h.mask);
    mask_scratch_.resize(payload.size());
    if (!payload.empty()) {
      std::memcpy(mask_scratch_.data(), payload.data(), payload.size());
      apply_mask(std::span<std::byte>(mask_scratch_), h.mask, 0);
    }
    payload = std::span<const std::byte>(mask_scratch_);
    shared.reset();
  }
  if (shared && shared.frame_header_len() != 0 && !(l.flags_ & Link::f_client)) {
    hl = shared.frame_header_len();
    std::memcpy(hdr.data(), shared.frame_header_storage().data(), hl);
  } else {
    FrameEncoder enc;
    hl = enc.encode_header(std::span<std::byte, max_frame_header>(hdr), h);
  }
  const SendResult r = enqueue(l, std::span<const std::byte>(hdr.data(), hl), payload, std::move(shared), control);
  if (mask_scratch_.capacity() > (1u << 20)) std::vector<std::byte>().swap(mask_scratch_);  // after a huge message
  if (r == SendResult::queued || r == SendResult::dropped) {
    if (!control) metrics_.messages_out.add();
  }
  return r;
}

void Reactor::send_close_frame(Link& l, std::uint16_t code, std::string_view reason) noexcept {
  std::array<std::byte, max_control_payload> body;
  const std::uint16_t wire = code == close_code::no_status ? code : sendable_or_normal(code);
  const std::size_t n = write_close_payload(std::span<std::byte, max_control_payload>(body), wire, reason);
  (void)send_frame(l, Opcode::close, std::span<const std::byte>(body.data(), n), {});
}

void Reactor::send_raw(Link& l, std::string_view bytes) noexcept {
  (void)enqueue(l, {}, std::as_bytes(std::span<const char>(bytes.data(), bytes.size())), {}, true);
}

SendResult Reactor::enqueue(Link& l, std::span<const std::byte> header, std::span<const std::byte> payload,
                            PayloadRef shared, bool control) noexcept {
  const std::size_t total = header.size() + payload.size();
  // A completion backend sends at the end of the turn, so a burst within one
  // turn (cross-thread commands, a handler sending many frames) would meet
  // the slot cap before anything left. Half full with nothing in flight:
  // write synchronously now, as epoll would have.
  if (!backend_.inline_sends() && l.sendq_ != nullptr && l.sendq_->count >= config::send_ring_slots / 2 &&
      !(l.flags_ & (Link::f_send_busy | Link::f_drain_wanted | Link::f_close_after_flush)) && l.fd_ >= 0) {
    flush(l, true);
    if (l.state_ == LinkState::closed) return SendResult::closed;
  }
  SendQueue* q = l.sendq_;
  SendResult result = SendResult::queued;

  if (!control && q != nullptr && q->count > 0) {
    // Room for data frames: the byte cap and all but a few slots, which stay
    // free for control frames (pong, close) that no policy may refuse.
    constexpr std::uint32_t data_slots = config::send_ring_slots > 4 ? config::send_ring_slots - 2 : config::send_ring_slots;
    auto full = [&] { return q->bytes + total > cfg_.max_queued_bytes || q->count >= data_slots; };
    if (full()) {
      switch (cfg_.outbound_policy) {
        case OutboundPolicy::reject:
          l.flags_ |= Link::f_drain_wanted;
          metrics_.send_backpressured.add();
          return SendResult::backpressured;
        case OutboundPolicy::close_slow:
          // What the peer has not read yet is dropped now (a frame already
          // partly written must finish, or the stream would break), so the
          // slow link holds no memory while its close waits to go out.
          drop_unsent(*q, [](std::uint32_t) { return true; });
          start_close(l, cfg_.close_slow_code, "slow consumer", CloseReason::slow_consumer);
          return SendResult::closed;
        case OutboundPolicy::drop_oldest: {
          // Oldest first, until the new frame fits.
          drop_unsent(*q, [&](std::uint32_t frames_left) {
            return q->bytes + total > cfg_.max_queued_bytes || frames_left >= data_slots;
          });
          if (full()) {
            l.flags_ |= Link::f_drain_wanted;
            metrics_.send_backpressured.add();
            return SendResult::backpressured;
          }
          result = SendResult::dropped;
          break;
        }
      }
    }
  }

  std::size_t written = 0;
  if ((q == nullptr || q->count == 0) && !(l.flags_ & (Link::f_want_write | Link::f_send_busy)) &&
      backend_.inline_sends() && l.fd_ >= 0) {
    // Fast path: nothing queued, so write now and queue only what is left.
    iovec iov[2];
    msghdr msg{};
    msg.msg_iov = iov;
    if (!header.empty()) iov[msg.msg_iovlen++] = {const_cast<std::byte*>(header.data()), header.size()};
    if (!payload.empty()) iov[msg.msg_iovlen++] = {const_cast<std::byte*>(payload.data()), payload.size()};
    const ssize_t r = msg.msg_iovlen > 0 ? backend_.send(l.id().raw(), l.fd_, msg) : 0;
    if (r < 0 && r != -EAGAIN) {
      close_now(l, CloseReason::io_error, close_code::abnormal);
      return SendResult::closed;
    }
    written = r > 0 ? static_cast<std::size_t>(r) : 0;
    metrics_.bytes_out.add(written);
    if (written == total) {
      if (l.flags_ & Link::f_close_after_flush) finish_close(l);
      return result;
    }
    l.flags_ |= Link::f_want_write;
  }

  if (q == nullptr) {
    q = l.sendq_ = acquire_queue();
    if (q == nullptr) {
      close_now(l, CloseReason::io_error, close_code::abnormal);
      return SendResult::closed;
    }
  }
  if (q->count >= config::send_ring_slots) {
    // Only control frames get here: a peer that never reads while provoking
    // pongs. Nothing more can be queued without unbounded memory.
    close_now(l, CloseReason::slow_consumer, close_code::policy_violation);
    return SendResult::closed;
  }
  SendFrame& f = q->at(q->count);
  f.header_len = static_cast<std::uint8_t>(header.size());
  if (!header.empty()) std::memcpy(f.header.data(), header.data(), header.size());
  f.length = static_cast<std::uint32_t>(payload.size());
  f.written = static_cast<std::uint32_t>(written);
  f.control = control ? 1 : 0;
  if (shared) {
    f.payload = std::move(shared);
  } else if (!payload.empty()) {
    f.payload = PayloadRef::allocate(payload.size());
    if (!f.payload) {
      close_now(l, CloseReason::io_error, close_code::abnormal);
      return SendResult::closed;
    }
    std::memcpy(f.payload.data(), payload.data(), payload.size());
  } else {
    f.payload.reset();
  }
  ++q->count;
  q->bytes += total - written;
  metrics_.queued_bytes.add(total - written);
  metrics_.queued_bytes_high_water.raise_to(metrics_.queued_bytes.get());
  if (!(l.flags_ & (Link::f_want_write | Link::f_send_busy))) mark_dirty(l);
  return result;
}

// Drops data frames not yet started, oldest first, while should_drop(frames
// that would be left) says so; control frames and a frame partly written
// stay, in order.
template <class F>
void Reactor::drop_unsent(SendQueue& q, F&& should_drop) noexcept {
  std::uint32_t kept = 0;
  const std::uint32_t n = q.count;
  for (std::uint32_t i = 0; i < n; ++i) {
    SendFrame& f = q.at(i);
    if (i >= q.in_flight && !f.control && f.written == 0 && should_drop(kept + (n - i))) {
      q.bytes -= f.total();
      metrics_.queued_bytes.sub(f.total());
      metrics_.send_dropped.add();
      f.payload.reset();
      continue;
    }
    if (kept != i) q.at(kept) = std::move(f);
    ++kept;
  }
  q.count = kept;
}

void Reactor::mark_dirty(Link& l) noexcept {
  if (l.flags_ & Link::f_in_dirty) return;
  l.flags_ |= Link::f_in_dirty;
  dirty_.push_back(l.id());
}

void Reactor::on_writable(Link& l) noexcept {
  l.flags_ &= ~Link::f_want_write;
  flush(l);
}

void Reactor::flush(Link& l, bool now) noexcept {
  while (l.sendq_ != nullptr && l.sendq_->count > 0 && l.state_ != LinkState::closed &&
         !(l.flags_ & (Link::f_want_write | Link::f_send_busy))) {
    SendQueue& q = *l.sendq_;
    std::size_t cnt = 0;
    std::size_t want = 0;
    bool large = false;
    const std::uint32_t frames = std::min<std::uint32_t>(q.count, config::send_batch);
    for (std::uint32_t i = 0; i < frames; ++i) {
      SendFrame& f = q.at(i);
      std::size_t skip = f.written;
      if (skip < f.header_len) {
        q.iov[cnt++] = {f.header.data() + skip, f.header_len - skip};
        want += f.header_len - skip;
        skip = 0;
      } else {
        skip -= f.header_len;
      }
      if (f.length > skip) {
        q.iov[cnt++] = {f.payload.data() + skip, f.length - skip};
        want += f.length - skip;
        if (config::zc_threshold > 0 && f.length - skip >= config::zc_threshold) large = true;
      }
    }
    q.msg = msghdr{};
    q.msg.msg_iov = q.iov.data();
    q.msg.msg_iovlen = cnt;
    const ssize_t r = now ? EpollBackend::send(l.id().raw(), l.fd_, q.msg)
                          : backend_.send(l.id().raw(), l.fd_, q.msg, large);
    if (now && (r == -EAGAIN || (r >= 0 && static_cast<std::size_t>(r) < want))) {
      if (r > 0) after_sent(l, static_cast<std::size_t>(r));
      mark_dirty(l);  // the rest goes the backend's way at the turn's end
      return;
    }
    if (r == -EINPROGRESS) {  // a completion backend took it: on_sent() follows
      q.in_flight = frames;
      l.flags_ |= Link::f_send_busy;
      return;
    }
    if (r == -EAGAIN) {
      l.flags_ |= Link::f_want_write;
      return;
    }
    if (r < 0) {
      close_now(l, CloseReason::io_error, close_code::abnormal);
      return;
    }
    after_sent(l, static_cast<std::size_t>(r));
    if (static_cast<std::size_t>(r) < want) {
      l.flags_ |= Link::f_want_write;
      return;
    }
  }
}

void Reactor::after_sent(Link& l, std::size_t n) noexcept {
  metrics_.bytes_out.add(n);
  SendQueue* q = l.sendq_;
  while (n > 0 && q != nullptr && q->count > 0) {
    SendFrame& f = q->at(0);
    const std::size_t left = f.total() - f.written;
    if (n < left) {
      f.written += static_cast<std::uint32_t>(n);
      q->bytes -= n;
      metrics_.queued_bytes.sub(n);
      n = 0;
      break;
    }
    n -= left;
    q->bytes -= left;
    metrics_.queued_bytes.sub(left);
    f.payload.reset();
    q->head = (q->head + 1) & (config::send_ring_slots - 1);
    --q->count;
  }
  if (q != nullptr && q->count == 0) {
    release_queue(q);
    l.sendq_ = nullptr;
    if (l.flags_ & Link::f_close_after_flush) {
      finish_close(l);
      return;
    }
    if ((l.flags_ & Link::f_drain_wanted) && l.state_ == LinkState::open) {
      l.flags_ &= ~Link::f_drain_wanted;
      guarded(l, [&] { handler_.on_drain(l); });
    }
  }
}

// ---------------------------------------------------------------------------
// Timers: one wheel node per link, due at the earliest of its deadlines. A
// deadline that moved later (new traffic) is found when the node fires, which
// then re-arms for the new time: traffic never touches the wheel.

void Reactor::arm_timer(Link& l) noexcept {
  if (l.state_ == LinkState::closed) return;
  const std::uint64_t now = now_ms_;
  // Link times are 32-bit reactor milliseconds; their signed distance from
  // now is exact for spans under 24 days, and may point into the future (an
  // application timer).
  auto at = [&](std::uint32_t t32, std::uint32_t after) -> std::uint64_t {
    const std::int64_t delta = static_cast<std::int32_t>(t32 - ms32());
    return static_cast<std::uint64_t>(static_cast<std::int64_t>(now) + delta) + after;
  };
  std::uint64_t due = UINT64_MAX;
  auto consider = [&](std::uint64_t t) { due = std::min(due, t); };
  switch (l.state_) {
    case LinkState::handshaking:
      if (cfg_.handshake_timeout_ms) consider(at(l.mark_ms_, cfg_.handshake_timeout_ms));
      break;
    case LinkState::open:
      if (cfg_.idle_timeout_ms) consider(at(l.last_rx_ms_, cfg_.idle_timeout_ms));
      if (cfg_.ping_interval_ms) {
        if (l.flags_ & Link::f_awaiting_pong) {
          consider(at(l.mark_ms_, cfg_.pong_timeout_ms));
        } else {
          consider(at(l.last_rx_ms_, cfg_.ping_interval_ms));
        }
      }
      if (l.paused_ & Link::p_rate) {
        const RateState& rate = *l.aux_->rate;
        const std::uint64_t wait = std::max(rate.messages.ms_until(1, now), rate.bytes.ms_until(1, now));
        consider(now + std::max<std::uint64_t>(wait, 1));
      }
      break;
    case LinkState::closing:
      consider(at(l.mark_ms_, cfg_.close_timeout_ms ? cfg_.close_timeout_ms : 5000));
      break;
    case LinkState::closed:
      break;
  }
  if (l.aux_ != nullptr && l.aux_->app_timer_armed && l.state_ == LinkState::open) consider(at(l.aux_->app_timer_ms, 0));
  if (due == UINT64_MAX) {
    timers_->cancel(l.timer_);
  } else {
    timers_->schedule(l.timer_, due);
  }
}

void Reactor::on_timer(Link& l) noexcept {
  if (l.state_ == LinkState::closed) return;
  const std::uint32_t now32 = ms32();
  auto elapsed = [&](std::uint32_t since) { return now32 - since; };
  switch (l.state_) {
    case LinkState::handshaking:
      if (cfg_.handshake_timeout_ms && elapsed(l.mark_ms_) >= cfg_.handshake_timeout_ms) {
        if (l.flags_ & Link::f_client) {
          close_now(l, CloseReason::handshake_timeout, close_code::abnormal);
          return;
        }
        refuse(l, 408, "handshake timeout\n", CloseReason::handshake_timeout, false);
        return;
      }
      break;
    case LinkState::open:
      if (cfg_.idle_timeout_ms && elapsed(l.last_rx_ms_) >= cfg_.idle_timeout_ms) {
        start_close(l, close_code::going_away, "idle timeout", CloseReason::idle_timeout);
        return;
      }
      if (cfg_.ping_interval_ms) {
        if (l.flags_ & Link::f_awaiting_pong) {
          if (static_cast<std::int32_t>(l.last_rx_ms_ - l.mark_ms_) > 0) {
            l.flags_ &= ~Link::f_awaiting_pong;  // the peer spoke after our ping
          } else if (elapsed(l.mark_ms_) >= cfg_.pong_timeout_ms) {
            close_now(l, CloseReason::ping_timeout, close_code::abnormal);
            return;
          }
        }
        if (!(l.flags_ & Link::f_awaiting_pong) && elapsed(l.last_rx_ms_) >= cfg_.ping_interval_ms) {
          l.flags_ |= Link::f_awaiting_pong;
          l.mark_ms_ = now32;
          (void)send_frame(l, Opcode::ping, {}, {});
          if (l.state_ == LinkState::closed) return;
        }
      }
      if (l.paused_ & Link::p_rate) {
        const RateState& rate = *l.aux_->rate;
        if (rate.messages.ms_until(1, now_ms_) == 0 && rate.bytes.ms_until(1, now_ms_) == 0) resume(l, Link::p_rate);
      }
      if (l.aux_ != nullptr && l.aux_->app_timer_armed && static_cast<std::int32_t>(now32 - l.aux_->app_timer_ms) >= 0) {
        l.aux_->app_timer_armed = false;
        trim_aux(l);
        guarded(l, [&] { handler_.on_timer(l); });
        if (l.state_ == LinkState::closed) return;
      }
      break;
    case LinkState::closing:
      if (elapsed(l.mark_ms_) >= (cfg_.close_timeout_ms ? cfg_.close_timeout_ms : 5000)) {
        // The cause stays the reason (slow consumer, protocol error...); a
        // close the application started that the peer never answered is a
        // close timeout.
        auto why = static_cast<CloseReason>(l.close_reason_);
        if (why == CloseReason::local_close && !(l.flags_ & Link::f_write_shut)) why = CloseReason::close_timeout;
        close_now(l, why, l.close_code_);
        return;
      }
      break;
    case LinkState::closed:
      return;
  }
  arm_timer(l);
}

// ---------------------------------------------------------------------------
// Handler calls: an exception closes only its own link.

template <class F>
bool Reactor::guarded(Link& l, F&& f) noexcept {
  try {
    f();
    return true;
  } catch (...) {
    metrics_.handler_exceptions.add();
    if (l.state_ == LinkState::open) {
      start_close(l, close_code::internal_error, "handler error", CloseReason::handler_exception);
    } else if (l.state_ == LinkState::handshaking) {
      char out[256];
      const std::size_t n = write_refusal(std::span<char>(out, sizeof out), 500, {});
      send_raw(l, std::string_view(out, n));
      l.close_reason_ = static_cast<std::uint8_t>(CloseReason::handler_exception);
      l.flags_ |= Link::f_close_after_flush;
      l.rlen_ = 0;
      if (l.sendq_ == nullptr && l.state_ != LinkState::closed) finish_close(l);
    }
    return false;
  }
}

// ---------------------------------------------------------------------------
// Commands, broadcast, connect, stop

void Reactor::run_command(Command& cmd) noexcept {
  metrics_.commands.add();
  switch (cmd.kind) {
    case Command::Kind::send:
      if (Link* l = find(cmd.id)) (void)send_frame(*l, cmd.op, cmd.payload.bytes(), cmd.payload);
      break;
    case Command::Kind::close:
      if (Link* l = find(cmd.id)) l->close(cmd.code);
      break;
    case Command::Kind::broadcast_all:
      broadcast_all(cmd.payload, cmd.op);
      break;
    case Command::Kind::broadcast_ids:
      if (cmd.ids) broadcast(*cmd.ids, cmd.payload, cmd.op);
      break;
    case Command::Kind::connect:
      if (cmd.connect) {
        int err = 0;
        const LinkId id = connect(*cmd.connect, &err);
        if (!id.valid()) {
          try {
            handler_.on_connect_failed(id, cmd.connect->user_data, err, 0);
          } catch (...) {
            metrics_.handler_exceptions.add();
          }
        }
      }
      break;
    case Command::Kind::stop:
      begin_stop(cmd.deadline_ms);
      break;
    case Command::Kind::resume_handoff:
      handoff_space_.store(true, std::memory_order_relaxed);
      break;
  }
}

std::size_t Reactor::broadcast_all(const PayloadRef& payload, Opcode op) noexcept {
  std::size_t n = 0;
  for (std::uint32_t s = 0; s < slab_->used; ++s) {
    Link* l = slab_->at(s);
    if (l != nullptr && l->state_ == LinkState::open && send_frame(*l, op, payload.bytes(), payload) == SendResult::queued) ++n;
  }
  return n;
}

std::size_t Reactor::broadcast(std::span<const LinkId> ids, const PayloadRef& payload, Opcode op) noexcept {
  std::size_t n = 0;
  for (LinkId id : ids) {
    Link* l = find(id);
    if (l != nullptr && send_frame(*l, op, payload.bytes(), payload) == SendResult::queued) ++n;
  }
  return n;
}

LinkId Reactor::connect(const ConnectRequest& req, int* error) noexcept {
  const int fd = start_connect(req.address, req.has_source ? &req.source : nullptr);
  if (fd < 0) {
    if (error != nullptr) *error = fd;
    return {};
  }
  Link* l = allocate_link(fd, true);
  if (l == nullptr) {
    ::close(fd);
    if (error != nullptr) *error = -ENOSPC;  // max_links_per_reactor reached
    return {};
  }
  l->user_data_ = req.user_data;
  LinkAux& aux = aux_of(*l);
  aux.handshake = std::make_unique<HandshakeState>();
  HandshakeState* hs = aux.handshake.get();
  std::array<std::byte, 16> nonce;
  for (std::size_t i = 0; i < nonce.size(); i += 8) {
    const std::uint64_t r = rng_();
    std::memcpy(nonce.data() + i, &r, 8);
  }
  hs->key = make_client_key(nonce);
  hs->offered_protocols = req.protocols;
  hs->response.emplace(*hs->key, hs->offered_protocols);
  if (l->flags_ & Link::f_nodelay) set_nodelay(fd, true);
  const LinkId id = l->id();
  if (backend_.add_link(fd, id.raw()) < 0) {
    close_now(*l, CloseReason::io_error, close_code::abnormal);
    return id;
  }
  char out[2048];
  UpgradeRequestSpec spec;
  spec.host = req.host_header;
  spec.path = req.path;
  spec.origin = req.origin;
  spec.protocols = req.protocols;
  const std::size_t n = write_upgrade_request(std::span<char>(out, sizeof out), spec, *hs->key);
  // The socket is still connecting: queue the request; the first writable
  // edge (connected) sends it.
  // With epoll the first writable edge (connected) sends it; a completion
  // backend's send waits for the connection by itself.
  if (backend_.inline_sends()) l->flags_ |= Link::f_want_write;
  send_raw(*l, std::string_view(out, n));
  arm_timer(*l);
  return id;
}

void Reactor::begin_stop(std::uint64_t deadline_ms) noexcept {
  if (stopping_) return;
  stopping_ = true;
  stop_deadline_ms_ = deadline_ms;
  if (listen_fd_) {
    backend_.set_accepting(listen_fd_.get(), 0, false);
    listen_fd_.reset();
  }
  for (std::uint32_t s = 0; s < slab_->used; ++s) {
    Link* l = slab_->at(s);
    if (l == nullptr) continue;
    if (l->state_ == LinkState::open) {
      start_close(*l, close_code::going_away, "server shutdown", CloseReason::shutdown);
    } else if (l->state_ == LinkState::handshaking) {
      close_now(*l, CloseReason::shutdown, close_code::going_away);
    }
  }
  check_stop();
}

void Reactor::check_stop() noexcept {
  if (live_links_ > 0 && now_ms_ >= stop_deadline_ms_) {
    for (std::uint32_t s = 0; s < slab_->used; ++s) {
      Link* l = slab_->at(s);
      if (l != nullptr && l->state_ != LinkState::closed) {
        close_now(*l, l->state_ == LinkState::closing ? static_cast<CloseReason>(l->close_reason_) : CloseReason::shutdown,
                  close_code::going_away);
      }
    }
    free_closed();
  }
  if (live_links_ == 0) stopped_.store(true, std::memory_order_release);
}

// ---------------------------------------------------------------------------
// Link methods (reactor thread)

LinkId Link::id() const noexcept {
  return LinkId{reactor_->index(), slot_, generation_.load(std::memory_order_relaxed)};
}

SendResult Link::send(std::span<const std::byte> payload, Opcode op) {
  if (is_control(static_cast<std::uint8_t>(op)) && op != Opcode::ping && op != Opcode::pong) return SendResult::closed;
  return reactor_->send_frame(*this, op, payload, {});
}

SendResult Link::send_text(std::string_view text) {
  return send(std::as_bytes(std::span<const char>(text.data(), text.size())), Opcode::text);
}

SendResult Link::send(PayloadRef payload, Opcode op) {
  auto bytes = payload.bytes();
  return reactor_->send_frame(*this, op, bytes, std::move(payload));
}

void Link::close(std::uint16_t code, std::string_view reason) {
  reactor_->start_close(*this, sendable_or_normal(code), reason, CloseReason::local_close);
}

void Link::abort() { reactor_->close_now(*this, CloseReason::local_close, close_code::abnormal); }

void Link::pause_reading() {
  if (state_ != LinkState::closed) reactor_->pause(*this, p_app);
}

void Link::resume_reading() {
  if (state_ != LinkState::closed) reactor_->resume(*this, p_app);
}

void Link::set_timer(std::uint32_t ms) {
  if (ms == 0) {
    if (aux_ != nullptr) aux_->app_timer_armed = false;
    reactor_->trim_aux(*this);
  } else {
    LinkAux& aux = reactor_->aux_of(*this);
    aux.app_timer_armed = true;
    aux.app_timer_ms = reactor_->ms32() + ms;
  }
  reactor_->arm_timer(*this);
}

void Link::set_nodelay(bool on) {
  if (fd_ >= 0) ringlink::set_nodelay(fd_, on);
  flags_ = on ? (flags_ | f_nodelay) : (flags_ & ~f_nodelay);
}

std::size_t Link::queued_bytes() const noexcept { return sendq_ != nullptr ? sendq_->bytes : 0; }

const char* to_string(SendResult r) noexcept {
  switch (r) {
    case SendResult::queued: return "queued";
    case SendResult::backpressured: return "backpressured";
    case SendResult::dropped: return "dropped";
    case SendResult::closed: return "closed";
  }
  return "unknown";
}

}  // namespace ringlink
