#include "engine/topic_members.hpp"

#include <new>

namespace ringlink {

TopicMembers::Added TopicMembers::add(LinkId link, std::shared_ptr<Topic> topic, std::uint64_t since) noexcept {
  const Key key{link.slot(), topic->serial()};
  if (pairs_.find(key) != pairs_.end()) return Added::duplicate;
  try {
    std::vector<Topic*>& mine = links_[link.slot()];
    if (mine.size() >= max_per_link_) {
      if (mine.empty()) links_.erase(link.slot());
      return Added::link_cap;
    }
    Local& local = topics_[topic->serial()];
    if (!local.topic) local.topic = topic;
    // Room first, so that nothing below can fail halfway.
    local.members.reserve(local.members.size() + 1);
    mine.reserve(mine.size() + 1);
    pairs_.reserve(pairs_.size() + 1);
    const Pos pos{static_cast<std::uint32_t>(local.members.size()), static_cast<std::uint32_t>(mine.size())};
    pairs_.emplace(key, pos);
    local.members.push_back(Member{link, since});
    mine.push_back(topic.get());
  } catch (const std::bad_alloc&) {
    // Undo the empty containers the failed attempt may have made.
    if (auto l = links_.find(link.slot()); l != links_.end() && l->second.empty()) links_.erase(l);
    if (auto t = topics_.find(topic->serial()); t != topics_.end() && t->second.members.empty()) topics_.erase(t);
    return Added::no_memory;
  }
  return Added::added;
}

bool TopicMembers::remove(LinkId link, const Topic* topic) noexcept {
  auto it = pairs_.find(Key{link.slot(), topic->serial()});
  if (it == pairs_.end()) return false;
  // The slot may have a newer link than the caller's id: only its own pair goes.
  if (!(topics_.find(topic->serial())->second.members[it->second.in_topic].link == link)) return false;
  erase_pair(it);
  return true;
}

void TopicMembers::erase_pair(std::unordered_map<Key, Pos, KeyHash>::iterator it) noexcept {
  const Key key = it->first;
  const Pos pos = it->second;
  pairs_.erase(it);
  gaps_.erase(key);

  auto t = topics_.find(key.topic);
  std::vector<Member>& members = t->second.members;
  if (pos.in_topic + 1 != members.size()) {
    members[pos.in_topic] = members.back();
    pairs_.find(Key{members[pos.in_topic].link.slot(), key.topic})->second.in_topic = pos.in_topic;
  }
  members.pop_back();
  if (members.empty()) topics_.erase(t);

  auto l = links_.find(key.slot);
  std::vector<Topic*>& mine = l->second;
  if (pos.in_link + 1 != mine.size()) {
    mine[pos.in_link] = mine.back();
    pairs_.find(Key{key.slot, mine[pos.in_link]->serial()})->second.in_link = pos.in_link;
  }
  mine.pop_back();
  if (mine.empty()) links_.erase(l);
}

const std::vector<TopicMembers::Member>* TopicMembers::members(const Topic* topic) const noexcept {
  auto it = topics_.find(topic->serial());
  return it == topics_.end() ? nullptr : &it->second.members;
}

Topic* TopicMembers::topic(std::uint64_t serial) const noexcept {
  auto it = topics_.find(serial);
  return it == topics_.end() ? nullptr : it->second.topic.get();
}

bool TopicMembers::subscribed(LinkId link, const Topic* topic) const noexcept {
  auto it = pairs_.find(Key{link.slot(), topic->serial()});
  if (it == pairs_.end()) return false;
  return topics_.find(topic->serial())->second.members[it->second.in_topic].link == link;
}

std::size_t TopicMembers::topics_of(LinkId link) const noexcept {
  auto it = links_.find(link.slot());
  return it == links_.end() ? 0 : it->second.size();
}

void TopicMembers::note_lost(LinkId link, const Topic* topic, std::uint64_t first, std::uint64_t count) noexcept {
  const Key key{link.slot(), topic->serial()};
  auto p = pairs_.find(key);
  if (p == pairs_.end() || count == 0) return;
  const Member& m = topics_.find(topic->serial())->second.members[p->second.in_topic];
  if (!(m.link == link)) return;
  if (first + count <= m.since) return;
  if (first < m.since) {
    count -= m.since - first;
    first = m.since;
  }
  try {
    std::vector<Gap>& gs = gaps_[key];
    if (!gs.empty() && first == gs.back().first + gs.back().count) {
      gs.back().count += count;
    } else if (gs.size() >= max_gaps) {
      gs.back().count = first + count - gs.back().first;
    } else {
      gs.push_back(Gap{first, count});
    }
  } catch (const std::bad_alloc&) {
    // The loss is still counted per topic; only its report is lost.
  }
}

std::vector<TopicMembers::Gap> TopicMembers::take_gaps(LinkId link, const Topic* topic) noexcept {
  auto it = gaps_.find(Key{link.slot(), topic->serial()});
  if (it == gaps_.end()) return {};
  std::vector<Gap> g = std::move(it->second);
  gaps_.erase(it);
  return g;
}

}  // namespace ringlink
