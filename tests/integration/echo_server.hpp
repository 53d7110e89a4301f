// An in-process ringlink echo server for the peer tests, with what its
// handler saw recorded for the assertions.
//
//   itest::EchoServer echo;                      // 2 reactors, port 0
//   ASSERT_EQ(echo.start(), 0);
//   run a peer against ws://127.0.0.1:<echo.port()>/
//   EXPECT_TRUE(echo.wait_closes(1, 5s));        // on_close ran once
//   EXPECT_EQ(echo.close_codes(), (std::vector<std::uint16_t>{1000}));
//
// The echo is lossless under backpressure: a message that send() refuses is
// kept and the link paused until on_drain, so a peer always gets every echo.
// A text message "close-me" makes the server close the link with 4001 "bye".
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/link.hpp"
#include "engine/server.hpp"

namespace itest {

inline constexpr std::string_view close_me = "close-me";
inline constexpr std::uint16_t server_close_code = 4001;
inline constexpr std::string_view server_close_reason = "bye";

class EchoHandler : public ringlink::Handler {
 public:
  void on_open(ringlink::Link& link) override {
    link.user_data() = new Pending{};
    std::lock_guard lk(mu_);
    ++opens_;
    cv_.notify_all();
  }

  void on_message(ringlink::Link& link, std::span<std::byte> payload, ringlink::Opcode op) override {
    const std::string_view text(reinterpret_cast<const char*>(payload.data()), payload.size());
    if (op == ringlink::Opcode::text && text == close_me) {
      link.close(server_close_code, server_close_reason);
      return;
    }
    auto* pending = static_cast<Pending*>(link.user_data());
    if (!pending->empty()) {
      pending->push_back({op, {payload.begin(), payload.end()}});
      return;
    }
    if (link.send(payload, op) == ringlink::SendResult::backpressured) {
      pending->push_back({op, {payload.begin(), payload.end()}});
      link.pause_reading();
    }
  }

  void on_drain(ringlink::Link& link) override {
    auto* pending = static_cast<Pending*>(link.user_data());
    while (!pending->empty()) {
      const auto& m = pending->front();
      const ringlink::SendResult r = link.send(m.bytes, m.op);
      if (r == ringlink::SendResult::backpressured) return;  // on_drain comes again
      pending->pop_front();
    }
    link.resume_reading();
  }

  void on_close(ringlink::Link& link, std::uint16_t code, std::string_view) override {
    delete static_cast<Pending*>(link.user_data());
    link.user_data() = nullptr;
    std::lock_guard lk(mu_);
    close_codes_.push_back(code);
    cv_.notify_all();
  }

  bool wait_opens(std::size_t n, std::chrono::milliseconds timeout) {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, timeout, [&] { return opens_ >= n; });
  }
  bool wait_closes(std::size_t n, std::chrono::milliseconds timeout) {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, timeout, [&] { return close_codes_.size() >= n; });
  }
  // Sorted, so tests compare sets of codes regardless of arrival order.
  std::vector<std::uint16_t> close_codes() {
    std::lock_guard lk(mu_);
    std::vector<std::uint16_t> v = close_codes_;
    std::sort(v.begin(), v.end());
    return v;
  }
  std::size_t opens() {
    std::lock_guard lk(mu_);
    return opens_;
  }

 private:
  struct Message {
    ringlink::Opcode op;
    std::vector<std::byte> bytes;
  };
  using Pending = std::deque<Message>;

  std::mutex mu_;
  std::condition_variable cv_;
  std::size_t opens_ = 0;
  std::vector<std::uint16_t> close_codes_;
};

class EchoServer {
 public:
  explicit EchoServer(std::uint32_t ping_interval_ms = 0) : server_(make_config(ping_interval_ms), handler_) {}
  // Any configuration (a TLS listener, other timeouts).
  explicit EchoServer(ringlink::ServerConfig cfg) : server_(std::move(cfg), handler_) {}
  explicit EchoServer(const ringlink::DeflateConfig& deflate) : server_(with_deflate(deflate), handler_) {}
  ~EchoServer() { server_.stop(std::chrono::seconds(2)); }

  int start() { return server_.start(); }
  std::uint16_t port() const noexcept { return server_.port(); }
  std::uint16_t tls_port() const noexcept { return server_.tls_port(); }
  std::string url() const { return "ws://127.0.0.1:" + std::to_string(port()) + "/"; }
  std::string wss_url() const { return "wss://127.0.0.1:" + std::to_string(tls_port()) + "/"; }
  EchoHandler& handler() noexcept { return handler_; }
  ringlink::Server& server() noexcept { return server_; }

 private:
  static ringlink::ServerConfig make_config(std::uint32_t ping_interval_ms) {
    ringlink::ServerConfig cfg;
    cfg.port = 0;
    cfg.reactors = 2;
    cfg.ping_interval_ms = ping_interval_ms;
    return cfg;
  }
  static ringlink::ServerConfig with_deflate(const ringlink::DeflateConfig& deflate) {
    ringlink::ServerConfig cfg = make_config(0);
    cfg.deflate = deflate;
    return cfg;
  }

  EchoHandler handler_;
  ringlink::Server server_;
};

}  // namespace itest
