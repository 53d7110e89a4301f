#include "tools/echo/pubsub.hpp"

#include "engine/topics.hpp"

namespace echo_pubsub {

bool valid_topic(std::string_view t) noexcept {
  return ringlink::valid_topic(t) && t.find_first_of(std::string_view(" ,", 2)) == std::string_view::npos;
}

bool topics_from_target(std::string_view target, std::vector<std::string>& out) {
  const std::size_t q = target.find('?');
  if (q == std::string_view::npos) return true;
  std::string_view query = target.substr(q + 1);
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view param = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (!param.starts_with("sub=")) continue;
    std::string_view list = param.substr(4);
    while (true) {
      const std::size_t comma = list.find(',');
      const std::string_view t = list.substr(0, comma);
      if (!valid_topic(t)) return false;
      out.emplace_back(t);
      if (comma == std::string_view::npos) break;
      list = list.substr(comma + 1);
    }
  }
  return true;
}

bool subscribe(ringlink::Server& server, ringlink::LinkId id, std::string_view topic, std::string_view& reason) {
  switch (server.subscribe(id, topic)) {
    case ringlink::SubscribeResult::subscribed:
    case ringlink::SubscribeResult::posted:
    case ringlink::SubscribeResult::already:
      return true;
    case ringlink::SubscribeResult::refused_link_cap:
      reason = "too many topics on this link";
      return false;
    case ringlink::SubscribeResult::refused_server_cap:
      reason = "too many topics on this server";
      return false;
    default:
      reason = "cannot subscribe";
      return false;
  }
}

Verdict handle(ringlink::Server& server, ringlink::Link& link, std::span<const std::byte> payload, ringlink::Opcode op,
               std::string_view& reason) {
  const std::string_view s(reinterpret_cast<const char*>(payload.data()), payload.size());
  if (s.starts_with("PUB ")) {
    const std::string_view rest = s.substr(4);
    const std::size_t sp = rest.find(' ');
    const std::string_view topic = rest.substr(0, sp);
    if (sp == std::string_view::npos || !valid_topic(topic)) {
      reason = "malformed PUB";
      return Verdict::refused;
    }
    (void)server.publish(topic, payload.subspan(4 + sp + 1), op);
    return Verdict::handled;
  }
  if (op != ringlink::Opcode::text) return Verdict::not_command;
  const bool sub = s.starts_with("SUB ");
  const bool unsub = s.starts_with("UNSUB ");
  if (!sub && !unsub) return Verdict::not_command;
  const std::string_view topic = s.substr(sub ? 4 : 6);
  if (!valid_topic(topic)) {
    reason = "malformed topic";
    return Verdict::refused;
  }
  if (unsub) {
    (void)server.unsubscribe(link.id(), topic);
    return Verdict::handled;
  }
  return subscribe(server, link.id(), topic, reason) ? Verdict::handled : Verdict::refused;
}

}  // namespace echo_pubsub
