// Reading Sec-WebSocket-Extensions (RFC 6455 section 9.1) and the
// permessage-deflate parameter rules (RFC 7692 section 7). No allocation:
// an element's parameters are kept in a fixed array while it is judged.
#include "protocol/deflate_negotiation.hpp"

#include <array>
#include <cstring>

#include "protocol/http_parse.hpp"

namespace ringlink {

namespace {

constexpr std::size_t max_params = 8;   // more on one offer: declined (only 4 exist)
constexpr std::size_t max_value = 16;   // longer unescaped values cannot be valid here

struct Param {
  std::string_view name;
  std::array<char, max_value> value{};
  std::uint8_t value_len = 0;
  bool has_value = false;
  bool value_ok = true;   // fit and, when quoted, unescaped to a token
  std::string_view value_view() const noexcept { return {value.data(), value_len}; }
};

struct Element {
  std::string_view name;
  std::array<Param, max_params> params{};
  std::size_t count = 0;
  bool overflow = false;
};

bool is_tchar(char c) noexcept {
  return (http::char_classes[static_cast<unsigned char>(c)] & http::tchar_bit) != 0;
}

// A cursor over one field value.
class Reader {
 public:
  explicit Reader(std::string_view s) noexcept : s_(s) {}
  void skip_ows() noexcept {
    while (pos_ < s_.size() && http::is_ows(s_[pos_])) ++pos_;
  }
  bool at_end() const noexcept { return pos_ >= s_.size(); }
  char peek() const noexcept { return s_[pos_]; }
  void advance() noexcept { ++pos_; }
  std::string_view token() noexcept {
    const std::size_t start = pos_;
    while (pos_ < s_.size() && is_tchar(s_[pos_])) ++pos_;
    return s_.substr(start, pos_ - start);
  }
  // A quoted-string, its escapes undone into `p`. False on a syntax error;
  // a value that does not fit or is not a token only marks p.value_ok.
  bool quoted(Param& p) noexcept {
    advance();  // the opening quote
    while (pos_ < s_.size()) {
      char c = s_[pos_++];
      if (c == '"') {
        if (p.value_len == 0) p.value_ok = false;  // "" is not a token
        return true;
      }
      if (c == '\\') {
        if (pos_ >= s_.size()) return false;
        c = s_[pos_++];
      }
      if (static_cast<unsigned char>(c) < 0x20 && c != '\t') return false;
      if (c == 0x7F) return false;
      if (!is_tchar(c) || p.value_len == max_value) {
        p.value_ok = false;
      } else {
        p.value[p.value_len++] = c;
      }
    }
    return false;  // no closing quote
  }

 private:
  std::string_view s_;
  std::size_t pos_ = 0;
};

// Reads one element (name and parameters) up to and including its comma.
// False on a syntax error; `more` says whether another element follows.
bool read_element(Reader& r, Element& e, bool& more) noexcept {
  e = Element{};
  more = false;
  r.skip_ows();
  e.name = r.token();
  if (e.name.empty()) return false;
  for (;;) {
    r.skip_ows();
    if (r.at_end()) return true;
    if (r.peek() == ',') {
      r.advance();
      // Empty list elements (", ,") are allowed by the #rule.
      for (;;) {
        r.skip_ows();
        if (r.at_end()) return true;
        if (r.peek() != ',') break;
        r.advance();
      }
      more = true;
      return true;
    }
    if (r.peek() != ';') return false;
    r.advance();
    r.skip_ows();
    Param p;
    p.name = r.token();
    if (p.name.empty()) return false;
    r.skip_ows();
    if (!r.at_end() && r.peek() == '=') {
      r.advance();
      r.skip_ows();
      p.has_value = true;
      if (r.at_end()) return false;
      if (r.peek() == '"') {
        if (!r.quoted(p)) return false;
      } else {
        const std::string_view v = r.token();
        if (v.empty()) return false;
        if (v.size() > max_value) {
          p.value_ok = false;
        } else {
          std::memcpy(p.value.data(), v.data(), v.size());
          p.value_len = static_cast<std::uint8_t>(v.size());
        }
      }
    }
    if (e.count == max_params) {
      e.overflow = true;
    } else {
      e.params[e.count++] = p;
    }
  }
}

// Calls f(element) for each element of the field until f returns true.
// Stops at a syntax error (setting `bad`). Returns whether f did.
template <class F>
bool for_each_element(std::string_view field, bool& bad, F&& f) noexcept {
  bad = false;
  Reader r(field);
  Element e;
  bool more = true;
  // An empty field, or one of commas only, has no elements.
  r.skip_ows();
  while (!r.at_end() && r.peek() == ',') {
    r.advance();
    r.skip_ows();
  }
  if (r.at_end()) return false;
  while (more) {
    if (!read_element(r, e, more)) {
      bad = true;
      return false;
    }
    if (f(e)) return true;
  }
  return false;
}

// "8".."15", no leading zero; 0 when not a window size.
std::uint8_t window_bits(std::string_view v) noexcept {
  if (v.size() == 1 && v[0] >= '8' && v[0] <= '9') return static_cast<std::uint8_t>(v[0] - '0');
  if (v.size() == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5') {
    return static_cast<std::uint8_t>(10 + v[1] - '0');
  }
  return 0;
}

enum ParamId : std::uint8_t { p_snct = 1, p_cnct = 2, p_smwb = 4, p_cmwb = 8 };

// The four parameters of one element, checked for the RFC's rules common to
// offers and answers: known names, no repeats, values only where they belong.
struct Parsed {
  std::uint8_t seen = 0;
  std::uint8_t server_bits = 0;  // 0: absent
  std::uint8_t client_bits = 0;  // 0: absent or bare
  bool valid = true;
};

Parsed parse_params(const Element& e) noexcept {
  Parsed out;
  if (e.overflow) {
    out.valid = false;
    return out;
  }
  for (std::size_t i = 0; i < e.count; ++i) {
    const Param& p = e.params[i];
    std::uint8_t id = 0;
    if (http::iequals(p.name, "server_no_context_takeover")) {
      id = p_snct;
    } else if (http::iequals(p.name, "client_no_context_takeover")) {
      id = p_cnct;
    } else if (http::iequals(p.name, "server_max_window_bits")) {
      id = p_smwb;
    } else if (http::iequals(p.name, "client_max_window_bits")) {
      id = p_cmwb;
    }
    if (id == 0 || (out.seen & id) != 0) {
      out.valid = false;
      return out;
    }
    out.seen = static_cast<std::uint8_t>(out.seen | id);
    if (id == p_snct || id == p_cnct) {
      if (p.has_value) out.valid = false;
    } else if (id == p_smwb) {
      // server_max_window_bits always carries a value.
      out.server_bits = p.has_value && p.value_ok ? window_bits(p.value_view()) : 0;
      if (out.server_bits == 0) out.valid = false;
    } else if (p.has_value) {
      out.client_bits = p.value_ok ? window_bits(p.value_view()) : 0;
      if (out.client_bits == 0) out.valid = false;
    }
    if (!out.valid) return out;
  }
  return out;
}

std::uint8_t clamp_bits(std::uint8_t v, std::uint8_t lo) noexcept {
  if (v < lo) return lo;
  return v > 15 ? 15 : v;
}

// Appends s at out[n..]; false when it does not fit.
bool put(std::span<char> out, std::size_t& n, std::string_view s) noexcept {
  if (out.size() - n < s.size()) return false;
  std::memcpy(out.data() + n, s.data(), s.size());
  n += s.size();
  return true;
}

bool put_bits(std::span<char> out, std::size_t& n, std::string_view name, std::uint8_t bits) noexcept {
  const char digits[2] = {static_cast<char>('0' + bits / 10), static_cast<char>('0' + bits % 10)};
  const std::string_view v = bits >= 10 ? std::string_view(digits, 2) : std::string_view(digits + 1, 1);
  return put(out, n, "; ") && put(out, n, name) && put(out, n, "=") && put(out, n, v);
}

}  // namespace

std::optional<DeflateParams> negotiate_deflate(std::string_view field_value,
                                               const DeflateServerOptions& opt) noexcept {
  const std::uint8_t server_floor = clamp_bits(opt.min_window_bits, 9);
  const std::uint8_t server_cap = clamp_bits(opt.server_max_window_bits, server_floor);
  const std::uint8_t client_cap = clamp_bits(opt.client_max_window_bits, 8);
  std::optional<DeflateParams> agreed;
  bool bad = false;
  for_each_element(field_value, bad, [&](const Element& e) {
    if (!http::iequals(e.name, permessage_deflate)) return false;
    const Parsed p = parse_params(e);
    if (!p.valid) return false;
    DeflateParams a;
    a.server_no_context_takeover = opt.server_no_context_takeover || (p.seen & p_snct) != 0;
    // Only the server's wish: a client's client_no_context_takeover is a
    // hint we may answer, and answering it lets us keep no inflater.
    a.client_no_context_takeover = opt.client_no_context_takeover || (p.seen & p_cnct) != 0;
    if ((p.seen & p_smwb) != 0) {
      if (p.server_bits < server_floor) return false;  // a window zlib cannot make
      a.server_max_window_bits = p.server_bits < server_cap ? p.server_bits : server_cap;
      a.state_server_bits = true;
    } else {
      a.server_max_window_bits = server_cap;
      a.state_server_bits = server_cap < 15;
    }
    if ((p.seen & p_cmwb) != 0) {
      const std::uint8_t offered = p.client_bits != 0 ? p.client_bits : 15;
      a.client_max_window_bits = offered < client_cap ? offered : client_cap;
      a.state_client_bits = true;
    }
    // Without client_max_window_bits in the offer the client may use 15:
    // the server must not answer the parameter and inflates with 15.
    agreed = a;
    return true;
  });
  return agreed;
}

std::size_t write_deflate_response(std::span<char> out, const DeflateParams& p) noexcept {
  std::size_t n = 0;
  bool ok = put(out, n, permessage_deflate);
  if (ok && p.server_no_context_takeover) ok = put(out, n, "; server_no_context_takeover");
  if (ok && p.client_no_context_takeover) ok = put(out, n, "; client_no_context_takeover");
  if (ok && (p.state_server_bits || p.server_max_window_bits < 15)) {
    ok = put_bits(out, n, "server_max_window_bits", p.server_max_window_bits);
  }
  if (ok && p.state_client_bits) ok = put_bits(out, n, "client_max_window_bits", p.client_max_window_bits);
  return ok ? n : 0;
}

std::size_t write_deflate_offer(std::span<char> out, const DeflateClientOptions& opt) noexcept {
  std::size_t n = 0;
  bool ok = put(out, n, permessage_deflate);
  if (ok && opt.server_no_context_takeover) ok = put(out, n, "; server_no_context_takeover");
  if (ok && opt.client_no_context_takeover) ok = put(out, n, "; client_no_context_takeover");
  const std::uint8_t sb = clamp_bits(opt.server_max_window_bits, 9);
  if (ok && sb < 15) ok = put_bits(out, n, "server_max_window_bits", sb);
  const std::uint8_t cb = clamp_bits(opt.client_max_window_bits, 9);
  if (ok) ok = cb < 15 ? put_bits(out, n, "client_max_window_bits", cb) : put(out, n, "; client_max_window_bits");
  return ok ? n : 0;
}

void DeflateAnswerChecker::add(std::string_view field_value) noexcept {
  if (state_ == DeflateAnswer::fail) return;
  bool bad = false;
  const bool stopped = for_each_element(field_value, bad, [&](const Element& e) {
    // Only one answer, and only to what we offered.
    if (state_ != DeflateAnswer::none || !http::iequals(e.name, permessage_deflate)) return true;
    const Parsed p = parse_params(e);
    if (!p.valid) return true;
    DeflateParams a;
    a.server_no_context_takeover = (p.seen & p_snct) != 0;
    a.client_no_context_takeover = (p.seen & p_cnct) != 0;
    const std::uint8_t offered_server = clamp_bits(offered_.server_max_window_bits, 9);
    if ((p.seen & p_smwb) != 0) {
      if (p.server_bits > offered_server) return true;
      a.server_max_window_bits = p.server_bits;
      a.state_server_bits = true;
    } else if (offered_server < 15) {
      return true;  // an offered server_max_window_bits must be answered
    }
    const std::uint8_t offered_client = clamp_bits(offered_.client_max_window_bits, 9);
    if ((p.seen & p_cmwb) != 0) {
      // The answer must carry a value, no larger than a value we offered.
      if (p.client_bits == 0 || p.client_bits > offered_client) return true;
      a.client_max_window_bits = p.client_bits;
      a.state_client_bits = true;
    } else {
      a.client_max_window_bits = offered_client;
    }
    params_ = a;
    state_ = DeflateAnswer::accepted;
    return false;
  });
  // A syntax error (the walk ended without reading the field) fails too: an
  // answer we cannot read is not one we can honour.
  if (stopped || bad) state_ = DeflateAnswer::fail;
}

}  // namespace ringlink
