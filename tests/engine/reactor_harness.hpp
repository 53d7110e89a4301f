// One reactor on a loopback listener, driven turn by turn from the test
// thread with a manual clock: timeouts without sleeping, fairness and
// batching counted in loop turns and write calls.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string_view>

#include "engine/clock.hpp"
#include "engine/reactor.hpp"
#include "tests/wire_client.hpp"

namespace ringlink::test {

using wire::WireConn;

class Harness {
 public:
  Harness(ServerConfig cfg, Handler& h) : cfg_(std::move(cfg)) {
    SocketAddress a;
    EXPECT_EQ(resolve_address("127.0.0.1", 0, a), 0);
    const int fd = make_listener(a, false, 128);
    EXPECT_GE(fd, 0);
    port_ = local_port(fd);
    ManualClock::global().set(1'000'000);
    reactor_ = std::make_unique<Reactor>(0, cfg_, h, nullptr);
    reactor_->set_clock(&ManualClock::global_now_ms);
    EXPECT_EQ(reactor_->open(fd), 0);
  }
  std::uint16_t port() const { return port_; }
  Reactor& reactor() { return *reactor_; }
  void advance(std::uint64_t ms) { ManualClock::global().advance(ms); }
  void pump(int turns = 3) {
    for (int i = 0; i < turns; ++i) reactor_->run_once(1);
  }
  // Runs turns until `p` holds (bounded); returns the turns it took or -1.
  template <class P>
  int pump_until(P p, int max_turns = 5000) {
    for (int i = 0; i < max_turns; ++i) {
      if (p()) return i;
      reactor_->run_once(1);
    }
    return p() ? max_turns : -1;
  }
  bool open(WireConn& c, std::string_view path = "/") {
    if (!c.send_upgrade(port_, path)) return false;
    if (pump_until([&] { return c.readable(); }) < 0) return false;
    return c.read_head(100) == 101;
  }
  std::optional<wire::RxFrame> next_frame(WireConn& c) {
    if (pump_until([&] { return c.readable(); }, 2000) < 0) return std::nullopt;
    return c.read_frame(100);
  }
  bool eof(WireConn& c) {
    if (pump_until([&] { return c.readable(); }, 2000) < 0) return false;
    return c.wait_eof(100);
  }

 private:
  ServerConfig cfg_;
  std::uint16_t port_ = 0;
  std::unique_ptr<Reactor> reactor_;
};

}  // namespace ringlink::test
