#include "engine/worker_backlog.hpp"

#include <new>
#include <utility>

namespace ringlink {

WorkerBacklog::WorkerBacklog(std::size_t capacity) noexcept {
  try {
    nodes_.resize(capacity);
    links_.reserve(capacity);
    // Every link in a queue has a message here: neither queue outgrows it.
    fresh_.reserve(capacity);
    backlog_.reserve(capacity);
  } catch (const std::bad_alloc&) {
    nodes_.clear();
    return;
  }
  for (std::size_t i = 0; i < nodes_.size(); ++i) nodes_[i].next = i + 1 < nodes_.size() ? static_cast<std::uint32_t>(i + 1) : none;
  free_ = nodes_.empty() ? none : 0;
}

bool WorkerBacklog::add(InboundMessage& m) noexcept {
  if (full() || free_ == none) return false;
  const std::uint64_t key = m.id.raw();
  auto it = links_.find(key);
  const bool fresh = it == links_.end();
  if (fresh) {
    try {
      it = links_.emplace(key, Entry{}).first;
    } catch (...) {
      return false;
    }
  }
  const std::uint32_t n = free_;
  free_ = nodes_[n].next;
  nodes_[n].msg = std::move(m);
  nodes_[n].next = none;
  Entry& e = it->second;
  if (e.tail == none) {
    e.head = n;
  } else {
    nodes_[e.tail].next = n;
  }
  e.tail = n;
  ++size_;
  if (fresh) fresh_.push(key);
  return true;
}

bool WorkerBacklog::next(InboundMessage& out) noexcept {
  if (size_ == 0) return false;
  const std::uint64_t key = !fresh_.empty() ? fresh_.pop() : backlog_.pop();
  auto it = links_.find(key);  // present: a queued link has a message
  Entry& e = it->second;
  const std::uint32_t n = e.head;
  out = std::move(nodes_[n].msg);
  nodes_[n].msg = InboundMessage{};
  e.head = nodes_[n].next;
  nodes_[n].next = free_;
  free_ = n;
  --size_;
  if (e.head == none) {
    links_.erase(it);
  } else {
    backlog_.push(key);  // its turn again after every other link's
  }
  return true;
}

}  // namespace ringlink
