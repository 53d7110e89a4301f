#include "engine/reactor.hpp"

#include <sys/random.h>

#include <algorithm>

#include "engine/clock.hpp"
#include "engine/reactor_internal.hpp"
#include "engine/server.hpp"

namespace ringlink {

namespace {

// 1 ms ticks: application timers (a load generator's send schedule) stay
// precise; 4096 slots make a 4 s round, longer timeouts take several rounds.
constexpr std::uint32_t timer_tick_ms = 1;

// Commands run per turn, so that links keep being served under a flood.
constexpr int commands_per_turn = 4096;
// Memory trimming: how often, what counts as quiet (receives in one interval:
// under 1,024 a second), and how many cached chunks the pool keeps.
constexpr std::uint64_t trim_interval_ms = 250;
constexpr std::uint32_t trim_quiet_receives = 256;
constexpr std::size_t trim_low_water = 8;

thread_local Reactor* current_reactor = nullptr;

}  // namespace

Reactor* Reactor::current() noexcept { return current_reactor; }

Reactor::Reactor(std::uint32_t index, const ServerConfig& cfg, Handler& handler, Server* server)
    : cfg_(cfg),
      handler_(handler),
      server_(server),
      index_(index),
      commands_(4096),
      handoff_(cfg.worker_threads(), cfg.handoff_quota, config::recv_ring_slots),
      clock_(&steady_now_ms),
      members_(cfg.max_topics_per_link) {
  if (server_ != nullptr) registry_ = server_->topic_registry();
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
}

Reactor::~Reactor() {
  // The kernel lets go of every buffer before any is freed.
  backend_.close();
  links_.for_each_slot([&](Link& l) {
    if (l.fd_ >= 0) ::close(l.fd_);
    if (!l.closed()) {
      l.state_ = LinkState::closed;
      free_link(l);
    }
  });
  for (Link* l : closed_) free_link(*l);
  closed_.clear();
  for (Link* l : kernel_held_) free_link(*l);
  kernel_held_.clear();
  for (Session* s : session_cache_) delete s;
}

int Reactor::open(int listen_fd, int tls_listen_fd) noexcept {
  listen_fd_.reset(listen_fd);
  tls_listen_fd_.reset(tls_listen_fd);
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
  if (tls_listen_fd_) {
    r = backend_.add_listener(tls_listen_fd_.get(), 1);
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
  current_reactor = this;
  backend_.wait(sleep_budget(max_wait_ms), *this);  // calls begin_turn() first
  metrics_.loop_wakeups.add();
  serve_over_budget();
  serve_read_again();
  serve_pool_waiters();
  run_timers();
  resume_accepting();
  run_commands();
  serve_handoff_waiters();
  flush_all();
  free_closed();
  trim_memory();
  if (stopping_) check_stop();
  metrics_.loop_turn((steady_now_ns() - turn_start_ns_) / 1000);
}

// How long may we sleep? Never past the next timer, the accept back-off or
// the stop deadline; not at all when links wait to read again.
int Reactor::sleep_budget(int max_wait_ms) const noexcept {
  std::int64_t timeout = -1;
  auto tighten = [&](std::int64_t ms) {
    if (ms < 0) ms = 0;
    if (timeout < 0 || ms < timeout) timeout = ms;
  };
  if (!read_again_.empty() || !over_budget_.empty() || handoff_.space_pending()) tighten(0);
  if (trim_due_) tighten(static_cast<std::int64_t>(next_trim_ms_ - std::min(next_trim_ms_, now_ms_)));
  if (std::int64_t t = timers_->ms_until_next(now_ms_); t >= 0) tighten(t);
  if (accept_paused_) tighten(static_cast<std::int64_t>(accept_resume_ms_ - std::min(accept_resume_ms_, now_ms_)));
  if (stopping_) tighten(static_cast<std::int64_t>(stop_deadline_ms_ - std::min(stop_deadline_ms_, now_ms_)));
  if (max_wait_ms >= 0) tighten(max_wait_ms);
  return static_cast<int>(std::min<std::int64_t>(timeout, 3'600'000));
}

// Links that read their budget last turn go on (through read_again_).
void Reactor::serve_over_budget() noexcept {
  if (over_budget_.empty()) return;
  std::vector<LinkId> batch;
  batch.swap(over_budget_);
  for (LinkId id : batch)
    if (Link* l = find(id)) resume(*l, Link::p_budget);
}

// Links that ran out of read budget, were resumed, or got a chunk back.
void Reactor::serve_read_again() noexcept {
  if (read_again_.empty()) return;
  std::vector<LinkId> batch;
  batch.swap(read_again_);
  for (LinkId id : batch) {
    Link* l = find(id);
    if (l == nullptr) continue;
    l->clear(Link::f_in_ready);
    if (l->paused()) continue;
    if (l->rlen_ > 0) {
      process_input(*l);
      if (l->closed() || l->paused()) continue;
      if (l->rlen_ == 0) release_rbuf(*l);
    }
    if constexpr (config::tls) {
      if (l->has(Link::f_tls) && !tls_resume(*l)) continue;
    }
    if (l->aux_ != nullptr && !l->aux_->pending.empty()) {
      drain_pending(*l);
      if (l->closed() || l->paused()) continue;
    }
    if (l->has(Link::f_readable)) on_readable(*l, false);
  }
}

void Reactor::serve_pool_waiters() noexcept {
  if (pool_waiting_.empty() || pool_->in_use() >= pool_->max_chunks()) return;
  std::vector<LinkId> waiting;
  waiting.swap(pool_waiting_);
  for (LinkId id : waiting) {
    if (Link* l = find(id)) {
      l->clear(Link::f_in_pool_wait);
      resume(*l, Link::p_pool);
    }
  }
}

void Reactor::run_timers() noexcept {
  pings_this_turn_ = 0;
  timers_->advance(now_ms_, [this](TimerNode& node) {
    Link* l = reinterpret_cast<Link*>(reinterpret_cast<char*>(&node) - offsetof(Link, timer_));
    on_timer(*l);
  });
}

void Reactor::resume_accepting() noexcept {
  if (!accept_paused_ || now_ms_ < accept_resume_ms_ || stopping_) return;
  accept_paused_ = false;
  // Connections may have queued while we were not looking.
  if (listen_fd_) {
    backend_.set_accepting(listen_fd_.get(), 0, true);
    on_acceptable(0);
  }
  if (tls_listen_fd_) {
    backend_.set_accepting(tls_listen_fd_.get(), 1, true);
    on_acceptable(1);
  }
}

void Reactor::run_commands() noexcept {
  Command cmd;
  for (int i = 0; i < commands_per_turn && commands_.try_pop(cmd); ++i) {
    run_command(cmd);
    cmd = Command{};
  }
}

void Reactor::serve_handoff_waiters() noexcept {
  if (!handoff_.take_space() || !handoff_.has_waiting()) return;
  for (LinkId id : handoff_.take_waiting())
    if (Link* l = find(id)) resume(*l, Link::p_handoff);
}

// A burst leaves idle chunks holding the pages it touched: the pool's cache
// and, on io_uring, the buffer ring. A quarter second after input came, and
// only when little came in that time (a busy reactor reuses those chunks at
// once), their pages go back to the kernel, so an idle reactor's memory is
// what its links hold. A reactor with no input since the last trim never
// wakes for this.
void Reactor::trim_memory() noexcept {
  if (!trim_due_) {
    if (receives_since_trim_ == 0) return;
    trim_due_ = true;  // judged an interval after input resumed, over that interval
    next_trim_ms_ = now_ms_ + trim_interval_ms;
    return;
  }
  if (now_ms_ < next_trim_ms_) return;
  const bool quiet = receives_since_trim_ < trim_quiet_receives;
  receives_since_trim_ = 0;
  next_trim_ms_ = now_ms_ + trim_interval_ms;
  std::size_t pages = backend_.trim(quiet);
  if (quiet) {
    pages += pool_->trim(trim_low_water);
    pages += queues_.trim();
    trim_due_ = false;
  }
  metrics_.pages_returned.add(pages);
}

void Reactor::flush_all() noexcept {
  if (!lost_.empty()) settle_lost();
  if (flush_list_.empty()) return;
  std::vector<LinkId> batch;
  batch.swap(flush_list_);
  for (LinkId id : batch) {
    if (Link* l = find(id)) {
      l->clear(Link::f_in_flush);
      flush(*l);
    }
  }
}

bool Reactor::post(Command&& cmd) noexcept {
  if (!commands_.try_push(std::move(cmd))) {
    metrics_.commands_rejected.add();
    return false;
  }
  backend_.wake();
  return true;
}

void Reactor::notify_inbound_space() noexcept {
  if (handoff_.notify_space()) backend_.wake();
}

// The backend calls this as soon as its wait returns, before it reports any
// event: whatever the events cause (accepts, reads, timer arming) must see
// the time after the sleep, not before it.
void Reactor::begin_turn() noexcept {
  now_ms_ = clock_();
  turn_start_ns_ = steady_now_ns();
  run_key_ = 0;
  if constexpr (config::tls) {
    // The oldest waiting handshakes take the turn's budget first; what is
    // left goes to handshakes whose bytes arrive this turn.
    tls_budget_ = cfg_.tls_handshakes_per_turn;
    if (!tls_admission_.empty()) tls_admit_queued();
  }
}

bool Reactor::alive(LinkId id) const noexcept {
  if (id.reactor() != index_) return false;
  Link* l = links_.at(id.slot());
  return l != nullptr && l->generation_.load(std::memory_order_acquire) == id.generation();
}

Link* Reactor::find(LinkId id) noexcept {
  if (id.reactor() != index_ || !id.valid()) return nullptr;
  Link* l = links_.at(id.slot());
  if (l == nullptr || l->generation_.load(std::memory_order_relaxed) != id.generation()) return nullptr;
  if (l->closed()) return nullptr;
  return l;
}

// Puts a link on one of the turn's lists once; `member` says it is there.
void Reactor::join_list(std::vector<LinkId>& list, Link& l, Link::Flag member) noexcept {
  if (l.has(member)) return;
  if (!push_nothrow(list, l.id())) {
    out_of_memory(l);
    return;
  }
  l.set(member);
}

Link* Reactor::link_for(std::uint64_t key) noexcept { return find(LinkId::from_raw(key)); }

Link* Reactor::link_in_slot(std::uint32_t slot) noexcept {
  Link* l = links_.at(slot);
  return l != nullptr && !l->closed() ? l : nullptr;
}

}  // namespace ringlink
