#include "tools/load/runner.hpp"

#include <pthread.h>
#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <utility>

#include "engine/clock.hpp"
#include "engine/link.hpp"
#include "engine/server.hpp"
#include "tools/load/client_engine.hpp"
#include "tools/load/handshake_runner.hpp"
#include "tools/load/sequence.hpp"

namespace ringlink::load {
namespace {

// The engine's timer wheel ticks every 10 ms: a link timer asked for 1 ms
// fires at the next tick. Rate schedules are also advanced from every message
// callback, so at any useful rate the pacing is finer than this.
constexpr std::uint32_t ticker_ms = 1;
// One schedule pass sends at most this many messages, so a tool that fell
// behind catches up in slices and keeps reading replies in between.
constexpr std::uint32_t max_sends_per_pass = 1024;
constexpr double saturated_cpu_percent = 90.0;
// A send later than this behind its schedule (p99), without backpressure,
// means the tool itself is too slow (two timer ticks of slack).
constexpr std::uint64_t behind_schedule_ns = 20'000'000;

enum class Phase : std::uint8_t { ramp, running, draining, closing };

// A counter with one writing thread and any number of readers: a relaxed
// load and store, never a locked read-modify-write.
struct Counter {
  std::atomic<std::uint64_t> v{0};
  void add(std::uint64_t n = 1) noexcept { v.store(v.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  void sub(std::uint64_t n = 1) noexcept { v.store(v.load(std::memory_order_relaxed) - n, std::memory_order_relaxed); }
  std::uint64_t get() const noexcept { return v.load(std::memory_order_relaxed); }
};

std::uint64_t since_ns(std::uint64_t from, std::uint64_t to) noexcept { return to > from ? to - from : 0; }

// Marks a callback that may send (see ThreadState::busy). seq_cst on both
// sides: the store here and the phase load after it cannot be reordered
// against the main thread's phase store and busy load.
class SendingCallback {
 public:
  explicit SendingCallback(std::atomic<bool>& busy) noexcept : busy_(busy) { busy_.store(true, std::memory_order_seq_cst); }
  ~SendingCallback() { busy_.store(false, std::memory_order_release); }
  SendingCallback(const SendingCallback&) = delete;
  SendingCallback& operator=(const SendingCallback&) = delete;

 private:
  std::atomic<bool>& busy_;
};

// One connection. Touched by its reactor thread only, except link_id (the
// main thread closes links by id at the end).
struct alignas(64) Conn {
  std::uint32_t index = 0;
  std::atomic<std::uint64_t> link_id{0};
  Link* link = nullptr;               // while open
  bool opened = false;
  bool closed_early = false;
  std::uint16_t close_code = 0;
  std::uint32_t slot = 0;             // position in its thread's `senders`, when listed
  bool listed = false;
  std::uint64_t next_seq = 0;         // data messages sent
  SequenceTracker seq;
  std::uint64_t measured = 0;
  std::uint64_t mismatches = 0;
  std::uint64_t awaiting = 0;         // sent (or pinged) and not answered yet
  std::uint64_t owed = 0;             // echo: sends refused by backpressure, retried on drain
  std::vector<std::uint64_t> backlog; // rate/push: intended times waiting for on_drain
  std::uint64_t blocked_since = 0;
  std::uint64_t pings = 0, pongs = 0;
  std::uint64_t connect_ns = 0;       // when connect() was asked (handshake time)
};

struct alignas(64) ThreadState {
  Histogram latency, uncorrected, send_lag;
  Histogram handshake;
  LiveHistogram live;
  Counter msgs_in, msgs_out, errors, links_open;
  // Messages (or pings) still waiting for their answer. Updated with one
  // store at the end of each callback, so the main thread never sees the
  // moment between a reply counted and the next send not yet counted.
  Counter outstanding;
  std::uint64_t sent_now = 0;
  // Set while a callback that may send runs. The main thread stops the
  // sending, then waits for this to clear once before it trusts
  // `outstanding`: a callback either saw the stop or has settled its sends.
  std::atomic<bool> busy{false};
  std::atomic<int> cpu_clock{0};
  std::atomic<bool> cpu_known{false};

  std::uint64_t w_msgs_in = 0, w_msgs_out = 0, w_bytes_in = 0, w_bytes_out = 0;
  std::uint64_t bytes_in = 0, bytes_out = 0;
  std::array<std::uint64_t, static_cast<std::size_t>(MessageCheck::count_)> corrupt{};
  std::uint64_t wrong_connection = 0, wrong_opcode = 0, never_sent = 0, bad_pongs = 0, foreign = 0;
  std::uint64_t send_failures = 0, backpressured = 0, blocked_ns = 0;

  // Open-loop schedule (rate: over every open link of the thread; push: the sender).
  std::vector<Conn*> senders;
  std::size_t rr = 0;
  std::uint64_t period_ns = 0;
  std::uint64_t next_ns = 0;
  bool scheduling = false;
  Link* ticker = nullptr;

  std::mt19937_64 rng{0x5EED};
  std::vector<std::byte> buf;
};

// Rare events (connect failures, refusals, unexpected closes) come from any
// reactor and are few: one mutex is simpler than per-thread maps.
struct RareLog {
  std::mutex mutex;
  std::map<int, std::uint64_t> connect_errors, upgrade_failures, unexpected_closes;
  std::atomic<std::uint64_t> count{0};
  std::atomic<std::uint32_t> failed{0};

  void add(std::map<int, std::uint64_t>& m, int key) {
    std::lock_guard<std::mutex> lock(mutex);
    ++m[key];
    count.fetch_add(1, std::memory_order_relaxed);
  }
};

class LoadRunner final : public Handler {
 public:
  LoadRunner(const Options& o, bool progress, const ProgressSink& sink)
      : o_(o), progress_(progress), sink_(sink), conns_(o.conns) {
    for (std::uint32_t i = 0; i < o.conns; ++i) conns_[i].index = i;
    for (unsigned t = 0; t < o.threads; ++t) {
      auto ts = std::make_unique<ThreadState>();
      ts->buf.resize(o.size_max);
      ts->rng.seed(0x5EED + t);
      // Connection i goes to reactor i % threads (Server::connect is round robin).
      const std::uint64_t assigned = o.conns / o.threads + (t < o.conns % o.threads ? 1 : 0);
      if (o.mode == Mode::rate && assigned > 0)
        ts->period_ns = static_cast<std::uint64_t>(1e9 * static_cast<double>(o.conns) / (o.rate * static_cast<double>(assigned)));
      if (o.mode == Mode::push && o.rate > 0) ts->period_ns = static_cast<std::uint64_t>(1e9 / o.rate);
      if (ts->period_ns == 0) ts->period_ns = 1;
      threads_.push_back(std::move(ts));
    }
  }

  bool run(Results& r, std::string& error);

  void on_open(Link& link) override;
  void on_message(Link& link, std::span<std::byte> payload, Opcode op) override;
  void on_pong(Link& link, std::span<std::byte> payload) override;
  void on_drain(Link& link) override;
  void on_timer(Link& link) override;
  void on_close(Link& link, std::uint16_t code, std::string_view reason) override;
  void on_connect_failed(LinkId id, void* user_data, int error, std::uint16_t http_status) override;

 private:
  ThreadState& thread_of(Link& link) noexcept { return *threads_[link.reactor().index()]; }
  static Conn& conn_of(Link& link) noexcept { return *static_cast<Conn*>(link.user_data()); }
  bool in_window(std::uint64_t t) const noexcept {
    return t >= window_start_.load(std::memory_order_relaxed) && t < window_end_.load(std::memory_order_relaxed);
  }
  Phase phase() const noexcept { return phase_.load(std::memory_order_seq_cst); }
  bool sending() const noexcept { return phase() <= Phase::running; }

  std::uint32_t pick_size(ThreadState& t) noexcept {
    if (o_.size_min == o_.size_max) return o_.size_min;
    return o_.size_min + static_cast<std::uint32_t>(t.rng() % (o_.size_max - o_.size_min + 1));
  }
  SendResult send_data(Conn& c, ThreadState& t, std::uint64_t intended, std::uint32_t conn_field);
  void echo_send_or_owe(Conn& c, ThreadState& t);
  void run_schedule(ThreadState& t, std::uint64_t now);
  void flush_backlog(Conn& c, ThreadState& t);
  void unlist(Conn& c, ThreadState& t);
  void note_blocked(Conn& c, ThreadState& t, std::uint64_t now) noexcept {
    if (c.blocked_since == 0) c.blocked_since = now;
    ++t.backpressured;
  }
  void note_unblocked(Conn& c, ThreadState& t, std::uint64_t now) noexcept {
    if (c.blocked_since != 0) t.blocked_ns += since_ns(c.blocked_since, now);
    c.blocked_since = 0;
  }
  // Publishes this callback's sends and answers in one store.
  static void settle(ThreadState& t, std::uint64_t answered) noexcept {
    if (t.sent_now == 0 && answered == 0) return;
    t.outstanding.v.store(t.outstanding.get() + t.sent_now - answered, std::memory_order_relaxed);
    t.sent_now = 0;
  }
  static std::uint64_t take_answer(Conn& c) noexcept {
    if (c.awaiting == 0) return 0;
    --c.awaiting;
    return 1;
  }
  void count_error(ThreadState& t, Conn& c) noexcept {
    ++c.mismatches;
    t.errors.add();
  }

  // main thread
  void progress_line(double elapsed_s);
  void sample_cpu(std::vector<std::uint64_t>& out) const;
  void wait_until(std::uint64_t deadline_ns, bool (LoadRunner::*done)() const);
  bool all_connected() const { return opened_.load() + rare_.failed.load() >= o_.conns; }
  bool replies_in() const;
  bool all_closed() const;
  void collect(Results& r, const std::vector<bool>& open_at_end);

  const Options& o_;
  const bool progress_;
  const ProgressSink& sink_;
  std::vector<Conn> conns_;
  std::vector<std::unique_ptr<ThreadState>> threads_;
  RareLog rare_;
  std::atomic<Phase> phase_{Phase::ramp};
  std::atomic<std::uint64_t> window_start_{UINT64_MAX}, window_end_{UINT64_MAX};
  std::atomic<std::uint32_t> opened_{0};
  std::string deflate_agreed_;             // written once, by the first on_open
  std::atomic<bool> deflate_known_{false};
  std::atomic<std::uint64_t> push_sent_{0};
  std::unique_ptr<Server> server_;

  // progress and CPU bookkeeping (main thread)
  std::uint64_t start_ns_ = 0;
  std::uint64_t next_progress_ns_ = 0;
  std::uint64_t last_msgs_ = 0;
  std::vector<std::uint64_t> last_live_;
  std::vector<std::uint64_t> last_cpu_;
  std::uint64_t last_cpu_sample_ns_ = 0;
  std::vector<double> busiest_;
};

// ---------------------------------------------------------------------------
// Reactor side

SendResult LoadRunner::send_data(Conn& c, ThreadState& t, std::uint64_t intended, std::uint32_t conn_field) {
  const std::uint32_t size = pick_size(t);
  const std::uint64_t now = steady_now_ns();
  const MessageStamp stamp{conn_field, c.next_seq, intended == 0 ? now : intended, now};
  const std::span<std::byte> msg(t.buf.data(), size);
  write_message(msg, stamp, o_.text, o_.payload);
  const SendResult r = c.link->send(msg, o_.text ? Opcode::text : Opcode::binary);
  if (r == SendResult::queued) {
    ++c.next_seq;
    ++c.awaiting;
    ++t.sent_now;
    t.msgs_out.add();
    t.bytes_out += size;
    if (in_window(now)) {
      ++t.w_msgs_out;
      t.w_bytes_out += size;
    }
  } else if (r == SendResult::queued_dropping_older) {
    ++t.send_failures;  // queued, but older unsent messages were dropped
    t.errors.add();
  }
  return r;
}

void LoadRunner::echo_send_or_owe(Conn& c, ThreadState& t) {
  if (c.owed > 0) {  // keep the order: owed sends go first, from on_drain
    ++c.owed;
    return;
  }
  if (send_data(c, t, 0, c.index) == SendResult::backpressured) {
    ++c.owed;
    note_blocked(c, t, steady_now_ns());
  }
}

void LoadRunner::run_schedule(ThreadState& t, std::uint64_t now) {
  if (!sending() || t.senders.empty()) return;
  if (o_.mode == Mode::push && phase() != Phase::running) return;  // push starts when all are up
  if (!t.scheduling) {
    t.scheduling = true;
    t.next_ns = now;
  }
  for (std::uint32_t n = 0; n < max_sends_per_pass && t.next_ns <= now && !t.senders.empty(); ++n) {
    Conn& c = *t.senders[t.rr++ % t.senders.size()];
    const std::uint64_t intended = t.next_ns;
    t.next_ns += t.period_ns;
    if (!c.backlog.empty()) {  // blocked: it waits behind the ones already waiting
      c.backlog.push_back(intended);
      continue;
    }
    const SendResult r = send_data(c, t, intended, c.index);
    if (r == SendResult::backpressured) {
      c.backlog.push_back(intended);
      note_blocked(c, t, now);
    } else if (r == SendResult::queued) {
      const std::uint64_t lag = since_ns(intended, steady_now_ns());
      if (in_window(intended)) t.send_lag.record(lag);
      if (o_.mode == Mode::push) push_sent_.store(c.next_seq, std::memory_order_relaxed);
    }
  }
}

void LoadRunner::flush_backlog(Conn& c, ThreadState& t) {
  std::size_t done = 0;
  while (done < c.backlog.size() && c.link != nullptr && sending()) {
    const SendResult r = send_data(c, t, c.backlog[done], c.index);
    if (r == SendResult::backpressured) {
      note_blocked(c, t, steady_now_ns());
      break;
    }
    ++done;
  }
  if (o_.mode == Mode::push) push_sent_.store(c.next_seq, std::memory_order_relaxed);
  c.backlog.erase(c.backlog.begin(), c.backlog.begin() + static_cast<std::ptrdiff_t>(done));
}

void LoadRunner::unlist(Conn& c, ThreadState& t) {
  if (!c.listed) return;
  Conn* last = t.senders.back();
  t.senders[c.slot] = last;
  last->slot = c.slot;
  t.senders.pop_back();
  c.listed = false;
}

void LoadRunner::on_open(Link& link) {
  Conn& c = conn_of(link);
  ThreadState& t = thread_of(link);
  const SendingCallback guard(t.busy);
  if (!t.cpu_known.load(std::memory_order_relaxed)) {
    clockid_t cid;
    if (pthread_getcpuclockid(pthread_self(), &cid) == 0) {
      t.cpu_clock.store(static_cast<int>(cid), std::memory_order_relaxed);
      t.cpu_known.store(true, std::memory_order_release);
    }
  }
  c.link = &link;
  c.opened = true;
  t.handshake.record(since_ns(c.connect_ns, steady_now_ns()));
  c.link_id.store(link.id().raw(), std::memory_order_release);
  t.links_open.add();
  if (opened_.fetch_add(1, std::memory_order_relaxed) == 0 && o_.deflate) {
    // The first link's agreement stands for all (one server, one offer).
    std::array<char, 128> text{};
    const DeflateParams* p = link.deflate_params();
    const std::size_t n = p != nullptr ? write_deflate_response(text, *p) : 0;
    deflate_agreed_ = n != 0 ? std::string(text.data(), n) : std::string("declined");
    deflate_known_.store(true, std::memory_order_release);
  }

  switch (o_.mode) {
    case Mode::echo:
      for (std::uint32_t i = 0; i < o_.inflight && c.link != nullptr && sending(); ++i) echo_send_or_owe(c, t);
      break;
    case Mode::rate:
    case Mode::push:
      if (o_.mode == Mode::push && (c.index != 0 || o_.rate <= 0)) break;
      c.slot = static_cast<std::uint32_t>(t.senders.size());
      c.listed = true;
      t.senders.push_back(&c);
      if (t.ticker == nullptr) {
        t.ticker = &link;
        link.set_timer(ticker_ms);
      }
      break;
    case Mode::idle:
      if (o_.ping_interval_ms > 0) link.set_timer(o_.ping_interval_ms);
      break;
  }
  settle(t, 0);
}

void LoadRunner::on_message(Link& link, std::span<std::byte> payload, Opcode op) {
  const std::uint64_t now = steady_now_ns();
  Conn& c = conn_of(link);
  ThreadState& t = thread_of(link);
  const SendingCallback guard(t.busy);
  t.msgs_in.add();
  t.bytes_in += payload.size();
  const bool counted = in_window(now);
  if (counted) {
    ++t.w_msgs_in;
    t.w_bytes_in += payload.size();
    ++c.measured;
  }
  MessageStamp s;
  const MessageCheck check = read_message(payload, o_.text, s, o_.payload);
  const bool expecting = o_.mode != Mode::idle && !(o_.mode == Mode::push && o_.rate <= 0);
  const bool echoed = o_.mode == Mode::echo || o_.mode == Mode::rate;
  const std::uint64_t answered = echoed ? take_answer(c) : 0;
  if (!expecting) {
    // Push with --rate 0 or idle: the server's own messages; check ours only.
    if (check != MessageCheck::ok) {
      ++t.foreign;
      return;
    }
  } else if (check != MessageCheck::ok) {
    ++t.corrupt[static_cast<std::size_t>(check)];
    count_error(t, c);
    // With the header intact the message is known: it arrived, damaged, and
    // is not also counted as lost.
    if (check == MessageCheck::bad_filler && echoed && s.conn == c.index && s.seq < c.next_seq) (void)c.seq.on_receive(s.seq);
    if (o_.mode == Mode::echo && c.link != nullptr && sending()) echo_send_or_owe(c, t);  // keep the loop closed
    settle(t, answered);
    return;
  }
  if (op != (o_.text ? Opcode::text : Opcode::binary)) {
    ++t.wrong_opcode;
    count_error(t, c);
  }
  const std::uint32_t expected_conn = echoed ? c.index : 0;
  if (s.conn != expected_conn) {
    ++t.wrong_connection;
    count_error(t, c);
  } else if (echoed && s.seq >= c.next_seq) {
    ++t.never_sent;
    count_error(t, c);
  } else {
    switch (c.seq.on_receive(s.seq)) {
      case SequenceTracker::Arrival::duplicate:
      case SequenceTracker::Arrival::late:
      case SequenceTracker::Arrival::too_old:
        t.errors.add();  // counted per connection in the tracker
        break;
      case SequenceTracker::Arrival::in_order:
      case SequenceTracker::Arrival::ahead:
        break;
    }
    const std::uint64_t latency = since_ns(s.intended_ns, now);
    t.live.record(latency);
    if (in_window(s.intended_ns)) {
      t.latency.record(latency);
      if (o_.mode != Mode::echo) t.uncorrected.record(since_ns(s.sent_ns, now));
    }
  }
  if (o_.mode == Mode::echo) {
    if (c.link != nullptr && sending()) echo_send_or_owe(c, t);
  } else if (o_.mode == Mode::rate || o_.mode == Mode::push) {
    run_schedule(t, now);
  }
  settle(t, answered);
}

void LoadRunner::on_pong(Link& link, std::span<std::byte> payload) {
  if (o_.mode != Mode::idle) return;
  const std::uint64_t now = steady_now_ns();
  Conn& c = conn_of(link);
  ThreadState& t = thread_of(link);
  std::uint64_t sent = 0;
  if (payload.size() != sizeof sent) {
    ++t.bad_pongs;
    count_error(t, c);
    return;
  }
  std::memcpy(&sent, payload.data(), sizeof sent);
  if (sent > now || now - sent > histogram_max_ns) {
    ++t.bad_pongs;
    count_error(t, c);
    return;
  }
  ++c.pongs;
  t.msgs_in.add();
  settle(t, take_answer(c));
  const std::uint64_t rtt = now - sent;
  t.live.record(rtt);
  if (in_window(sent)) {
    ++t.w_msgs_in;
    ++c.measured;
    t.latency.record(rtt);
  }
}

void LoadRunner::on_drain(Link& link) {
  Conn& c = conn_of(link);
  ThreadState& t = thread_of(link);
  const SendingCallback guard(t.busy);
  note_unblocked(c, t, steady_now_ns());
  if (o_.mode == Mode::echo) {
    while (c.owed > 0 && c.link != nullptr && sending()) {
      if (send_data(c, t, 0, c.index) == SendResult::backpressured) {
        note_blocked(c, t, steady_now_ns());
        break;
      }
      --c.owed;
    }
  } else if (!c.backlog.empty()) {
    flush_backlog(c, t);
  }
  settle(t, 0);
}

void LoadRunner::on_timer(Link& link) {
  Conn& c = conn_of(link);
  ThreadState& t = thread_of(link);
  const SendingCallback guard(t.busy);
  const std::uint64_t now = steady_now_ns();
  if (o_.mode == Mode::idle) {
    if (!sending()) return;
    std::uint64_t stamp = now;
    std::byte body[sizeof stamp];
    std::memcpy(body, &stamp, sizeof stamp);
    if (link.send(std::span<const std::byte>(body, sizeof body), Opcode::ping) == SendResult::queued) {
      ++c.pings;
      ++c.awaiting;
      ++t.sent_now;
      t.msgs_out.add();
      if (in_window(now)) ++t.w_msgs_out;
    }
    if (c.link != nullptr) link.set_timer(o_.ping_interval_ms);
    settle(t, 0);
    return;
  }
  if (&link == t.ticker) {
    run_schedule(t, now);
    if (c.link != nullptr && sending()) link.set_timer(ticker_ms);
  }
  settle(t, 0);
}

void LoadRunner::on_close(Link& link, std::uint16_t code, std::string_view reason) {
  (void)reason;
  Conn& c = conn_of(link);
  ThreadState& t = thread_of(link);
  note_unblocked(c, t, steady_now_ns());
  // Its answers will not come: they stop counting as outstanding (and count
  // as unanswered in the results).
  settle(t, std::exchange(c.awaiting, 0));
  c.link = nullptr;
  c.link_id.store(0, std::memory_order_release);
  t.links_open.sub();
  unlist(c, t);
  if (t.ticker == &link) {
    t.ticker = nullptr;
    if (!t.senders.empty() && sending()) {
      t.ticker = t.senders.back()->link;
      t.ticker->set_timer(ticker_ms);
    }
  }
  if (phase() != Phase::closing) {
    c.closed_early = true;
    c.close_code = code;
    rare_.add(rare_.unexpected_closes, code);
  }
}

void LoadRunner::on_connect_failed(LinkId id, void* user_data, int error, std::uint16_t http_status) {
  (void)user_data;
  (void)id;  // the request's user_data is not reported back: failures are counted, not attributed
  if (http_status != 0) {
    rare_.add(rare_.upgrade_failures, http_status);
  } else {
    rare_.add(rare_.connect_errors, error < 0 ? -error : error);
  }
  rare_.failed.fetch_add(1, std::memory_order_relaxed);
}

// ---------------------------------------------------------------------------
// Main thread

void LoadRunner::sample_cpu(std::vector<std::uint64_t>& out) const {
  out.assign(threads_.size(), 0);
  for (std::size_t i = 0; i < threads_.size(); ++i) {
    if (!threads_[i]->cpu_known.load(std::memory_order_acquire)) continue;
    timespec ts{};
    if (clock_gettime(static_cast<clockid_t>(threads_[i]->cpu_clock.load()), &ts) == 0)
      out[i] = static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<std::uint64_t>(ts.tv_nsec);
  }
}

void LoadRunner::progress_line(double elapsed_s) {
  ProgressSample sample;
  sample.elapsed_s = elapsed_s;
  sample.errors = rare_.count.load(std::memory_order_relaxed);
  for (const auto& t : threads_) {
    sample.msgs += t->msgs_in.get();
    sample.errors += t->errors.get();
    sample.up += t->links_open.get();
    t->live.add_snapshot(sample.live);
  }
  sample.phase = phase() == Phase::ramp ? 0 : phase() == Phase::running ? 1 : 2;
  if (sink_) {
    sink_(sample);
    return;
  }
  std::vector<std::uint64_t> diff(sample.live.size());
  for (std::size_t i = 0; i < sample.live.size(); ++i)
    diff[i] = sample.live[i] - (i < last_live_.size() ? last_live_[i] : 0);
  print_progress(stderr, elapsed_s, sample.up, o_.conns, sample.msgs - last_msgs_, diff, sample.errors, sample.phase);
  last_msgs_ = sample.msgs;
  last_live_ = std::move(sample.live);
}

// Sleeps until the deadline or until `done` holds, printing progress and
// sampling CPU once a second meanwhile.
void LoadRunner::wait_until(std::uint64_t deadline_ns, bool (LoadRunner::*done)() const) {
  for (;;) {
    const std::uint64_t now = steady_now_ns();
    if (now >= next_progress_ns_) {
      next_progress_ns_ += 1'000'000'000ULL;
      if (progress_) progress_line(static_cast<double>(now - start_ns_) / 1e9);
      std::vector<std::uint64_t> cpu;
      sample_cpu(cpu);
      const std::uint64_t wall = now - last_cpu_sample_ns_;
      if (in_window(now) && in_window(last_cpu_sample_ns_) && wall > 0) {
        for (std::size_t i = 0; i < cpu.size(); ++i) {
          if (cpu[i] == 0 || last_cpu_[i] == 0) continue;
          busiest_[i] = std::max(busiest_[i], 100.0 * static_cast<double>(cpu[i] - last_cpu_[i]) / static_cast<double>(wall));
        }
      }
      last_cpu_ = cpu;
      last_cpu_sample_ns_ = now;
    }
    if (now >= deadline_ns || (done != nullptr && (this->*done)())) return;
    const std::uint64_t until = std::min(deadline_ns, next_progress_ns_);
    const std::uint64_t step = std::min<std::uint64_t>(until - now, 10'000'000ULL);
    std::this_thread::sleep_for(std::chrono::nanoseconds(step));
  }
}

bool LoadRunner::replies_in() const {
  if (o_.mode == Mode::push) {
    // Every open link should have had every broadcast.
    std::uint64_t in = 0, up = 0;
    for (const auto& t : threads_) {
      in += t->msgs_in.get();
      up += t->links_open.get();
    }
    return in >= push_sent_.load(std::memory_order_relaxed) * up;
  }
  for (const auto& t : threads_)
    if (t->outstanding.get() != 0) return false;
  return true;
}

bool LoadRunner::all_closed() const {
  for (const auto& t : threads_)
    if (t->links_open.get() != 0) return false;
  return true;
}

bool LoadRunner::run(Results& r, std::string& error) {
  if (!start_client_engine(server_, *this, o_.threads, error)) return false;
  busiest_.assign(threads_.size(), -1.0);
  start_ns_ = steady_now_ns();
  next_progress_ns_ = start_ns_ + 1'000'000'000ULL;
  last_cpu_sample_ns_ = start_ns_;

  // Connect, paced; the command ring may be full for a moment.
  for (std::uint32_t i = 0; i < o_.conns; ++i) {
    if (o_.connect_rate > 0) {
      const auto due = start_ns_ + static_cast<std::uint64_t>(1e9 * i / o_.connect_rate);
      wait_until(due, nullptr);
    }
    ConnectRequest req;
    req.address = o_.target.address;
    if (!o_.sources.empty()) {
      req.has_source = true;
      req.source = o_.sources[i % o_.sources.size()];
    }
    req.host_header = o_.target.host_header;
    req.path = o_.target.path;
    req.user_data = &conns_[i];
    req.tls.enabled = o_.target.tls;
    req.tls.ca_file = o_.ca_file;
    req.tls.insecure = o_.insecure;
    req.deflate = o_.deflate;
    conns_[i].connect_ns = steady_now_ns();  // published to the reactor by the command ring
    while (!server_->connect(req)) wait_until(steady_now_ns() + 1'000'000, nullptr);
  }
  wait_until(steady_now_ns() + (handshake_timeout_ms + 2000) * 1'000'000ULL, &LoadRunner::all_connected);

  const std::uint64_t ramp_end = steady_now_ns();
  r.ramp_s = static_cast<double>(ramp_end - start_ns_) / 1e9;
  if (deflate_known_.load(std::memory_order_acquire)) r.deflate = deflate_agreed_;
  const auto start = ramp_end + static_cast<std::uint64_t>(o_.warmup_s * 1e9);
  const auto end = start + static_cast<std::uint64_t>(o_.duration_s * 1e9);
  window_end_.store(end, std::memory_order_relaxed);
  window_start_.store(start, std::memory_order_relaxed);
  phase_.store(Phase::running, std::memory_order_relaxed);

  wait_until(start, nullptr);
  std::vector<std::uint64_t> cpu_start, cpu_end;
  sample_cpu(cpu_start);
  rusage ru_start{}, ru_end{};
  getrusage(RUSAGE_SELF, &ru_start);
  wait_until(end, nullptr);
  sample_cpu(cpu_end);
  getrusage(RUSAGE_SELF, &ru_end);
  const std::uint64_t measured_end = steady_now_ns();

  phase_.store(Phase::draining, std::memory_order_seq_cst);
  const std::uint64_t settle_deadline = steady_now_ns() + 200'000'000ULL;  // callbacks are short; never hang here
  for (const auto& t : threads_)
    while (t->busy.load(std::memory_order_seq_cst) && steady_now_ns() < settle_deadline) std::this_thread::yield();
  wait_until(steady_now_ns() + static_cast<std::uint64_t>(o_.grace_s * 1e9), &LoadRunner::replies_in);

  std::vector<bool> open_at_end(conns_.size());
  for (std::size_t i = 0; i < conns_.size(); ++i) open_at_end[i] = conns_[i].link_id.load(std::memory_order_acquire) != 0;
  phase_.store(Phase::closing, std::memory_order_relaxed);
  for (auto& c : conns_) {
    const std::uint64_t id = c.link_id.load(std::memory_order_acquire);
    if (id == 0) continue;
    // close() is false for a link that went away meanwhile, or a full command ring.
    while (!server_->close(LinkId::from_raw(id), close_code::normal) && c.link_id.load(std::memory_order_acquire) == id &&
           server_->reactor(LinkId::from_raw(id).reactor()).alive(LinkId::from_raw(id)))
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  wait_until(steady_now_ns() + (close_timeout_ms + 1000) * 1'000'000ULL, &LoadRunner::all_closed);
  server_->stop(std::chrono::seconds(1));

  r.measured_s = static_cast<double>(measured_end - start) / 1e9;
  r.threads.resize(threads_.size());
  for (std::size_t i = 0; i < threads_.size(); ++i) {
    if (i < cpu_start.size() && cpu_start[i] != 0 && cpu_end[i] != 0)
      r.threads[i].cpu_percent = 100.0 * static_cast<double>(cpu_end[i] - cpu_start[i]) / static_cast<double>(measured_end - start);
    r.threads[i].busiest_second_percent = busiest_[i];
  }
  auto tv_ns = [](const timeval& tv) {
    return static_cast<std::uint64_t>(tv.tv_sec) * 1'000'000'000ULL + static_cast<std::uint64_t>(tv.tv_usec) * 1000ULL;
  };
  const std::uint64_t used = tv_ns(ru_end.ru_utime) + tv_ns(ru_end.ru_stime) - tv_ns(ru_start.ru_utime) - tv_ns(ru_start.ru_stime);
  r.process_cpu_percent = 100.0 * static_cast<double>(used) / static_cast<double>(measured_end - start);
  collect(r, open_at_end);
  if (o_.mode == Mode::push && o_.rate > 0) {
    // Deliveries missing at the end of a connection that stayed open.
    const std::uint64_t sent = push_sent_.load();
    r.unanswered = 0;
    for (std::size_t i = 0; i < conns_.size(); ++i) {
      ConnResult& cr = r.conns[i];
      cr.unanswered = open_at_end[i] ? sent - std::min(sent, conns_[i].seq.next_expected()) : 0;
      r.unanswered += cr.unanswered;
    }
  }
  if (o_.mode == Mode::idle) {
    r.pongs_missing = 0;
    for (std::size_t i = 0; i < conns_.size(); ++i) {
      if (!open_at_end[i]) continue;
      r.pongs_missing += r.conns[i].pings - r.conns[i].pongs;
    }
  }
  return true;
}

void LoadRunner::collect(Results& r, const std::vector<bool>& open_at_end) {
  r.conns_requested = o_.conns;
  for (const auto& tp : threads_) {
    const ThreadState& t = *tp;
    t.latency.merge_into(r.latency);
    t.uncorrected.merge_into(r.latency_uncorrected);
    t.send_lag.merge_into(r.send_lag);
    t.handshake.merge_into(r.handshake);
    r.msgs_received += t.w_msgs_in;
    r.msgs_sent += t.w_msgs_out;
    r.bytes_received += t.w_bytes_in;
    r.bytes_sent += t.w_bytes_out;
    r.total_received += t.msgs_in.get();
    r.total_sent += t.msgs_out.get();
    for (std::size_t i = 0; i < r.corrupt.size(); ++i) r.corrupt[i] += t.corrupt[i];
    r.wrong_connection += t.wrong_connection;
    r.wrong_opcode += t.wrong_opcode;
    r.never_sent += t.never_sent;
    r.bad_pongs += t.bad_pongs;
    r.foreign += t.foreign;
    r.send_failures += t.send_failures;
    r.backpressured_sends += t.backpressured;
    r.blocked_ms += t.blocked_ns / 1'000'000;
  }
  // Writes the kernel took only in part, over the run: counted where they
  // happen, in the engine (every send is queued until its turn's flush, so
  // a queued message says nothing about the socket).
  if (server_) r.partial_writes = server_->snapshot().partial_writes;
  {
    std::lock_guard<std::mutex> lock(rare_.mutex);
    r.connect_errors = rare_.connect_errors;
    r.upgrade_failures = rare_.upgrade_failures;
    r.unexpected_closes = rare_.unexpected_closes;
  }
  std::uint32_t failed = rare_.failed.load();
  std::vector<std::uint64_t> measured;
  r.conns.resize(conns_.size());
  for (std::size_t i = 0; i < conns_.size(); ++i) {
    const Conn& c = conns_[i];
    ConnResult& cr = r.conns[i];
    cr.index = c.index;
    cr.opened = c.opened;
    cr.open_at_end = open_at_end[i];
    cr.unexpected_close = c.closed_early ? c.close_code : 0;
    cr.sent = c.next_seq;
    cr.received = c.seq.unique();
    cr.measured = c.measured;
    cr.duplicates = c.seq.duplicates();
    cr.reordered = c.seq.reordered();
    cr.lost = c.seq.missing();
    cr.mismatches = c.mismatches;
    cr.pings = c.pings;
    cr.pongs = c.pongs;
    if (o_.mode == Mode::echo || o_.mode == Mode::rate) cr.unanswered = c.next_seq - std::min(c.next_seq, c.seq.next_expected());
    if (c.opened) {
      ++r.conns_opened;
      measured.push_back(c.measured);
    }
    r.duplicates += cr.duplicates;
    r.reordered += cr.reordered;
    r.lost += cr.lost;
    r.unanswered += cr.unanswered;
    r.pings += cr.pings;
  }
  for (std::size_t i = 0; i < conns_.size(); ++i) r.conns_open_at_end += r.conns[i].open_at_end ? 1 : 0;
  r.connects_unfinished = o_.conns - std::min<std::uint32_t>(o_.conns, r.conns_opened + failed);
  if (!measured.empty()) {
    std::sort(measured.begin(), measured.end());
    r.fairness_min = measured.front();
    r.fairness_median = measured[measured.size() / 2];
    r.fairness_max = measured.back();
  }

  // Is the tool the bottleneck?
  for (std::size_t i = 0; i < r.threads.size(); ++i) {
    if (r.threads[i].cpu_percent >= saturated_cpu_percent) {
      r.self_saturated = true;
      char line[160];
      std::snprintf(line, sizeof line, "load thread %zu used %.0f%% of a core: the tool may be the bottleneck (add --threads)",
                    i, r.threads[i].cpu_percent);
      r.warnings.emplace_back(line);
    }
  }
  if ((o_.mode == Mode::rate || (o_.mode == Mode::push && o_.rate > 0)) && r.send_lag.count() > 0) {
    const std::uint64_t lag = r.send_lag.value_at_percentile(99.0);
    if (lag > behind_schedule_ns) {
      r.self_saturated = true;
      char line[160];
      std::snprintf(line, sizeof line, "sends ran behind schedule (p99 %.1f ms late, not counting backpressure): the tool is the bottleneck",
                    static_cast<double>(lag) / 1e6);
      r.warnings.emplace_back(line);
    }
  }
}

}  // namespace

bool run_load(const Options& options, bool progress, Results& out, std::string& error, const ProgressSink& sink) {
  if (options.handshakes) return run_handshakes(options, progress, out, error, sink);
  LoadRunner runner(options, progress || static_cast<bool>(sink), sink);
  return runner.run(out, error);
}

void print_progress(std::FILE* out, double elapsed_s, std::uint64_t up, std::uint32_t conns, std::uint64_t msgs_per_s,
                    const std::vector<std::uint64_t>& live_diff, std::uint64_t errors, std::uint32_t phase) {
  std::uint64_t total = 0;
  for (std::uint64_t c : live_diff) total += c;
  const std::uint64_t p99 = percentile_of<CoarseLayout>(live_diff, total, 99.0);
  const char* ph = phase == 0 ? "connecting" : phase == 1 ? "" : "finishing";
  std::fprintf(out, "[%6.1fs] conns %llu/%u  msgs/s %llu  p99 %.1fus  errors %llu %s\n", elapsed_s,
               (unsigned long long)up, conns, (unsigned long long)msgs_per_s, total ? static_cast<double>(p99) / 1e3 : 0.0,
               (unsigned long long)errors, ph);
}

}  // namespace ringlink::load
