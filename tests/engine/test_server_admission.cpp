// Who gets a link: upgrade requests refused with their exact HTTP status,
// and the per-IP connection limit across reactors.
// Over loopback with an in-process server; every wait is bounded.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "tests/engine/server_fixture.hpp"

using namespace std::chrono_literals;
using namespace ringlink;
using namespace ringlink::test;
using ringlink::wire::WireConn;

// Upgrade refusals carry the exact status.
TEST(Server, RefusesBadUpgradesWithTheirStatus) {
  struct Refuser : EchoHandler {
    UpgradeDecision on_upgrade(const UpgradeRequestParser& req) override {
      if (req.path() == "/private") return UpgradeDecision::refuse(401, "no\n");
      return UpgradeDecision::accept();
    }
  } h;
  ServerConfig cfg = test_config(1);
  cfg.allowed_origins = {"https://good.example"};
  Server s(cfg, h);
  ASSERT_EQ(s.start(), 0);
  {
    WireConn c;
    EXPECT_EQ(c.open(s.port(), "/private", "Origin: https://good.example\r\n"), 401);
  }
  {
    WireConn c;
    EXPECT_EQ(c.open(s.port(), "/", "Origin: https://evil.example\r\n"), 403);
  }
  {
    WireConn c;
    EXPECT_EQ(c.open(s.port(), "/", "Origin: https://good.example\r\n"), 101);
  }
  {
    WireConn c;
    ASSERT_TRUE(c.connect(s.port()));
    ASSERT_TRUE(c.write("POST / HTTP/1.1\r\nHost: x\r\n\r\n"));
    EXPECT_EQ(c.read_head(), 405);
  }
  {
    WireConn c;
    ASSERT_TRUE(c.connect(s.port()));
    ASSERT_TRUE(c.write("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n"));
    EXPECT_EQ(c.read_head(), 426);
    EXPECT_NE(c.head().find("Sec-WebSocket-Version: 13"), std::string::npos);
    // RFC 9110 15.5.22: a 426 names the protocol to upgrade to.
    EXPECT_NE(c.head().find("\r\nUpgrade: websocket\r\n"), std::string::npos);
    EXPECT_NE(c.head().find("\r\nConnection: close, Upgrade\r\n"), std::string::npos);
  }
  {
    // Plain HTTP, answered by on_http's default: 426 with the same fields.
    WireConn c;
    ASSERT_TRUE(c.connect(s.port()));
    ASSERT_TRUE(c.write("GET /page HTTP/1.1\r\nHost: x\r\n\r\n"));
    EXPECT_EQ(c.read_head(), 426);
    EXPECT_NE(c.head().find("\r\nUpgrade: websocket\r\n"), std::string::npos);
    EXPECT_NE(c.head().find("\r\nConnection: close, Upgrade\r\n"), std::string::npos);
  }
  {
    WireConn c;
    ASSERT_TRUE(c.connect(s.port()));
    std::string big = "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(config::max_header_bytes, 'a') + "\r\n\r\n";
    ASSERT_TRUE(c.write(big.substr(0, config::max_header_bytes + 100)));
    EXPECT_EQ(c.read_head(), 431);
  }
  auto m = s.snapshot();
  EXPECT_EQ(m.links_refused, 2u);
  s.stop(500ms);
}

// max_links_per_ip: the connection past the limit is answered 429 and
// closed; the links already open are untouched; closing one frees a place.
TEST(Server, PerIpConnectionLimit) {
  EchoHandler h;
  ServerConfig cfg = test_config(2);  // the limit holds across reactors
  cfg.max_links_per_ip = 3;
  Server s(cfg, h);
  ASSERT_EQ(s.start(), 0);
  std::vector<std::unique_ptr<WireConn>> open;
  for (int i = 0; i < 3; ++i) {
    open.push_back(std::make_unique<WireConn>());
    ASSERT_EQ(open.back()->open(s.port()), 101);
  }
  {
    WireConn extra;
    EXPECT_EQ(extra.open(s.port()), 429);
    EXPECT_TRUE(extra.wait_eof());
  }
  for (auto& c : open) {
    ASSERT_TRUE(c->send_text("still served"));
    auto f = c->read_frame();
    ASSERT_TRUE(f);
    EXPECT_EQ(f->text(), "still served");
  }
  ASSERT_TRUE(open.back()->send_close(1000));
  ASSERT_TRUE(open.back()->read_frame());
  open.pop_back();
  ASSERT_TRUE(eventually([&] { return s.snapshot().links_open == 2; }));
  WireConn again;
  EXPECT_EQ(again.open(s.port()), 101);
  EXPECT_EQ(s.snapshot().links_refused, 1u);
  s.stop(500ms);
}
