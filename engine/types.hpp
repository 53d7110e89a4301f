// Small public value types of the engine: link handles, send results,
// policies, link states. Plain values: copy them freely, on any thread.
//
//   ringlink::LinkId id = link.id();                       // on the reactor thread
//   if (server.send(id, bytes) == ringlink::SendResult::closed) forget(id);  // anywhere
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

namespace ringlink {

// Addresses one link from any thread: reactor index, slot within the
// reactor, and the slot's generation. A slot is reused after its link is
// freed, with a new generation, so a stale id never reaches the new link
// (operations on it answer SendResult::closed / false).
class LinkId {
 public:
  constexpr LinkId() noexcept = default;
  constexpr LinkId(std::uint32_t reactor, std::uint32_t slot, std::uint32_t generation) noexcept
      : v_((static_cast<std::uint64_t>(reactor & 0xFF) << 56) |
           (static_cast<std::uint64_t>(slot & 0xFFFFFF) << 32) | generation) {}
  static constexpr LinkId from_raw(std::uint64_t v) noexcept { LinkId id; id.v_ = v; return id; }

  constexpr std::uint32_t reactor() const noexcept { return static_cast<std::uint32_t>(v_ >> 56); }
  constexpr std::uint32_t slot() const noexcept { return static_cast<std::uint32_t>(v_ >> 32) & 0xFFFFFF; }
  constexpr std::uint32_t generation() const noexcept { return static_cast<std::uint32_t>(v_); }
  constexpr std::uint64_t raw() const noexcept { return v_; }
  constexpr bool valid() const noexcept { return generation() != 0; }  // generations start at 1
  friend constexpr bool operator==(LinkId a, LinkId b) noexcept { return a.v_ == b.v_; }

 private:
  std::uint64_t v_ = 0;
};

inline constexpr std::uint32_t max_slots_per_reactor = 1u << 24;
inline constexpr std::uint32_t max_reactors = 256;

// What send() did with a frame. The caller must look at it ([[nodiscard]]).
enum class SendResult : std::uint8_t {
  queued,                 // written or queued; it will be sent unless the link closes
  backpressured,          // refused: the link's send queue is over its byte cap or
                          // slot count (policy reject); retry after on_drain
  queued_dropping_older,  // Link::send under drop_oldest: queued, after older
                          // unsent frames were dropped to make room
  not_posted,             // Server::send: not handed to the reactor (its command
                          // ring is full, or memory ran out); nothing was sent
  closed,                 // the link is closing or gone (or the id is stale)
};
// "queued", "backpressured", ...: a static string (any thread).
const char* to_string(SendResult r) noexcept;

// What Server::subscribe did (docs/pubsub.md).
enum class SubscribeResult : std::uint8_t {
  subscribed,         // on the link's own reactor thread: done
  posted,             // from another thread: handed to the link's reactor, which
                      // subscribes it before any later publication; a refusal
                      // there (max_topics_per_link) is counted, not returned
  already,            // the link was subscribed to the topic already
  invalid_topic,      // empty, longer than 255 bytes, or holds a NUL byte
  refused_link_cap,   // the link has ServerConfig::max_topics_per_link topics (counted)
  refused_server_cap, // a new topic would pass ServerConfig::max_topics (counted)
  not_posted,         // the reactor's command ring is full, or memory ran out: nothing changed
  closed,             // the id is stale or the link is closed, or the server is not running
};
const char* to_string(SubscribeResult r) noexcept;

// What Server::publish did, on this server (the broker bridge reports its own
// counters). Per-subscriber outcomes come later, on the reactors: a link's
// outbound policy may still refuse or drop the publication, which is counted
// per topic and reported by Handler::on_topic_gap.
struct PublishResult {
  std::uint64_t seq = 0;          // the publication's number on its topic (1, 2, ...);
                                  // 0: no local subscriber (or an invalid topic)
  std::size_t subscribers = 0;    // local subscribers it was handed to
  std::size_t dropped = 0;        // local subscribers it could not reach: their reactor's
                                  // command ring was full (or memory ran out); each is
                                  // told with on_topic_gap
  bool invalid_topic = false;
};

// What happens when a link's send queue is full.
enum class OutboundPolicy : std::uint8_t {
  reject,         // default: send() answers backpressured, nothing is lost silently
  drop_oldest,    // unsent data frames are dropped, oldest first, to make room
  close_slow,     // the slow consumer is closed with close_slow_code (1008 or 1013)
};

// Where received messages go.
enum class InboundMode : std::uint8_t {
  inline_handler, // default: Handler::on_message on the reactor thread
  workers,        // copied into a bounded ring per worker; Handler::on_worker_message
};

// What happens when a worker ring is full.
enum class InboundPolicy : std::uint8_t {
  pause,          // default, lossless: stop reading this link; TCP pushes back
  drop_newest,    // the message is dropped and counted
  close,          // the link is closed with 1008
};

enum class LinkState : std::uint8_t { handshaking, open, closing, closed };

}  // namespace ringlink

template <>
struct std::hash<ringlink::LinkId> {
  std::size_t operator()(ringlink::LinkId id) const noexcept { return std::hash<std::uint64_t>{}(id.raw()); }
};
