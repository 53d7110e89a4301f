// TopicRegistry: the server-wide table of topics that have subscribers, and
// each topic's publication counter. Any thread. It knows which reactors hold
// subscribers of a topic (a count per reactor), not which links: each
// reactor keeps its own members (engine/topic_members.hpp), so a publication
// crosses threads once per reactor, never once per subscriber.
//
//   TopicRegistry reg{reactors, max_topics};
//   auto t = reg.acquire("news", reactor_of_link);   // before posting the subscribe
//   reg.publish("news", [&](Topic& t, std::uint64_t seq) { ...post to t's reactors... });
//   reg.release(*t, reactor_of_link);                  // the reactor removed the member
//
// A topic exists while any reactor counts a subscriber or a subscribe is on
// its way (acquire counts it before the command is posted, so a publication
// made after subscribe() returned always reaches that reactor). The last
// release forgets it, and its sequence restarts at 1 if it comes back.
// Lookups hash the name into one of a few shards, each with its own mutex:
// publishers of different topics rarely meet, and one topic's publications
// are numbered and posted under one lock, so every reactor receives them in
// sequence order.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace ringlink {

inline constexpr std::size_t max_topic_length = 255;

// A name is 1..255 bytes of anything but NUL (the broker channel and the
// echo tool's text commands carry it).
bool valid_topic(std::string_view name) noexcept;

// One topic. Reactors hold a shared_ptr while a command names it, so its
// address is never reused while any reactor may still look it up.
class Topic {
 public:
  Topic(std::string name, std::size_t reactors);
  const std::string& name() const noexcept { return name_; }
  // Unique in the process, never reused: what a queued frame names its topic by.
  std::uint64_t serial() const noexcept { return serial_; }

  // Publications lost to this topic's subscribers: refused by a link's
  // outbound policy, dropped from its queue, or not posted to a reactor
  // whose command ring was full (one per subscriber missed). Any thread.
  std::atomic<std::uint64_t> dropped{0};
  // Publications queued on subscribers' links. Any thread.
  std::atomic<std::uint64_t> delivered{0};

 private:
  friend class TopicRegistry;
  std::string name_;
  std::uint64_t serial_;
  // Guarded by the shard's mutex.
  std::vector<std::uint32_t> per_reactor_;  // subscribers (and subscribes on their way) per reactor
  std::uint64_t total_ = 0;
  std::uint64_t next_seq_ = 1;
  std::uint64_t published_ = 0;
  // Per reactor: publications it missed (command ring full), told with the next one that gets there.
  struct Missed {
    std::uint64_t first = 0;
    std::uint64_t count = 0;
  };
  std::vector<Missed> missed_;
};

class TopicRegistry {
 public:
  // Told (under the topic's shard lock, so in order for one topic) when a
  // topic gets its first subscriber on this node, and when its last one
  // goes. The broker bridge subscribes and unsubscribes its channel here.
  struct Observer {
    virtual ~Observer() = default;
    virtual void on_topic_added(const std::string& name) noexcept = 0;
    virtual void on_topic_removed(const std::string& name) noexcept = 0;
  };

  TopicRegistry(std::size_t reactors, std::size_t max_topics);
  TopicRegistry(const TopicRegistry&) = delete;
  TopicRegistry& operator=(const TopicRegistry&) = delete;

  // Set before the first acquire (Server::start does); atomic so that a
  // later setter publishes the observer it points to.
  void set_observer(Observer* o) noexcept { observer_.store(o, std::memory_order_release); }

  // Counts one subscriber (on its way) of `name` on `reactor`, creating the
  // topic. `since` gets the sequence number of the next publication: the
  // first one the subscriber may receive. Null when the name is invalid,
  // when a new topic would pass max_topics (counted: refused_server_cap()),
  // or memory ran out.
  std::shared_ptr<Topic> acquire(std::string_view name, std::uint32_t reactor, std::uint64_t* since = nullptr);
  // Undoes one acquire. The last release of a topic forgets it.
  void release(Topic& topic, std::uint32_t reactor) noexcept;
  // The topic if it exists now (a reactor may still be removing its last member).
  std::shared_ptr<Topic> find(std::string_view name);

  // What fan_out is given per reactor with subscribers: the publication's
  // number and what that reactor missed before it.
  struct Delivery {
    std::uint32_t reactor;
    std::uint32_t subscribers;     // counted on that reactor now
    std::uint64_t missed_first;    // 0: nothing missed
    std::uint64_t missed_count;
  };
  // Numbers a publication of `name` and calls post(topic, seq, delivery) for
  // each reactor with subscribers, under the shard's lock. post returns
  // false when the reactor's ring refused it: its subscribers are counted as
  // dropped and that reactor is told of the gap with its next publication.
  // Returns the sequence number, or 0 when the topic has no subscribers
  // (nothing else is done: one hash and one lock).
  struct Outcome {
    std::uint64_t seq = 0;
    std::size_t reached = 0;       // subscribers on reactors that took it
    std::size_t not_posted = 0;    // subscribers on reactors whose ring was full
  };
  template <class Post>
  Outcome publish(std::string_view name, Post&& post);

  // One topic's counters now (zeros when it does not exist).
  struct Stats {
    std::uint64_t subscribers = 0, published = 0, delivered = 0, dropped = 0;
  };
  Stats stats(std::string_view name);

  // Counters (any thread, relaxed).
  std::size_t topics() const noexcept { return topics_.load(std::memory_order_relaxed); }
  std::uint64_t refused_server_cap() const noexcept { return refused_.load(std::memory_order_relaxed); }
  std::uint64_t published() const noexcept { return published_.load(std::memory_order_relaxed); }
  std::uint64_t published_unheard() const noexcept { return unheard_.load(std::memory_order_relaxed); }

 private:
  static constexpr std::size_t shard_count = 16;
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  struct Shard {
    std::mutex mutex;
    std::unordered_map<std::string, std::shared_ptr<Topic>, Hash, std::equal_to<>> map;
  };
  Shard& shard_of(std::string_view name) noexcept { return shards_[Hash{}(name) % shard_count]; }

  std::size_t reactors_;
  std::size_t max_topics_;
  std::atomic<Observer*> observer_{nullptr};
  std::array<Shard, shard_count> shards_;
  std::atomic<std::size_t> topics_{0};
  std::atomic<std::uint64_t> refused_{0};
  std::atomic<std::uint64_t> published_{0};
  std::atomic<std::uint64_t> unheard_{0};
};

template <class Post>
TopicRegistry::Outcome TopicRegistry::publish(std::string_view name, Post&& post) {
  Outcome out;
  Shard& s = shard_of(name);
  std::lock_guard<std::mutex> lock(s.mutex);
  auto it = s.map.find(name);
  if (it == s.map.end()) {
    unheard_.fetch_add(1, std::memory_order_relaxed);
    return out;
  }
  Topic& t = *it->second;
  out.seq = t.next_seq_++;
  ++t.published_;
  published_.fetch_add(1, std::memory_order_relaxed);
  for (std::uint32_t r = 0; r < reactors_; ++r) {
    const std::uint32_t n = t.per_reactor_[r];
    if (n == 0) continue;
    Topic::Missed& m = t.missed_[r];
    if (post(it->second, out.seq, Delivery{r, n, m.first, m.count})) {
      out.reached += n;
      m = {};
    } else {
      out.not_posted += n;
      t.dropped.fetch_add(n, std::memory_order_relaxed);
      if (m.count == 0) m.first = out.seq;
      ++m.count;
    }
  }
  return out;
}

}  // namespace ringlink
