// A publication's frame: the one place where it is built, once for every
// subscriber on every reactor. permessage-deflate compresses it once more
// per reactor and window (Reactor::frame_for_many), keeping the trailer.
//
//   PayloadRef f = frame_publication(bytes, Opcode::text, topic, seq);
//   ... post f to each reactor; links queue it as is (Server::make_frame_payload) ...
//   if (auto tag = publication_tag(dropped_frame.payload)) { tag->topic_serial, tag->seq }
//
// The frame's payload carries a trailer (never sent) naming the topic and
// the number, so a link whose outbound policy drops the frame from its
// queue can tell which publication it lost.
#pragma once

#include <cstdint>
#include <optional>
#include <span>

#include "engine/payload.hpp"
#include "engine/topics.hpp"
#include "protocol/frame.hpp"

namespace ringlink {

struct PublicationTag {
  std::uint64_t topic_serial = 0;   // Topic::serial()
  std::uint64_t seq = 0;
};

// A frame built once for many links (server role, unmasked, header
// pre-encoded): the payload copied in, then `trailer` bytes that are never
// sent. Empty when memory ran out. Server::make_frame_payload (broadcasts)
// and frame_publication both build theirs here.
PayloadRef frame_once(std::span<const std::byte> payload, Opcode op, std::size_t trailer = 0) noexcept;
// As frame_once, with the publication's tag as the trailer.
PayloadRef frame_publication(std::span<const std::byte> payload, Opcode op, const Topic& topic, std::uint64_t seq) noexcept;
// The tag of a frame built above; nothing for any other payload.
std::optional<PublicationTag> publication_tag(const PayloadRef& frame) noexcept;

}  // namespace ringlink
