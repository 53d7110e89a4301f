// Redis PUB/SUB through hiredis 0.14 (RESP2): a connection in SUBSCRIBE
// mode can do nothing else, so publications go on a second connection. The
// subscriber connection is read only when poll() says it has bytes, so no
// read ever waits on it (a hiredis read timeout would end the context).
#include <hiredis/hiredis.h>
#include <poll.h>
#include <sys/time.h>

#include <cerrno>
#include <cstring>

#include "engine/broker_client.hpp"

namespace ringlink {

namespace {

struct ContextFree {
  void operator()(redisContext* c) const noexcept { redisFree(c); }
};
using Context = std::unique_ptr<redisContext, ContextFree>;

struct ReplyFree {
  void operator()(void* r) const noexcept { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyFree>;

int errno_of(const redisContext* c) noexcept {
  if (c == nullptr) return -ENOMEM;
  if (c->err == REDIS_ERR_IO && errno != 0) return -errno;
  return c->err == REDIS_ERR_EOF ? -ECONNRESET : -EIO;
}

Context open(const std::string& host, std::uint16_t port, int timeout_ms) {
  const timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  Context c{redisConnectWithTimeout(host.c_str(), port, tv)};
  if (c && c->err == 0) redisSetTimeout(c.get(), tv);
  return c;
}

class RedisClient final : public BrokerClient {
 public:
  int connect(const std::string& host, std::uint16_t port, int timeout_ms) override {
    disconnect();
    errno = 0;
    pub_ = open(host, port, timeout_ms);
    if (!pub_ || pub_->err != 0) {
      const int e = errno_of(pub_.get());
      disconnect();
      return e;
    }
    sub_ = open(host, port, timeout_ms);
    if (!sub_ || sub_->err != 0) {
      const int e = errno_of(sub_.get());
      disconnect();
      return e;
    }
    return 0;
  }

  void disconnect() noexcept override {
    pub_.reset();
    sub_.reset();
    pending_ = 0;
  }

  int subscribe(std::string_view channel) override { return command("SUBSCRIBE", channel); }
  int unsubscribe(std::string_view channel) override { return command("UNSUBSCRIBE", channel); }

  int publish(std::string_view channel, std::span<const std::byte> message) override {
    if (!pub_) return -ENOTCONN;
    if (redisAppendCommand(pub_.get(), "PUBLISH %b %b", channel.data(), channel.size(), message.data(),
                           message.size()) != REDIS_OK)
      return errno_of(pub_.get());
    ++pending_;
    return 0;
  }

  // Pipelined: every queued PUBLISH leaves in one write, then the answers
  // are read in order.
  int flush() override {
    if (!pub_) return -ENOTCONN;
    for (; pending_ > 0; --pending_) {
      void* r = nullptr;
      if (redisGetReply(pub_.get(), &r) != REDIS_OK) return errno_of(pub_.get());
      Reply reply{static_cast<redisReply*>(r)};
      if (reply && reply->type == REDIS_REPLY_ERROR) return -EPROTO;
    }
    return 0;
  }

  int poll(int wake_fd, int timeout_ms, const OnMessage& on_message) override {
    if (!sub_) return -ENOTCONN;
    pollfd fds[2] = {{sub_->fd, POLLIN, 0}, {wake_fd, POLLIN, 0}};
    const int n = ::poll(fds, wake_fd >= 0 ? 2 : 1, timeout_ms);
    if (n < 0) return errno == EINTR ? 0 : -errno;
    if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) == 0) return 0;
    errno = 0;
    if (redisBufferRead(sub_.get()) != REDIS_OK) return errno_of(sub_.get());
    for (;;) {
      void* r = nullptr;
      if (redisGetReplyFromReader(sub_.get(), &r) != REDIS_OK) return errno_of(sub_.get());
      if (r == nullptr) return 0;
      Reply reply{static_cast<redisReply*>(r)};
      // ["message", channel, payload]; subscribe confirmations are skipped.
      if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3) continue;
      const redisReply* kind = reply->element[0];
      if (kind->type != REDIS_REPLY_STRING || std::string_view(kind->str, kind->len) != "message") continue;
      const redisReply* ch = reply->element[1];
      const redisReply* msg = reply->element[2];
      if (ch->type != REDIS_REPLY_STRING || msg->type != REDIS_REPLY_STRING) continue;
      on_message(std::string_view(ch->str, ch->len),
                 std::as_bytes(std::span<const char>(msg->str, msg->len)));
    }
  }

 private:
  int command(const char* verb, std::string_view channel) {
    if (!sub_) return -ENOTCONN;
    if (redisAppendCommand(sub_.get(), "%s %b", verb, channel.data(), channel.size()) != REDIS_OK)
      return errno_of(sub_.get());
    int done = 0;
    while (done == 0)
      if (redisBufferWrite(sub_.get(), &done) != REDIS_OK) return errno_of(sub_.get());
    return 0;
  }

  Context pub_, sub_;
  std::size_t pending_ = 0;
};

}  // namespace

std::unique_ptr<BrokerClient> make_redis_client() { return std::make_unique<RedisClient>(); }

}  // namespace ringlink
