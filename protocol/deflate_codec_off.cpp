// The meson feature `deflate` is disabled: the codec exists so that callers
// compile unchanged, but it never makes a zlib state and every call fails.
// Callers check config::deflate first; the engine never negotiates then.
#include "protocol/deflate_codec.hpp"

#include <algorithm>
#include <cstring>
#include <new>
#include <utility>

namespace ringlink {

bool ByteBuffer::reserve(std::size_t n) noexcept {
  if (n <= capacity_) return true;
  auto grown = std::unique_ptr<std::byte[]>(new (std::nothrow) std::byte[n]);
  if (!grown) return false;
  if (size_ != 0) std::memcpy(grown.get(), data_.get(), size_);
  data_ = std::move(grown);
  capacity_ = n;
  return true;
}

void ByteBuffer::shrink(std::size_t keep) noexcept {
  if (capacity_ <= keep) return;
  data_.reset();
  size_ = capacity_ = 0;
}

Inflater::Inflater(std::uint8_t window_bits) noexcept : bits_(window_bits) {}
Inflater::~Inflater() = default;
Inflater::Inflater(Inflater&& o) noexcept : bits_(o.bits_) {}
Inflater& Inflater::operator=(Inflater&& o) noexcept {
  bits_ = o.bits_;
  return *this;
}
bool Inflater::init() noexcept { return false; }
void Inflater::reset() noexcept {}
void Inflater::release() noexcept {}
InflateStatus Inflater::inflate_message(std::span<const std::byte>, ByteBuffer& out, std::size_t) noexcept {
  out.clear();
  return InflateStatus::no_memory;
}

Deflater::Deflater(std::uint8_t window_bits, std::uint8_t mem_level) noexcept
    : bits_(window_bits), mem_level_(mem_level) {}
Deflater::~Deflater() = default;
Deflater::Deflater(Deflater&& o) noexcept : bits_(o.bits_), mem_level_(o.mem_level_) {}
Deflater& Deflater::operator=(Deflater&& o) noexcept {
  bits_ = o.bits_;
  mem_level_ = o.mem_level_;
  return *this;
}
bool Deflater::init() noexcept { return false; }
void Deflater::reset() noexcept {}
void Deflater::release() noexcept {}
bool Deflater::deflate_message(std::span<const std::byte>, ByteBuffer& out) noexcept {
  out.clear();
  return false;
}

}  // namespace ringlink
