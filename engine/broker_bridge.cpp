#include "engine/broker_bridge.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <system_error>

#include "engine/clock.hpp"
#include "engine/log.hpp"
#include "engine/server.hpp"

namespace ringlink {

namespace {

constexpr std::size_t header_size = 20;   // "RL", version, opcode, node id, counter
constexpr std::uint8_t wire_version = 1;
// Past this many topics (ours, or other nodes' seen), the tables start over:
// ours under a new node id (the others count an epoch), theirs forgetting
// the counters (no gap is counted for that moment).
constexpr std::size_t max_tracked = 1u << 20;

std::uint64_t random_id() noexcept {
  std::uint64_t id = 0;
  if (::getrandom(&id, sizeof id, 0) != sizeof id) id = steady_now_ns() * 0x9E3779B97F4A7C15ull;
  return id == 0 ? 1 : id;
}

void put64(std::byte* p, std::uint64_t v) noexcept {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<std::byte>(v >> (8 * i));
}
std::uint64_t get64(const std::byte* p) noexcept {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<std::uint64_t>(p[i]) << (8 * i);
  return v;
}

}  // namespace

bool parse_broker_url(std::string_view text, BrokerUrl& out) {
  const std::size_t sep = text.find("://");
  if (sep == std::string_view::npos) return false;
  out.scheme = std::string(text.substr(0, sep));
  if (out.scheme == "redis") {
    out.port = 6379;
  } else if (out.scheme == "nats") {
    out.port = 4222;
  } else {
    return false;
  }
  std::string_view rest = text.substr(sep + 3);
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  const std::size_t colon = rest.rfind(':');
  std::string_view host = rest;
  if (colon != std::string_view::npos) {
    host = rest.substr(0, colon);
    const std::string_view p = rest.substr(colon + 1);
    unsigned v = 0;
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
    if (ec != std::errc{} || end != p.data() + p.size() || v == 0 || v > 65535) return false;
    out.port = static_cast<std::uint16_t>(v);
  }
  if (host.empty() || host.find('/') != std::string_view::npos) return false;
  out.host = std::string(host);
  return true;
}

BrokerBridge::BrokerBridge(Server& server, std::unique_ptr<BrokerClient> client, Options opts)
    : server_(server), client_(std::move(client)), opts_(std::move(opts)), node_(random_id()) {}

BrokerBridge::~BrokerBridge() { stop(); }

int BrokerBridge::start() {
  const int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) return -errno;
  wake_fd_.reset(fd);
  backoff_ms_ = opts_.backoff_min_ms;
  try {
    thread_ = std::thread([this] { run(); });
  } catch (const std::system_error& e) {
    return -e.code().value();
  }
  return 0;
}

void BrokerBridge::stop() {
  if (!thread_.joinable()) return;
  stop_.store(true, std::memory_order_release);
  wake();
  thread_.join();
}

void BrokerBridge::wake() noexcept {
  const std::uint64_t one = 1;
  if (wake_fd_) (void)!::write(wake_fd_.get(), &one, sizeof one);
}

std::string BrokerBridge::channel_of(std::string_view topic) const {
  std::string c;
  c.reserve(opts_.prefix.size() + 1 + topic.size());
  c += opts_.prefix;
  c += ':';
  c += topic;
  return c;
}

bool BrokerBridge::forward(std::string_view topic, std::span<const std::byte> payload, Opcode op) noexcept {
  stats_.published.fetch_add(1, std::memory_order_relaxed);
  bool queued = false;
  try {
    std::lock_guard<std::mutex> lock(mutex_);
    // The counter advances even when the message is not sent: the other
    // nodes then see (and count) exactly what this outage cost them.
    if (counters_.size() >= max_tracked && !counters_.contains(std::string(topic))) {
      counters_.clear();
      node_ = random_id();
    }
    const std::uint64_t counter = ++counters_[std::string(topic)];
    if (stats_.up.load(std::memory_order_relaxed) != 0 && out_.size() < opts_.max_queued) {
      Outgoing o{channel_of(topic), std::vector<std::byte>(header_size + payload.size())};
      std::byte* h = o.message.data();
      h[0] = std::byte{'R'};
      h[1] = std::byte{'L'};
      h[2] = std::byte{wire_version};
      h[3] = static_cast<std::byte>(op);
      put64(h + 4, node_);
      put64(h + 12, counter);
      if (!payload.empty()) std::memcpy(h + header_size, payload.data(), payload.size());
      out_.push_back(std::move(o));
      queued = true;
    }
  } catch (const std::bad_alloc&) {
    queued = false;
  }
  if (!queued) {
    stats_.publish_failures.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  wake();
  return true;
}

void BrokerBridge::on_topic_added(const std::string& name) noexcept {
  try {
    std::lock_guard<std::mutex> lock(mutex_);
    wanted_.insert(name);
    ops_.push_back({true, name});
  } catch (const std::bad_alloc&) {
    return;  // the channel is subscribed at the next reconnect
  }
  wake();
}

void BrokerBridge::on_topic_removed(const std::string& name) noexcept {
  try {
    std::lock_guard<std::mutex> lock(mutex_);
    wanted_.erase(name);
    ops_.push_back({false, name});
  } catch (const std::bad_alloc&) {
    return;
  }
  wake();
}

void BrokerBridge::run() {
  while (!stop_.load(std::memory_order_acquire)) {
    if (!connected_ && !connect_and_resubscribe()) {
      // Down: wait out the backoff (or a stop), counting what local
      // publications could not be forwarded meanwhile.
      pollfd p{wake_fd_.get(), POLLIN, 0};
      const std::uint64_t until = steady_now_ms() + backoff_ms_;
      while (!stop_.load(std::memory_order_acquire) && steady_now_ms() < until) {
        (void)::poll(&p, 1, static_cast<int>(until - std::min(until, steady_now_ms())));
        std::uint64_t n = 0;
        (void)!::read(wake_fd_.get(), &n, sizeof n);
      }
      backoff_ms_ = std::min(backoff_ms_ * 2, opts_.backoff_max_ms);
      continue;
    }
    if (!serve_connected()) lose_connection();
  }
  client_->disconnect();
  stats_.up.store(0, std::memory_order_relaxed);
}

bool BrokerBridge::connect_and_resubscribe() {
  if (client_->connect(opts_.url.host, opts_.url.port, opts_.io_timeout_ms) != 0) {
    stats_.connect_failures.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  std::vector<std::string> topics;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    topics.assign(wanted_.begin(), wanted_.end());
    ops_.clear();   // the whole set is subscribed now
  }
  for (const std::string& t : topics) {
    if (client_->subscribe(channel_of(t)) != 0) {
      client_->disconnect();
      stats_.connect_failures.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
  }
  connected_ = true;
  if (ever_connected_) {
    stats_.reconnects.fetch_add(1, std::memory_order_relaxed);
    RINGLINK_LOG(LogLevel::info, "broker bridge: reconnected to %s://%s:%u", opts_.url.scheme.c_str(), opts_.url.host.c_str(),
                opts_.url.port);
  }
  ever_connected_ = true;
  backoff_ms_ = opts_.backoff_min_ms;
  stats_.up.store(1, std::memory_order_relaxed);
  return true;
}

void BrokerBridge::lose_connection() {
  client_->disconnect();
  connected_ = false;
  stats_.up.store(0, std::memory_order_relaxed);
  RINGLINK_LOG(LogLevel::warn, "broker bridge: lost %s://%s:%u; reconnecting with backoff", opts_.url.scheme.c_str(),
              opts_.url.host.c_str(), opts_.url.port);
  std::deque<Outgoing> dropped;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    dropped.swap(out_);
  }
  stats_.publish_failures.fetch_add(dropped.size(), std::memory_order_relaxed);
}

// One round while connected: topic changes, then what waits to be
// forwarded (one pipelined batch), then messages from the broker until
// woken or 100 ms pass. False when the connection failed.
bool BrokerBridge::serve_connected() {
  std::vector<TopicOp> ops;
  std::deque<Outgoing> out;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    ops.swap(ops_);
    out.swap(out_);
  }
  for (const TopicOp& op : ops) {
    const std::string ch = channel_of(op.topic);
    if ((op.subscribe ? client_->subscribe(ch) : client_->unsubscribe(ch)) != 0) return false;
  }
  if (!out.empty()) {
    std::size_t queued = 0;
    int err = 0;
    for (const Outgoing& o : out) {
      if ((err = client_->publish(o.channel, o.message)) != 0) break;
      ++queued;
    }
    if (err == 0) err = client_->flush();
    if (err != 0) {
      stats_.publish_failures.fetch_add(out.size(), std::memory_order_relaxed);
      return false;
    }
    stats_.forwarded.fetch_add(queued, std::memory_order_relaxed);
  }
  const int r = client_->poll(wake_fd_.get(), 100, [this](std::string_view ch, std::span<const std::byte> m) {
    on_message(ch, m);
  });
  std::uint64_t n = 0;
  (void)!::read(wake_fd_.get(), &n, sizeof n);
  return r == 0;
}

void BrokerBridge::on_message(std::string_view channel, std::span<const std::byte> m) {
  if (channel.size() <= opts_.prefix.size() + 1 || !channel.starts_with(opts_.prefix) ||
      channel[opts_.prefix.size()] != ':')
    return;
  const std::string_view topic = channel.substr(opts_.prefix.size() + 1);
  if (m.size() < header_size || m[0] != std::byte{'R'} || m[1] != std::byte{'L'} ||
      m[2] != std::byte{wire_version})
    return;   // not ours: another program on the same channel
  const auto op = static_cast<Opcode>(m[3]);
  if (op != Opcode::text && op != Opcode::binary) return;
  const std::uint64_t node = get64(m.data() + 4);
  const std::uint64_t counter = get64(m.data() + 12);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (node == node_) return;   // our own: local subscribers had it at once
  }
  if (nodes_.insert(node).second) stats_.epochs.fetch_add(1, std::memory_order_relaxed);
  if (seen_.size() >= max_tracked) seen_.clear();
  std::string key(8 + topic.size(), '\0');
  std::memcpy(key.data(), &node, 8);
  std::memcpy(key.data() + 8, topic.data(), topic.size());
  auto [it, fresh] = seen_.try_emplace(std::move(key), counter);
  if (!fresh) {
    if (counter <= it->second) return;   // already delivered: never twice
    if (counter > it->second + 1) stats_.gaps.fetch_add(counter - it->second - 1, std::memory_order_relaxed);
    it->second = counter;
  }
  stats_.received.fetch_add(1, std::memory_order_relaxed);
  (void)server_.publish_local(topic, m.subspan(header_size), op);
}

}  // namespace ringlink
