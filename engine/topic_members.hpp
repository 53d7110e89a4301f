// TopicMembers: which of one reactor's links subscribe to which topics, and
// the publications each of them missed. Reactor thread only; no I/O.
//
//   TopicMembers m{max_topics_per_link};
//   m.add(link, topic, since);                 // O(1)
//   for (const auto& mem : *m.members(topic.get())) send to mem.link;
//   m.remove(link, topic.get());               // O(1)
//   m.remove_all(link, [&](Topic& t) { registry.release(t, reactor); });   // on close
//
// A topic's members sit in a vector (fan-out walks it); each (link, topic)
// pair is in a hash map with its positions in the topic's vector and in the
// link's list of topics, so that removing one pair swaps the last element
// into its place in both: no scan, whatever the numbers.
#pragma once

#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "engine/topics.hpp"
#include "engine/types.hpp"

namespace ringlink {

class TopicMembers {
 public:
  struct Member {
    LinkId link;
    std::uint64_t since;   // the first publication it may receive (earlier ones were numbered before it joined)
  };
  // Publications a member missed, not yet reported: seqs first..first+count-1.
  struct Gap {
    std::uint64_t first = 0;
    std::uint64_t count = 0;
  };

  explicit TopicMembers(std::size_t max_per_link) noexcept : max_per_link_(max_per_link) {}
  TopicMembers(const TopicMembers&) = delete;
  TopicMembers& operator=(const TopicMembers&) = delete;

  enum class Added : std::uint8_t { added, duplicate, link_cap, no_memory };
  // Nothing changes unless the answer is `added`.
  Added add(LinkId link, std::shared_ptr<Topic> topic, std::uint64_t since) noexcept;
  // True when the pair existed (and is gone now).
  bool remove(LinkId link, const Topic* topic) noexcept;
  // Every topic of `link` (matched by slot: a closing link's id), calling
  // on_removed(Topic&) for each after it left.
  template <class F>
  void remove_all(LinkId link, F&& on_removed) noexcept;

  // This reactor's members of `topic`, or null when it has none.
  const std::vector<Member>* members(const Topic* topic) const noexcept;
  // The topic of that serial while this reactor has members of it, else null.
  Topic* topic(std::uint64_t serial) const noexcept;
  bool subscribed(LinkId link, const Topic* topic) const noexcept;
  std::size_t topics_of(LinkId link) const noexcept;
  std::size_t topics() const noexcept { return topics_.size(); }
  std::size_t pairs() const noexcept { return pairs_.size(); }

  // Notes that `link` missed publications first..first+count-1 of `topic`
  // (those before its `since` are ignored), extending the last gap noted
  // when they continue it. A member keeps up to max_gaps separate gaps
  // until they are taken; past that the last one stretches over the next
  // loss, so it also spans the publications delivered in between (a report
  // may then cover numbers the client did receive; it never misses one).
  void note_lost(LinkId link, const Topic* topic, std::uint64_t first, std::uint64_t count = 1) noexcept;
  static constexpr std::size_t max_gaps = 32;
  // Takes the gaps noted for the pair, oldest first (empty when none).
  std::vector<Gap> take_gaps(LinkId link, const Topic* topic) noexcept;
  bool any_gaps() const noexcept { return !gaps_.empty(); }

 private:
  struct Key {
    std::uint32_t slot;
    std::uint64_t topic;   // Topic::serial(): never reused, unlike an address
    friend bool operator==(const Key& a, const Key& b) noexcept { return a.slot == b.slot && a.topic == b.topic; }
  };
  struct KeyHash {
    std::size_t operator()(const Key& k) const noexcept {
      return std::hash<std::uint64_t>{}(k.topic) ^ (static_cast<std::size_t>(k.slot) * 0x9E3779B97F4A7C15ull);
    }
  };
  struct Pos {
    std::uint32_t in_topic;   // index in the topic's members
    std::uint32_t in_link;    // index in the link's topics
  };
  struct Local {
    std::shared_ptr<Topic> topic;   // keeps the Topic alive while members refer to it
    std::vector<Member> members;
  };
  void erase_pair(std::unordered_map<Key, Pos, KeyHash>::iterator it) noexcept;

  std::size_t max_per_link_;
  std::unordered_map<std::uint64_t, Local> topics_;   // by serial
  std::unordered_map<std::uint32_t, std::vector<Topic*>> links_;   // by slot
  std::unordered_map<Key, Pos, KeyHash> pairs_;
  std::unordered_map<Key, std::vector<Gap>, KeyHash> gaps_;
};

template <class F>
void TopicMembers::remove_all(LinkId link, F&& on_removed) noexcept {
  auto it = links_.find(link.slot());
  if (it == links_.end()) return;
  // Popped from the back: erase_pair then moves nothing in this list.
  while (true) {
    it = links_.find(link.slot());
    if (it == links_.end() || it->second.empty()) break;
    Topic* t = it->second.back();
    auto local = topics_.find(t->serial());
    auto p = pairs_.find(Key{link.slot(), t->serial()});
    if (local == topics_.end() || p == pairs_.end()) {  // cannot happen; never loop forever
      it->second.pop_back();
      continue;
    }
    std::shared_ptr<Topic> keep = local->second.topic;
    erase_pair(p);
    on_removed(*keep);
  }
}

}  // namespace ringlink
