#include "tools/load/pubsub.hpp"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>

#include "engine/clock.hpp"
#include "engine/link.hpp"
#include "engine/server.hpp"
#include "tools/load/client_engine.hpp"
#include "tools/load/pubsub_stream.hpp"

namespace ringlink::load {
namespace {

constexpr std::uint32_t ticker_ms = 1;
constexpr std::uint64_t warmup_period_ns = 50'000'000;
constexpr std::uint32_t max_sends_per_pass = 1024;

enum class Phase : std::uint8_t { connecting, confirming, running, draining, closing };

// One writer (a reactor thread), any reader: a relaxed load and store.
struct Counter {
  std::atomic<std::uint64_t> v{0};
  void add(std::uint64_t n = 1) noexcept { v.store(v.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  std::uint64_t get() const noexcept { return v.load(std::memory_order_relaxed); }
};

struct PConn {
  std::uint32_t index = 0;          // subscriber or publisher number
  bool publisher = false;
  std::uint32_t node = 0;
  std::atomic<std::uint64_t> link_id{0};
  Link* link = nullptr;
  bool opened = false;              // written on the reactor, read by main after all_connected()
  std::atomic<bool> opened_flag{false};
  std::atomic<std::uint32_t> thread{0};
  bool closed_early = false;
  // subscriber: streams[publisher * K + k], k the slot of the topic
  std::vector<StreamTracker> streams;
  // publisher: the next number per topic, and which topic is next
  std::vector<std::uint64_t> seq;
  std::uint32_t next_topic = 0;
};

struct alignas(64) ThreadState {
  Histogram latency;
  Counter delivered, expected, confirmed, published;
  std::uint64_t duplicates = 0, reordered = 0, malformed = 0, foreign = 0, backpressured = 0;
  std::vector<PConn*> publishers;   // open publishers of this thread
  std::size_t rr = 0;
  std::uint64_t period_ns = 0;      // set by main before Phase::running
  std::uint64_t next_ns = 0;
  bool scheduling = false;
  std::uint64_t next_warm_ns = 0;
  Link* ticker = nullptr;
  std::string buf;
};

struct RareLog {
  std::mutex mutex;
  std::map<int, std::uint64_t> connect_errors, upgrade_failures, unexpected_closes;
  std::atomic<std::uint32_t> failed{0};
  void add(std::map<int, std::uint64_t>& m, int key) {
    std::lock_guard<std::mutex> lock(mutex);
    ++m[key];
  }
};

std::string topic_name(std::uint32_t t) { return "t" + std::to_string(t); }

// Reads the next unsigned decimal field of `s` (fields separated by one space).
bool next_field(std::string_view& s, std::uint64_t& out) {
  const std::size_t sp = s.find(' ');
  const std::string_view f = s.substr(0, sp);
  auto [p, ec] = std::from_chars(f.data(), f.data() + f.size(), out);
  if (ec != std::errc{} || p != f.data() + f.size() || f.empty()) return false;
  s = sp == std::string_view::npos ? std::string_view{} : s.substr(sp + 1);
  return true;
}

class PubsubRunner final : public Handler {
 public:
  PubsubRunner(const Options& o, bool progress)
      : o_(o), p_(o.pubsub), progress_(progress), conns_(o.pubsub.subscribers + o.pubsub.publishers) {
    const std::size_t n = conns_.size();
    for (std::size_t i = 0; i < n; ++i) {
      PConn& c = conns_[i];
      c.publisher = i >= p_.subscribers;
      c.index = static_cast<std::uint32_t>(c.publisher ? i - p_.subscribers : i);
      const auto n_urls = static_cast<std::uint32_t>(targets_count());
      const std::uint32_t k = p_.pub_nodes;  // 0: everyone everywhere
      if (k == 0) c.node = c.index % n_urls;
      else c.node = c.publisher ? n_urls - k + c.index % k : c.index % (n_urls - k);
      if (c.publisher) c.seq.assign(p_.topics, 0);
      else c.streams.resize(static_cast<std::size_t>(p_.publishers) * p_.topics_per_sub);
    }
    for (unsigned t = 0; t < o.threads; ++t) threads_.push_back(std::make_unique<ThreadState>());
  }

  bool run(PubsubResults& r, std::string& error);

  void on_open(Link& link) override;
  void on_message(Link& link, std::span<std::byte> payload, Opcode op) override;
  void on_timer(Link& link) override;
  void on_close(Link& link, std::uint16_t code, std::string_view reason) override;
  void on_connect_failed(LinkId id, void* user_data, int error, std::uint16_t http_status) override;

 private:
  std::size_t targets_count() const noexcept { return p_.urls.size(); }
  ThreadState& thread_of(Link& link) noexcept { return *threads_[link.reactor().index()]; }
  static PConn& conn_of(Link& link) noexcept { return *static_cast<PConn*>(link.user_data()); }
  Phase phase() const noexcept { return phase_.load(std::memory_order_seq_cst); }
  // The slot of `topic` among subscriber i's topics, or K when it has not that topic.
  std::uint32_t slot_of(std::uint32_t sub, std::uint32_t topic) const noexcept {
    const std::uint64_t first = (static_cast<std::uint64_t>(sub) * p_.topics_per_sub) % p_.topics;
    const std::uint64_t k = (topic + p_.topics - first) % p_.topics;
    return k < p_.topics_per_sub ? static_cast<std::uint32_t>(k) : p_.topics_per_sub;
  }
  void publish(PConn& c, ThreadState& t, std::uint64_t now);
  void warm_up(ThreadState& t);
  void run_schedule(ThreadState& t, std::uint64_t now);
  void drop_publisher(PConn& c, ThreadState& t);

  bool all_connected() const { return opened_.load() + rare_.failed.load() >= conns_.size(); }
  std::uint64_t sum(Counter ThreadState::*m) const {
    std::uint64_t n = 0;
    for (const auto& t : threads_) n += ((*t).*m).get();
    return n;
  }
  template <class Done>
  void wait_until(std::uint64_t deadline_ns, Done done);

  const Options& o_;
  const PubsubOptions& p_;
  const bool progress_;
  std::vector<Target> targets_;
  std::vector<PConn> conns_;
  std::vector<std::unique_ptr<ThreadState>> threads_;
  std::vector<std::uint64_t> subs_per_topic_;  // opened subscribers; fixed before Phase::running
  RareLog rare_;
  std::atomic<Phase> phase_{Phase::connecting};
  std::atomic<std::uint32_t> opened_{0};
  std::unique_ptr<Server> server_;
  std::uint64_t start_ns_ = 0, next_progress_ns_ = 0;
};

// ---------------------------------------------------------------------------
// Reactor side

void PubsubRunner::publish(PConn& c, ThreadState& t, std::uint64_t now) {
  const std::uint32_t topic = c.next_topic;
  c.next_topic = (c.next_topic + 1) % p_.topics;
  const std::string name = topic_name(topic);
  t.buf.clear();
  t.buf += "PUB " + name + " D " + std::to_string(c.index) + ' ' + std::to_string(topic) + ' ' +
           std::to_string(c.seq[topic]) + ' ' + std::to_string(now);
  const SendResult r = c.link->send(std::span<const std::byte>(reinterpret_cast<const std::byte*>(t.buf.data()), t.buf.size()),
                                    Opcode::text);
  if (r == SendResult::queued) {
    ++c.seq[topic];
    t.published.add();
    t.expected.add(subs_per_topic_[topic]);
  } else {
    // Not sent, so owed to nobody: the stream's numbers stay without a hole.
    ++t.backpressured;
  }
}

void PubsubRunner::warm_up(ThreadState& t) {
  for (PConn* c : t.publishers) {
    for (std::uint32_t topic = 0; topic < p_.topics && c->link != nullptr; ++topic) {
      t.buf = "PUB " + topic_name(topic) + " W " + std::to_string(c->index) + ' ' + std::to_string(topic);
      (void)c->link->send(std::span<const std::byte>(reinterpret_cast<const std::byte*>(t.buf.data()), t.buf.size()),
                          Opcode::text);
    }
  }
}

void PubsubRunner::run_schedule(ThreadState& t, std::uint64_t now) {
  if (phase() != Phase::running || t.publishers.empty()) return;
  if (!t.scheduling) {
    t.scheduling = true;
    t.next_ns = now;
  }
  for (std::uint32_t n = 0; n < max_sends_per_pass && t.next_ns <= now && !t.publishers.empty(); ++n) {
    PConn& c = *t.publishers[t.rr++ % t.publishers.size()];
    t.next_ns += t.period_ns;
    publish(c, t, steady_now_ns());
  }
}

void PubsubRunner::drop_publisher(PConn& c, ThreadState& t) {
  auto it = std::find(t.publishers.begin(), t.publishers.end(), &c);
  if (it != t.publishers.end()) t.publishers.erase(it);
}

void PubsubRunner::on_open(Link& link) {
  PConn& c = conn_of(link);
  ThreadState& t = thread_of(link);
  c.link = &link;
  c.opened = true;
  c.thread.store(link.reactor().index(), std::memory_order_relaxed);
  c.link_id.store(link.id().raw(), std::memory_order_release);
  c.opened_flag.store(true, std::memory_order_release);
  if (c.publisher) {
    t.publishers.push_back(&c);
    if (t.ticker == nullptr) {
      t.ticker = &link;
      link.set_timer(ticker_ms);
    }
  } else if (p_.subscribe_with == SubscribeWith::message) {
    for (std::uint32_t k = 0; k < p_.topics_per_sub; ++k) {
      t.buf = "SUB " + topic_name(static_cast<std::uint32_t>((static_cast<std::uint64_t>(c.index) * p_.topics_per_sub + k) % p_.topics));
      (void)link.send(std::span<const std::byte>(reinterpret_cast<const std::byte*>(t.buf.data()), t.buf.size()), Opcode::text);
    }
  }
  opened_.fetch_add(1, std::memory_order_release);
}

void PubsubRunner::on_message(Link& link, std::span<std::byte> payload, Opcode op) {
  const std::uint64_t now = steady_now_ns();
  PConn& c = conn_of(link);
  ThreadState& t = thread_of(link);
  std::string_view s(reinterpret_cast<const char*>(payload.data()), payload.size());
  if (c.publisher || op != Opcode::text || s.size() < 2 || (s[0] != 'D' && s[0] != 'W') || s[1] != ' ') {
    ++t.foreign;
    run_schedule(t, now);
    return;
  }
  const bool data = s[0] == 'D';
  s.remove_prefix(2);
  std::uint64_t pub = 0, topic = 0, seq = 0, sent_ns = 0;
  if (!next_field(s, pub) || !next_field(s, topic) || pub >= p_.publishers || topic >= p_.topics ||
      (data && (!next_field(s, seq) || !next_field(s, sent_ns))) || !s.empty()) {
    ++t.malformed;
    return;
  }
  const std::uint32_t k = slot_of(c.index, static_cast<std::uint32_t>(topic));
  if (k == p_.topics_per_sub) {  // a topic this subscriber never took
    ++t.malformed;
    return;
  }
  StreamTracker& st = c.streams[pub * p_.topics_per_sub + k];
  if (!data) {
    if (!st.confirmed) {
      st.confirmed = true;
      t.confirmed.add();
    }
    return;
  }
  switch (st.on_receive(seq)) {
    case StreamTracker::Arrival::in_order:
    case StreamTracker::Arrival::ahead:
      t.delivered.add();
      break;
    case StreamTracker::Arrival::late:
    case StreamTracker::Arrival::too_old:
      t.delivered.add();
      ++t.reordered;
      break;
    case StreamTracker::Arrival::duplicate:
      ++t.duplicates;
      return;
  }
  t.latency.record(now > sent_ns ? now - sent_ns : 0);
  run_schedule(t, now);
}

void PubsubRunner::on_timer(Link& link) {
  ThreadState& t = thread_of(link);
  const std::uint64_t now = steady_now_ns();
  const Phase ph = phase();
  if (ph == Phase::confirming && now >= t.next_warm_ns) {
    t.next_warm_ns = now + warmup_period_ns;
    warm_up(t);
  }
  run_schedule(t, now);
  if (ph <= Phase::running && conn_of(link).link != nullptr) link.set_timer(ticker_ms);
}

void PubsubRunner::on_close(Link& link, std::uint16_t code, std::string_view reason) {
  (void)reason;
  PConn& c = conn_of(link);
  ThreadState& t = thread_of(link);
  c.link = nullptr;
  c.link_id.store(0, std::memory_order_release);
  if (c.publisher) drop_publisher(c, t);
  if (t.ticker == &link) {
    t.ticker = nullptr;
    if (!t.publishers.empty() && phase() <= Phase::running) {
      t.ticker = t.publishers.back()->link;
      t.ticker->set_timer(ticker_ms);
    }
  }
  if (phase() != Phase::closing) {
    c.closed_early = true;
    rare_.add(rare_.unexpected_closes, code);
  }
}

void PubsubRunner::on_connect_failed(LinkId id, void* user_data, int error, std::uint16_t http_status) {
  (void)id;
  (void)user_data;
  if (http_status != 0) rare_.add(rare_.upgrade_failures, http_status);
  else rare_.add(rare_.connect_errors, error < 0 ? -error : error);
  rare_.failed.fetch_add(1, std::memory_order_relaxed);
}

// ---------------------------------------------------------------------------
// Main thread

template <class Done>
void PubsubRunner::wait_until(std::uint64_t deadline_ns, Done done) {
  for (;;) {
    const std::uint64_t now = steady_now_ns();
    if (progress_ && now >= next_progress_ns_) {
      next_progress_ns_ += 1'000'000'000ULL;
      std::fprintf(stderr, "[%6.1fs] up %u/%zu  published %llu  delivered %llu/%llu  confirmed %llu\n",
                   static_cast<double>(now - start_ns_) / 1e9, opened_.load(), conns_.size(),
                   (unsigned long long)sum(&ThreadState::published), (unsigned long long)sum(&ThreadState::delivered),
                   (unsigned long long)sum(&ThreadState::expected), (unsigned long long)sum(&ThreadState::confirmed));
    }
    if (now >= deadline_ns || done()) return;
    std::this_thread::sleep_for(std::chrono::nanoseconds(std::min<std::uint64_t>(deadline_ns - now, 5'000'000ULL)));
  }
}

bool PubsubRunner::run(PubsubResults& r, std::string& error) {
  for (const std::string& url : p_.urls) {
    Target t;
    if (!parse_url(url, t, error)) return false;
    targets_.push_back(std::move(t));
  }
  r.nodes = static_cast<std::uint32_t>(targets_.size());
  if (!start_client_engine(server_, *this, o_.threads, error)) return false;
  start_ns_ = steady_now_ns();
  next_progress_ns_ = start_ns_ + 1'000'000'000ULL;
  const auto never = [] { return false; };

  for (PConn& c : conns_) {
    if (o_.connect_rate > 0) {
      const std::size_t i = static_cast<std::size_t>(&c - conns_.data());
      wait_until(start_ns_ + static_cast<std::uint64_t>(1e9 * static_cast<double>(i) / o_.connect_rate), never);
    }
    const Target& tg = targets_[c.node];
    ConnectRequest req;
    req.address = tg.address;
    req.host_header = tg.host_header;
    req.path = tg.path;
    if (!c.publisher && p_.subscribe_with == SubscribeWith::path) {
      req.path += tg.path.find('?') == std::string::npos ? "?sub=" : "&sub=";
      for (std::uint32_t k = 0; k < p_.topics_per_sub; ++k) {
        if (k > 0) req.path += ',';
        req.path += topic_name(static_cast<std::uint32_t>((static_cast<std::uint64_t>(c.index) * p_.topics_per_sub + k) % p_.topics));
      }
    }
    req.user_data = &c;
    req.tls.enabled = tg.tls;
    req.tls.ca_file = o_.ca_file;
    req.tls.insecure = o_.insecure;
    while (!server_->connect(req)) wait_until(steady_now_ns() + 1'000'000, never);
  }
  wait_until(steady_now_ns() + (handshake_timeout_ms + 2000) * 1'000'000ULL, [&] { return all_connected(); });

  // Who is up now is who the run counts on.
  subs_per_topic_.assign(p_.topics, 0);
  std::vector<std::uint32_t> pubs_per_thread(threads_.size(), 0);
  for (const PConn& c : conns_) {
    if (!c.opened_flag.load(std::memory_order_acquire)) continue;
    if (c.publisher) {
      ++r.publishers_opened;
      ++pubs_per_thread[c.thread.load(std::memory_order_relaxed)];
    } else {
      ++r.subscribers_opened;
      for (std::uint32_t k = 0; k < p_.topics_per_sub; ++k)
        ++subs_per_topic_[(static_cast<std::uint64_t>(c.index) * p_.topics_per_sub + k) % p_.topics];
    }
  }
  r.streams = static_cast<std::uint64_t>(r.subscribers_opened) * r.publishers_opened * p_.topics_per_sub;
  for (std::size_t i = 0; i < threads_.size(); ++i) {
    // Each thread's share of the total rate is its share of the publishers.
    const double share = r.publishers_opened > 0 ? static_cast<double>(pubs_per_thread[i]) / r.publishers_opened : 0;
    threads_[i]->period_ns = share > 0 ? std::max<std::uint64_t>(1, static_cast<std::uint64_t>(1e9 / (o_.rate * share))) : 1;
  }

  const std::uint64_t confirm_start = steady_now_ns();
  phase_.store(Phase::confirming, std::memory_order_seq_cst);
  wait_until(confirm_start + static_cast<std::uint64_t>(p_.confirm_timeout_s * 1e9),
             [&] { return sum(&ThreadState::confirmed) >= r.streams; });
  r.streams_confirmed = sum(&ThreadState::confirmed);
  r.confirm_s = static_cast<double>(steady_now_ns() - confirm_start) / 1e9;
  if (r.streams_confirmed < r.streams) {
    char line[200];
    std::snprintf(line, sizeof line, "%llu of %llu streams had no warm-up in %.1f s: their subscriptions may not be in place",
                  (unsigned long long)(r.streams - r.streams_confirmed), (unsigned long long)r.streams, p_.confirm_timeout_s);
    r.warnings.emplace_back(line);
  }

  const std::uint64_t publish_start = steady_now_ns();
  phase_.store(Phase::running, std::memory_order_seq_cst);
  wait_until(publish_start + static_cast<std::uint64_t>(o_.duration_s * 1e9), never);
  phase_.store(Phase::draining, std::memory_order_seq_cst);
  const std::uint64_t publish_end = steady_now_ns();
  // A publication made in a callback that began before the store above is
  // counted in `expected` by the time its callback returns: let them end.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  wait_until(steady_now_ns() + static_cast<std::uint64_t>(o_.grace_s * 1e9),
             [&] { return sum(&ThreadState::delivered) >= sum(&ThreadState::expected); });
  r.publish_s = static_cast<double>(publish_end - publish_start) / 1e9;
  r.drain_s = static_cast<double>(steady_now_ns() - publish_end) / 1e9;

  phase_.store(Phase::closing, std::memory_order_seq_cst);
  for (PConn& c : conns_) {
    const std::uint64_t id = c.link_id.load(std::memory_order_acquire);
    if (id == 0) continue;
    while (!server_->close(LinkId::from_raw(id), close_code::normal) && c.link_id.load(std::memory_order_acquire) == id &&
           server_->reactor(LinkId::from_raw(id).reactor()).alive(LinkId::from_raw(id)))
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  wait_until(steady_now_ns() + (close_timeout_ms + 1000) * 1'000'000ULL, [&] {
    for (const PConn& c : conns_)
      if (c.link_id.load(std::memory_order_acquire) != 0) return false;
    return true;
  });
  server_->stop(std::chrono::seconds(1));

  // The reactors are joined: everything is readable.
  for (const auto& tp : threads_) {
    const ThreadState& t = *tp;
    t.latency.merge_into(r.latency);
    r.published += t.published.get();
    r.publish_backpressured += t.backpressured;
    r.duplicates += t.duplicates;
    r.reordered += t.reordered;
    r.malformed += t.malformed;
    r.foreign += t.foreign;
  }
  for (const PConn& s : conns_) {
    if (s.publisher || !s.opened) continue;
    for (const PConn& p : conns_) {
      if (!p.publisher || !p.opened) continue;
      for (std::uint32_t k = 0; k < p_.topics_per_sub; ++k) {
        const std::uint64_t topic = (static_cast<std::uint64_t>(s.index) * p_.topics_per_sub + k) % p_.topics;
        const std::uint64_t sent = p.seq[topic];
        const StreamTracker& st = s.streams[static_cast<std::size_t>(p.index) * p_.topics_per_sub + k];
        const std::uint64_t got = std::min(sent, st.unique());
        r.expected += sent;
        r.delivered += got;
        r.lost += sent - got;
      }
    }
  }
  {
    std::lock_guard<std::mutex> lock(rare_.mutex);
    r.connect_errors = rare_.connect_errors;
    r.upgrade_failures = rare_.upgrade_failures;
    r.unexpected_closes = rare_.unexpected_closes;
  }
  const std::uint64_t done = static_cast<std::uint64_t>(r.subscribers_opened) + r.publishers_opened + rare_.failed.load();
  r.connects_unfinished = conns_.size() > done ? conns_.size() - done : 0;
  return true;
}

}  // namespace

bool run_pubsub(const Options& o, bool progress, PubsubResults& out, std::string& error) {
  PubsubRunner runner(o, progress);
  return runner.run(out, error);
}

}  // namespace ringlink::load
