#include "engine/server.hpp"

#include <unistd.h>

#include <cstring>
#include <algorithm>
#include <future>

#include "engine/clock.hpp"
#include "engine/log.hpp"
#include "engine/publication.hpp"
#include "engine/tls_context.hpp"
#include "engine/worker_backlog.hpp"
#include "protocol/codec.hpp"

namespace ringlink {

struct Server::Worker {
  std::mutex mutex;
  std::condition_variable cv;
  std::atomic<bool> sleeping{false};
  std::atomic<std::uint64_t> signals{0};
};

Server::Server(ServerConfig cfg, Handler& handler) : cfg_(std::move(cfg)), handler_(handler) {
  if (cfg_.max_links_per_ip > 0) ip_limiter_ = std::make_unique<IpLimiter>(cfg_.max_links_per_ip);
}

Server::~Server() {
  if (running_) stop(std::chrono::seconds(1));
}

int Server::start() {
  if (running_) return -EALREADY;
  unsigned n = cfg_.reactors;
  if (n == 0) {
    long cores = ::sysconf(_SC_NPROCESSORS_ONLN);
    n = cores > 0 ? static_cast<unsigned>(cores) : 1;
  }
  if (n > max_reactors) n = max_reactors;

  // The broker is checked before anything binds: a bad URL fails start().
  std::unique_ptr<BrokerClient> broker_client;
  BrokerBridge::Options broker_opts;
  if (!cfg_.broker.empty()) {
    if (!parse_broker_url(cfg_.broker, broker_opts.url)) return -EINVAL;
    if (broker_opts.url.scheme == "redis") broker_client = make_redis_client();
    if (broker_opts.url.scheme == "nats") broker_client = make_nats_client();
    if (!broker_client) return -EPROTONOSUPPORT;
    broker_opts.prefix = cfg_.broker_prefix;
    broker_opts.max_queued = cfg_.broker_max_queued;
    broker_opts.backoff_max_ms = std::max<std::uint32_t>(cfg_.broker_backoff_max_ms, broker_opts.backoff_min_ms);
  }

  const bool with_tls = cfg_.listen && cfg_.tls.enabled();
  if (with_tls) {
    if constexpr (!config::tls) {
      RINGLINK_LOG(LogLevel::error, "TLS configured, but this build has no TLS (meson -Dtls=enabled)");
      return -ENOPROTOOPT;
    } else {
      std::string why;
      int err = 0;
      tls_ = make_tls_server_context(cfg_.tls, &err, &why);
      if (!tls_) {
        RINGLINK_LOG(LogLevel::error, "TLS: %s", why.c_str());
        return err;
      }
      if (!ktls_available()) {
        RINGLINK_LOG(LogLevel::info, "TLS: kernel TLS offload unavailable (no tls ULP); records are sealed in user space");
      }
    }
  }
  std::vector<int> listeners, tls_listeners;
  auto close_all = [&] {
    for (int l : listeners) ::close(l);
    for (int l : tls_listeners) ::close(l);
  };
  // One SO_REUSEPORT listener per reactor on `port`; 0 lets the kernel pick
  // it for the first, and the others join that one.
  auto open_listeners = [&](std::uint16_t port, std::vector<int>& out, std::uint16_t& bound) -> int {
    SocketAddress addr;
    if (int r = resolve_address(cfg_.host, port, addr); r < 0) return r;
    for (unsigned i = 0; i < n; ++i) {
      int fd = make_listener(addr, n > 1 || cfg_.reuse_port, cfg_.backlog);
      if (fd < 0) return fd;
      if (i == 0) {
        bound = local_port(fd);
        addr = SocketAddress{};
        resolve_address(cfg_.host, bound, addr);
      }
      out.push_back(fd);
    }
    return 0;
  };
  if (cfg_.listen && (cfg_.listen_plain || !with_tls)) {
    if (int r = open_listeners(cfg_.port, listeners, port_); r < 0) {
      close_all();
      return r;
    }
  }
  if (with_tls) {
    if (int r = open_listeners(cfg_.tls.port, tls_listeners, tls_port_); r < 0) {
      close_all();
      port_ = tls_port_ = 0;
      return r;
    }
    if (listeners.empty()) port_ = tls_port_;
  }

  topics_ = std::make_unique<TopicRegistry>(n, cfg_.max_topics);
  if (broker_client) {
    bridge_ = std::make_unique<BrokerBridge>(*this, std::move(broker_client), broker_opts);
    topics_->set_observer(bridge_.get());
  }
  wants_space_.reset(new std::atomic<bool>[n]);
  for (unsigned i = 0; i < n; ++i) wants_space_[i].store(false);
  for (unsigned i = 0; i < n; ++i) reactors_.push_back(std::make_unique<Reactor>(i, cfg_, handler_, this));
  // Workers' wake-up state exists before any reactor runs: a reactor hands
  // off (and notifies a worker) as soon as its first message arrives.
  const unsigned worker_count = cfg_.worker_threads();
  for (unsigned i = 0; i < worker_count; ++i) workers_.push_back(std::make_unique<Worker>());

  // Each reactor opens its backend and pools on its own thread (mimalloc
  // heaps belong to the thread that made them).
  std::vector<std::promise<int>> ready(n);
  for (unsigned i = 0; i < n; ++i) {
    const int lfd = listeners.empty() ? -1 : listeners[i];
    const int tfd = tls_listeners.empty() ? -1 : tls_listeners[i];
    reactors_[i]->set_tls(tls_.get());
    threads_.emplace_back([this, i, lfd, tfd, &ready] {
      Reactor& r = *reactors_[i];
      const int err = r.open(lfd, tfd);
      ready[i].set_value(err);
      if (err == 0) r.run();
    });
  }
  int first_error = 0;
  for (unsigned i = 0; i < n; ++i) {
    const int err = ready[i].get_future().get();
    if (err < 0 && first_error == 0) first_error = err;
  }
  for (unsigned i = 0; i < worker_count; ++i) worker_threads_.emplace_back([this, i] { worker_main(i); });
  if (bridge_ && first_error == 0) first_error = bridge_->start();
  running_.store(true, std::memory_order_release);
  if (first_error < 0) {
    stop(std::chrono::milliseconds(0));
    return first_error;
  }
  return 0;
}

void Server::stop(std::chrono::milliseconds deadline) {
  if (!running_) return;
  const std::uint64_t until = steady_now_ms() + static_cast<std::uint64_t>(deadline.count());
  for (auto& r : reactors_) {
    Command c;
    c.kind = Command::Kind::stop;
    c.deadline_ms = until;
    // The ring may be momentarily full of sends: retry briefly, never forever.
    for (int attempt = 0; attempt < 1000 && !r->post(Command{c}); ++attempt)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  for (auto& t : threads_) t.join();
  threads_.clear();
  workers_stop_.store(true);
  for (std::size_t i = 0; i < workers_.size(); ++i) notify_worker(static_cast<unsigned>(i));
  for (auto& t : worker_threads_) t.join();
  worker_threads_.clear();
  if (bridge_) bridge_->stop();
  running_.store(false, std::memory_order_release);
}

int Server::reload_tls(std::string* why) { return reload_tls(cfg_.tls, why); }

int Server::reload_tls(const TlsConfig& tls, std::string* why) {
  if constexpr (!config::tls) {
    if (why != nullptr) *why = "built without TLS";
    return -ENOPROTOOPT;
  } else {
    if (!tls_) {
      if (why != nullptr) *why = "no TLS listener";
      return -ENOTCONN;
    }
    const int r = tls_->load(tls, why);
    if (r == 0 && &tls != &cfg_.tls) {
      const std::uint16_t port = cfg_.tls.port;
      cfg_.tls = tls;
      cfg_.tls.port = port;
    }
    return r;
  }
}

SendResult Server::send(LinkId id, std::span<const std::byte> payload, Opcode op) {
  if (id.reactor() >= reactors_.size() || !reactors_[id.reactor()]->alive(id)) return SendResult::closed;
  PayloadRef p = PayloadRef::allocate(payload.size());
  if (!p && !payload.empty()) return SendResult::not_posted;
  if (!payload.empty()) std::memcpy(p.data(), payload.data(), payload.size());
  return send(id, std::move(p), op);
}

SendResult Server::send_text(LinkId id, std::string_view text) {
  return send(id, std::as_bytes(std::span<const char>(text.data(), text.size())), Opcode::text);
}

SendResult Server::send(LinkId id, PayloadRef payload, Opcode op) {
  if (id.reactor() >= reactors_.size()) return SendResult::closed;
  Reactor& r = *reactors_[id.reactor()];
  if (!r.alive(id)) return SendResult::closed;
  Command c;
  c.kind = Command::Kind::send;
  c.id = id;
  c.op = op;
  c.payload = std::move(payload);
  return r.post(std::move(c)) ? SendResult::queued : SendResult::not_posted;
}

bool Server::close(LinkId id, std::uint16_t code) {
  if (id.reactor() >= reactors_.size()) return false;
  Reactor& r = *reactors_[id.reactor()];
  if (!r.alive(id)) return false;
  Command c;
  c.kind = Command::Kind::close;
  c.id = id;
  c.code = code;
  return r.post(std::move(c));
}

PayloadRef Server::make_frame_payload(std::span<const std::byte> payload, Opcode op) {
  return frame_once(payload, op);
}

std::size_t Server::broadcast(std::span<const LinkId> ids, std::span<const std::byte> payload, Opcode op) {
  return post_broadcast(std::make_shared<const std::vector<LinkId>>(ids.begin(), ids.end()), payload, op);
}

std::size_t Server::broadcast_all(std::span<const std::byte> payload, Opcode op) {
  return post_broadcast(nullptr, payload, op);
}

// One frame, encoded once, to every reactor: each sends it to its own links
// among `ids` (all of them when null). Returns how many reactors took it.
std::size_t Server::post_broadcast(std::shared_ptr<const std::vector<LinkId>> ids, std::span<const std::byte> payload,
                                   Opcode op) {
  PayloadRef p = make_frame_payload(payload, op);
  if (!p && !payload.empty()) return 0;
  std::size_t reached = 0;
  for (auto& r : reactors_) {
    Command c;
    c.kind = Command::Kind::broadcast;
    c.op = op;
    c.payload = p;
    c.ids = ids;
    if (r->post(std::move(c))) ++reached;
  }
  return reached;
}

bool Server::connect(const ConnectRequest& req) {
  if (reactors_.empty()) return false;
  const std::uint32_t i = next_connect_.fetch_add(1, std::memory_order_relaxed) % reactors_.size();
  Command c;
  c.kind = Command::Kind::connect;
  c.connect = std::make_shared<ConnectRequest>(req);
  return reactors_[i]->post(std::move(c));
}

MetricsSnapshot Server::snapshot() const {
  MetricsSnapshot s;
  for (const auto& r : reactors_) s.add(r->metrics());
  return s;
}

void Server::notify_worker(unsigned worker) noexcept {
  if (worker >= workers_.size()) return;
  Worker& w = *workers_[worker];
  w.signals.fetch_add(1);
  if (w.sleeping.load()) {
    std::lock_guard<std::mutex> lock(w.mutex);
    w.cv.notify_one();
  }
}

void Server::request_handoff_space(std::uint32_t reactor) noexcept {
  wants_space_[reactor].store(true);
}

// A worker takes what its rings hold, as far as its backlog has room, and
// serves the links in turn (engine/worker_backlog.hpp): a link whose
// messages are slow to handle delays only itself. With nothing to do it
// sleeps until a reactor signals (or 100 ms pass, so a lost wake-up costs
// latency, never liveness).
void Server::worker_main(unsigned index) {
  Worker& w = *workers_[index];
  WorkerBacklog backlog(config::recv_ring_slots);
  InboundMessage msg;
  while (!workers_stop_.load(std::memory_order_acquire)) {
    const std::uint64_t seen = w.signals.load(std::memory_order_acquire);
    for (auto& r : reactors_) {
      while (!backlog.full() && r->pop_inbound(index, msg)) {
        if (!backlog.add(msg)) handle_inbound(msg, index);  // no memory to hold it: now
      }
    }
    if (backlog.next(msg)) {
      handle_inbound(msg, index);
      continue;
    }
    std::unique_lock<std::mutex> lock(w.mutex);
    w.sleeping.store(true);
    if (w.signals.load() == seen && !workers_stop_.load())
      w.cv.wait_for(lock, std::chrono::milliseconds(100));
    w.sleeping.store(false, std::memory_order_release);
  }
}

void Server::handle_inbound(InboundMessage& msg, unsigned worker) noexcept {
  try {
    handler_.on_worker_message(msg.id, msg.payload.bytes(), msg.op, worker);
  } catch (...) {
    close(msg.id, close_code::internal_error);
  }
  msg.payload.reset();
  const std::uint32_t ri = msg.id.reactor();
  if (ri >= reactors_.size()) return;
  Reactor& r = *reactors_[ri];
  r.inbound_done(msg.id.slot());
  // A link paused for its quota may go on once one of its messages is
  // handled: tell the reactor now, not only when the worker is idle (a slow
  // business side may never be idle while others keep sending).
  if (wants_space_[ri].load(std::memory_order_relaxed) && wants_space_[ri].exchange(false)) r.notify_inbound_space();
}

}  // namespace ringlink
