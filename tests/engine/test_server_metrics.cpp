// The metrics endpoint: GET /metrics in the Prometheus text format, with
// the server's own figures.
// Over loopback with an in-process server; every wait is bounded.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <sstream>
#include <string>

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
  // name{reactor="N"[,label="value"]} number
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
  s.stop(500ms);
}
