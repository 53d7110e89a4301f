#include "tools/load/handshake_runner.hpp"

#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "engine/clock.hpp"
#include "engine/link.hpp"
#include "engine/server.hpp"
#include "tools/load/client_engine.hpp"

namespace ringlink::load {
namespace {


// One writer (its reactor), any reader: no locked read-modify-write.
struct Counter {
  std::atomic<std::uint64_t> v{0};
  void add(std::uint64_t n = 1) noexcept { v.store(v.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  void sub() noexcept { v.store(v.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed); }
  std::uint64_t get() const noexcept { return v.load(std::memory_order_relaxed); }
};

// One concurrent connection, cycling. connect_ns is written by whoever asks
// for the next connect and read by the reactor that runs it: the command
// ring orders the two.
struct Slot {
  std::uint32_t index = 0;
  std::uint64_t connect_ns = 0;
  bool ever_opened = false;
};

struct alignas(64) HsThread {
  Histogram handshake;
  LiveHistogram live;
  Counter completed, links_open;
};

class HandshakeRunner final : public Handler {
 public:
  HandshakeRunner(const Options& o, bool progress, const ProgressSink& sink)
      : o_(o), progress_(progress), sink_(sink), slots_(o.conns) {
    for (std::uint32_t i = 0; i < o.conns; ++i) slots_[i].index = i;
    for (unsigned t = 0; t < o.threads; ++t) threads_.push_back(std::make_unique<HsThread>());
  }

  bool run(Results& r, std::string& error);

  void on_open(Link& link) override;
  void on_close(Link& link, std::uint16_t code, std::string_view reason) override;
  void on_connect_failed(LinkId id, void* user_data, int error, std::uint16_t http_status) override;

 private:
  HsThread& thread_of(Link& link) noexcept { return *threads_[link.reactor().index()]; }
  void again(Slot& s);
  bool start_connect(Slot& s);
  void retry_refused();
  void count(std::map<int, std::uint64_t>& m, int key) {
    std::lock_guard<std::mutex> lock(mutex_);
    ++m[key];
    errors_.fetch_add(1, std::memory_order_relaxed);
  }
  void tick(std::uint64_t now);

  const Options& o_;
  const bool progress_;
  const ProgressSink& sink_;
  std::vector<Slot> slots_;
  std::vector<std::unique_ptr<HsThread>> threads_;
  std::unique_ptr<Server> server_;
  std::atomic<bool> cycling_{true};     // false: a slot that finishes a cycle stays idle
  std::atomic<bool> forced_{false};     // the final stop closes what is left (1001): not a failure
  std::atomic<std::uint32_t> idle_{0};  // slots that finished after cycling_ went false
  std::atomic<std::uint64_t> window_start_{UINT64_MAX}, window_end_{UINT64_MAX};
  std::atomic<std::uint64_t> errors_{0};

  std::mutex mutex_;  // the failure maps and the refused connects: rare
  std::map<int, std::uint64_t> connect_errors_, upgrade_failures_, unexpected_closes_;
  std::vector<Slot*> refused_;  // connect() found the command ring full: the main thread retries

  std::uint64_t start_ns_ = 0, next_progress_ns_ = 0, last_completed_ = 0;
};

bool HandshakeRunner::start_connect(Slot& s) {
  ConnectRequest req;
  req.address = o_.target.address;
  if (!o_.sources.empty()) {
    req.has_source = true;
    req.source = o_.sources[s.index % o_.sources.size()];
  }
  req.host_header = o_.target.host_header;
  req.path = o_.target.path;
  req.user_data = &s;
  req.tls.enabled = o_.target.tls;
  req.tls.ca_file = o_.ca_file;
  req.tls.insecure = o_.insecure;
  req.deflate = o_.deflate;
  s.connect_ns = steady_now_ns();
  return server_->connect(req);
}

// Reactor thread (or the main thread for a refused connect). Never waits
// here: the full ring may be this reactor's own, which drains only when the
// callback returns.
void HandshakeRunner::again(Slot& s) {
  if (!cycling_.load(std::memory_order_acquire)) {
    idle_.fetch_add(1, std::memory_order_acq_rel);
    return;
  }
  if (start_connect(s)) return;
  std::lock_guard<std::mutex> lock(mutex_);
  refused_.push_back(&s);
}

void HandshakeRunner::on_open(Link& link) {
  Slot& s = *static_cast<Slot*>(link.user_data());
  HsThread& t = thread_of(link);
  const std::uint64_t now = steady_now_ns();
  const std::uint64_t took = now > s.connect_ns ? now - s.connect_ns : 0;
  s.ever_opened = true;
  t.links_open.add();
  if (now >= window_start_.load(std::memory_order_relaxed) && now < window_end_.load(std::memory_order_relaxed)) {
    t.handshake.record(took);
    t.completed.add();
  }
  t.live.record(took);
  link.close(close_code::normal);
}

void HandshakeRunner::on_close(Link& link, std::uint16_t code, std::string_view reason) {
  (void)reason;
  Slot& s = *static_cast<Slot*>(link.user_data());
  thread_of(link).links_open.sub();
  if (code != close_code::normal && !forced_.load(std::memory_order_acquire)) count(unexpected_closes_, code);
  again(s);
}

void HandshakeRunner::on_connect_failed(LinkId id, void* user_data, int error, std::uint16_t http_status) {
  (void)id;
  if (!forced_.load(std::memory_order_acquire)) {
    if (http_status != 0) {
      count(upgrade_failures_, http_status);
    } else {
      count(connect_errors_, error < 0 ? -error : error);
    }
  }
  again(*static_cast<Slot*>(user_data));
}

void HandshakeRunner::retry_refused() {
  std::vector<Slot*> retry;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    retry.swap(refused_);
  }
  for (std::size_t i = 0; i < retry.size(); ++i) {
    if (!cycling_.load(std::memory_order_acquire)) {
      idle_.fetch_add(1, std::memory_order_acq_rel);
    } else if (!start_connect(*retry[i])) {
      std::lock_guard<std::mutex> lock(mutex_);
      refused_.insert(refused_.end(), retry.begin() + static_cast<std::ptrdiff_t>(i), retry.end());
      return;
    }
  }
}

// Main thread, every few milliseconds: refused connects, the live line.
void HandshakeRunner::tick(std::uint64_t now) {
  retry_refused();
  if (now < next_progress_ns_) return;
  next_progress_ns_ += 1'000'000'000ULL;
  if (!progress_) return;
  ProgressSample sample;
  sample.elapsed_s = static_cast<double>(now - start_ns_) / 1e9;
  sample.errors = errors_.load(std::memory_order_relaxed);
  for (const auto& t : threads_) {
    sample.msgs += t->completed.get();
    sample.up += t->links_open.get();
    t->live.add_snapshot(sample.live);
  }
  sample.phase = cycling_.load() ? 1 : 2;
  if (sink_) {
    sink_(sample);
    return;
  }
  std::fprintf(stderr, "[%6.1fs] handshakes/s %llu  errors %llu%s\n", sample.elapsed_s,
               (unsigned long long)(sample.msgs - last_completed_), (unsigned long long)sample.errors,
               sample.phase == 2 ? " finishing" : "");
  last_completed_ = sample.msgs;
}

bool HandshakeRunner::run(Results& r, std::string& error) {
  if (!start_client_engine(server_, *this, o_.threads, error)) return false;
  start_ns_ = steady_now_ns();
  next_progress_ns_ = start_ns_ + 1'000'000'000ULL;
  const std::uint64_t start = start_ns_ + static_cast<std::uint64_t>(o_.warmup_s * 1e9);
  const std::uint64_t end = start + static_cast<std::uint64_t>(o_.duration_s * 1e9);
  window_end_.store(end, std::memory_order_relaxed);
  window_start_.store(start, std::memory_order_relaxed);

  auto sleep_tick = [&](std::uint64_t until) {
    for (std::uint64_t now = steady_now_ns(); now < until; now = steady_now_ns()) {
      tick(now);
      std::this_thread::sleep_for(std::chrono::nanoseconds(std::min<std::uint64_t>(until - now, 5'000'000ULL)));
    }
  };
  for (Slot& s : slots_) {
    if (o_.connect_rate > 0)
      sleep_tick(start_ns_ + static_cast<std::uint64_t>(1e9 * static_cast<double>(s.index) / o_.connect_rate));
    while (!start_connect(s)) sleep_tick(steady_now_ns() + 1'000'000);
  }
  sleep_tick(end);

  // Let every slot finish the cycle it is in: its handshake (or timeout),
  // then its close.
  cycling_.store(false, std::memory_order_release);
  const std::uint64_t drain_deadline = steady_now_ns() + (handshake_timeout_ms + close_timeout_ms + 1000) * 1'000'000ULL;
  for (std::uint64_t now = steady_now_ns(); idle_.load(std::memory_order_acquire) < o_.conns && now < drain_deadline;
       now = steady_now_ns()) {
    tick(now);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  const std::uint32_t unfinished = o_.conns - std::min(o_.conns, idle_.load(std::memory_order_acquire));
  forced_.store(true, std::memory_order_release);
  server_->stop(std::chrono::seconds(1));

  r.measured_s = static_cast<double>(end - start) / 1e9;
  r.conns_requested = o_.conns;
  for (const Slot& s : slots_) r.conns_opened += s.ever_opened ? 1 : 0;
  r.connects_unfinished = unfinished;
  for (const auto& t : threads_) {
    t->handshake.merge_into(r.handshake);
  }
  std::lock_guard<std::mutex> lock(mutex_);
  r.connect_errors = connect_errors_;
  r.upgrade_failures = upgrade_failures_;
  r.unexpected_closes = unexpected_closes_;
  return true;
}

}  // namespace

bool run_handshakes(const Options& options, bool progress, Results& out, std::string& error, const ProgressSink& sink) {
  HandshakeRunner runner(options, progress || static_cast<bool>(sink), sink);
  return runner.run(out, error);
}

}  // namespace ringlink::load
