// What the Server tests over loopback (tests/engine/test_server_*.cpp,
// test_client.cpp) share: a bounded wait (tests/wait_until.hpp), numbered payloads, an echoing
// handler and a config for an in-process server on a free port.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <span>
#include <stdexcept>
#include <string_view>
#include <thread>
#include <vector>

#include "engine/server.hpp"
#include "tests/wait_until.hpp"
#include "tests/wire_client.hpp"

namespace ringlink::test {

// `size` bytes (at least 4) that start with `seq`, so that order and loss
// show at the receiver.
inline wire::Bytes seq_payload(std::uint32_t seq, std::size_t size) {
  wire::Bytes b(std::max<std::size_t>(size, 4));
  std::memcpy(b.data(), &seq, 4);
  for (std::size_t i = 4; i < b.size(); ++i) b[i] = static_cast<std::uint8_t>(seq + i);
  return b;
}
inline std::uint32_t seq_of(const wire::Bytes& b) {
  std::uint32_t s = 0;
  std::memcpy(&s, b.data(), 4);
  return s;
}

// Echoes every message but the text "boom", on which it throws.
struct EchoHandler : Handler {
  std::atomic<int> opened{0}, closed{0};
  std::mutex m;
  std::vector<LinkId> ids;
  std::vector<std::uint16_t> close_codes;
  void on_open(Link& l) override {
    std::lock_guard g(m);
    ids.push_back(l.id());
    opened++;
  }
  void on_message(Link& l, std::span<std::byte> p, Opcode op) override {
    std::string_view s(reinterpret_cast<const char*>(p.data()), p.size());
    if (op == Opcode::text && s == "boom") throw std::runtime_error("handler failure");
    (void)l.send(p, op);
  }
  void on_close(Link&, std::uint16_t code, std::string_view) override {
    std::lock_guard g(m);
    close_codes.push_back(code);
    closed++;
  }
};

inline ServerConfig test_config(unsigned reactors = 1) {
  ServerConfig cfg;
  cfg.port = 0;
  cfg.reactors = reactors;
  return cfg;
}

}  // namespace ringlink::test
