// Server side of the HTTP/1.1 upgrade (RFC 6455 section 4.2), without I/O.
//
// Give the parser everything received so far, each time (the same bytes as
// before plus new ones, contiguous); it resumes where it stopped and never
// copies: every view it hands out points into that buffer.
//
//   UpgradeRequestParser p;
//   switch (p.parse(received)) {
//     case ParseStatus::incomplete: read more (431 comes by itself once
//                                   received exceeds max_header_bytes);
//     case ParseStatus::error:      n = write_refusal(out, p.error_status()); send, close;
//     case ParseStatus::complete:   inspect p.path(), p.origin(), p.header("Cookie")...;
//                                   n = write_accept_response(out, p.key(), subprotocol);
//                                   bytes after p.head_length() are WebSocket frames.
//   }
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "ringlink_config.hpp"

namespace ringlink {

enum class ParseStatus : std::uint8_t { incomplete, complete, error };

struct HeaderField {
  std::string_view name;
  std::string_view value;  // surrounding whitespace trimmed
};

class UpgradeRequestParser {
 public:
  explicit UpgradeRequestParser(std::size_t max_header_bytes = config::max_header_bytes,
                                std::size_t max_headers = config::max_headers) noexcept;

  // Refusals: 405 not GET; 400 bad request line, HTTP before 1.1, missing
  // Host, missing/wrong Upgrade or Connection tokens, missing or malformed
  // Sec-WebSocket-Key; 426 Sec-WebSocket-Version other than 13; 431 head
  // larger than max_header_bytes or more than max_headers fields.
  ParseStatus parse(std::string_view data) noexcept;

  std::uint16_t error_status() const noexcept { return error_status_; }
  const char* error_reason() const noexcept { return error_reason_; }
  std::size_t head_length() const noexcept { return head_length_; }

  // Valid after complete, while the buffer given to parse() is unchanged.
  std::string_view method() const noexcept { return method_; }
  std::string_view target() const noexcept { return target_; }   // path?query
  std::string_view path() const noexcept;
  std::string_view query() const noexcept;                        // without '?'
  std::string_view host() const noexcept { return host_; }
  std::string_view origin() const noexcept { return origin_; }    // empty if absent
  std::string_view key() const noexcept { return key_; }
  std::string_view protocols() const noexcept { return protocols_; }    // all offered, comma-joined view of first field
  std::string_view extensions() const noexcept { return extensions_; }
  // First field with this name (case-insensitive).
  std::optional<std::string_view> header(std::string_view name) const noexcept;
  std::span<const HeaderField> headers() const noexcept { return {fields_.data(), field_count_}; }
  // True when the comma-separated token list of header `name` holds `token`
  // (case-insensitive), looking at every field with that name.
  bool header_has_token(std::string_view name, std::string_view token) const noexcept;

  void reset() noexcept;

 private:
  // The implementation may add members here.
  std::array<HeaderField, config::max_headers> fields_{};  // max_headers is clamped to this
  std::size_t field_count_ = 0;
  std::size_t max_header_bytes_;
  std::size_t max_headers_;
  std::size_t scanned_ = 0;
  std::size_t head_length_ = 0;
  std::uint16_t error_status_ = 0;
  const char* error_reason_ = "";
  std::string_view method_, target_, host_, origin_, key_, protocols_, extensions_;
};

// base64(SHA-1(key + GUID)): always 28 characters.
std::array<char, 28> compute_accept_key(std::string_view key) noexcept;

// Writes "HTTP/1.1 101 Switching Protocols" with Upgrade, Connection and
// Sec-WebSocket-Accept (and Sec-WebSocket-Protocol when subprotocol is not
// empty). Returns the length, or 0 when `out` is too small.
std::size_t write_accept_response(std::span<char> out, std::string_view key,
                                  std::string_view subprotocol = {}) noexcept;

// Writes a complete refusal response for `status` (400, 401, 403, 404, 405,
// 408, 426, 431, 500, 503...) with Content-Length, Connection: close, and for
// 426 `Sec-WebSocket-Version: 13`. `body` is sent as text/plain. Returns the
// length, or 0 when `out` is too small.
std::size_t write_refusal(std::span<char> out, std::uint16_t status,
                          std::string_view body = {}) noexcept;

const char* status_text(std::uint16_t status) noexcept;

}  // namespace ringlink
