// zlib behind Inflater and Deflater. Raw deflate (negative window bits), as
// RFC 7692 section 7.2 wants: no zlib header, the sync-flush tail removed
// by the sender and put back by the receiver.
#include "protocol/deflate_codec.hpp"

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <new>
#include <utility>

namespace ringlink {

namespace {

constexpr std::byte sync_tail[4] = {std::byte{0x00}, std::byte{0x00}, std::byte{0xFF}, std::byte{0xFF}};
// First output allocation of an inflation; doubles from there up to the cap.
constexpr std::size_t min_inflate_capacity = 4096;

Bytef* in_ptr(const std::byte* p) noexcept { return reinterpret_cast<Bytef*>(const_cast<std::byte*>(p)); }

}  // namespace

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

// --- Inflater ----------------------------------------------------------------

Inflater::Inflater(std::uint8_t window_bits) noexcept
    : bits_(std::clamp<std::uint8_t>(window_bits, 8, 15)) {}

Inflater::~Inflater() { release(); }

Inflater::Inflater(Inflater&& o) noexcept : z_(std::exchange(o.z_, nullptr)), bits_(o.bits_) {}

Inflater& Inflater::operator=(Inflater&& o) noexcept {
  if (this != &o) {
    release();
    z_ = std::exchange(o.z_, nullptr);
    bits_ = o.bits_;
  }
  return *this;
}

bool Inflater::init() noexcept {
  auto* z = new (std::nothrow) z_stream{};
  if (z == nullptr) return false;
  if (inflateInit2(z, -static_cast<int>(bits_)) != Z_OK) {
    delete z;
    return false;
  }
  z_ = z;
  return true;
}

void Inflater::reset() noexcept {
  if (z_ != nullptr) inflateReset(z_);
}

void Inflater::release() noexcept {
  if (z_ == nullptr) return;
  inflateEnd(z_);
  delete z_;
  z_ = nullptr;
}

InflateStatus Inflater::inflate_message(std::span<const std::byte> in, ByteBuffer& out,
                                        std::size_t max) noexcept {
  out.clear();
  if (z_ == nullptr && !init()) return InflateStatus::no_memory;
  const auto fail = [this](InflateStatus s) {
    inflateReset(z_);
    return s;
  };
  const std::span<const std::byte> pieces[2] = {in, std::span<const std::byte>(sync_tail)};
  for (const auto& piece : pieces) {
    z_->next_in = in_ptr(piece.data());
    z_->avail_in = static_cast<uInt>(piece.size());
    for (;;) {
      // At the cap, one more byte of room tells whether there is more.
      std::byte probe{};
      // `out` may be larger than `max` from an earlier message: the cap is
      // max, whatever its capacity.
      const bool at_cap = out.size() >= max;
      if (at_cap) {
        z_->next_out = reinterpret_cast<Bytef*>(&probe);
        z_->avail_out = 1;
      } else {
        if (out.size() == out.capacity()) {
          const std::size_t want = std::min(max, std::max({min_inflate_capacity, out.capacity() * 2, in.size() * 2}));
          if (!out.reserve(want)) return fail(InflateStatus::no_memory);
        }
        const std::size_t room = std::min(out.capacity(), max) - out.size();
        z_->next_out = reinterpret_cast<Bytef*>(out.data() + out.size());
        z_->avail_out = static_cast<uInt>(std::min<std::size_t>(room, 1u << 30));
      }
      const uInt room = z_->avail_out;
      const int rc = inflate(z_, Z_SYNC_FLUSH);
      if (at_cap) {
        if (z_->avail_out == 0) return fail(InflateStatus::too_big);
      } else {
        out.set_size(out.size() + (room - z_->avail_out));
      }
      if (rc == Z_STREAM_END) {
        // A final block (BFINAL): the message is whole. The next one starts
        // a new stream; whatever followed the final block is ignored.
        inflateReset(z_);
        return InflateStatus::ok;
      }
      if (rc == Z_MEM_ERROR) return fail(InflateStatus::no_memory);
      if (rc != Z_OK && rc != Z_BUF_ERROR) return fail(InflateStatus::corrupt);
      if (z_->avail_out == 0) continue;  // maybe more output waiting
      if (z_->avail_in == 0) break;      // this piece is used up and drained
      return fail(InflateStatus::corrupt);  // room and input left, yet no progress
    }
  }
  // With the tail back, a whole message ends where a new block would start.
  if ((z_->data_type & 128) == 0) return fail(InflateStatus::corrupt);
  return InflateStatus::ok;
}

// --- Deflater ----------------------------------------------------------------

Deflater::Deflater(std::uint8_t window_bits, std::uint8_t mem_level) noexcept
    : bits_(std::clamp<std::uint8_t>(window_bits, 8, 15)),
      mem_level_(std::clamp<std::uint8_t>(mem_level, 1, 9)) {}

Deflater::~Deflater() { release(); }

Deflater::Deflater(Deflater&& o) noexcept
    : z_(std::exchange(o.z_, nullptr)), bits_(o.bits_), mem_level_(o.mem_level_) {}

Deflater& Deflater::operator=(Deflater&& o) noexcept {
  if (this != &o) {
    release();
    z_ = std::exchange(o.z_, nullptr);
    bits_ = o.bits_;
    mem_level_ = o.mem_level_;
  }
  return *this;
}

bool Deflater::init() noexcept {
  if (!usable()) return false;
  auto* z = new (std::nothrow) z_stream{};
  if (z == nullptr) return false;
  if (deflateInit2(z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -static_cast<int>(bits_), mem_level_,
                   Z_DEFAULT_STRATEGY) != Z_OK) {
    delete z;
    return false;
  }
  z_ = z;
  return true;
}

void Deflater::reset() noexcept {
  if (z_ != nullptr) deflateReset(z_);
}

void Deflater::release() noexcept {
  if (z_ == nullptr) return;
  deflateEnd(z_);
  delete z_;
  z_ = nullptr;
}

bool Deflater::deflate_message(std::span<const std::byte> in, ByteBuffer& out) noexcept {
  out.clear();
  if (z_ == nullptr && !init()) return false;
  // The bound covers the data; the sync flush adds a few bytes more.
  if (!out.reserve(deflateBound(z_, static_cast<uLong>(in.size())) + 16)) return false;
  z_->next_in = in_ptr(in.data());
  z_->avail_in = static_cast<uInt>(in.size());
  for (;;) {
    const std::size_t room = out.capacity() - out.size();
    z_->next_out = reinterpret_cast<Bytef*>(out.data() + out.size());
    z_->avail_out = static_cast<uInt>(room);
    const int rc = deflate(z_, Z_SYNC_FLUSH);
    out.set_size(out.size() + (room - z_->avail_out));
    if (rc == Z_STREAM_ERROR) {
      deflateReset(z_);
      return false;
    }
    if (z_->avail_out > 0 && z_->avail_in == 0) break;  // flushed completely
    if (!out.reserve(out.capacity() * 2)) {
      deflateReset(z_);
      return false;
    }
  }
  // Section 7.2.1: the sync flush's empty stored block is not sent.
  const std::size_t n = out.size();
  if (n >= 4 && std::memcmp(out.data() + n - 4, sync_tail, 4) == 0) out.set_size(n - 4);
  // Nothing at all (an empty message right after another: zlib had nothing
  // to flush) would not inflate once the tail is added back; one zero byte,
  // an empty stored block's header, does (section 7.2.3.6).
  if (out.size() == 0) {
    out.data()[0] = std::byte{0};
    out.set_size(1);
  }
  return true;
}

}  // namespace ringlink
