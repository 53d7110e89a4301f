// The client half of the opening handshake: the request, and the checks RFC
// 6455 section 4.1 asks of the server's answer. The head is read by the same
// loop and line rules as the server's request (http_parse.hpp).
#include "protocol/handshake_client.hpp"

#include <algorithm>

#include "protocol/http_parse.hpp"
#include "protocol/sha1_base64.hpp"

namespace ringlink {

ClientKey make_client_key(std::span<const std::byte, 16> nonce) noexcept {
  ClientKey k{};
  k.key = detail::base64_encode_nonce(nonce);
  k.accept = compute_accept_key(k.key_view());
  return k;
}

namespace {

bool is_protocol_list(std::string_view list) noexcept {
  // Every element a token, at least one of them. Elements are what is left
  // between commas once OWS is trimmed, so a space inside one ("a b") fails.
  std::size_t tokens = 0;
  const bool bad = http::for_each_list_element(list, [&tokens](std::string_view e) {
    ++tokens;
    return !http::is_token(e);
  });
  return !bad && tokens != 0 && http::all_of_class(list, http::field_vchar_bit);
}

bool is_header_lines(std::string_view lines) noexcept {
  while (!lines.empty()) {
    const std::size_t crlf = lines.find("\r\n");
    if (crlf == std::string_view::npos) return false;
    HeaderField f;
    if (http::parse_field_line(lines.substr(0, crlf), f) != nullptr) return false;
    lines.remove_prefix(crlf + 2);
  }
  return true;
}

}  // namespace

std::size_t write_upgrade_request(std::span<char> out, const UpgradeRequestSpec& spec,
                                  const ClientKey& key) noexcept {
  const bool valid =
      !spec.host.empty() && http::all_of_class(spec.host, http::target_bit) &&
      !spec.path.empty() && spec.path.front() == '/' &&
      http::all_of_class(spec.path, http::target_bit) &&
      http::all_of_class(spec.origin, http::target_bit) &&
      (spec.protocols.empty() || is_protocol_list(spec.protocols)) &&
      is_header_lines(spec.extra_headers);
  if (!valid) return 0;
  http::SpanWriter w{out};
  w.put("GET ");
  w.put(spec.path);
  w.put(" HTTP/1.1\r\nHost: ");
  w.put(spec.host);
  w.put(
      "\r\n"
      "Upgrade: websocket\r\n"
      "Connection: Upgrade\r\n"
      "Sec-WebSocket-Key: ");
  w.put(key.key_view());
  w.put("\r\nSec-WebSocket-Version: 13\r\n");
  if (!spec.origin.empty()) {
    w.put("Origin: ");
    w.put(spec.origin);
    w.put("\r\n");
  }
  if (!spec.protocols.empty()) {
    w.put("Sec-WebSocket-Protocol: ");
    w.put(http::trim_ows(spec.protocols));
    w.put("\r\n");
  }
  w.put(spec.extra_headers);
  w.put("\r\n");
  return w.finish();
}

const char* to_string(ClientHandshakeError e) noexcept {
  switch (e) {
    case ClientHandshakeError::none: return "none";
    case ClientHandshakeError::malformed: return "malformed HTTP response";
    case ClientHandshakeError::too_large: return "response head too large";
    case ClientHandshakeError::not_101: return "status is not 101";
    case ClientHandshakeError::bad_upgrade: return "Upgrade is not websocket";
    case ClientHandshakeError::bad_connection: return "Connection lacks upgrade";
    case ClientHandshakeError::bad_accept: return "Sec-WebSocket-Accept missing or wrong";
    case ClientHandshakeError::unexpected_protocol: return "subprotocol not offered";
    case ClientHandshakeError::unexpected_extension: return "extension not offered";
  }
  return "unknown";
}

UpgradeResponseParser::UpgradeResponseParser(const ClientKey& key,
                                             std::string_view offered_protocols,
                                             std::size_t max_header_bytes,
                                             std::size_t max_headers) noexcept
    : key_(key),
      offered_protocols_(offered_protocols),
      max_header_bytes_(max_header_bytes),
      max_headers_(std::min(max_headers, fields_.size())) {}

ParseStatus UpgradeResponseParser::fail(ClientHandshakeError e) noexcept {
  // Once a non-101 status is known, that is the answer whatever else is
  // wrong with the head: the caller wants "the server said 503", not
  // "too large".
  if (status_ != 0 && status_ != 101) e = ClientHandshakeError::not_101;
  phase_ = Phase::error;
  error_ = e;
  return ParseStatus::error;
}

void UpgradeResponseParser::rebase_views(const char* new_base) noexcept {
  for (std::size_t i = 0; i < field_count_; ++i) {
    http::rebase(fields_[i].name, base_, new_base);
    http::rebase(fields_[i].value, base_, new_base);
  }
  http::rebase(protocol_, base_, new_base);
  base_ = reinterpret_cast<std::uintptr_t>(new_base);
}

ParseStatus UpgradeResponseParser::parse(std::string_view data) noexcept {
  return http::read_head(*this, data);
}

ParseStatus UpgradeResponseParser::buffer_shrank() noexcept {
  return fail(ClientHandshakeError::malformed);
}

ParseStatus UpgradeResponseParser::head_too_large() noexcept {
  return fail(ClientHandshakeError::too_large);
}

ParseStatus UpgradeResponseParser::on_first_line(std::string_view line) noexcept {
  // HTTP-version SP 3DIGIT SP reason-phrase; a missing SP before an empty
  // reason is tolerated, some servers leave it out.
  const std::size_t sp = line.find(' ');
  if (sp == std::string_view::npos) return fail(ClientHandshakeError::malformed);
  bool well_formed = false;
  if (!http::is_http_11_or_later(line.substr(0, sp), well_formed)) {
    return fail(ClientHandshakeError::malformed);
  }
  const std::string_view rest = line.substr(sp + 1);
  if (rest.size() < 3 || (rest.size() > 3 && rest[3] != ' ')) {
    return fail(ClientHandshakeError::malformed);
  }
  std::uint16_t status = 0;
  for (std::size_t i = 0; i < 3; ++i) {
    if (rest[i] < '0' || rest[i] > '9') return fail(ClientHandshakeError::malformed);
    status = static_cast<std::uint16_t>(status * 10 + (rest[i] - '0'));
  }
  if (status < 100) return fail(ClientHandshakeError::malformed);
  if (rest.size() > 3 && !http::all_of_class(rest.substr(4), http::field_vchar_bit)) {
    return fail(ClientHandshakeError::malformed);
  }
  status_ = status;
  phase_ = Phase::fields;
  return ParseStatus::incomplete;
}

ParseStatus UpgradeResponseParser::on_field_line(std::string_view line) noexcept {
  HeaderField field;
  if (http::parse_field_line(line, field) != nullptr) return fail(ClientHandshakeError::malformed);
  if (field_count_ == max_headers_) return fail(ClientHandshakeError::too_large);
  fields_[field_count_++] = field;
  return ParseStatus::incomplete;
}

ParseStatus UpgradeResponseParser::on_head_end() noexcept {
  if (status_ != 101) return fail(ClientHandshakeError::not_101);
  const std::span<const HeaderField> fields = headers();
  if (!http::fields_have_token(fields, "Upgrade", "websocket")) {
    return fail(ClientHandshakeError::bad_upgrade);
  }
  if (!http::fields_have_token(fields, "Connection", "upgrade")) {
    return fail(ClientHandshakeError::bad_connection);
  }
  // Checked in the order RFC 6455 section 4.1 lists them: accept,
  // extensions, subprotocol.
  std::size_t accepts = 0, protocols = 0, extensions = 0;
  bool accept_matches = false;
  std::string_view protocol;
  for (const HeaderField& f : fields) {
    if (http::iequals(f.name, "Sec-WebSocket-Accept")) {
      ++accepts;
      accept_matches = f.value == key_.accept_view();
    } else if (http::iequals(f.name, "Sec-WebSocket-Protocol")) {
      ++protocols;
      protocol = f.value;
    } else if (http::iequals(f.name, "Sec-WebSocket-Extensions")) {
      ++extensions;
    }
  }
  if (accepts != 1 || !accept_matches) return fail(ClientHandshakeError::bad_accept);
  // Without an offer, any extension here was not asked for.
  if (extensions != 0 && !extensions_offered_) return fail(ClientHandshakeError::unexpected_extension);
  if (protocols > 1) return fail(ClientHandshakeError::unexpected_protocol);
  if (protocols == 1) {
    // The server picks one of ours, verbatim; an empty value or a list is
    // not a choice.
    const bool offered =
        http::is_token(protocol) &&
        http::for_each_list_element(offered_protocols_,
                                    [protocol](std::string_view p) { return p == protocol; });
    if (!offered) return fail(ClientHandshakeError::unexpected_protocol);
    protocol_ = protocol;
  }
  phase_ = Phase::complete;
  return ParseStatus::complete;
}

std::optional<std::string_view> UpgradeResponseParser::header(std::string_view name) const noexcept {
  return http::find_field(headers(), name);
}

}  // namespace ringlink
