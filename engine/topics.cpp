#include "engine/topics.hpp"

#include <cstring>
#include <new>

namespace ringlink {

bool valid_topic(std::string_view name) noexcept {
  return !name.empty() && name.size() <= max_topic_length && std::memchr(name.data(), '\0', name.size()) == nullptr;
}

namespace {
std::atomic<std::uint64_t> next_serial{1};
}  // namespace

Topic::Topic(std::string name, std::size_t reactors)
    : name_(std::move(name)), serial_(next_serial.fetch_add(1, std::memory_order_relaxed)), per_reactor_(reactors, 0),
      missed_(reactors) {}

TopicRegistry::TopicRegistry(std::size_t reactors, std::size_t max_topics)
    : reactors_(reactors), max_topics_(max_topics) {}

std::shared_ptr<Topic> TopicRegistry::acquire(std::string_view name, std::uint32_t reactor, std::uint64_t* since) {
  if (!valid_topic(name) || reactor >= reactors_) return nullptr;
  Shard& s = shard_of(name);
  std::lock_guard<std::mutex> lock(s.mutex);
  auto it = s.map.find(name);
  if (it == s.map.end()) {
    // The cap is checked against a relaxed total: shards may pass it by a
    // few topics at once, never by more than one per shard.
    if (topics_.load(std::memory_order_relaxed) >= max_topics_) {
      refused_.fetch_add(1, std::memory_order_relaxed);
      return nullptr;
    }
    try {
      auto t = std::make_shared<Topic>(std::string(name), reactors_);
      it = s.map.emplace(t->name(), std::move(t)).first;
    } catch (const std::bad_alloc&) {
      return nullptr;
    }
    topics_.fetch_add(1, std::memory_order_relaxed);
    if (Observer* o = observer_.load(std::memory_order_acquire)) o->on_topic_added(it->second->name());
  }
  Topic& t = *it->second;
  ++t.per_reactor_[reactor];
  ++t.total_;
  if (since != nullptr) *since = t.next_seq_;
  return it->second;
}

void TopicRegistry::release(Topic& t, std::uint32_t reactor) noexcept {
  Shard& s = shard_of(t.name());
  std::lock_guard<std::mutex> lock(s.mutex);
  if (reactor >= reactors_ || t.per_reactor_[reactor] == 0) return;  // a bug elsewhere: never underflow
  --t.per_reactor_[reactor];
  if (--t.total_ != 0) return;
  auto it = s.map.find(std::string_view(t.name()));
  if (it == s.map.end() || it->second.get() != &t) return;
  if (Observer* o = observer_.load(std::memory_order_acquire)) o->on_topic_removed(t.name());
  // Callers hold their own reference (a command's, or a member table's), so
  // the topic outlives this erase.
  s.map.erase(it);
  topics_.fetch_sub(1, std::memory_order_relaxed);
}

std::shared_ptr<Topic> TopicRegistry::find(std::string_view name) {
  Shard& s = shard_of(name);
  std::lock_guard<std::mutex> lock(s.mutex);
  auto it = s.map.find(name);
  return it == s.map.end() ? nullptr : it->second;
}

TopicRegistry::Stats TopicRegistry::stats(std::string_view name) {
  Shard& s = shard_of(name);
  std::lock_guard<std::mutex> lock(s.mutex);
  auto it = s.map.find(name);
  if (it == s.map.end()) return {};
  const Topic& t = *it->second;
  return {t.total_, t.published_, t.delivered.load(std::memory_order_relaxed), t.dropped.load(std::memory_order_relaxed)};
}

}  // namespace ringlink
