// pubsub_fanout: the client side of bench/scripts/pubsub_fanout.sh. Opens
// LINKS links to a running ringlink-echo (subscribed to topic "fan" with
// --mode pubsub, plain links with --mode broadcast), one more link that
// publishes, sends PUBLICATIONS messages of SIZE bytes through it ("PUB fan
// <payload>" to a --pubsub server; the payload itself to a --broadcast
// server, which sends it to every link), and waits until every subscriber
// has them. Prints one line: deliveries, deliveries per second and the
// server's CPU per delivery (from /proc/SERVER_PID/stat).
//
//   pubsub_fanout --port P --server-pid PID --mode pubsub|broadcast [--links N]
//                 [--publications K] [--size S]
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "engine/ringlink.hpp"

namespace {

int publisher_tag = 0;

struct Fanout : ringlink::Handler {
  std::atomic<std::uint64_t> opened{0}, failed{0}, received{0};
  std::atomic<std::uint64_t> publisher{0};
  void on_open(ringlink::Link& l) override {
    if (l.user_data() == &publisher_tag) {
      publisher.store(l.id().raw());
    } else {
      opened.fetch_add(1);
    }
  }
  void on_message(ringlink::Link& l, std::span<std::byte>, ringlink::Opcode) override {
    if (l.user_data() != &publisher_tag) received.fetch_add(1, std::memory_order_relaxed);
  }
  void on_connect_failed(ringlink::LinkId, void*, int, std::uint16_t) override { failed.fetch_add(1); }
};

// utime + stime of a process, in seconds.
double cpu_seconds(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::size_t close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream rest(stat.substr(close + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

template <class Pred>
bool wait_for(Pred p, std::chrono::seconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (!p()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::uint16_t port = 0;
  int server_pid = 0;
  std::string mode = "pubsub";
  std::uint64_t links = 10'000, publications = 50;
  std::size_t size = 64;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view a = argv[i];
    const char* v = argv[i + 1];
    if (a == "--port") port = static_cast<std::uint16_t>(std::atoi(v));
    else if (a == "--server-pid") server_pid = std::atoi(v);
    else if (a == "--mode") mode = v;
    else if (a == "--links") links = std::strtoull(v, nullptr, 10);
    else if (a == "--publications") publications = std::strtoull(v, nullptr, 10);
    else if (a == "--size") size = std::strtoull(v, nullptr, 10);
  }
  if (port == 0 || server_pid == 0 || (mode != "pubsub" && mode != "broadcast")) {
    std::fprintf(stderr, "usage: pubsub_fanout --port P --server-pid PID --mode pubsub|broadcast [--links N] "
                         "[--publications K] [--size S]\n");
    return 2;
  }
  Fanout h;
  ringlink::ServerConfig cfg;
  cfg.listen = false;
  cfg.reactors = 1;
  cfg.ping_interval_ms = 0;
  cfg.max_queued_bytes = 64u << 20;
  ringlink::Server client(cfg, h);
  if (client.start() < 0) return 1;
  ringlink::ConnectRequest req;
  ringlink::resolve_address("127.0.0.1", port, req.address);
  req.host_header = "127.0.0.1:" + std::to_string(port);
  req.path = mode == "pubsub" ? "/?sub=fan" : "/";
  for (std::uint64_t i = 0; i < links; ++i) {
    while (!client.connect(req)) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    // A few thousand handshakes in flight at most: the listener's backlog.
    if (i % 1000 == 999) wait_for([&] { return h.opened.load() + h.failed.load() + 2000 > i; }, std::chrono::seconds(30));
  }
  if (!wait_for([&] { return h.opened.load() + h.failed.load() == links; }, std::chrono::seconds(60)) ||
      h.failed.load() != 0) {
    std::fprintf(stderr, "pubsub_fanout: %llu of %llu links opened\n", (unsigned long long)h.opened.load(),
                 (unsigned long long)links);
    return 1;
  }
  req.path = "/";
  req.user_data = &publisher_tag;
  if (!client.connect(req) || !wait_for([&] { return h.publisher.load() != 0; }, std::chrono::seconds(10))) return 1;
  const ringlink::LinkId pub = ringlink::LinkId::from_raw(h.publisher.load());
  std::string msg = mode == "pubsub" ? "PUB fan " : "";
  msg.append(size, 'x');

  const std::uint64_t want = links * publications;
  const double cpu0 = cpu_seconds(server_pid);
  const auto t0 = std::chrono::steady_clock::now();
  for (std::uint64_t k = 0; k < publications; ++k)
    while (client.send_text(pub, msg) == ringlink::SendResult::not_posted)
      std::this_thread::sleep_for(std::chrono::microseconds(100));
  // Done when everything arrived, or nothing more for 5 s (losses show).
  std::uint64_t last = 0;
  auto last_change = std::chrono::steady_clock::now();
  while (h.received.load() < want) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
    const std::uint64_t now_received = h.received.load();
    if (now_received != last) {
      last = now_received;
      last_change = std::chrono::steady_clock::now();
    } else if (std::chrono::steady_clock::now() - last_change > std::chrono::seconds(5)) {
      break;
    }
  }
  const auto t1 = std::chrono::steady_clock::now();
  const double cpu1 = cpu_seconds(server_pid);
  const double secs = std::chrono::duration<double>(t1 - t0).count();
  const std::uint64_t got = h.received.load();
  std::printf("mode=%s links=%llu publications=%llu size=%zu deliveries=%llu lost=%llu seconds=%.3f "
              "deliveries_per_s=%.0f server_cpu_s=%.2f server_cpu_ns_per_delivery=%.0f\n",
              mode.c_str(), (unsigned long long)links, (unsigned long long)publications, size,
              (unsigned long long)got, (unsigned long long)(want - got), secs, static_cast<double>(got) / secs,
              cpu1 - cpu0, got ? (cpu1 - cpu0) * 1e9 / static_cast<double>(got) : 0.0);
  client.stop(std::chrono::seconds(2));
  return got == want ? 0 : 1;
}
