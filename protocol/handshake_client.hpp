// Client side of the HTTP/1.1 upgrade, without I/O: build the request, then
// verify the server's answer.
//
//   std::array<std::byte,16> nonce = random_bytes();      // the caller's randomness
//   ClientKey key = make_client_key(nonce);
//   n = write_upgrade_request(out, {.host = "example.com:80", .path = "/chat"}, key);
//   UpgradeResponseParser p{key};
//   p.parse(received) -> incomplete | complete | error (see p.error())
//
// The response head is read with the same rules as the request head (see
// handshake_server.hpp): CRLF or bare LF line ends, no obs-fold, hard limits
// on bytes and fields. A status other than 101 is reported as not_101 once
// the head is read (or as soon as it turns out malformed or too large), so
// that status() and header() (e.g. the 426's Sec-WebSocket-Version) can be
// looked at. Subprotocol names are compared exactly (case-sensitively).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "protocol/handshake_server.hpp"

namespace ringlink {

struct ClientKey {
  std::array<char, 24> key;      // base64 of the 16 random bytes
  std::array<char, 28> accept;   // what the server must answer
  std::string_view key_view() const noexcept { return {key.data(), key.size()}; }
  std::string_view accept_view() const noexcept { return {accept.data(), accept.size()}; }
};

ClientKey make_client_key(std::span<const std::byte, 16> nonce) noexcept;

struct UpgradeRequestSpec {
  std::string_view host;          // Host header value, e.g. "127.0.0.1:9001"
  std::string_view path = "/";    // request target, may include ?query
  std::string_view origin{};      // omitted when empty
  std::string_view protocols{};   // Sec-WebSocket-Protocol, omitted when empty
  std::string_view extra_headers{};  // complete "Name: value\r\n" lines, or empty
};

// Returns the request length, or 0 when `out` is too small or a field would
// inject header bytes: host, path and origin must be visible ASCII (path
// starting with '/'), protocols a comma-separated token list, extra_headers
// well-formed "Name: value\r\n" lines.
std::size_t write_upgrade_request(std::span<char> out, const UpgradeRequestSpec& spec,
                                  const ClientKey& key) noexcept;

enum class ClientHandshakeError : std::uint8_t {
  none,
  malformed,          // not an HTTP/1.1 status line / header syntax
  too_large,          // head over max_header_bytes or too many fields
  not_101,            // status other than 101 (see status())
  bad_upgrade,        // Upgrade is not "websocket"
  bad_connection,     // Connection lacks "upgrade"
  bad_accept,         // Sec-WebSocket-Accept missing or wrong
  unexpected_protocol,  // a subprotocol we did not offer
  unexpected_extension, // any extension, unless allow_extensions() was called
};

const char* to_string(ClientHandshakeError e) noexcept;

class UpgradeResponseParser {
 public:
  // offered_protocols (what the request offered, comma-separated) is kept
  // as a view: it must outlive the parser.
  explicit UpgradeResponseParser(const ClientKey& key, std::string_view offered_protocols = {},
                                 std::size_t max_header_bytes = config::max_header_bytes,
                                 std::size_t max_headers = config::max_headers) noexcept;

  // The request offered extensions (permessage-deflate): the response's
  // Sec-WebSocket-Extensions fields are left to the caller to check (see
  // DeflateAnswerChecker) instead of failing the handshake. Call before parse().
  void allow_extensions() noexcept { extensions_offered_ = true; }

  // Same calling convention as UpgradeRequestParser::parse.
  ParseStatus parse(std::string_view data) noexcept;

  ClientHandshakeError error() const noexcept { return error_; }
  std::uint16_t status() const noexcept { return status_; }
  std::size_t head_length() const noexcept { return head_length_; }
  std::string_view protocol() const noexcept { return protocol_; }   // chosen by the server
  std::optional<std::string_view> header(std::string_view name) const noexcept;
  std::span<const HeaderField> headers() const noexcept { return {fields_.data(), field_count_}; }

 private:
  // The implementation may add members here.
  template <class Parser>
  friend ParseStatus http::read_head(Parser& p, std::string_view data) noexcept;
  enum class Phase : std::uint8_t { first_line, fields, complete, error };
  ParseStatus fail(ClientHandshakeError e) noexcept;
  ParseStatus buffer_shrank() noexcept;
  ParseStatus head_too_large() noexcept;
  ParseStatus on_first_line(std::string_view line) noexcept;
  ParseStatus on_field_line(std::string_view line) noexcept;
  ParseStatus on_head_end() noexcept;
  void rebase_views(const char* new_base) noexcept;

  Phase phase_ = Phase::first_line;
  std::size_t line_start_ = 0;
  std::uintptr_t base_ = 0;  // address of the bytes the views point into
  std::array<HeaderField, config::max_headers> fields_{};  // max_headers is clamped to this
  std::size_t field_count_ = 0;
  ClientKey key_;
  std::string_view offered_protocols_;
  std::size_t max_header_bytes_;
  std::size_t max_headers_;
  std::size_t scanned_ = 0;
  std::size_t head_length_ = 0;
  std::uint16_t status_ = 0;
  ClientHandshakeError error_ = ClientHandshakeError::none;
  std::string_view protocol_;
  bool extensions_offered_ = false;
};

}  // namespace ringlink
