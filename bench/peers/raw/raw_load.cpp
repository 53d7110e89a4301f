// raw_load: the client half of the benchmark ceiling. Drives raw_echo (or
// any TCP echo server) the way ringlink-load's echo mode drives a WebSocket
// server, with no framing, so the two tools' figures compare directly.
//
//   raw_load --port N --conns C --size S --inflight I --duration D --warmup W
//            --json FILE [--host 127.0.0.1] [--grace G]
//
// C connections each keep I messages of S bytes in flight. A message is S
// bytes written; it is answered when S more bytes have come back, and its
// round trip runs from the write that started it. Replies come back in order
// (TCP), so the n-th S bytes received answer the n-th message sent. Each
// message carries its connection and sequence number in its first 8 bytes
// and a fixed filler after them; every byte that comes back is checked.
//
// One thread on edge-triggered epoll. Connections ramp up first, then W
// seconds of warm-up are not measured, then D seconds are. A message counts
// in the latency histogram when it was sent inside the window, and in the
// throughput when its reply arrived inside it (as ringlink-load counts).
// After the window no new message starts; replies still owed are awaited for
// G seconds (default 2) and those that never come are errors.
//
// The report (stdout) is short. --json writes the keys of ringlink-load's
// JSON (tools/load/report.cpp) that apply to raw TCP, with the same names,
// nesting and number format, so scripts read both tools alike. Only
// header-only pieces are shared (the histogram and the JSON writer, which
// need nothing of the engine): the ceiling must build and run whatever state
// the engine is in.
// Exit status: 0 clean, 1 errors (connect failures, resets, corrupt or
// missing bytes), 2 bad command line, 3 could not run.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "tools/load/histogram.hpp"
#include "tools/load/histogram_json.hpp"
#include "tools/load/json_writer.hpp"

namespace {

namespace load = ringlink::load;

enum Exit : int { exit_ok = 0, exit_errors = 1, exit_usage = 2, exit_cannot_run = 3 };

constexpr std::uint32_t header_bytes = 8;            // connection and sequence number
constexpr std::size_t max_batch_messages = 256;      // per writev: two iovecs each, below IOV_MAX
// One full read ends a connection's turn (see receive()).
constexpr std::size_t receive_buffer_bytes = 64 * 1024;
constexpr int max_events = 1024;
constexpr std::uint32_t max_connects_in_progress = 512;  // the server's accept queue is finite
constexpr std::uint64_t connect_timeout_ns = 10'000'000'000ULL;
// What ringlink reports for a connection that ended without a close frame;
// for raw TCP it stands for any reset or EOF before the end of the run.
constexpr int abnormal_close = 1006;
constexpr double saturated_cpu_percent = 90.0;      // as ringlink-load warns
constexpr std::uint64_t max_message_bytes = 64ULL << 20;
constexpr std::uint64_t max_inflight = 1ULL << 16;

const char* const usage_text =
    "usage: raw_load --port N --conns C --size S --inflight I --duration D --warmup W --json FILE\n"
    "                [--host IPV4 (127.0.0.1)] [--grace G (2s)]\n"
    "durations: seconds, or with a unit: 1.5s, 250ms, 2m\n";

std::uint64_t now_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<std::uint64_t>(ts.tv_nsec);
}

std::uint64_t thread_cpu_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<std::uint64_t>(ts.tv_nsec);
}

std::uint64_t process_cpu_ns() noexcept {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto ns = [](const timeval& tv) {
    return static_cast<std::uint64_t>(tv.tv_sec) * 1'000'000'000ULL + static_cast<std::uint64_t>(tv.tv_usec) * 1000ULL;
  };
  return ns(ru.ru_utime) + ns(ru.ru_stime);
}

struct Args {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  std::uint32_t conns = 0, size = 0, inflight = 0;
  double duration_s = -1, warmup_s = -1, grace_s = 2;
  std::string json_path;
};

template <class T>
bool parse_number(std::string_view s, T& out, std::uint64_t min, std::uint64_t max) {
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size() || v < min || v > max) return false;
  out = static_cast<T>(v);
  return true;
}

// "10", "1.5s", "250ms", "2m" -> seconds, as ringlink-load reads durations.
bool parse_duration(std::string_view s, double& seconds) {
  double scale = 1;
  if (s.ends_with("ms")) {
    scale = 1e-3;
    s.remove_suffix(2);
  } else if (s.ends_with("s")) {
    s.remove_suffix(1);
  } else if (s.ends_with("m")) {
    scale = 60;
    s.remove_suffix(1);
  }
  double v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc{} || end != s.data() + s.size() || !std::isfinite(v)) return false;
  seconds = v * scale;
  return true;
}

// Returns exit_ok to run, anything else to exit with.
int parse_args(int argc, char** argv, Args& a) {
  auto fail = [](const std::string& why) {
    std::fprintf(stderr, "raw_load: %s\n%s", why.c_str(), usage_text);
    return exit_usage;
  };
  for (int i = 1; i < argc; ++i) {
    const std::string_view k = argv[i];
    if (k == "--help" || k == "-h") {
      std::fputs(usage_text, stdout);
      return -1;
    }
    if (i + 1 >= argc) return fail(std::string(k) + " needs a value");
    const std::string_view v = argv[++i];
    bool ok = true;
    if (k == "--port") {
      ok = parse_number(v, a.port, 1, 65535);
    } else if (k == "--conns") {
      ok = parse_number(v, a.conns, 1, 1'000'000);
    } else if (k == "--size") {
      ok = parse_number(v, a.size, 1, max_message_bytes);
    } else if (k == "--inflight") {
      ok = parse_number(v, a.inflight, 1, max_inflight);
    } else if (k == "--duration") {
      ok = parse_duration(v, a.duration_s) && a.duration_s > 0 && a.duration_s <= 86400;
    } else if (k == "--warmup") {
      ok = parse_duration(v, a.warmup_s) && a.warmup_s >= 0 && a.warmup_s <= 86400;
    } else if (k == "--grace") {
      ok = parse_duration(v, a.grace_s) && a.grace_s >= 0 && a.grace_s <= 600;
    } else if (k == "--json") {
      a.json_path = v;
    } else if (k == "--host") {
      a.host = v;
    } else {
      return fail("unknown option " + std::string(k));
    }
    if (!ok) return fail("bad value for " + std::string(k) + ": " + std::string(v));
  }
  if (a.port == 0) return fail("--port is required");
  if (a.conns == 0) return fail("--conns is required");
  if (a.size == 0) return fail("--size is required");
  if (a.inflight == 0) return fail("--inflight is required");
  if (a.duration_s < 0) return fail("--duration is required");
  if (a.warmup_s < 0) return fail("--warmup is required");
  if (a.json_path.empty()) return fail("--json is required");
  return exit_ok;
}

enum class ConnState : std::uint8_t { waiting, connecting, open, failed, closed };
// ringlink-load's MessageCheck names for the faults raw TCP can show.
enum class Fault : std::uint8_t { none, bad_header, bad_filler };
enum class Phase : std::uint8_t { ramp, running, draining };

struct Conn {
  int fd = -1;
  ConnState state = ConnState::waiting;
  bool send_blocked = false;      // the socket said EAGAIN; EPOLLOUT clears it
  bool queued = false;            // on the ready list: bytes may wait without an edge
  bool hangup = false;            // an edge carried RDHUP/HUP/ERR: read on to EOF
  Fault fault = Fault::none;      // of the reply being received
  std::uint16_t unexpected_close = 0;
  std::uint32_t tx_off = 0;       // bytes of message tx_seq written (0: not started)
  std::uint32_t rx_off = 0;       // bytes of message rx_seq received
  std::uint64_t tx_seq = 0;       // the message being written, or the next to start
  std::uint64_t rx_seq = 0;       // the next reply expected = messages answered
  std::uint64_t bytes_out = 0, bytes_in = 0;
  std::uint64_t measured = 0;     // replies inside the window
  std::uint64_t mismatches = 0;
  std::uint64_t connect_started = 0;

  std::uint64_t started() const noexcept { return tx_seq + (tx_off > 0 ? 1 : 0); }
};

struct ConnReport {
  std::uint32_t index = 0;
  bool opened = false, open_at_end = false;
  std::uint16_t unexpected_close = 0;
  std::uint64_t sent = 0, received = 0, measured = 0, unanswered = 0, mismatches = 0;
};

// The subset of ringlink-load's Results (tools/load/results.hpp) that raw
// TCP can produce.
struct Report {
  double measured_s = 0, ramp_s = 0;
  load::Histogram latency;  // round trip, messages sent inside the window
  std::uint64_t msgs_sent = 0, msgs_received = 0, bytes_sent = 0, bytes_received = 0;  // inside the window
  std::uint64_t total_sent = 0, total_received = 0;                                    // whole run
  std::uint32_t conns_requested = 0, conns_opened = 0, conns_open_at_end = 0;
  std::map<int, std::uint64_t> connect_errors;     // errno -> count
  std::map<int, std::uint64_t> unexpected_closes;  // always abnormal_close here
  std::uint64_t connects_unfinished = 0;
  std::uint64_t bad_header = 0, bad_filler = 0, never_sent = 0, unanswered = 0;
  std::uint64_t refused_sends = 0, partial_writes = 0;
  std::uint64_t fairness_min = 0, fairness_median = 0, fairness_max = 0;
  double thread_cpu_percent = -1, process_cpu_percent = 0;
  bool self_saturated = false;
  std::vector<std::string> warnings;
  std::vector<ConnReport> conns;

  std::uint64_t mismatches() const noexcept { return bad_header + bad_filler + never_sent; }
  std::uint64_t errors() const noexcept {
    std::uint64_t n = mismatches() + unanswered + connects_unfinished;
    for (const auto& [k, v] : connect_errors) n += v;
    for (const auto& [k, v] : unexpected_closes) n += v;
    return n;
  }
};

class RawLoad {
 public:
  explicit RawLoad(const Args& a)
      : a_(a),
        header_(std::min(a.size, header_bytes)),
        conns_(a.conns),
        stamps_(static_cast<std::size_t>(a.conns) * a.inflight),
        filler_(a.size),
        receive_(receive_buffer_bytes) {
    // Not zeros: a server that answered with a zeroed buffer must fail.
    for (std::size_t i = 0; i < filler_.size(); ++i) filler_[i] = static_cast<std::uint8_t>(i * 131 + 7);
  }

  bool run(Report& r, std::string& error);

 private:
  // The first bytes of message `seq` on connection `index`, little-endian;
  // the connection in the top bytes catches replies crossing connections.
  static std::uint64_t header_value(std::uint32_t index, std::uint64_t seq) noexcept {
    return seq ^ (static_cast<std::uint64_t>(index) << 40) ^ 0x5a5a000000000000ULL;
  }
  bool in_window(std::uint64_t t) const noexcept { return t >= window_start_ && t < window_end_; }
  std::uint64_t& stamp(std::uint32_t index, std::uint64_t seq) noexcept {
    return stamps_[static_cast<std::size_t>(index) * a_.inflight + seq % a_.inflight];
  }

  void start_connects(std::uint64_t now);
  void expire_connects(std::uint64_t now);
  void on_event(std::uint32_t index, std::uint32_t events);
  void finish_connect(std::uint32_t index, std::uint32_t events);
  void receive(std::uint32_t index, bool hangup);
  void consume(std::uint32_t index, const std::uint8_t* data, std::size_t n, std::uint64_t now);
  void send(std::uint32_t index, std::uint64_t now);
  void drop(std::uint32_t index);
  void fail_connect(std::uint32_t index, int err);
  void wait(std::uint64_t deadline);
  void collect(Report& r);

  const Args& a_;
  const std::uint32_t header_;
  std::vector<Conn> conns_;
  std::vector<std::uint64_t> stamps_;  // send time of each message in flight, inflight per connection
  std::vector<std::uint8_t> filler_;
  std::vector<std::uint8_t> receive_;
  sockaddr_in target_{};
  int epoll_ = -1;
  Phase phase_ = Phase::ramp;
  std::uint64_t window_start_ = UINT64_MAX, window_end_ = UINT64_MAX;

  std::uint32_t next_connect_ = 0, connecting_ = 0, unfinished_ = 0;
  std::uint64_t last_expiry_scan_ = 0;
  std::vector<std::uint32_t> ready_, turn_;  // connections owed another read turn
  std::uint64_t outstanding_ = 0;  // started and not yet answered, on open connections

  load::Histogram latency_;
  std::uint64_t w_msgs_in_ = 0, w_msgs_out_ = 0, w_bytes_in_ = 0, w_bytes_out_ = 0;
  std::uint64_t total_in_ = 0, total_out_ = 0;
  std::uint64_t bad_header_ = 0, bad_filler_ = 0;
  std::uint64_t never_sent_ = 0;
  std::uint64_t refused_sends_ = 0, partial_writes_ = 0;
  std::map<int, std::uint64_t> connect_errors_, closes_;
};

void RawLoad::fail_connect(std::uint32_t index, int err) {
  Conn& c = conns_[index];
  if (c.fd >= 0) ::close(c.fd);
  c.fd = -1;
  c.state = ConnState::failed;
  --connecting_;
  ++connect_errors_[err];
}

void RawLoad::start_connects(std::uint64_t now) {
  while (next_connect_ < a_.conns && connecting_ < max_connects_in_progress) {
    const std::uint32_t i = next_connect_++;
    Conn& c = conns_[i];
    ++connecting_;
    c.state = ConnState::connecting;
    c.connect_started = now;
    c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c.fd < 0) {
      fail_connect(i, errno);
      continue;
    }
    const int one = 1;
    ::setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    epoll_event ev{};
    // Registered once: EPOLLOUT reports the connect, later the drained socket.
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.u32 = i;
    if (::epoll_ctl(epoll_, EPOLL_CTL_ADD, c.fd, &ev) < 0) {
      fail_connect(i, errno);
      continue;
    }
    if (::connect(c.fd, reinterpret_cast<const sockaddr*>(&target_), sizeof target_) < 0 && errno != EINPROGRESS) {
      fail_connect(i, errno);
    }
    // Success or EINPROGRESS: EPOLLOUT follows either way.
  }
}

void RawLoad::expire_connects(std::uint64_t now) {
  for (std::uint32_t i = 0; i < next_connect_; ++i) {
    Conn& c = conns_[i];
    if (c.state != ConnState::connecting || now - c.connect_started < connect_timeout_ns) continue;
    ::close(c.fd);
    c.fd = -1;
    c.state = ConnState::failed;
    --connecting_;
    ++unfinished_;
  }
}

void RawLoad::finish_connect(std::uint32_t index, std::uint32_t events) {
  Conn& c = conns_[index];
  if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) == 0) return;
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
  if (err == 0 && (events & (EPOLLERR | EPOLLHUP)) != 0) err = ECONNREFUSED;
  if (err != 0) {
    fail_connect(index, err);
    return;
  }
  c.state = ConnState::open;
  --connecting_;
  send(index, now_ns());
}

void RawLoad::drop(std::uint32_t index) {
  Conn& c = conns_[index];
  outstanding_ -= c.started() - c.rx_seq;
  ::close(c.fd);
  c.fd = -1;
  c.state = ConnState::closed;
  c.unexpected_close = abnormal_close;
  ++closes_[abnormal_close];
}

void RawLoad::consume(std::uint32_t index, const std::uint8_t* data, std::size_t n, std::uint64_t now) {
  Conn& c = conns_[index];
  const std::uint32_t size = a_.size;
  while (n > 0) {
    const auto take = static_cast<std::uint32_t>(std::min<std::size_t>(size - c.rx_off, n));
    const std::uint32_t end = c.rx_off + take;
    std::uint32_t at = c.rx_off;
    if (at < header_) {
      const std::uint64_t want = header_value(index, c.rx_seq);
      for (; at < header_ && at < end; ++at)
        if (data[at - c.rx_off] != static_cast<std::uint8_t>(want >> (8 * at))) c.fault = Fault::bad_header;
    }
    if (at < end && c.fault == Fault::none &&
        std::memcmp(data + (at - c.rx_off), filler_.data() + at, end - at) != 0)
      c.fault = Fault::bad_filler;
    data += take;
    n -= take;
    c.rx_off = end;
    if (c.rx_off < size) return;

    // A whole reply: it answers message rx_seq (TCP keeps the order).
    if (c.fault != Fault::none) {
      ++(c.fault == Fault::bad_header ? bad_header_ : bad_filler_);
      ++c.mismatches;
      c.fault = Fault::none;
    }
    const std::uint64_t sent = stamp(index, c.rx_seq);
    if (in_window(sent)) latency_.record(now - sent);
    if (in_window(now)) {
      ++w_msgs_in_;
      ++c.measured;
    }
    ++total_in_;
    ++c.rx_seq;
    --outstanding_;
    c.rx_off = 0;
  }
}

// Reads until EAGAIN or a short read (later bytes raise a new edge), or to
// EOF when an edge carried a hang-up. A full read ends the turn: the
// connection goes on the ready list, so one busy socket cannot starve the
// others (with 16 KiB x 100 in flight it otherwise did, for seconds).
void RawLoad::receive(std::uint32_t index, bool hangup) {
  Conn& c = conns_[index];
  c.hangup = c.hangup || hangup;
  hangup = c.hangup;
  for (;;) {
    const ssize_t n = ::read(c.fd, receive_.data(), receive_.size());
    if (n > 0) {
      const std::uint64_t now = now_ns();
      const auto got = static_cast<std::uint64_t>(n);
      if (in_window(now)) w_bytes_in_ += got;
      c.bytes_in += got;
      if (c.bytes_in > c.bytes_out) {
        // More came back than was sent: the stream cannot be trusted further.
        ++never_sent_;
        ++c.mismatches;
        drop(index);
        return;
      }
      consume(index, receive_.data(), got, now);
      if (static_cast<std::size_t>(n) < receive_.size() && !hangup) return;
      if (static_cast<std::size_t>(n) == receive_.size() && !c.queued) {
        c.queued = true;
        ready_.push_back(index);
        return;
      }
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    drop(index);  // EOF or reset before the end
    return;
  }
}

void RawLoad::send(std::uint32_t index, std::uint64_t now) {
  Conn& c = conns_[index];
  const std::uint32_t size = a_.size;
  std::uint8_t headers[max_batch_messages][header_bytes];
  iovec iov[2 * max_batch_messages];
  for (;;) {
    if (c.send_blocked || c.state != ConnState::open) return;
    const bool may_start = phase_ != Phase::draining;
    const std::uint64_t limit = c.rx_seq + a_.inflight;
    std::uint64_t seq = c.tx_seq;
    std::uint32_t off = c.tx_off;
    std::size_t messages = 0, vecs = 0, bytes = 0;
    while (messages < max_batch_messages && (off > 0 || (may_start && seq < limit))) {
      if (off < header_) {
        const std::uint64_t h = header_value(index, seq);
        for (std::uint32_t b = 0; b < header_; ++b) headers[messages][b] = static_cast<std::uint8_t>(h >> (8 * b));
        iov[vecs++] = {headers[messages] + off, header_ - off};
        off = header_;
      }
      if (off < size) iov[vecs++] = {filler_.data() + off, size - off};
      bytes += size - (seq == c.tx_seq ? c.tx_off : 0);
      ++seq;
      off = 0;
      ++messages;
    }
    if (messages == 0) return;
    const ssize_t w = ::writev(c.fd, iov, static_cast<int>(vecs));
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        ++refused_sends_;
        c.send_blocked = true;
        return;
      }
      drop(index);
      return;
    }
    auto left = static_cast<std::uint64_t>(w);
    c.bytes_out += left;
    if (in_window(now)) w_bytes_out_ += left;
    while (left > 0) {
      if (c.tx_off == 0) {
        // The first byte of this message is on its way: its clock starts.
        stamp(index, c.tx_seq) = now;
        ++outstanding_;
        ++total_out_;
        if (in_window(now)) ++w_msgs_out_;
      }
      const std::uint64_t take = std::min<std::uint64_t>(size - c.tx_off, left);
      c.tx_off += static_cast<std::uint32_t>(take);
      left -= take;
      if (c.tx_off == size) {
        ++c.tx_seq;
        c.tx_off = 0;
      }
    }
    // Partial: write again, so the socket owes an EPOLLOUT edge (EAGAIN) before we wait.
    if (static_cast<std::size_t>(w) < bytes) ++partial_writes_;
  }
}

void RawLoad::on_event(std::uint32_t index, std::uint32_t events) {
  Conn& c = conns_[index];
  switch (c.state) {
    case ConnState::connecting:
      finish_connect(index, events);
      return;
    case ConnState::open:
      break;
    default:
      return;  // closed earlier in this batch
  }
  if ((events & EPOLLOUT) != 0) c.send_blocked = false;
  if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) {
    receive(index, (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0);
    if (c.state != ConnState::open) return;
  }
  // Replies just received free room for new messages; EPOLLOUT resumes a blocked one.
  send(index, now_ns());
}

// Runs the loop until `deadline`; during the ramp also until every
// connection is up or failed, while draining until nothing is owed.
void RawLoad::wait(std::uint64_t deadline) {
  epoll_event events[max_events];
  for (;;) {
    const std::uint64_t now = now_ns();
    if (now >= deadline) return;
    if (phase_ == Phase::ramp) {
      // A scan of every connection: not on every turn of a busy loop.
      if (now - last_expiry_scan_ >= 10'000'000) {
        expire_connects(now);
        last_expiry_scan_ = now;
      }
      start_connects(now);
      if (next_connect_ == a_.conns && connecting_ == 0) return;
    }
    if (phase_ == Phase::draining && outstanding_ == 0) return;
    std::uint64_t wait_ns = deadline - now;
    if (phase_ == Phase::ramp) wait_ns = std::min<std::uint64_t>(wait_ns, 10'000'000);
    const int timeout_ms = static_cast<int>(std::min<std::uint64_t>((wait_ns + 999'999) / 1'000'000, 1000));
    const int n = ::epoll_wait(epoll_, events, max_events, ready_.empty() ? timeout_ms : 0);
    if (n < 0 && errno != EINTR) return;
    for (int i = 0; i < n; ++i) on_event(events[i].data.u32, events[i].events);
    turn_.swap(ready_);
    ready_.clear();
    for (const std::uint32_t index : turn_) {
      Conn& c = conns_[index];
      if (!c.queued || c.state != ConnState::open) continue;
      c.queued = false;
      receive(index, false);
      send(index, now_ns());
    }
    turn_.clear();
  }
}

bool RawLoad::run(Report& r, std::string& error) {
  target_.sin_family = AF_INET;
  target_.sin_port = htons(a_.port);
  if (::inet_pton(AF_INET, a_.host.c_str(), &target_.sin_addr) != 1) {
    error = "--host " + a_.host + " is not an IPv4 address";
    return false;
  }
  epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_ < 0) {
    error = std::string("epoll_create1: ") + std::strerror(errno);
    return false;
  }

  const std::uint64_t begin = now_ns();
  wait(UINT64_MAX);  // the ramp: returns once every connect has an outcome
  const std::uint64_t ramp_end = now_ns();

  // Connections already trade messages during the ramp and the warm-up; the
  // window opens only after both.
  window_start_ = ramp_end + static_cast<std::uint64_t>(a_.warmup_s * 1e9);
  window_end_ = window_start_ + static_cast<std::uint64_t>(a_.duration_s * 1e9);
  phase_ = Phase::running;
  // Nothing to measure without a connection: report the failures at once.
  if (std::none_of(conns_.begin(), conns_.end(), [](const Conn& c) { return c.state == ConnState::open; }))
    window_end_ = window_start_ = ramp_end;
  wait(window_start_);
  const std::uint64_t cpu0 = thread_cpu_ns(), proc0 = process_cpu_ns(), t0 = now_ns();
  wait(window_end_);
  const std::uint64_t cpu1 = thread_cpu_ns(), proc1 = process_cpu_ns(), t1 = now_ns();

  phase_ = Phase::draining;
  wait(now_ns() + static_cast<std::uint64_t>(a_.grace_s * 1e9));

  r.ramp_s = static_cast<double>(ramp_end - begin) / 1e9;
  // The nominal window: the loop leaves it within a millisecond of its end.
  r.measured_s = static_cast<double>(window_end_ - window_start_) / 1e9;
  const double wall = window_end_ > window_start_ ? static_cast<double>(t1 - t0) : 0;  // no window: no figure
  r.thread_cpu_percent = wall > 0 ? 100.0 * static_cast<double>(cpu1 - cpu0) / wall : -1;
  r.process_cpu_percent = wall > 0 ? 100.0 * static_cast<double>(proc1 - proc0) / wall : 0;
  collect(r);

  for (Conn& c : conns_)
    if (c.fd >= 0) ::close(c.fd);
  ::close(epoll_);
  return true;
}

void RawLoad::collect(Report& r) {
  latency_.merge_into(r.latency);
  r.msgs_received = w_msgs_in_;
  r.msgs_sent = w_msgs_out_;
  r.bytes_received = w_bytes_in_;
  r.bytes_sent = w_bytes_out_;
  r.total_received = total_in_;
  r.total_sent = total_out_;
  r.conns_requested = a_.conns;
  r.connect_errors = connect_errors_;
  r.unexpected_closes = closes_;
  r.connects_unfinished = unfinished_;
  r.bad_header = bad_header_;
  r.bad_filler = bad_filler_;
  r.never_sent = never_sent_;
  r.refused_sends = refused_sends_;
  r.partial_writes = partial_writes_;

  std::vector<std::uint64_t> measured;
  r.conns.resize(conns_.size());
  for (std::size_t i = 0; i < conns_.size(); ++i) {
    const Conn& c = conns_[i];
    ConnReport& cr = r.conns[i];
    cr.index = static_cast<std::uint32_t>(i);
    cr.opened = c.state == ConnState::open || c.state == ConnState::closed;
    cr.open_at_end = c.state == ConnState::open;
    cr.unexpected_close = c.unexpected_close;
    cr.sent = c.started();
    cr.received = c.rx_seq;
    cr.measured = c.measured;
    cr.mismatches = c.mismatches;
    // Still open and still owed a reply (in whole or in part) after the grace period.
    if (cr.open_at_end) cr.unanswered = c.started() - c.rx_seq;
    r.unanswered += cr.unanswered;
    if (cr.opened) measured.push_back(c.measured);
    if (cr.open_at_end) ++r.conns_open_at_end;
  }
  r.conns_opened = static_cast<std::uint32_t>(measured.size());
  if (!measured.empty()) {
    std::sort(measured.begin(), measured.end());
    r.fairness_min = measured.front();
    r.fairness_median = measured[measured.size() / 2];
    r.fairness_max = measured.back();
  }
  if (r.thread_cpu_percent >= saturated_cpu_percent) {
    r.self_saturated = true;
    char line[160];
    std::snprintf(line, sizeof line, "load thread used %.0f%% of a core: the tool may be the bottleneck",
                  r.thread_cpu_percent);
    r.warnings.emplace_back(line);
  }
}

// --- JSON: key names, nesting and number format as tools/load/report.cpp ---

bool write_json(const Args& a, const Report& r, std::string& error) {
  std::FILE* f = std::fopen(a.json_path.c_str(), "w");
  if (f == nullptr) {
    error = "cannot write " + a.json_path + ": " + std::strerror(errno);
    return false;
  }
  load::JsonWriter j(f);
  j.open('{');
  j.key("options");
  j.open('{');
  j.field("url", "tcp://" + a.host + ":" + std::to_string(a.port));
  j.field("mode", std::string("echo"));
  j.field("conns", std::uint64_t{a.conns});
  j.field("threads", std::uint64_t{1});
  j.field("inflight", std::uint64_t{a.inflight});
  j.field("size_min", std::uint64_t{a.size});
  j.field("size_max", std::uint64_t{a.size});
  j.field("text", false);
  j.field("duration_s", a.duration_s);
  j.field("warmup_s", a.warmup_s);
  j.field("grace_s", a.grace_s);
  j.field("max_errors", std::uint64_t{0});
  j.close('}');

  j.field("errors", r.errors());
  j.field("failed", r.errors() > 0);
  j.field("measured_s", r.measured_s);
  j.field("ramp_s", r.ramp_s);
  j.key("connections");
  j.open('{');
  j.field("requested", std::uint64_t{r.conns_requested});
  j.field("opened", std::uint64_t{r.conns_opened});
  j.field("open_at_end", std::uint64_t{r.conns_open_at_end});
  j.field("unfinished", r.connects_unfinished);
  j.counts("connect_errors_by_errno", r.connect_errors);
  j.counts("unexpected_closes_by_code", r.unexpected_closes);
  j.close('}');
  j.key("throughput");
  j.open('{');
  const double s = r.measured_s > 0 ? r.measured_s : 1;
  j.field("msgs_received", r.msgs_received);
  j.field("msgs_sent", r.msgs_sent);
  j.field("bytes_received", r.bytes_received);
  j.field("bytes_sent", r.bytes_sent);
  j.field("msgs_per_s", static_cast<double>(r.msgs_received) / s);
  j.field("sent_msgs_per_s", static_cast<double>(r.msgs_sent) / s);
  j.field("mb_per_s", static_cast<double>(r.bytes_received) / s / 1e6);
  j.field("sent_mb_per_s", static_cast<double>(r.bytes_sent) / s / 1e6);
  j.field("total_received", r.total_received);
  j.field("total_sent", r.total_sent);
  j.close('}');
  load::write_histogram(j, "latency", r.latency);
  j.key("checks");
  j.open('{');
  j.field("bad_header", r.bad_header);
  j.field("bad_filler", r.bad_filler);
  j.field("never_sent", r.never_sent);
  j.field("unanswered", r.unanswered);
  j.close('}');
  j.key("backpressure");
  j.open('{');
  j.field("refused_sends", r.refused_sends);
  j.field("partial_writes", r.partial_writes);
  j.close('}');
  j.key("fairness");
  j.open('{');
  j.field("min", r.fairness_min);
  j.field("median", r.fairness_median);
  j.field("max", r.fairness_max);
  j.close('}');
  j.key("cpu");
  j.open('{');
  j.field("process_percent", r.process_cpu_percent);
  j.key("threads");
  j.open('[');
  j.open('{');
  j.field("percent", r.thread_cpu_percent);
  j.field("busiest_second_percent", -1.0);
  j.close('}');
  j.close(']');
  j.close('}');
  j.field("self_saturated", r.self_saturated);
  j.key("warnings");
  j.open('[');
  for (const std::string& w : r.warnings) j.value(w);
  j.close(']');
  j.key("per_connection");
  j.open('[');
  for (const ConnReport& c : r.conns) {
    j.open('{');
    j.field("index", std::uint64_t{c.index});
    j.field("opened", c.opened);
    j.field("open_at_end", c.open_at_end);
    j.field("unexpected_close", std::uint64_t{c.unexpected_close});
    j.field("sent", c.sent);
    j.field("received", c.received);
    j.field("measured", c.measured);
    j.field("unanswered", c.unanswered);
    j.field("mismatches", c.mismatches);
    j.close('}');
  }
  j.close(']');
  j.close('}');
  std::fputc('\n', f);
  const bool ok = std::ferror(f) == 0;
  if (std::fclose(f) != 0 || !ok) {
    error = "writing " + a.json_path + " failed";
    return false;
  }
  return true;
}

void print_summary(const Args& a, const Report& r) {
  std::printf("raw_load: tcp://%s:%u, %u connections, %u B, %u in flight per connection\n", a.host.c_str(), a.port, a.conns,
              a.size, a.inflight);
  std::printf("  connections: %u of %u opened in %.2f s; %u open at the end\n", r.conns_opened, r.conns_requested, r.ramp_s,
              r.conns_open_at_end);
  const double s = r.measured_s > 0 ? r.measured_s : 1;
  std::printf("  measured %.2f s: %.0f msgs/s received (%.2f MB/s), %.0f msgs/s sent\n", r.measured_s,
              static_cast<double>(r.msgs_received) / s, static_cast<double>(r.bytes_received) / s / 1e6,
              static_cast<double>(r.msgs_sent) / s);
  const load::Histogram& h = r.latency;
  std::printf("  latency (round trip), %llu samples, us:", static_cast<unsigned long long>(h.count()));
  for (double p : {50.0, 90.0, 99.0, 99.9, 99.99})
    std::printf(" p%g %.1f ", p, static_cast<double>(h.value_at_percentile(p)) / 1e3);
  std::printf(" max %.1f  mean %.1f\n", static_cast<double>(h.max()) / 1e3, h.mean() / 1e3);
  std::printf("  fairness, messages per connection: min %llu, median %llu, max %llu\n",
              static_cast<unsigned long long>(r.fairness_min), static_cast<unsigned long long>(r.fairness_median),
              static_cast<unsigned long long>(r.fairness_max));
  if (r.thread_cpu_percent >= 0)
    std::printf("  cpu: load thread %.0f%%, process %.0f%%\n", r.thread_cpu_percent, r.process_cpu_percent);
  std::printf("  errors: %llu", static_cast<unsigned long long>(r.errors()));
  for (const auto& [e, n] : r.connect_errors) std::printf("; connect %s x%llu", std::strerror(e), static_cast<unsigned long long>(n));
  if (r.connects_unfinished) std::printf("; connects timed out %llu", static_cast<unsigned long long>(r.connects_unfinished));
  std::uint64_t ended_early = 0;
  for (const auto& [code, n] : r.unexpected_closes) ended_early += n;
  if (ended_early) std::printf("; connections reset or ended early x%llu", static_cast<unsigned long long>(ended_early));
  if (r.mismatches()) std::printf("; corrupt replies %llu", static_cast<unsigned long long>(r.mismatches()));
  if (r.unanswered) std::printf("; messages unanswered at the end %llu", static_cast<unsigned long long>(r.unanswered));
  std::printf("\n");
  for (const std::string& w : r.warnings) std::printf("WARNING: %s\n", w.c_str());
}

void raise_fd_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  const int parsed = parse_args(argc, argv, a);
  if (parsed < 0) return exit_ok;  // --help
  if (parsed != exit_ok) return parsed;
  ::signal(SIGPIPE, SIG_IGN);
  raise_fd_limit();

  Report r;
  std::string error;
  RawLoad tool(a);
  if (!tool.run(r, error)) {
    std::fprintf(stderr, "raw_load: %s\n", error.c_str());
    return exit_cannot_run;
  }
  print_summary(a, r);
  std::fflush(stdout);

  int status = r.errors() > 0 ? exit_errors : exit_ok;
  if (!write_json(a, r, error)) {
    std::fprintf(stderr, "raw_load: %s\n", error.c_str());
    status = exit_cannot_run;
  }
  if (r.errors() > 0) std::fprintf(stderr, "raw_load: %llu errors\n", static_cast<unsigned long long>(r.errors()));
  return status;
}
