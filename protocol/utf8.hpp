// Incremental UTF-8 validation (RFC 3629), for text messages that arrive in
// pieces. Feed every piece in order; a bad byte is reported at once, even
// when the message is unfinished; finish() says whether the message may end
// here (no truncated sequence).
//
//   Utf8Validator v;
//   if (!v.feed(piece1) || !v.feed(piece2) || !v.finish()) fail(1007);
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace ringlink {

class Utf8Validator {
 public:
  // False at the first byte that cannot be part of valid UTF-8 (overlong
  // form, surrogate, above U+10FFFF, C0, C1, F5-FF, bad continuation). After
  // a false, the validator stays failed until reset().
  bool feed(std::span<const std::byte> data) noexcept;
  // True when the bytes fed so far end on a code point boundary.
  bool finish() const noexcept { return state_ == 0; }
  void reset() noexcept { state_ = 0; }

 private:
  std::uint32_t state_ = 0;  // 0 = at a boundary; implementation-defined otherwise
};

// Whole-buffer check.
bool utf8_valid(std::span<const std::byte> data) noexcept;

}  // namespace ringlink
