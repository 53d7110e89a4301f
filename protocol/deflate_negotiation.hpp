// permessage-deflate negotiation (RFC 7692 section 5 and 7), without I/O.
//
// Server: for each Sec-WebSocket-Extensions field of the request, in order,
// ask negotiate_deflate(); the first offer it accepts is the agreement, the
// rest are declined by not being answered. Write the answer with
// write_deflate_response() into the 101 response:
//
//   DeflateServerOptions opt;                       // what this server honours
//   std::optional<DeflateParams> agreed;
//   for (const HeaderField& f : request.headers())
//     if (iequals(f.name, "Sec-WebSocket-Extensions") && (agreed = negotiate_deflate(f.value, opt)))
//       break;
//   if (agreed) n = write_deflate_response(out, *agreed);   // "permessage-deflate; ..."
//
// Client: write_deflate_offer() gives the field value to send; every
// Sec-WebSocket-Extensions field of the 101 goes through
// DeflateAnswerChecker::add(); finish() says whether the extension is in use
// and with which parameters, or that the connection must fail (an extension
// or parameter we did not offer, a bad value, a second answer).
//
// What is accepted where the RFCs let us choose:
// - The header is read with RFC 6455 section 9.1's grammar: elements split
//   by commas, parameters by semicolons, values a token or a quoted-string
//   (backslash escapes undone). Whitespace around ',' ';' '=' is allowed.
//   A syntax error ends the reading of that field: offers before it count,
//   nothing after it does.
// - An offer is declined (the next one is tried) when it has an unknown or
//   repeated parameter, a value where none belongs, a window size other than
//   a decimal 8..15 without leading zeros, or a server_max_window_bits below
//   the server's smallest window (min_window_bits, 9 by default: zlib cannot
//   produce a raw deflate stream with an 8-bit window).
// - client_max_window_bits=8 is accepted: zlib inflates with an 8-bit window.
// - Window bits are 15 in DeflateParams when the answer leaves them out.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace ringlink {

inline constexpr std::string_view permessage_deflate = "permessage-deflate";

// What both ends agreed on. "server_*" concern the server's compressor (the
// client's decompressor), "client_*" the reverse.
struct DeflateParams {
  bool server_no_context_takeover = false;
  bool client_no_context_takeover = false;
  std::uint8_t server_max_window_bits = 15;
  std::uint8_t client_max_window_bits = 15;
  // Whether the answer states the window bits (a client that offered
  // server_max_window_bits, or client_max_window_bits with a value, gets
  // them back even at 15).
  bool state_server_bits = false;
  bool state_client_bits = false;

  friend bool operator==(const DeflateParams&, const DeflateParams&) = default;
};

struct DeflateServerOptions {
  // Largest window the server compresses with (9..15): an offer without
  // server_max_window_bits is answered with this when below 15.
  std::uint8_t server_max_window_bits = 15;
  // Smallest server window the server accepts to use (9..15). An offer
  // asking for less is declined.
  std::uint8_t min_window_bits = 9;
  // Largest window the server inflates with (8..15). Honoured when the
  // client offered client_max_window_bits; a client that did not may use
  // 15, and the server then inflates with 15.
  std::uint8_t client_max_window_bits = 15;
  // Ask for no context takeover in each direction (saves the per-link
  // compressor or decompressor between messages).
  bool server_no_context_takeover = false;
  bool client_no_context_takeover = false;
};

// The first offer of permessage-deflate in `field_value` (one
// Sec-WebSocket-Extensions field) that `opt` can honour, with the
// parameters to answer; nullopt when there is none.
std::optional<DeflateParams> negotiate_deflate(std::string_view field_value,
                                               const DeflateServerOptions& opt) noexcept;

// Writes the answer (e.g. "permessage-deflate; server_no_context_takeover;
// client_max_window_bits=10") for the Sec-WebSocket-Extensions field. Returns
// its length, or 0 when `out` is too small (128 bytes always suffice).
std::size_t write_deflate_response(std::span<char> out, const DeflateParams& p) noexcept;

struct DeflateClientOptions {
  bool server_no_context_takeover = false;   // ask the server to reset per message
  bool client_no_context_takeover = false;   // announce that we reset per message
  std::uint8_t server_max_window_bits = 15;  // 9..15; offered when below 15
  // 9..15: offered with this value when below 15. The bare parameter (the
  // server may choose) is offered when 15: the client then compresses with
  // the window the server answers (8 included; see deflate_codec.hpp).
  std::uint8_t client_max_window_bits = 15;
};

// Writes the offer for the request's Sec-WebSocket-Extensions field.
// Returns its length, or 0 when `out` is too small (128 bytes always suffice).
std::size_t write_deflate_offer(std::span<char> out, const DeflateClientOptions& opt) noexcept;

enum class DeflateAnswer : std::uint8_t {
  none,      // the server declined: no extension in use
  accepted,  // params() holds what the server agreed to
  fail,      // the connection must fail (RFC 7692 section 5)
};

// Client side: checks the server's answer against our offer.
class DeflateAnswerChecker {
 public:
  explicit DeflateAnswerChecker(const DeflateClientOptions& offered) noexcept : offered_(offered) {}
  // One Sec-WebSocket-Extensions field of the response.
  void add(std::string_view field_value) noexcept;
  DeflateAnswer finish() const noexcept { return state_; }
  const DeflateParams& params() const noexcept { return params_; }

 private:
  DeflateClientOptions offered_;
  DeflateParams params_{};
  DeflateAnswer state_ = DeflateAnswer::none;
};

}  // namespace ringlink
