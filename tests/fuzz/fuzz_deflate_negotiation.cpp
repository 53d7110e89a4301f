// libFuzzer target for the permessage-deflate negotiation. The input is one
// Sec-WebSocket-Extensions field: the server's choice must be answerable
// (fits 128 bytes) and its answer must pass a client that offered the
// widest options with the same parameters; the client's checker must not
// crash on the input either, and never accept a window outside 8..15.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "protocol/deflate_negotiation.hpp"

namespace {

using namespace ringlink;

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view field(reinterpret_cast<const char*>(data), size);
  DeflateServerOptions opt;
  if (size > 0) {
    // The last byte picks the server's options, so they are fuzzed too.
    const std::uint8_t k = data[size - 1];
    opt.server_no_context_takeover = (k & 1) != 0;
    opt.client_no_context_takeover = (k & 2) != 0;
    opt.server_max_window_bits = static_cast<std::uint8_t>(9 + ((k >> 2) & 7));
    opt.client_max_window_bits = static_cast<std::uint8_t>(8 + ((k >> 5) & 7));
  }
  const auto agreed = negotiate_deflate(field, opt);
  if (agreed) {
    check(agreed->server_max_window_bits >= 9 && agreed->server_max_window_bits <= 15);
    check(agreed->client_max_window_bits >= 8 && agreed->client_max_window_bits <= 15);
    check(!opt.server_no_context_takeover || agreed->server_no_context_takeover);
    std::array<char, 128> out;
    const std::size_t n = write_deflate_response(out, *agreed);
    check(n > 0);
    DeflateAnswerChecker client{DeflateClientOptions{}};
    client.add(std::string_view(out.data(), n));
    check(client.finish() == DeflateAnswer::accepted);
    const DeflateParams& p = client.params();
    check(p.server_no_context_takeover == agreed->server_no_context_takeover);
    check(p.client_no_context_takeover == agreed->client_no_context_takeover);
    check(p.server_max_window_bits == agreed->server_max_window_bits);
    check(p.client_max_window_bits == agreed->client_max_window_bits);
  }
  DeflateAnswerChecker c{DeflateClientOptions{}};
  c.add(field);
  if (c.finish() == DeflateAnswer::accepted) {
    check(c.params().server_max_window_bits >= 8 && c.params().server_max_window_bits <= 15);
    check(c.params().client_max_window_bits >= 8 && c.params().client_max_window_bits <= 15);
  }
  return 0;
}
