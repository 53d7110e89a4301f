// wss:// against real TLS peers: python3-websockets over ssl, `openssl
// s_client` (TLS 1.2 and 1.3, ALPN, SNI, KeyUpdate, renegotiation), bad
// clients (tls_peer.py), certificate reload. The server is in-process (2
// reactors) with a TLS listener beside its plain one; certificates are made
// by `openssl` into a temporary directory for each test. Runs on the
// backend the build chose, so the suite covers epoll and io_uring.
#include <gtest/gtest.h>
#include <openssl/ssl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "engine/reactor.hpp"
#include "engine/socket.hpp"
#include "engine/tls_context.hpp"
#include "tests/integration/echo_server.hpp"
#include "tests/integration/peer_process.hpp"
#include "tests/integration/tls_certs.hpp"
#include "tests/wait_until.hpp"

namespace {

using namespace std::chrono_literals;
using itest::EchoServer;

// How long a link may take to close: only a hang reaches it.
constexpr auto close_wait = ringlink::test::hang_deadline;

// Everything a command prints (stdout, then stderr) until it exits.
std::string output_of(const std::string& shell_command, std::chrono::milliseconds limit = 20s) {
  auto p = itest::PeerProcess::start({"/bin/sh", "-c", shell_command});
  if (!p) return "spawn failed";
  std::string out;
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    auto line = p->read_line(100ms);
    if (line) {
      out += *line + "\n";
      continue;
    }
    if (p->wait(10ms)) break;
  }
  out += p->pending_stdout();
  return out + p->stderr_text();
}

class Tls : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(certs.init(), "");
    ::setenv("RINGLINK_CA", certs.ca().c_str(), 1);
  }

  ringlink::ServerConfig config() const {
    ringlink::ServerConfig cfg;
    cfg.port = 0;
    cfg.reactors = 2;
    cfg.ping_interval_ms = 0;
    cfg.metrics_endpoint = true;
    cfg.tls.cert_file = certs.pem("server");
    cfg.tls.key_file = certs.key("server");
    return cfg;
  }

  // `openssl s_client` on the TLS port with `input` on its stdin; it
  // verifies our chain against the test CA.
  std::string s_client(const EchoServer& s, const std::string& flags, const std::string& input) const {
    return output_of(input + " | /usr/bin/openssl s_client -connect 127.0.0.1:" + std::to_string(s.tls_port()) +
                     " -CAfile " + certs.ca() + " -verify_return_error -alpn http/1.1 " + flags + " 2>&1");
  }
  static std::string metrics_request() { return "printf 'GET /metrics HTTP/1.1\\r\\nHost: localhost\\r\\n\\r\\n'"; }

  std::vector<std::string> ws_client(const EchoServer& s, std::vector<std::string> args) const {
    std::vector<std::string> argv{itest::python(), itest::peer_script("ws_client.py"), s.wss_url()};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }
  std::vector<std::string> tls_peer(const EchoServer& s, const std::string& mode) const {
    return {itest::python(), itest::peer_script("tls_peer.py"), "127.0.0.1", std::to_string(s.tls_port()),
            certs.ca(), mode};
  }

  // A python-websockets link (ws_client.py hold) open on the TLS port, or
  // null (a failure is added).
  std::unique_ptr<itest::PeerProcess> hold_link(const EchoServer& s) const {
    auto hold = itest::PeerProcess::start(ws_client(s, {"hold"}));
    if (!hold) {
      ADD_FAILURE() << "spawn failed";
      return nullptr;
    }
    auto line = hold->read_line(10s);
    if (!line || *line != "open") {
      ADD_FAILURE() << "the held link did not open: " << hold->stderr_text();
      return nullptr;
    }
    return hold;
  }
  // Stops the server: the held link, untouched until then, gets its 1001.
  static void expect_hold_ends_with_the_stop(EchoServer& s, itest::PeerProcess& hold) {
    s.server().stop(2s);
    auto status = hold.wait(10s);
    ASSERT_TRUE(status.has_value());
    EXPECT_TRUE(itest::exited_ok(*status)) << hold.stderr_text();
  }
  void flood_beside_idle_links(ringlink::OutboundPolicy policy);

  itest::TlsCerts certs;
};

// Proves: python3-websockets over ssl: every size to 16 MiB, fragments, pings and 20 concurrent
// pipelining clients echo byte-exact through the TLS listener; the plain listener works beside it.
TEST_F(Tls, PythonWebsocketsEchoesOverTls) {
  EchoServer echo(config());
  ASSERT_EQ(echo.start(), 0);
  ASSERT_NE(echo.tls_port(), 0);
  ASSERT_NE(echo.tls_port(), echo.port());
  EXPECT_EQ(itest::run_peer(ws_client(echo, {"sizes"}), 50s), "");
  EXPECT_EQ(itest::run_peer(ws_client(echo, {"fragments"}), 30s), "");
  EXPECT_EQ(itest::run_peer(ws_client(echo, {"ping"}), 30s), "");
  EXPECT_EQ(itest::run_peer(ws_client(echo, {"concurrent", "20", "50"}), 50s), "");
  std::vector<std::string> plain{itest::python(), itest::peer_script("ws_client.py"), echo.url(), "ping"};
  EXPECT_EQ(itest::run_peer(plain, 30s), "");
  ASSERT_TRUE(echo.handler().wait_closes(24, close_wait));
  const ringlink::MetricsSnapshot m = echo.server().snapshot();
  EXPECT_EQ(m.tls_handshakes, 23u);
  EXPECT_EQ(m.tls_failed_protocol + m.tls_failed_certificate + m.tls_failed_timeout + m.tls_failed_plaintext, 0u);
  EXPECT_EQ(m.handler_exceptions, 0u);
}

// Proves: gorilla/websocket over crypto/tls: every size to 16 MiB, both close codes and 20
// concurrent pipelining connections echo through the TLS listener.
TEST_F(Tls, GorillaEchoesOverTls) {
  const std::string go = itest::env_or_empty("RINGLINK_GO_CLIENT");
  if (go.empty()) GTEST_SKIP() << "go was not found at configure time";
  EchoServer echo(config());
  ASSERT_EQ(echo.start(), 0);
  for (std::vector<std::string> mode : {std::vector<std::string>{"-mode", "sizes"}, {"-mode", "close"},
                                        {"-mode", "concurrent", "-n", "20", "-m", "50"}}) {
    std::vector<std::string> argv{go, "-url", echo.wss_url()};
    argv.insert(argv.end(), mode.begin(), mode.end());
    EXPECT_EQ(itest::run_peer(argv, 50s), "") << mode[1];
  }
  ASSERT_TRUE(echo.handler().wait_closes(23, close_wait));
  EXPECT_EQ(echo.server().snapshot().tls_handshakes, 23u);
}

// Proves: Node's `ws` over https' TLS: sizes to 1 MiB in text and binary, a ping and a close
// handshake, verified against the test CA.
TEST_F(Tls, NodeWsEchoesOverTls) {
  const std::string node = itest::env_or_empty("RINGLINK_NODE");
  ASSERT_FALSE(node.empty()) << "node not found at configure time: install nodejs (make deps)";
  EchoServer echo(config());
  ASSERT_EQ(echo.start(), 0);
  EXPECT_EQ(itest::run_peer({node, itest::peer_script("node_client.js"), echo.wss_url(), certs.ca()}, 90s), "");
  ASSERT_TRUE(echo.handler().wait_closes(1, close_wait));
  EXPECT_EQ(echo.handler().close_codes(), std::vector<std::uint16_t>{1000});
}

// Proves: s_client negotiates TLS 1.2 and 1.3 with ALPN http/1.1 and a verified chain, and
// reads /metrics over it, where the handshake counters and histogram are.
TEST_F(Tls, OpenSslClientSpeaksTls12And13WithAlpn) {
  EchoServer echo(config());
  ASSERT_EQ(echo.start(), 0);
  for (const std::string version : {"1_2", "1_3"}) {
    const std::string out = s_client(echo, "-tls" + version + " -ign_eof", metrics_request());
    EXPECT_NE(out.find("New, TLSv1." + version.substr(2)), std::string::npos) << out;
    EXPECT_NE(out.find("ALPN protocol: http/1.1"), std::string::npos) << out;
    EXPECT_NE(out.find("Verify return code: 0 (ok)"), std::string::npos) << out;
    EXPECT_NE(out.find("HTTP/1.1 200"), std::string::npos) << out;
    EXPECT_NE(out.find("ringlink_tls_handshakes_total"), std::string::npos) << out;
    EXPECT_NE(out.find("ringlink_tls_handshake_seconds_bucket"), std::string::npos) << out;
  }
  EXPECT_EQ(echo.server().snapshot().tls_handshakes, 2u);
}

// Proves: min_version 1.3 refuses a TLS 1.2-only client (counted as a protocol failure) and
// still serves 1.3.
TEST_F(Tls, MinimumVersionIsEnforced) {
  ringlink::ServerConfig cfg = config();
  cfg.tls.min_version = ringlink::TlsVersion::tls1_3;
  EchoServer echo(cfg);
  ASSERT_EQ(echo.start(), 0);
  const std::string old = s_client(echo, "-tls1_2 -ign_eof", metrics_request());
  EXPECT_EQ(old.find("HTTP/1.1 200"), std::string::npos) << old;
  const std::string current = s_client(echo, "-tls1_3 -ign_eof", metrics_request());
  EXPECT_NE(current.find("HTTP/1.1 200"), std::string::npos) << current;
  const ringlink::MetricsSnapshot m = echo.server().snapshot();
  EXPECT_EQ(m.tls_handshakes, 1u);
  EXPECT_EQ(m.tls_failed_protocol, 1u);
}

// Proves: SNI picks the certificate by exact name, then by `*.` wildcard (one label only), and
// the default for other names.
TEST_F(Tls, SniChoosesCertificateByName) {
  ASSERT_EQ(certs.issue("exact", "exact.test"), "");
  ASSERT_EQ(certs.issue("wild", "*.wild.test"), "");
  ringlink::ServerConfig cfg = config();
  cfg.tls.sni.push_back({"exact.test", certs.pem("exact"), certs.key("exact"), ""});
  cfg.tls.sni.push_back({"*.wild.test", certs.pem("wild"), certs.key("wild"), ""});
  EchoServer echo(cfg);
  ASSERT_EQ(echo.start(), 0);
  auto subject = [&](const std::string& name) {
    const std::string out = output_of("printf '' | /usr/bin/openssl s_client -connect 127.0.0.1:" +
                                      std::to_string(echo.tls_port()) + " -servername " + name + " 2>&1");
    const std::size_t at = out.find("subject=CN = ");
    if (at == std::string::npos) return std::string("none: ") + out;
    return out.substr(at + 13, out.find('\n', at) - at - 13);
  };
  EXPECT_EQ(subject("exact.test"), "exact.test");
  EXPECT_EQ(subject("EXACT.test"), "exact.test");
  EXPECT_EQ(subject("a.wild.test"), "*.wild.test");
  EXPECT_EQ(subject("a.b.wild.test"), "localhost");
  EXPECT_EQ(subject("other.test"), "localhost");
}

// Proves: reload_tls() makes new handshakes use the renewed files while an open link keeps
// going; a file that fails to load is an error with a reason, and the last good certificate stays.
TEST_F(Tls, ReloadUsesNewFilesAndKeepsOldOnError) {
  EchoServer echo(config());
  ASSERT_EQ(echo.start(), 0);
  auto hold = hold_link(echo);
  ASSERT_TRUE(hold);

  auto subject = [&] {
    const std::string out = s_client(echo, "", "printf ''");
    const std::size_t at = out.find("subject=CN = ");
    return at == std::string::npos ? out : out.substr(at + 13, out.find('\n', at) - at - 13);
  };
  EXPECT_EQ(subject(), "localhost");
  // Renewed under the same paths, as a certificate manager does.
  ASSERT_EQ(certs.issue("renewed", "renewed.test", "DNS:localhost,IP:127.0.0.1"), "");
  std::filesystem::copy_file(certs.pem("renewed"), certs.pem("server"), std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(certs.key("renewed"), certs.key("server"), std::filesystem::copy_options::overwrite_existing);
  std::string why;
  ASSERT_EQ(echo.server().reload_tls(&why), 0) << why;
  EXPECT_EQ(subject(), "renewed.test");
  // A broken file: the reload fails and says why; handshakes go on with the renewed certificate.
  std::ofstream(certs.pem("server"), std::ios::trunc) << "not a certificate\n";
  why.clear();
  EXPECT_EQ(echo.server().reload_tls(&why), -EINVAL);
  EXPECT_NE(why.find(certs.pem("server")), std::string::npos) << why;
  EXPECT_EQ(subject(), "renewed.test");
  // The link opened before both reloads is still served: the stop's 1001 reaches it.
  expect_hold_ends_with_the_stop(echo, *hold);
}

// Proves: TLS 1.3 KeyUpdate (s_client's "K") is answered and the link goes on; a TLS 1.2
// renegotiation (s_client's "R") is refused and other links are untouched.
TEST_F(Tls, KeyUpdateWorksAndRenegotiationIsRefused) {
  EchoServer echo(config());
  ASSERT_EQ(echo.start(), 0);
  const std::string request = "printf 'GET /metrics HTTP/1.1\\r\\nHost: localhost\\r\\n\\r\\n'";
  const std::string update =
      s_client(echo, "-tls1_3", "(printf 'K\\n'; sleep 0.3; " + request + "; sleep 1)");
  EXPECT_NE(update.find("KEYUPDATE"), std::string::npos) << update;
  EXPECT_NE(update.find("HTTP/1.1 200"), std::string::npos) << update;
  const std::string reneg = s_client(echo, "-tls1_2", "(printf 'R\\n'; sleep 0.3; " + request + "; sleep 1)");
  EXPECT_NE(reneg.find("RENEGOTIATING"), std::string::npos) << reneg;
  EXPECT_EQ(reneg.find("HTTP/1.1 200"), std::string::npos) << reneg;
  EXPECT_EQ(itest::run_peer(ws_client(echo, {"ping"}), 30s), "");
}

// Proves: bad clients each get a clean end and a counter, and a link open meanwhile is
// untouched: plain HTTP (a plain 400 naming TLS), random bytes (an alert), a ClientHello split
// byte by byte (served), half a ClientHello then FIN, then RST, then silence (handshake timeout).
TEST_F(Tls, BadClientsEndCleanlyAndAreCounted) {
  ringlink::ServerConfig cfg = config();
  cfg.handshake_timeout_ms = 500;
  EchoServer echo(cfg);
  ASSERT_EQ(echo.start(), 0);
  auto hold = hold_link(echo);
  ASSERT_TRUE(hold);

  EXPECT_EQ(itest::run_peer(tls_peer(echo, "plaintext"), 30s), "");
  EXPECT_EQ(itest::run_peer(tls_peer(echo, "garbage"), 30s), "");
  EXPECT_EQ(itest::run_peer(tls_peer(echo, "split"), 30s), "");
  EXPECT_EQ(itest::run_peer(tls_peer(echo, "truncated"), 30s), "");
  EXPECT_EQ(itest::run_peer(tls_peer(echo, "reset"), 30s), "");
  EXPECT_EQ(itest::run_peer(tls_peer(echo, "stall"), 30s), "");
  auto settled = [&] {
    const ringlink::MetricsSnapshot m = echo.server().snapshot();
    return m.tls_failed_timeout == 1 && m.tls_failed_plaintext == 1 && m.tls_failed_protocol == 1;
  };
  EXPECT_TRUE(ringlink::test::eventually(settled, close_wait));
  const ringlink::MetricsSnapshot m = echo.server().snapshot();
  EXPECT_EQ(m.tls_failed_plaintext, 1u);
  EXPECT_EQ(m.tls_failed_protocol, 1u);
  EXPECT_EQ(m.tls_failed_timeout, 1u);
  EXPECT_EQ(m.tls_handshakes, 2u);  // the held link and the split ClientHello
  EXPECT_EQ(m.handler_exceptions, 0u);

  expect_hold_ends_with_the_stop(echo, *hold);
}

// Proves: after the TLS handshake and the upgrade, half a record then an RST, and half a record
// then a FIN (the peer's close), each end only their own link (1006, closed as io_error or
// peer_eof) and count in tls_truncated; a link open meanwhile is untouched, nothing stays queued
// and no TLS failure is counted for them.
TEST_F(Tls, TruncatedRecordsAfterTheUpgradeEndCleanly) {
  EchoServer echo(config());
  ASSERT_EQ(echo.start(), 0);
  auto hold = hold_link(echo);
  ASSERT_TRUE(hold);

  EXPECT_EQ(itest::run_peer(tls_peer(echo, "record_reset"), 30s), "");
  EXPECT_TRUE(ringlink::test::eventually([&] { return echo.server().snapshot().tls_truncated == 1; }, close_wait))
      << "an RST in the middle of a record was not counted";
  EXPECT_EQ(itest::run_peer(tls_peer(echo, "record_truncated"), 30s), "");
  EXPECT_TRUE(ringlink::test::eventually([&] { return echo.server().snapshot().tls_truncated == 2; }, close_wait))
      << "a FIN in the middle of a record was not counted";
  ASSERT_TRUE(echo.handler().wait_closes(2, close_wait));
  EXPECT_EQ(echo.handler().close_codes(), (std::vector<std::uint16_t>{1006, 1006}));
  const ringlink::MetricsSnapshot m = echo.server().snapshot();
  EXPECT_EQ(m.closed(ringlink::CloseReason::io_error) + m.closed(ringlink::CloseReason::peer_eof), 2u);
  EXPECT_EQ(m.tls_handshakes, 3u);  // the held link and the two cut ones
  EXPECT_EQ(m.tls_failed_protocol + m.tls_failed_certificate + m.tls_failed_timeout + m.tls_failed_plaintext, 0u);
  EXPECT_EQ(m.links_open, 1u);
  EXPECT_EQ(m.queued_bytes, 0u);
  EXPECT_EQ(m.handler_exceptions, 0u);

  expect_hold_ends_with_the_stop(echo, *hold);
}

// 200 idle wss:// links and one more that sends as fast as it can and never
// reads (tls_peer.py flood_pause / flood_close), against the lossless echo:
// what the flooder meets is `policy`'s answer; idle links echo in turn
// during the flood, every one of them after it, and all close 1000.
void Tls::flood_beside_idle_links(ringlink::OutboundPolicy policy) {
  constexpr std::size_t idle = 200;
  ringlink::ServerConfig cfg = config();
  cfg.max_queued_bytes = 256 * 1024;
  cfg.outbound_policy = policy;
  cfg.close_timeout_ms = 1000;  // how long a closed flooder may linger
  EchoServer echo(cfg);
  ASSERT_EQ(echo.start(), 0);
  const bool close_slow = policy == ringlink::OutboundPolicy::close_slow;
  std::vector<std::string> argv = tls_peer(echo, close_slow ? "flood_close" : "flood_pause");
  argv.push_back(std::to_string(idle));
  auto peer = itest::PeerProcess::start(argv);
  ASSERT_TRUE(peer);
  std::string said;
  while (auto line = peer->read_line(120s)) said += *line + "\n";
  auto status = peer->wait(10s);
  ASSERT_TRUE(status.has_value()) << said;
  ASSERT_TRUE(itest::exited_ok(*status)) << said << peer->stderr_text();
  ASSERT_TRUE(echo.handler().wait_closes(idle + 1, close_wait));
  std::vector<std::uint16_t> codes(idle + 1, 1000);
  if (close_slow) codes.back() = ringlink::close_code::policy_violation;  // sorted: 1008 last
  EXPECT_EQ(echo.handler().close_codes(), codes);
  const ringlink::MetricsSnapshot m = echo.server().snapshot();
  std::printf("%squeued_bytes_high_water=%llu send_backpressured=%llu read_pauses=%llu\n", said.c_str(),
              static_cast<unsigned long long>(m.queued_bytes_high_water),
              static_cast<unsigned long long>(m.send_backpressured), static_cast<unsigned long long>(m.read_pauses));
  EXPECT_EQ(m.tls_handshakes, idle + 1);
  if (close_slow) {
    EXPECT_EQ(m.closed(ringlink::CloseReason::slow_consumer), 1u);
  } else {
    EXPECT_NE(said.find("stalled=True"), std::string::npos) << said;
    EXPECT_GE(m.send_backpressured, 1u);
    EXPECT_GE(m.read_pauses, 1u);
    EXPECT_EQ(m.closed(ringlink::CloseReason::slow_consumer), 0u);
  }
  // The queue stayed at its cap: one 4 KiB message beyond it is admitted,
  // records add their headers and tags, an idle link's echo may be queued.
  EXPECT_LE(m.queued_bytes_high_water, cfg.max_queued_bytes + 8 * 1024);
  EXPECT_TRUE(ringlink::test::eventually(
      [&] { return echo.server().snapshot().links_open == 0 && echo.server().snapshot().queued_bytes == 0; }, close_wait));
  EXPECT_EQ(m.handler_exceptions, 0u);
  EXPECT_EQ(m.out_of_memory, 0u);
}

// Proves: a flooder against the default policy (reject) and a lossless echo is paused: its
// writes stall under TCP flow control (send_backpressured, read_pauses), then every echo comes
// back in order and it closes 1000; 200 idle TLS links on the same server are untouched: those
// asked during the flood echo, all 200 echo after it and close 1000.
TEST_F(Tls, FloodingLinkIsPausedAndIdleLinksAreUntouched) {
  flood_beside_idle_links(ringlink::OutboundPolicy::reject);
}

// Proves: with close_slow, a flooder that never reads is closed 1008 (closes{slow_consumer}),
// its connection ends, and 200 idle TLS links on the same server are untouched: those asked
// during the flood echo, all 200 echo after it and close 1000.
TEST_F(Tls, FloodingLinkIsClosedSlowAndIdleLinksAreUntouched) {
  flood_beside_idle_links(ringlink::OutboundPolicy::close_slow);
}

// The engine's own client over wss://: sends a text and a 1 MiB binary
// message on open, closes after both echoes.
class WssClient : public ringlink::Handler {
 public:
  static constexpr std::size_t big = 1 << 20;
  void on_open(ringlink::Link& l) override {
    (void)l.send_text("over tls");
    std::vector<std::byte> payload(big);
    for (std::size_t i = 0; i < big; ++i) payload[i] = static_cast<std::byte>(i * 7);
    (void)l.send(payload);
  }
  void on_message(ringlink::Link& l, std::span<std::byte> p, ringlink::Opcode op) override {
    std::lock_guard g(m_);
    if (op == ringlink::Opcode::text) {
      texts_.emplace_back(reinterpret_cast<const char*>(p.data()), p.size());
    } else {
      bool same = p.size() == big;
      for (std::size_t i = 0; same && i < big; ++i) same = p[i] == static_cast<std::byte>(i * 7);
      big_ok_ += same ? 1 : 0;
      l.close(1000);
    }
    cv_.notify_all();
  }
  void on_close(ringlink::Link&, std::uint16_t code, std::string_view) override {
    std::lock_guard g(m_);
    closes_.push_back(code);
    cv_.notify_all();
  }
  void on_connect_failed(ringlink::LinkId, void*, int error, std::uint16_t) override {
    std::lock_guard g(m_);
    failures_.push_back(error);
    cv_.notify_all();
  }
  // Waits for `n` outcomes (closes or failures).
  bool wait_outcomes(std::size_t n) {
    std::unique_lock g(m_);
    return cv_.wait_for(g, close_wait, [&] { return closes_.size() + failures_.size() >= n; });
  }
  std::vector<std::string> texts() { std::lock_guard g(m_); return texts_; }
  int big_ok() { std::lock_guard g(m_); return big_ok_; }
  std::vector<int> failures() { std::lock_guard g(m_); return failures_; }
  std::vector<std::uint16_t> closes() { std::lock_guard g(m_); return closes_; }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  std::vector<std::string> texts_;
  int big_ok_ = 0;
  std::vector<int> failures_;
  std::vector<std::uint16_t> closes_;
};

// Proves: the engine's client speaks wss:// (a text and a 1 MiB message echo byte-exact)
// when the server's chain verifies against the CA file; it fails with -EKEYREJECTED against
// the system store (an unknown CA) or another server name, and --insecure skips the check.
TEST_F(Tls, EngineClientVerifiesTheServer) {
  EchoServer echo(config());
  ASSERT_EQ(echo.start(), 0);
  WssClient handler;
  ringlink::ServerConfig ccfg;
  ccfg.listen = false;
  ccfg.reactors = 1;
  ccfg.ping_interval_ms = 0;
  ringlink::Server client(ccfg, handler);
  ASSERT_EQ(client.start(), 0);
  auto request = [&](const std::string& ca, const std::string& name, bool insecure) {
    ringlink::ConnectRequest req;
    EXPECT_EQ(ringlink::resolve_address("127.0.0.1", echo.tls_port(), req.address), 0);
    req.host_header = "localhost:" + std::to_string(echo.tls_port());
    req.tls.enabled = true;
    req.tls.ca_file = ca;
    req.tls.server_name = name;
    req.tls.insecure = insecure;
    return req;
  };
  ASSERT_TRUE(client.connect(request(certs.ca(), "", false)));
  ASSERT_TRUE(handler.wait_outcomes(1));
  ASSERT_TRUE(client.connect(request("", "", false)));
  ASSERT_TRUE(handler.wait_outcomes(2));
  ASSERT_TRUE(client.connect(request(certs.ca(), "other.test", false)));
  ASSERT_TRUE(handler.wait_outcomes(3));
  ASSERT_TRUE(client.connect(request("", "", true)));
  ASSERT_TRUE(handler.wait_outcomes(4));
  EXPECT_EQ(handler.texts(), (std::vector<std::string>{"over tls", "over tls"}));
  EXPECT_EQ(handler.big_ok(), 2);
  EXPECT_EQ(handler.closes(), (std::vector<std::uint16_t>{1000, 1000}));
  EXPECT_EQ(handler.failures(), (std::vector<int>{-EKEYREJECTED, -EKEYREJECTED}));
  const ringlink::MetricsSnapshot cm = client.snapshot();
  EXPECT_EQ(cm.tls_handshakes, 2u);
  EXPECT_EQ(cm.tls_failed_certificate, 2u);
  client.stop(2s);
}

// Proves: handshake admission: with a budget of 2 steps per turn, six ClientHellos that arrive
// together are answered at most two per loop turn, the others wait in the queue (counted,
// then drained to 0), and all six handshakes complete.
TEST_F(Tls, HandshakeStepsAreAdmittedPerTurn) {
  ringlink::ServerConfig cfg = config();
  cfg.tls_handshakes_per_turn = 2;
  std::string why;
  int err = 0;
  auto ctx = ringlink::make_tls_server_context(cfg.tls, &err, &why);
  ASSERT_TRUE(ctx) << why;
  itest::EchoHandler handler;
  ringlink::Reactor reactor(0, cfg, handler, nullptr);
  reactor.set_tls(ctx.get());
  ASSERT_EQ(reactor.open(-1), 0);

  SSL_CTX* cctx = SSL_CTX_new(TLS_client_method());
  ASSERT_NE(cctx, nullptr);
  struct Peer {
    int fd = -1;
    SSL* ssl = nullptr;
    BIO* in = nullptr;
    BIO* out = nullptr;
  };
  constexpr int n = 6;
  std::vector<Peer> peers(n);
  auto flush_out = [](Peer& p) {
    char buf[16384];
    int k;
    while ((k = BIO_read(p.out, buf, sizeof buf)) > 0) ASSERT_EQ(::send(p.fd, buf, static_cast<std::size_t>(k), 0), k);
  };
  for (Peer& p : peers) {
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    p.fd = sv[0];
    ASSERT_TRUE(reactor.adopt(sv[1], true).valid());
    p.ssl = SSL_new(cctx);
    p.in = BIO_new(BIO_s_mem());
    p.out = BIO_new(BIO_s_mem());
    SSL_set_bio(p.ssl, p.in, p.out);
    SSL_set_connect_state(p.ssl);
    ASSERT_EQ(SSL_do_handshake(p.ssl), -1);  // wants the server's answer
    flush_out(p);
  }
  auto answered = [&] {
    int count = 0;
    for (Peer& p : peers) {
      char c;
      if (::recv(p.fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) > 0) ++count;
    }
    return count;
  };
  int seen = 0, most_in_one_turn = 0;
  for (int turn = 0; turn < 1000 && seen < n; ++turn) {
    reactor.run_once(0);
    const int now = answered();
    most_in_one_turn = std::max(most_in_one_turn, now - seen);
    seen = now;
  }
  EXPECT_EQ(seen, n);
  EXPECT_LE(most_in_one_turn, 2);
  EXPECT_GE(reactor.metrics().tls_handshakes_queued.get(), 1u);
  EXPECT_EQ(reactor.metrics().tls_handshakes_pending.get(), 0u);
  // The clients finish; every handshake completes.
  for (Peer& p : peers) {
    char buf[16384];
    ssize_t k;
    while ((k = ::recv(p.fd, buf, sizeof buf, MSG_DONTWAIT)) > 0) BIO_write(p.in, buf, static_cast<int>(k));
    EXPECT_EQ(SSL_do_handshake(p.ssl), 1);
    flush_out(p);
  }
  for (int turn = 0; turn < 1000 && reactor.metrics().tls_handshakes.get() < n; ++turn) reactor.run_once(0);
  EXPECT_EQ(reactor.metrics().tls_handshakes.get(), static_cast<std::uint64_t>(n));
  EXPECT_EQ(reactor.metrics().tls_handshakes_pending.get(), 0u);
  for (Peer& p : peers) {
    SSL_free(p.ssl);
    ::close(p.fd);
  }
  SSL_CTX_free(cctx);
}

// Proves: a server configured without a usable certificate refuses to start and says so.
TEST_F(Tls, StartRefusesABadCertificate) {
  ringlink::ServerConfig cfg = config();
  cfg.tls.key_file = certs.key("missing");
  EchoServer echo(cfg);
  EXPECT_EQ(echo.start(), -EINVAL);
}

}  // namespace
