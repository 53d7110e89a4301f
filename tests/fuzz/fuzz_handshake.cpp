// libFuzzer target for both handshake parsers. The first input byte picks a
// split point; the rest is the head. Each parser is fed the input whole and
// in two pieces, the second time from a copy at another address, and must
// reach the same answer with the same views (as offsets). Invariants:
// complete implies head_length <= size and <= the byte limit; every view
// lies inside the buffer; an error carries a status the server may send.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <vector>

#include "protocol/handshake_client.hpp"
#include "protocol/handshake_server.hpp"

namespace {

using namespace ringlink;

void check(bool ok) {
  if (!ok) std::abort();
}

void check_inside(std::string_view v, std::string_view buffer) {
  if (v.empty()) return;
  check(v.data() >= buffer.data() && v.data() + v.size() <= buffer.data() + buffer.size());
}

// Offsets of every view, to compare runs over different buffers.
std::vector<std::ptrdiff_t> server_views(const UpgradeRequestParser& p, std::string_view buffer) {
  std::vector<std::ptrdiff_t> out;
  auto add = [&](std::string_view v) {
    check_inside(v, buffer);
    out.push_back(v.empty() ? -1 : v.data() - buffer.data());
    out.push_back(static_cast<std::ptrdiff_t>(v.size()));
  };
  for (std::string_view v : {p.method(), p.target(), p.path(), p.query(), p.host(), p.origin(),
                             p.key(), p.protocols(), p.extensions()}) {
    add(v);
  }
  for (const HeaderField& f : p.headers()) {
    add(f.name);
    add(f.value);
  }
  return out;
}

void fuzz_server(std::string_view data, std::size_t split, std::size_t max_bytes) {
  UpgradeRequestParser whole{max_bytes};
  const ParseStatus s = whole.parse(data);
  if (s == ParseStatus::complete) {
    check(whole.head_length() <= data.size() && whole.head_length() <= max_bytes);
    check(whole.method() == "GET" && whole.key().size() == 24 && !whole.host().empty());
    check(whole.headers().size() <= config::max_headers);
    char out[512];
    check(write_accept_response(out, whole.key()) > 0);
  } else if (s == ParseStatus::error) {
    const std::uint16_t st = whole.error_status();
    check(st == 400 || st == 405 || st == 426 || st == 431);
    check(whole.error_reason() != nullptr && whole.error_reason()[0] != '\0');
    char out[512];
    check(write_refusal(out, st) > 0);
  } else {
    check(whole.head_length() == 0 && data.size() <= max_bytes);
  }
  const std::vector<std::ptrdiff_t> expected =
      s == ParseStatus::complete ? server_views(whole, data) : std::vector<std::ptrdiff_t>{};

  // The same bytes in two deliveries, the second at a new address.
  const std::vector<char> copy(data.begin(), data.end());
  const std::string_view moved(copy.data(), copy.size());
  UpgradeRequestParser split_parser{max_bytes};
  ParseStatus first = split_parser.parse(data.substr(0, split));
  ParseStatus second = split_parser.parse(moved);
  if (first != ParseStatus::incomplete) check(second == first);
  check(second == s);
  check(split_parser.error_status() == whole.error_status());
  check(split_parser.head_length() == whole.head_length());
  if (s == ParseStatus::complete) check(server_views(split_parser, moved) == expected);
}

void fuzz_client(std::string_view data, std::size_t split, std::size_t max_bytes) {
  // A fixed key, so that a corpus entry can carry the matching accept value
  // (dGhlIHNhbXBsZSBub25jZQ== -> s3pPLMBiTxaQ9kYGzzhZRbK+xOo=).
  std::byte nonce[16];
  std::memcpy(nonce, "the sample nonce", 16);
  const ClientKey key = make_client_key(std::span<const std::byte, 16>(nonce));
  UpgradeResponseParser whole{key, "chat, superchat", max_bytes};
  const ParseStatus s = whole.parse(data);
  if (s == ParseStatus::complete) {
    check(whole.head_length() <= data.size() && whole.head_length() <= max_bytes);
    check(whole.status() == 101 && whole.error() == ClientHandshakeError::none);
    check(whole.protocol().empty() || whole.protocol() == "chat" ||
          whole.protocol() == "superchat");
    check_inside(whole.protocol(), data);
  } else if (s == ParseStatus::error) {
    check(whole.error() != ClientHandshakeError::none);
    check(to_string(whole.error())[0] != '\0');
  } else {
    check(whole.error() == ClientHandshakeError::none);
  }
  if (auto h = whole.header("Sec-WebSocket-Accept")) check_inside(*h, data);

  const std::vector<char> copy(data.begin(), data.end());
  const std::string_view moved(copy.data(), copy.size());
  UpgradeResponseParser split_parser{key, "chat, superchat", max_bytes};
  const ParseStatus first = split_parser.parse(data.substr(0, split));
  const ParseStatus second = split_parser.parse(moved);
  if (first != ParseStatus::incomplete) check(second == first);
  check(second == s);
  check(split_parser.error() == whole.error());
  check(split_parser.status() == whole.status());
  check(split_parser.head_length() == whole.head_length());
  if (!whole.protocol().empty()) {
    check(split_parser.protocol().data() - moved.data() == whole.protocol().data() - data.data());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  if (size < 1) return 0;
  const std::string_view data(reinterpret_cast<const char*>(bytes) + 1, size - 1);
  const std::size_t split = data.empty() ? 0 : bytes[0] % (data.size() + 1);
  // Mostly the default limit; a small one now and then, so that inputs the
  // fuzzer can reach also cross it.
  const std::size_t max_bytes = (bytes[0] & 0x80) != 0 ? 256 : config::max_header_bytes;
  fuzz_server(data, split, max_bytes);
  fuzz_client(data, split, max_bytes);
  return 0;
}
