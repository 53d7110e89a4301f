// Command: work another thread posts to a reactor (Server::send, close,
// broadcast, connect, stop, topics). The reactor runs them between its reads and its
// flush, in the order they were posted.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "engine/connect_request.hpp"
#include "engine/payload.hpp"
#include "engine/topics.hpp"
#include "engine/types.hpp"
#include "protocol/frame.hpp"

namespace ringlink {

struct Command {
  enum class Kind : std::uint8_t { send, close, broadcast, connect, stop, resume_handoff, subscribe, unsubscribe, publish };
  Kind kind = Kind::send;
  Opcode op = Opcode::binary;
  std::uint16_t code = close_code::normal;
  LinkId id{};
  PayloadRef payload{};            // send/broadcast: payload (header pre-encoded for broadcast)
  // broadcast: these links, or every open link of the reactor when null.
  std::shared_ptr<const std::vector<LinkId>> ids{};
  std::shared_ptr<ConnectRequest> connect{};
  std::uint64_t deadline_ms = 0;   // stop
  // subscribe/unsubscribe/publish: the topic. publish: `payload` is the
  // framed publication, `seq` its number; subscribe: `seq` is the first
  // number the member may receive. publish also carries what this reactor
  // missed before (its ring was full): missed_count numbers from missed_first.
  std::shared_ptr<Topic> topic{};
  std::uint64_t seq = 0;
  std::uint64_t missed_first = 0, missed_count = 0;
};

}  // namespace ringlink
