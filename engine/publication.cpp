#include "engine/publication.hpp"

#include <cstring>

#include "protocol/codec.hpp"

namespace ringlink {

PayloadRef frame_once(std::span<const std::byte> payload, Opcode op, std::size_t trailer) noexcept {
  PayloadRef p = PayloadRef::allocate(payload.size(), trailer);
  if (!p) return p;
  if (!payload.empty()) std::memcpy(p.data(), payload.data(), payload.size());
  FrameHeader h;
  h.opcode = static_cast<std::uint8_t>(op);
  h.payload_length = payload.size();
  FrameEncoder enc;
  p.frame_header_len() = static_cast<std::uint8_t>(enc.encode_header(p.frame_header_storage(), h));
  return p;
}

PayloadRef frame_publication(std::span<const std::byte> payload, Opcode op, const Topic& topic, std::uint64_t seq) noexcept {
  PayloadRef p = frame_once(payload, op, sizeof(PublicationTag));
  if (!p) return p;
  const PublicationTag tag{topic.serial(), seq};
  std::memcpy(p.trailer().data(), &tag, sizeof tag);
  return p;
}

std::optional<PublicationTag> publication_tag(const PayloadRef& frame) noexcept {
  const std::span<std::byte> t = frame.trailer();
  if (t.size() != sizeof(PublicationTag)) return std::nullopt;
  PublicationTag tag;
  std::memcpy(&tag, t.data(), sizeof tag);
  return tag;
}

}  // namespace ringlink
