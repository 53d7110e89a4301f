// ringlink's own client (a Server that does not listen) against ringlink's
// server: open, echo, close both ways.
// Over loopback with an in-process server; every wait is bounded.
#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "tests/engine/server_fixture.hpp"

using namespace ringlink;
using namespace ringlink::test;

// Our own client against our own server: open, echo, close both ways.
TEST(Client, TalksToOurServer) {
  EchoHandler server_handler;
  Server srv(test_config(1), server_handler);
  ASSERT_EQ(srv.start(), 0);

  struct ClientHandler : Handler {
    std::mutex m;
    std::condition_variable cv;
    std::vector<std::string> got;
    bool opened = false, closed = false;
    std::uint16_t code = 0;
    void on_open(Link& l) override {
      (void)l.send_text("hello");
      std::vector<std::byte> big(100000, std::byte{7});
      (void)l.send(big);
      std::lock_guard g(m);
      opened = true;
      cv.notify_all();
    }
    void on_message(Link& l, std::span<std::byte> p, Opcode) override {
      std::lock_guard g(m);
      got.emplace_back(reinterpret_cast<const char*>(p.data()), p.size());
      if (got.size() == 2) l.close(4002, "done");
      cv.notify_all();
    }
    void on_close(Link&, std::uint16_t c, std::string_view) override {
      std::lock_guard g(m);
      closed = true;
      code = c;
      cv.notify_all();
    }
  } ch;
  ServerConfig ccfg = test_config(1);
  ccfg.listen = false;
  Server cli(ccfg, ch);
  ASSERT_EQ(cli.start(), 0);
  ConnectRequest req;
  ASSERT_EQ(resolve_address("127.0.0.1", srv.port(), req.address), 0);
  req.host_header = "127.0.0.1:" + std::to_string(srv.port());
  req.path = "/chat";
  ASSERT_TRUE(cli.connect(req));
  std::unique_lock lk(ch.m);
  ASSERT_TRUE(ch.cv.wait_for(lk, hang_deadline, [&] { return ch.closed; }));
  ASSERT_EQ(ch.got.size(), 2u);
  EXPECT_EQ(ch.got[0], "hello");
  EXPECT_EQ(ch.got[1].size(), 100000u);
  EXPECT_EQ(ch.code, 4002);
  lk.unlock();
  cli.stop();
  srv.stop();
}
