// BrokerBridge: topics across processes through a broker users already run
// (ServerConfig::broker, docs/pubsub.md). One thread per Server: it holds
// the broker's channel `<prefix>:<topic>` subscribed while the topic has a
// local subscriber, forwards each local publication once, and hands what
// other nodes published to the local fan-out. Made and owned by Server.
//
// A bridged message is the publication behind a 20-byte header: "RL", a
// version, the opcode, the publishing node's random id and its per-topic
// counter. A node skips its own messages (its subscribers had them at
// once), and counts what another node's counter skipped (lost while the
// broker or a connection was down) and every node id it meets for the
// first time (a node that started, or restarted).
//
// Faults: while the broker is unreachable local fan-out goes on, forwards
// fail (counted), and the thread reconnects with capped exponential backoff,
// then subscribes every channel again. Nothing here blocks a caller: forward()
// copies into a bounded queue and wakes the thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "engine/broker_client.hpp"
#include "engine/fd.hpp"
#include "engine/topics.hpp"
#include "protocol/frame.hpp"

namespace ringlink {

class Server;

// "redis://host[:port]" or "nats://host[:port]".
struct BrokerUrl {
  std::string scheme;
  std::string host;
  std::uint16_t port = 0;
};
// False when the text is not such a URL.
bool parse_broker_url(std::string_view text, BrokerUrl& out);

// The bridge's counters (any thread, relaxed).
struct BrokerStats {
  std::atomic<std::uint64_t> published{0};        // local publications handed to the bridge
  std::atomic<std::uint64_t> forwarded{0};        // ... that the broker took
  std::atomic<std::uint64_t> publish_failures{0}; // ... that could not be forwarded (broker down, queue full, error)
  std::atomic<std::uint64_t> received{0};         // other nodes' publications handed to the local fan-out
  std::atomic<std::uint64_t> gaps{0};             // other nodes' publications that never arrived
  std::atomic<std::uint64_t> epochs{0};           // publishing nodes met for the first time
  std::atomic<std::uint64_t> reconnects{0};       // connections made after the first
  std::atomic<std::uint64_t> connect_failures{0};
  std::atomic<std::uint64_t> up{0};               // 1 while connected
};

class BrokerBridge final : public TopicRegistry::Observer {
 public:
  struct Options {
    BrokerUrl url;
    std::string prefix = "ringlink";
    std::size_t max_queued = 65'536;              // publications waiting to be forwarded
    std::uint32_t backoff_min_ms = 100;
    std::uint32_t backoff_max_ms = 5'000;
    int io_timeout_ms = 2'000;                    // connect, and each read or write
  };

  BrokerBridge(Server& server, std::unique_ptr<BrokerClient> client, Options opts);
  ~BrokerBridge() override;
  BrokerBridge(const BrokerBridge&) = delete;
  BrokerBridge& operator=(const BrokerBridge&) = delete;

  // Starts the thread (the first connection is made there). 0 or -errno.
  int start();
  // Joins the thread; nothing is forwarded after it.
  void stop();

  // Any thread: queue one local publication for the other nodes. False
  // (counted as a publish failure) when the broker is down or the queue full.
  bool forward(std::string_view topic, std::span<const std::byte> payload, Opcode op) noexcept;

  // TopicRegistry::Observer: called under the registry's lock; only queues.
  void on_topic_added(const std::string& name) noexcept override;
  void on_topic_removed(const std::string& name) noexcept override;

  const BrokerStats& stats() const noexcept { return stats_; }
  std::uint64_t node_id() const noexcept { return node_; }

 private:
  struct Outgoing {
    std::string channel;
    std::vector<std::byte> message;
  };
  struct TopicOp {
    bool subscribe;
    std::string topic;
  };
  void run();
  bool connect_and_resubscribe();
  void lose_connection();
  bool serve_connected();
  void wake() noexcept;
  void on_message(std::string_view channel, std::span<const std::byte> message);
  std::string channel_of(std::string_view topic) const;

  Server& server_;
  std::unique_ptr<BrokerClient> client_;
  Options opts_;
  std::uint64_t node_;
  Fd wake_fd_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  bool connected_ = false;
  bool ever_connected_ = false;
  std::uint32_t backoff_ms_ = 0;

  std::mutex mutex_;                               // guards the members up to the blank line
  std::deque<Outgoing> out_;
  std::vector<TopicOp> ops_;
  std::unordered_set<std::string> wanted_;         // topics with local subscribers
  std::unordered_map<std::string, std::uint64_t> counters_;   // our per-topic counters

  // Bridge thread only: the last counter seen per (node, topic).
  std::unordered_map<std::string, std::uint64_t> seen_;
  std::unordered_set<std::uint64_t> nodes_;
  BrokerStats stats_;
};

}  // namespace ringlink
