// Tokenizing helpers shared by the upgrade request parser (server) and the
// upgrade response parser (client). Header-only and allocation-free; every
// result is a view into the caller's bytes. Internal to protocol/.
//
//   HeaderField f;
//   if (const char* why = http::parse_field_line(line, f)) refuse(why);
//   http::list_has_token(f.value, "upgrade");   // "keep-alive, Upgrade" -> true
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "protocol/handshake_server.hpp"

namespace ringlink::http {

// Character classes of RFC 7230 section 3.2.6, as one table so that the
// per-byte test is a load and a mask.
inline constexpr std::uint8_t tchar_bit = 1;
inline constexpr std::uint8_t field_vchar_bit = 2;   // VCHAR, obs-text, SP, HTAB
inline constexpr std::uint8_t target_bit = 4;        // VCHAR: what a request-target may hold

inline constexpr std::array<std::uint8_t, 256> char_classes = [] {
  std::array<std::uint8_t, 256> t{};
  constexpr std::string_view tchar_punct = "!#$%&'*+-.^_`|~";
  for (int c = 0; c < 256; ++c) {
    std::uint8_t bits = 0;
    const bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (alnum || tchar_punct.find(static_cast<char>(c)) != std::string_view::npos) bits |= tchar_bit;
    if ((c >= 0x21 && c <= 0x7e) || c >= 0x80 || c == ' ' || c == '\t') bits |= field_vchar_bit;
    if (c >= 0x21 && c <= 0x7e) bits |= target_bit;
    t[static_cast<std::size_t>(c)] = bits;
  }
  return t;
}();

constexpr bool has_class(char c, std::uint8_t bit) noexcept {
  return (char_classes[static_cast<unsigned char>(c)] & bit) != 0;
}

constexpr bool all_of_class(std::string_view s, std::uint8_t bit) noexcept {
  for (char c : s) {
    if (!has_class(c, bit)) return false;
  }
  return true;
}

constexpr bool is_token(std::string_view s) noexcept { return !s.empty() && all_of_class(s, tchar_bit); }

constexpr bool is_ows(char c) noexcept { return c == ' ' || c == '\t'; }

constexpr std::string_view trim_ows(std::string_view s) noexcept {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

constexpr char ascii_lower(char c) noexcept {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  }
  return true;
}

// Walks a comma-separated list (RFC 7230 section 7: "#rule"), skipping the
// empty elements the grammar allows, and calls f(element) with OWS trimmed;
// stops early when f returns true. Returns whether f did.
template <typename F>
constexpr bool for_each_list_element(std::string_view list, F&& f) noexcept {
  while (true) {
    const std::size_t comma = list.find(',');
    const std::string_view element = trim_ows(list.substr(0, comma));
    if (!element.empty() && f(element)) return true;
    if (comma == std::string_view::npos) return false;
    list.remove_prefix(comma + 1);
  }
}

constexpr bool list_has_token(std::string_view list, std::string_view token) noexcept {
  return for_each_list_element(list, [token](std::string_view e) { return iequals(e, token); });
}

inline std::optional<std::string_view> find_field(std::span<const HeaderField> fields,
                                                  std::string_view name) noexcept {
  for (const HeaderField& f : fields) {
    if (iequals(f.name, name)) return f.value;
  }
  return std::nullopt;
}

inline bool fields_have_token(std::span<const HeaderField> fields, std::string_view name,
                              std::string_view token) noexcept {
  for (const HeaderField& f : fields) {
    if (iequals(f.name, name) && list_has_token(f.value, token)) return true;
  }
  return false;
}

// "HTTP/" DIGIT "." DIGIT (RFC 7230 section 2.6); true when it is 1.1 or later.
// Sets `well_formed` so that callers can tell "HTTP/1.0" from "garbage".
constexpr bool is_http_11_or_later(std::string_view version, bool& well_formed) noexcept {
  well_formed = version.size() == 8 && version.substr(0, 5) == "HTTP/" && version[5] >= '0' &&
                version[5] <= '9' && version[6] == '.' && version[7] >= '0' && version[7] <= '9';
  if (!well_formed) return false;
  return version[5] > '1' || (version[5] == '1' && version[7] >= '1');
}

// Reasons parse_field_line gives; constant so that callers can compare them.
inline constexpr const char* reason_obs_fold = refusal_reason::obs_fold;
inline constexpr const char* reason_bad_field = refusal_reason::malformed_field;

// Splits one header line (line terminator already removed) into name and
// trimmed value. Returns nullptr on success, or the reason it is refused:
// a line that opens with whitespace is obs-fold (RFC 7230 section 3.2.4,
// refused rather than unfolded: unfolding would need a copy); whitespace
// before the colon is refused as the RFC requires; control characters
// (NUL, bare CR, ...) in a value are refused.
constexpr const char* parse_field_line(std::string_view line, HeaderField& out) noexcept {
  if (!line.empty() && is_ows(line.front())) return reason_obs_fold;
  const std::size_t colon = line.find(':');
  if (colon == std::string_view::npos) return reason_bad_field;
  const std::string_view name = line.substr(0, colon);
  if (!is_token(name)) return reason_bad_field;
  const std::string_view value = trim_ows(line.substr(colon + 1));
  if (!all_of_class(value, field_vchar_bit)) return reason_bad_field;
  out = HeaderField{name, value};
  return nullptr;
}

// Where the next line ends. The caller keeps two offsets across calls:
// `line_start` (first byte of the line being assembled) and `scanned` (how
// far the search for its LF got), so bytes are searched once however the
// input is split. A line ends at LF; a CR right before it is dropped, so
// both CRLF and the bare LF that RFC 7230 section 3.5 lets a recipient
// accept are line ends. Any other CR stays in the line and is refused there.
// Returns the line (without its terminator) and advances both offsets past
// it, or nullopt when no LF lies before `limit`.
inline std::optional<std::string_view> next_line(std::string_view data, std::size_t limit,
                                                 std::size_t& line_start,
                                                 std::size_t& scanned) noexcept {
  if (scanned >= limit) return std::nullopt;
  const std::string_view window = data.substr(scanned, limit - scanned);
  const std::size_t lf = window.find('\n');
  if (lf == std::string_view::npos) {
    scanned = limit;
    return std::nullopt;
  }
  const std::size_t end = scanned + lf;
  std::string_view line = data.substr(line_start, end - line_start);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  line_start = scanned = end + 1;
  return line;
}

// The parse() of both head parsers (the request on the server, the response
// on the client): resumes where the last call stopped, hands each new line of
// the head to the parser and stops at the first answer that is not
// incomplete. One loop, so that both sides read a head by the same rules.
// The parser keeps phase_ (Phase::first_line, fields, complete, error),
// base_, line_start_, scanned_, head_length_ and max_header_bytes_, and
// supplies what differs: on_first_line, on_field_line, on_head_end,
// rebase_views, and the failures buffer_shrank and head_too_large.
template <class Parser>
ParseStatus read_head(Parser& p, std::string_view data) noexcept {
  using Phase = typename Parser::Phase;
  if (p.phase_ == Phase::error) return ParseStatus::error;
  if (data.size() < p.scanned_) return p.buffer_shrank();
  if (reinterpret_cast<std::uintptr_t>(data.data()) != p.base_) p.rebase_views(data.data());
  if (p.phase_ == Phase::complete) return ParseStatus::complete;

  // Only the first max_header_bytes_ bytes may hold the head; a terminator
  // past them is as much too large as no terminator at all.
  const std::size_t limit = std::min(data.size(), p.max_header_bytes_);
  while (auto line = next_line(data, limit, p.line_start_, p.scanned_)) {
    ParseStatus s = ParseStatus::incomplete;
    if (p.phase_ == Phase::first_line) {
      s = p.on_first_line(*line);
    } else if (line->empty()) {
      p.head_length_ = p.scanned_;
      s = p.on_head_end();
    } else {
      s = p.on_field_line(*line);
    }
    if (s != ParseStatus::incomplete) return s;
  }
  if (data.size() > p.max_header_bytes_) return p.head_too_large();
  return ParseStatus::incomplete;
}

// The caller may hand parse() the same bytes at a new address (a buffer that
// grew and moved). Views kept from earlier calls are then moved to the same
// offsets in the new buffer. Integer arithmetic, because the old buffer may
// be gone and comparing pointers into it would be undefined.
inline void rebase(std::string_view& v, std::uintptr_t old_base, const char* new_base) noexcept {
  if (v.empty()) {
    v = {};
    return;
  }
  const std::uintptr_t offset = reinterpret_cast<std::uintptr_t>(v.data()) - old_base;
  v = std::string_view{new_base + offset, v.size()};
}

// Appends pieces to a caller's span, remembering overflow instead of
// checking at every call site.
class SpanWriter {
 public:
  explicit SpanWriter(std::span<char> out) noexcept : out_(out) {}

  void put(std::string_view s) noexcept {
    if (overflow_ || s.size() > out_.size() - used_) {
      overflow_ = true;
      return;
    }
    for (char c : s) out_[used_++] = c;
  }

  void put_uint(std::size_t n) noexcept {
    std::array<char, 20> digits{};
    std::size_t i = digits.size();
    do {
      digits[--i] = static_cast<char>('0' + n % 10);
      n /= 10;
    } while (n != 0);
    put({digits.data() + i, digits.size() - i});
  }

  // The length written, or 0 when `out` was too small.
  std::size_t finish() const noexcept { return overflow_ ? 0 : used_; }

 private:
  std::span<char> out_;
  std::size_t used_ = 0;
  bool overflow_ = false;
};

}  // namespace ringlink::http
