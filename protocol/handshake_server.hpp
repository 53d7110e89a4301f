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
//
// The buffer may move between calls (a buffer that grew) as long as it holds
// the same bytes first: views kept so far are moved along with it.
//
// What is accepted where RFC 7230 lets a server choose:
// - Line endings: CRLF, and also a bare LF (RFC 7230 section 3.5 robustness
//   rule: a CR just before the LF is dropped). A CR anywhere else in the head
//   is refused 400. The head ends at the first empty line.
// - Obsolete line folding (a header line opening with SP or HTAB): 400.
// - Whitespace between a field name and its colon: 400. Empty lines before
//   the request line: 400 (WebSocket clients never send them).
// - Request line: exactly `GET SP origin-form SP HTTP/x.y`, single spaces;
//   absolute-form and `*` targets are refused 400. The method is compared
//   case-sensitively (405 for anything but "GET"); version 1.1 or later.
// - A body: a GET with Transfer-Encoding, or with Content-Length other than
//   0, is refused 400, because bytes after the head are read as WebSocket
//   frames and a body would be taken for them.
// - Several Host fields or several Sec-WebSocket-Key fields: 400.
// - Sec-WebSocket-Version absent, or any value but exactly "13" (including a
//   list such as "13, 8" or several fields): 426.
// - Sec-WebSocket-Key: 22 base64 characters then "==" (16 bytes, the unused
//   trailing bits zero as a base64 encoder leaves them), else 400.
// - Checks run in this order, the first failure decides: request line (400,
//   405, 400 for the version), each header line as it arrives (400 syntax,
//   431 count), the head size (431), then at the end of the head: body,
//   Host, Upgrade, Connection (400), version (426), key (400).
// - parse() given fewer bytes than the call before: 500 (a caller bug).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "ringlink_config.hpp"

namespace ringlink {

enum class ParseStatus : std::uint8_t { incomplete, complete, error };

namespace http {
// The head-reading loop both parsers share (defined in http_parse.hpp).
template <class Parser>
ParseStatus read_head(Parser& p, std::string_view data) noexcept;
}  // namespace http

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
  template <class Parser>
  friend ParseStatus http::read_head(Parser& p, std::string_view data) noexcept;
  enum class Phase : std::uint8_t { first_line, fields, complete, error };
  ParseStatus fail(std::uint16_t status, const char* reason) noexcept;
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
// empty), and Sec-WebSocket-Extensions when extensions is not empty (e.g.
// write_deflate_response's answer). Returns the length, or 0 when `out` is
// too small, subprotocol is not a token or extensions holds a CR, LF or
// other control byte (either would inject header bytes).
std::size_t write_accept_response(std::span<char> out, std::string_view key,
                                  std::string_view subprotocol = {},
                                  std::string_view extensions = {}) noexcept;

// append_http_response's bytes, `body` as text/plain, without allocating.
// Returns the length, or 0 when `out` is too small or status is not 300..599.
std::size_t write_refusal(std::span<char> out, std::uint16_t status,
                          std::string_view body = {}) noexcept;

// Appends a response after which the connection closes: status line, Content-Type (unless
// empty; written as given), Content-Length, Connection: close, `body`. 426 adds Upgrade:
// websocket (Connection: close, Upgrade) and Sec-WebSocket-Version: 13; 405 adds Allow: GET.
void append_http_response(std::string& out, std::uint16_t status, std::string_view content_type,
                          std::string_view body);

// The reason phrase ("Bad Request"); "Unknown" for codes it does not know.
const char* status_text(std::uint16_t status) noexcept;

// What UpgradeRequestParser::error_reason() returns, one constant per
// refusal, so that callers and tests can compare them.
namespace refusal_reason {
inline constexpr const char* malformed_request_line = "malformed request line";
inline constexpr const char* method_not_get = "method is not GET";
inline constexpr const char* http_version = "HTTP version before 1.1";
inline constexpr const char* obs_fold = "obsolete line folding in header";
inline constexpr const char* malformed_field = "malformed header field";
inline constexpr const char* too_many_fields = "too many header fields";
inline constexpr const char* head_too_large = "request head too large";
inline constexpr const char* has_body = "upgrade request has a body";
inline constexpr const char* missing_host = "missing Host";
inline constexpr const char* duplicate_host = "duplicate Host";
inline constexpr const char* missing_upgrade = "missing Upgrade: websocket";
inline constexpr const char* missing_connection = "missing Connection: upgrade";
inline constexpr const char* bad_version = "Sec-WebSocket-Version is not 13";
inline constexpr const char* missing_key = "missing Sec-WebSocket-Key";
inline constexpr const char* malformed_key = "malformed Sec-WebSocket-Key";
inline constexpr const char* duplicate_key = "duplicate Sec-WebSocket-Key";
inline constexpr const char* buffer_shrank = "parse() given fewer bytes than before";
}  // namespace refusal_reason

}  // namespace ringlink
