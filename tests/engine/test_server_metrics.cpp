// The metrics endpoint: GET /metrics in the Prometheus text format, with
// the server's own figures.
// Over loopback with an in-process server; every wait is bounded.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <sstream>
#include <string>
#include <thread>

#include "tests/engine/server_fixture.hpp"

using namespace std::chrono_literals;
using namespace ringlink;
using namespace ringlink::test;
using ringlink::wire::WireConn;

// GET /metrics answers in the Prometheus text format: every sample line
// parses, every series has HELP and TYPE, and the values are the server's.
TEST(Server, MetricsEndpointSpeaksPrometheus) {
  EchoHandler h;
  ServerConfig cfg = test_config(2);
  cfg.metrics_endpoint = true;
  Server s(cfg, h);
  ASSERT_EQ(s.start(), 0);
  WireConn ws;
  ASSERT_EQ(ws.open(s.port()), 101);
  ASSERT_TRUE(ws.send_text("count me"));
  ASSERT_TRUE(ws.read_frame());

  WireConn http;
  ASSERT_TRUE(http.connect(s.port()));
  ASSERT_TRUE(http.write("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_EQ(http.read_head(), 200);
  EXPECT_NE(http.head().find("Content-Type: text/plain; version=0.0.4"), std::string::npos);
  std::string body;
  std::uint8_t buf[4096];
  while (http.read_exact(buf, 1, 2000)) body.push_back(static_cast<char>(buf[0]));

  std::map<std::string, std::string> type_of;
  std::map<std::string, double> total;  // summed over reactors
  std::istringstream in(body);
  std::string line;
  int samples = 0;
  // name{reactor="N"[,label="value"]} number, or (the server's own series,
  // such as the topic table's) name number
  std::map<std::string, double> server_wide;
  auto parse_server_wide = [&](const std::string& l) {
    const std::size_t sp = l.find(' ');
    if (sp == std::string::npos || l.find('{') != std::string::npos) return false;
    const std::string name = l.substr(0, sp);
    if (name.find_first_not_of("abcdefghijklmnopqrstuvwxyz_") != std::string::npos) return false;
    char* end = nullptr;
    const double v = std::strtod(l.c_str() + sp + 1, &end);
    if (end == l.c_str() + sp + 1 || *end != '\0') return false;
    server_wide[name] = v;
    return true;
  };
  auto parse_sample = [](const std::string& l, std::string& name, unsigned& reactor, bool& extra, double& value) {
    const std::size_t brace = l.find("{reactor=\"");
    const std::size_t close = l.find("} ");
    if (brace == std::string::npos || close == std::string::npos || close < brace) return false;
    name = l.substr(0, brace);
    if (name.empty() || name.find_first_not_of("abcdefghijklmnopqrstuvwxyz_0123456789") != std::string::npos) return false;
    char* end = nullptr;
    reactor = static_cast<unsigned>(std::strtoul(l.c_str() + brace + 10, &end, 10));
    if (end == nullptr || *end != '"') return false;
    extra = end[1] == ',';
    const char* v = l.c_str() + close + 2;
    value = std::strtod(v, &end);
    return end != v && *end == '\0';
  };
  while (std::getline(in, line)) {
    if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream t(line.substr(7));
      std::string name, type;
      t >> name >> type;
      type_of[name] = type;
      continue;
    }
    if (line.rfind("# HELP ", 0) == 0) continue;
    if (parse_server_wide(line)) {
      EXPECT_TRUE(type_of.count(line.substr(0, line.find(' ')))) << "no TYPE for " << line;
      continue;
    }
    std::string name;
    unsigned reactor = 0;
    bool labelled = false;
    double value = 0;
    ASSERT_TRUE(parse_sample(line, name, reactor, labelled, value)) << "unparsable line: " << line;
    std::string family = name;
    for (const char* suffix : {"_bucket", "_sum", "_count"})
      if (family.size() > std::strlen(suffix) && family.ends_with(suffix) && !type_of.count(family))
        family.resize(family.size() - std::strlen(suffix));
    ASSERT_TRUE(type_of.count(family)) << "no TYPE for " << name;
    EXPECT_LT(reactor, 2u);
    if (!labelled) total[name] += value;
    ++samples;
  }
  EXPECT_GT(samples, 50);
  EXPECT_EQ(type_of["ringlink_links_open"], "gauge");
  EXPECT_EQ(type_of["ringlink_loop_turn_seconds"], "histogram");
  EXPECT_EQ(total["ringlink_links_open"], 1.0);          // the WebSocket link; this request is not open
  EXPECT_EQ(total["ringlink_links_accepted_total"], 2.0);
  EXPECT_EQ(total["ringlink_messages_in_total"], 1.0);
  EXPECT_GE(total["ringlink_loop_wakeups_total"], 1.0);
  EXPECT_EQ(total["ringlink_loop_turn_seconds_count"] > 0, true);
  EXPECT_EQ(type_of["ringlink_topics"], "gauge");
  EXPECT_EQ(server_wide.count("ringlink_topics"), 1u);
  EXPECT_EQ(server_wide["ringlink_topics"], 0.0);
  s.stop(500ms);
}

// After a burst the server gives the pages its idle buffers touched back to
// the kernel (a quarter second after input stops), once: with no input
// since, there is nothing more to give back and no trimming again. The burst:
// sixteen links each hold a receive chunk at once (half a frame each), more
// than the pool keeps warm.
TEST(Server, IdleServerGivesBurstPagesBackOnce) {
  EchoHandler h;
  Server s(test_config(1), h);
  ASSERT_EQ(s.start(), 0);
  constexpr int links = 16;
  std::vector<WireConn> conns(links);
  for (auto& c : conns) ASSERT_EQ(c.open(s.port()), 101);
  const wire::Bytes payload(3000, 'x');
  const wire::Bytes frame = wire::frame(2, payload);
  const std::size_t half = frame.size() / 2;
  for (auto& c : conns) ASSERT_TRUE(c.write(std::span(frame.data(), half)));
  // A ping written after the halves is answered in their turn or a later one.
  WireConn probe;
  ASSERT_EQ(probe.open(s.port()), 101);
  ASSERT_TRUE(probe.send(0x9, wire::Bytes{1, 2}));
  auto pong = probe.read_frame();
  ASSERT_TRUE(pong);
  EXPECT_EQ(pong->opcode, 0xA);
  for (auto& c : conns) {
    ASSERT_TRUE(c.write(std::span(frame.data() + half, frame.size() - half)));
    auto f = c.read_frame();
    ASSERT_TRUE(f);
    EXPECT_EQ(f->payload.size(), payload.size());
  }
  ASSERT_TRUE(eventually([&] { return s.snapshot().pages_returned > 0; }))
      << "no pages handed back after the load went away";
  const std::uint64_t pages = s.snapshot().pages_returned;
  // The behaviour under test is that nothing happens: no second trim in six
  // times the quarter second after which an idle server trims.
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(s.snapshot().pages_returned, pages) << "trimmed again with no input since";
  // Still serving, from the pages it gave back.
  ASSERT_TRUE(conns[0].send_text("again"));
  ASSERT_TRUE(conns[0].read_frame());
}
