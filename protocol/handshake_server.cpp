// The server half of the opening handshake. The head is consumed a line at a
// time as bytes arrive, so a bad request line is refused before the rest of
// the head is even read, and no byte is searched twice however the request
// is split (see http::next_line).
#include "protocol/handshake_server.hpp"

#include <algorithm>
#include <string>

#include "protocol/http_parse.hpp"
#include "protocol/sha1_base64.hpp"

namespace ringlink {

UpgradeRequestParser::UpgradeRequestParser(std::size_t max_header_bytes,
                                           std::size_t max_headers) noexcept
    : max_header_bytes_(max_header_bytes), max_headers_(std::min(max_headers, fields_.size())) {}

void UpgradeRequestParser::reset() noexcept {
  *this = UpgradeRequestParser{max_header_bytes_, max_headers_};
}

ParseStatus UpgradeRequestParser::fail(std::uint16_t status, const char* reason) noexcept {
  phase_ = Phase::error;
  error_status_ = status;
  error_reason_ = reason;
  return ParseStatus::error;
}

void UpgradeRequestParser::rebase_views(const char* new_base) noexcept {
  http::rebase(method_, base_, new_base);
  http::rebase(target_, base_, new_base);
  for (std::size_t i = 0; i < field_count_; ++i) {
    http::rebase(fields_[i].name, base_, new_base);
    http::rebase(fields_[i].value, base_, new_base);
  }
  http::rebase(host_, base_, new_base);
  http::rebase(origin_, base_, new_base);
  http::rebase(key_, base_, new_base);
  http::rebase(protocols_, base_, new_base);
  http::rebase(extensions_, base_, new_base);
  base_ = reinterpret_cast<std::uintptr_t>(new_base);
}

ParseStatus UpgradeRequestParser::parse(std::string_view data) noexcept {
  return http::read_head(*this, data);
}

ParseStatus UpgradeRequestParser::buffer_shrank() noexcept {
  return fail(500, refusal_reason::buffer_shrank);
}

ParseStatus UpgradeRequestParser::head_too_large() noexcept {
  return fail(431, refusal_reason::head_too_large);
}

ParseStatus UpgradeRequestParser::on_first_line(std::string_view line) noexcept {
  const std::size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return fail(400, refusal_reason::malformed_request_line);
  const std::size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return fail(400, refusal_reason::malformed_request_line);
  const std::string_view method = line.substr(0, sp1);
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (!http::is_token(method) || target.empty() || target.front() != '/' ||
      !http::all_of_class(target, http::target_bit)) {
    return fail(400, refusal_reason::malformed_request_line);
  }
  bool well_formed = false;
  const bool recent = http::is_http_11_or_later(version, well_formed);
  if (!well_formed) return fail(400, refusal_reason::malformed_request_line);
  // Methods are case-sensitive (RFC 7231 section 4.1): "get" is not GET.
  if (method != "GET") return fail(405, refusal_reason::method_not_get);
  if (!recent) return fail(400, refusal_reason::http_version);
  method_ = method;
  target_ = target;
  phase_ = Phase::fields;
  return ParseStatus::incomplete;
}

ParseStatus UpgradeRequestParser::on_field_line(std::string_view line) noexcept {
  HeaderField field;
  if (const char* why = http::parse_field_line(line, field)) return fail(400, why);
  if (field_count_ == max_headers_) return fail(431, refusal_reason::too_many_fields);
  fields_[field_count_++] = field;
  return ParseStatus::incomplete;
}

namespace {

// The fields the handshake looks at, found in one walk over the head.
struct KnownFields {
  std::size_t host_count = 0;
  std::size_t key_count = 0;
  std::size_t version_count = 0;
  bool version_is_13 = true;
  bool has_body = false;
  std::string_view host, key, origin, protocols, extensions;
  bool origin_seen = false, protocols_seen = false, extensions_seen = false;
};

KnownFields classify(std::span<const HeaderField> fields) noexcept {
  KnownFields k;
  for (const HeaderField& f : fields) {
    if (http::iequals(f.name, "Host")) {
      if (k.host_count++ == 0) k.host = f.value;
    } else if (http::iequals(f.name, "Sec-WebSocket-Key")) {
      if (k.key_count++ == 0) k.key = f.value;
    } else if (http::iequals(f.name, "Sec-WebSocket-Version")) {
      ++k.version_count;
      k.version_is_13 = k.version_is_13 && f.value == "13";
    } else if (http::iequals(f.name, "Origin")) {
      if (!k.origin_seen) k.origin = f.value;
      k.origin_seen = true;
    } else if (http::iequals(f.name, "Sec-WebSocket-Protocol")) {
      if (!k.protocols_seen) k.protocols = f.value;
      k.protocols_seen = true;
    } else if (http::iequals(f.name, "Sec-WebSocket-Extensions")) {
      if (!k.extensions_seen) k.extensions = f.value;
      k.extensions_seen = true;
    } else if (http::iequals(f.name, "Transfer-Encoding")) {
      k.has_body = true;
    } else if (http::iequals(f.name, "Content-Length")) {
      k.has_body = k.has_body || f.value != "0";
    }
  }
  return k;
}

}  // namespace

ParseStatus UpgradeRequestParser::on_head_end() noexcept {
  const std::span<const HeaderField> fields = headers();
  const KnownFields k = classify(fields);
  if (k.has_body) return fail(400, refusal_reason::has_body);
  if (k.host_count > 1) return fail(400, refusal_reason::duplicate_host);
  if (k.host_count == 0 || k.host.empty()) return fail(400, refusal_reason::missing_host);
  if (!http::fields_have_token(fields, "Upgrade", "websocket")) {
    return fail(400, refusal_reason::missing_upgrade);
  }
  if (!http::fields_have_token(fields, "Connection", "upgrade")) {
    return fail(400, refusal_reason::missing_connection);
  }
  // Only 13 is spoken; anything else, absence included, gets the 426 that
  // tells the client which version to retry with (RFC 6455 section 4.4).
  if (k.version_count != 1 || !k.version_is_13) return fail(426, refusal_reason::bad_version);
  if (k.key_count > 1) return fail(400, refusal_reason::duplicate_key);
  if (k.key_count == 0) return fail(400, refusal_reason::missing_key);
  if (!detail::is_valid_client_key(k.key)) return fail(400, refusal_reason::malformed_key);
  host_ = k.host;
  key_ = k.key;
  origin_ = k.origin;
  protocols_ = k.protocols;
  extensions_ = k.extensions;
  phase_ = Phase::complete;
  return ParseStatus::complete;
}

std::string_view UpgradeRequestParser::path() const noexcept {
  return target_.substr(0, target_.find('?'));
}

std::string_view UpgradeRequestParser::query() const noexcept {
  const std::size_t q = target_.find('?');
  return q == std::string_view::npos ? std::string_view{} : target_.substr(q + 1);
}

std::optional<std::string_view> UpgradeRequestParser::header(std::string_view name) const noexcept {
  return http::find_field(headers(), name);
}

bool UpgradeRequestParser::header_has_token(std::string_view name,
                                            std::string_view token) const noexcept {
  return http::fields_have_token(headers(), name, token);
}

std::size_t write_accept_response(std::span<char> out, std::string_view key,
                                  std::string_view subprotocol, std::string_view extensions) noexcept {
  if (!subprotocol.empty() && !http::is_token(subprotocol)) return 0;
  if (!http::all_of_class(extensions, http::field_vchar_bit)) return 0;
  const std::array<char, 28> accept = compute_accept_key(key);
  http::SpanWriter w{out};
  w.put(
      "HTTP/1.1 101 Switching Protocols\r\n"
      "Upgrade: websocket\r\n"
      "Connection: Upgrade\r\n"
      "Sec-WebSocket-Accept: ");
  w.put({accept.data(), accept.size()});
  w.put("\r\n");
  if (!subprotocol.empty()) {
    w.put("Sec-WebSocket-Protocol: ");
    w.put(subprotocol);
    w.put("\r\n");
  }
  if (!extensions.empty()) {
    w.put("Sec-WebSocket-Extensions: ");
    w.put(extensions);
    w.put("\r\n");
  }
  w.put("\r\n");
  return w.finish();
}

namespace {

// Takes the same calls as http::SpanWriter, so that one template formats a
// response into either.
class StringWriter {
 public:
  explicit StringWriter(std::string& out) noexcept : out_(out) {}
  void put(std::string_view s) { out_ += s; }
  void put_uint(std::size_t n) { out_ += std::to_string(n); }

 private:
  std::string& out_;
};

// The one layout of every non-101 response: the connection always closes
// after it, so the body is delimited by Content-Length alone.
template <class Writer>
void write_response(Writer& w, std::uint16_t status, std::string_view content_type,
                    std::string_view body) {
  w.put("HTTP/1.1 ");
  w.put_uint(status);
  w.put(" ");
  w.put(status_text(status));
  w.put("\r\n");
  if (!content_type.empty()) {
    w.put("Content-Type: ");
    w.put(content_type);
    w.put("\r\n");
  }
  w.put("Content-Length: ");
  w.put_uint(body.size());
  w.put("\r\n");
  if (status == 426) {
    // RFC 9110 section 15.5.22: a 426 names the protocol to upgrade to, and
    // an Upgrade field needs the "upgrade" option in Connection (section
    // 7.8). The connection still closes, so Connection lists both; "close"
    // comes first so that the line still reads "Connection: close" to
    // clients and tests that look for that text (order is not significant).
    w.put(
        "Connection: close, Upgrade\r\n"
        "Upgrade: websocket\r\n"
        "Sec-WebSocket-Version: 13\r\n");
  } else {
    w.put("Connection: close\r\n");
  }
  // RFC 9110 section 15.5.6: a 405 lists the methods that are allowed.
  if (status == 405) w.put("Allow: GET\r\n");
  w.put("\r\n");
  w.put(body);
}

}  // namespace

std::size_t write_refusal(std::span<char> out, std::uint16_t status,
                          std::string_view body) noexcept {
  if (status < 300 || status > 599) return 0;
  http::SpanWriter w{out};
  write_response(w, status, body.empty() ? std::string_view{} : "text/plain; charset=utf-8", body);
  return w.finish();
}

void append_http_response(std::string& out, std::uint16_t status, std::string_view content_type,
                          std::string_view body) {
  // Room for the status line and fixed fields, so that this grows `out` once.
  out.reserve(out.size() + 192 + content_type.size() + body.size());
  StringWriter w{out};
  write_response(w, status, content_type, body);
}

const char* status_text(std::uint16_t status) noexcept {
  switch (status) {
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 413: return "Content Too Large";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Unknown";
  }
}

}  // namespace ringlink
