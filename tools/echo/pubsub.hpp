// ringlink-echo --pubsub: the fan-out server's text protocol (docs/pubsub.md).
//
//   ws://host:port/?sub=t1,t2      subscribe at the upgrade (taken literally, no %-decoding)
//   SUB <topic>                    text message: subscribe this link
//   UNSUB <topic>                  text message: unsubscribe
//   PUB <topic> <payload>          any message: publish <payload> (same opcode) to
//                                  the topic's subscribers on every node
//   anything else                  echoed
//
// A topic here is 1..255 bytes without space, comma or NUL. A malformed
// command (no topic, too long, bad bytes, PUB without the space after the
// topic) or a subscription refused by a cap closes the link with 1008;
// the server and other links carry on.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/link.hpp"
#include "engine/server.hpp"

namespace echo_pubsub {

// A topic this protocol accepts.
bool valid_topic(std::string_view t) noexcept;

// The topics of "?sub=a,b" in an upgrade target; false when one is invalid.
bool topics_from_target(std::string_view target, std::vector<std::string>& out);

enum class Verdict { not_command, handled, refused };
// Runs a command message. `refused`: close the link with 1008 and `reason`.
Verdict handle(ringlink::Server& server, ringlink::Link& link, std::span<const std::byte> payload,
               ringlink::Opcode op, std::string_view& reason);

// Subscribes a just opened link; false (reason set) when a cap refused.
bool subscribe(ringlink::Server& server, ringlink::LinkId id, std::string_view topic, std::string_view& reason);

}  // namespace echo_pubsub
