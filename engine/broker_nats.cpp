// NATS through nats.c: one connection; nats.c runs its own I/O threads and
// calls back on them, so a message is queued here (bounded) and the
// bridge's thread takes it in poll(). nats.c's own reconnect is off: the
// bridge reconnects and resubscribes, the same way for every broker.
//
// NATS subjects are tokens split by '.': a channel with whitespace, an
// empty token or a wildcard token ('*', '>') cannot be subscribed literally,
// so such topics stay local on NATS (skipped, logged once per topic).
#include <nats/nats.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <deque>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/broker_client.hpp"
#include "engine/fd.hpp"
#include "engine/log.hpp"

namespace ringlink {

namespace {

constexpr std::size_t max_pending = 65'536;

bool literal_subject(std::string_view s) noexcept {
  if (s.empty()) return false;
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = s.find('.', start);
    const std::string_view token = s.substr(start, dot == std::string_view::npos ? s.npos : dot - start);
    if (token.empty() || token == "*" || token == ">") return false;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  for (char c : s)
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') return false;
  return true;
}

class NatsClient final : public BrokerClient {
 public:
  NatsClient() {
    const int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd >= 0) event_.reset(fd);
  }
  ~NatsClient() override { disconnect(); }

  int connect(const std::string& host, std::uint16_t port, int timeout_ms) override {
    disconnect();
    if (!event_) return -EMFILE;
    lost_ = false;
    natsOptions* opts = nullptr;
    if (natsOptions_Create(&opts) != NATS_OK) return -ENOMEM;
    const std::string url = "nats://" + host + ":" + std::to_string(port);
    natsOptions_SetURL(opts, url.c_str());
    natsOptions_SetTimeout(opts, timeout_ms);
    natsOptions_SetAllowReconnect(opts, false);
    natsOptions_SetClosedCB(opts, &NatsClient::on_closed, this);
    natsOptions_SetDisconnectedCB(opts, &NatsClient::on_closed, this);
    const natsStatus s = natsConnection_Connect(&nc_, opts);
    natsOptions_Destroy(opts);
    if (s != NATS_OK) {
      nc_ = nullptr;
      return s == NATS_NO_SERVER ? -ECONNREFUSED : -EIO;
    }
    timeout_ms_ = timeout_ms;
    return 0;
  }

  void disconnect() noexcept override {
    for (auto& [ch, sub] : subs_) natsSubscription_Destroy(sub);
    subs_.clear();
    if (nc_ != nullptr) {
      natsConnection_Close(nc_);
      natsConnection_Destroy(nc_);
      nc_ = nullptr;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    pending_.clear();
  }

  int subscribe(std::string_view channel) override {
    if (nc_ == nullptr) return -ENOTCONN;
    const std::string ch(channel);
    if (subs_.contains(ch)) return 0;
    if (!literal_subject(ch)) {
      RINGLINK_LOG(LogLevel::warn, "broker bridge: '%s' is no literal NATS subject; the topic stays local", ch.c_str());
      return 0;
    }
    natsSubscription* sub = nullptr;
    if (natsConnection_Subscribe(&sub, nc_, ch.c_str(), &NatsClient::on_msg, this) != NATS_OK) return -EIO;
    subs_.emplace(ch, sub);
    return 0;
  }

  int unsubscribe(std::string_view channel) override {
    if (nc_ == nullptr) return -ENOTCONN;
    auto it = subs_.find(std::string(channel));
    if (it == subs_.end()) return 0;
    const natsStatus s = natsSubscription_Unsubscribe(it->second);
    natsSubscription_Destroy(it->second);
    subs_.erase(it);
    return s == NATS_OK ? 0 : -EIO;
  }

  int publish(std::string_view channel, std::span<const std::byte> message) override {
    if (nc_ == nullptr || lost_) return -ENOTCONN;
    const std::string ch(channel);
    if (!literal_subject(ch)) return 0;
    return natsConnection_Publish(nc_, ch.c_str(), message.data(), static_cast<int>(message.size())) == NATS_OK
               ? 0
               : -EIO;
  }

  int flush() override {
    if (nc_ == nullptr || lost_) return -ENOTCONN;
    return natsConnection_FlushTimeout(nc_, timeout_ms_) == NATS_OK ? 0 : -EIO;
  }

  int poll(int wake_fd, int timeout_ms, const OnMessage& on_message) override {
    if (nc_ == nullptr) return -ENOTCONN;
    pollfd fds[2] = {{event_.get(), POLLIN, 0}, {wake_fd, POLLIN, 0}};
    if (::poll(fds, wake_fd >= 0 ? 2 : 1, timeout_ms) < 0 && errno != EINTR) return -errno;
    std::uint64_t n = 0;
    (void)!::read(event_.get(), &n, sizeof n);
    std::deque<Message> batch;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      batch.swap(pending_);
    }
    for (const Message& m : batch) on_message(m.channel, m.data);
    if (lost_ || natsConnection_Status(nc_) != NATS_CONN_STATUS_CONNECTED) return -ECONNRESET;
    return 0;
  }

 private:
  struct Message {
    std::string channel;
    std::vector<std::byte> data;
  };

  // nats.c's thread.
  static void on_msg(natsConnection*, natsSubscription*, natsMsg* msg, void* self_ptr) {
    auto* self = static_cast<NatsClient*>(self_ptr);
    try {
      const auto* d = reinterpret_cast<const std::byte*>(natsMsg_GetData(msg));
      Message m{natsMsg_GetSubject(msg), std::vector<std::byte>(d, d + natsMsg_GetDataLength(msg))};
      std::lock_guard<std::mutex> lock(self->mutex_);
      // Past the bound, messages are dropped; the bridge counts them as
      // gaps from the publishers' counters.
      if (self->pending_.size() < max_pending) self->pending_.push_back(std::move(m));
    } catch (const std::bad_alloc&) {
    }
    natsMsg_Destroy(msg);
    self->signal();
  }
  static void on_closed(natsConnection*, void* self_ptr) {
    auto* self = static_cast<NatsClient*>(self_ptr);
    self->lost_ = true;
    self->signal();
  }
  void signal() noexcept {
    const std::uint64_t one = 1;
    (void)!::write(event_.get(), &one, sizeof one);
  }

  natsConnection* nc_ = nullptr;
  int timeout_ms_ = 2000;
  std::unordered_map<std::string, natsSubscription*> subs_;
  Fd event_;
  std::atomic<bool> lost_{false};
  std::mutex mutex_;
  std::deque<Message> pending_;
};

}  // namespace

std::unique_ptr<BrokerClient> make_nats_client() { return std::make_unique<NatsClient>(); }

}  // namespace ringlink
