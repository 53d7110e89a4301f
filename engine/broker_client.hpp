// BrokerClient: what the broker bridge needs from a broker, one
// implementation per protocol (broker_redis.cpp over hiredis; more behind
// the same five calls). Used by the bridge's thread only; blocking calls are
// bounded by the timeouts given at connect.
//
//   auto c = make_broker_client("redis");          // null: not built in
//   if (c->connect("127.0.0.1", 6379, 1000) == 0) {
//     c->subscribe("ringlink:news");
//     c->publish("ringlink:news", bytes);  c->flush();
//     c->poll(wake_fd, 100, [](std::string_view channel, std::span<const std::byte> msg) { ... });
//   }
//
// Every call but connect returns 0 or a negative errno; after an error the
// connection is unusable: disconnect() and connect again.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace ringlink {

class BrokerClient {
 public:
  using OnMessage = std::function<void(std::string_view channel, std::span<const std::byte> message)>;
  virtual ~BrokerClient() = default;
  // 0, or -errno (-ECONNREFUSED, -ETIMEDOUT, -EIO); `timeout_ms` bounds the
  // connect and every later read or write.
  virtual int connect(const std::string& host, std::uint16_t port, int timeout_ms) = 0;
  virtual void disconnect() noexcept = 0;
  virtual int subscribe(std::string_view channel) = 0;
  virtual int unsubscribe(std::string_view channel) = 0;
  // Queues a publication; flush() sends what is queued and waits for the
  // broker's answers.
  virtual int publish(std::string_view channel, std::span<const std::byte> message) = 0;
  virtual int flush() = 0;
  // Waits up to timeout_ms for messages or for `wake_fd` to become
  // readable; hands each message received to on_message.
  virtual int poll(int wake_fd, int timeout_ms, const OnMessage& on_message) = 0;
};

// Null when this build lacks the scheme (meson features redis, nats).
std::unique_ptr<BrokerClient> make_redis_client();
std::unique_ptr<BrokerClient> make_nats_client();

}  // namespace ringlink
