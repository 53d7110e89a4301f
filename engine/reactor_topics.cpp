// Topics on one reactor: its links' subscriptions, the fan-out of a
// publication to them, and what each of them lost.
//
// A publication arrives as one command holding one framed buffer; every
// member queues a reference to it (no copy), under its own outbound policy:
// a full queue refuses it (reject), drops older frames (drop_oldest: those
// may be older publications, recognised by their trailer) or closes the
// link (close_slow). Nothing here waits for a slow member. Each loss is
// counted on its topic and noted as a gap of the member, reported through
// Handler::on_topic_gap before a later publication of that topic. With
// permessage-deflate, members without context takeover share a copy
// compressed once per window (Reactor::frame_for_many), which keeps the
// publication's trailer so that its loss is still recognised.
#include "engine/reactor_internal.hpp"

namespace ringlink {

SubscribeResult Reactor::subscribe(LinkId id, std::shared_ptr<Topic> topic, std::uint64_t since) noexcept {
  if (registry_ == nullptr || !topic) return SubscribeResult::closed;
  SubscribeResult r = SubscribeResult::closed;
  Link* l = find(id);
  if (l != nullptr && l->is(LinkState::open)) {
    switch (members_.add(id, topic, since)) {
      case TopicMembers::Added::added:
        return SubscribeResult::subscribed;
      case TopicMembers::Added::duplicate:
        r = SubscribeResult::already;
        break;
      case TopicMembers::Added::link_cap:
        metrics_.topic_link_cap.add();
        r = SubscribeResult::refused_link_cap;
        break;
      case TopicMembers::Added::no_memory:
        metrics_.out_of_memory.add();
        r = SubscribeResult::not_posted;
        break;
    }
  }
  registry_->release(*topic, index_);
  return r;
}

bool Reactor::unsubscribe(LinkId id, const std::shared_ptr<Topic>& topic) noexcept {
  if (registry_ == nullptr || !members_.remove(id, topic.get())) return false;
  registry_->release(*topic, index_);
  return true;
}

// The link is ending: it leaves every topic (the registry forgets a topic
// whose last subscriber this was, and the broker bridge its channel).
void Reactor::leave_topics(Link& l) noexcept {
  if (registry_ == nullptr) return;
  members_.remove_all(l.id(), [&](Topic& t) { registry_->release(t, index_); });
}

// May a gap be reported now, ahead of a publication of `total` bytes? The
// notice the handler sends is a data frame like any other: under reject it
// is reported when the publication after it fits (a queued frame is never
// dropped); under drop_oldest only into an empty queue, where it goes first
// and is written before anything could push it out.
bool Reactor::may_report_gap(Link& l, std::size_t total) const noexcept {
  const SendQueue* q = l.sendq_;
  if (q == nullptr || q->empty()) return true;
  return cfg_.outbound_policy != OutboundPolicy::drop_oldest && q->fits_data(total, cfg_.max_queued_bytes);
}

void Reactor::report_gaps(Link& l, Topic& t) noexcept {
  for (const TopicMembers::Gap& g : members_.take_gaps(l.id(), &t)) {
    if (!l.is(LinkState::open)) return;
    metrics_.topic_gaps.add();
    call_handler(l, [&] { handler_.on_topic_gap(l, t.name(), g.first, g.count); });
  }
}

void Reactor::fan_out(Command& cmd) noexcept {
  Topic* t = cmd.topic.get();
  const std::vector<TopicMembers::Member>* members = t != nullptr ? members_.members(t) : nullptr;
  if (members == nullptr) return;
  // The members are copied first: a send may end a link, a handler may
  // subscribe or unsubscribe, and either changes the table under the loop.
  try {
    fanout_scratch_.assign(members->begin(), members->end());
  } catch (const std::bad_alloc&) {
    metrics_.out_of_memory.add();
    metrics_.topic_dropped.add(members->size());
    t->dropped.fetch_add(members->size(), std::memory_order_relaxed);
    for (const auto& m : *members) members_.note_lost(m.link, t, cmd.seq);
    return;
  }
  const PayloadRef& frame = cmd.payload;
  const std::size_t total = frame.frame_header().size() + frame.size();
  CompressedOnce once;   // as a broadcast: compressed once per window here
  std::uint64_t delivered = 0, dropped = 0;
  for (const TopicMembers::Member& m : fanout_scratch_) {
    if (cmd.seq < m.since) continue;   // numbered before it joined (it subscribed on this thread)
    Link* l = find(m.link);
    if (l == nullptr || !l->is(LinkState::open)) continue;
    // This reactor's ring refused earlier publications of the topic.
    if (cmd.missed_count != 0) members_.note_lost(m.link, t, cmd.missed_first, cmd.missed_count);
    if (members_.any_gaps() && may_report_gap(*l, total)) {
      report_gaps(*l, *t);
      if (!l->is(LinkState::open)) continue;
    }
    const SendResult r = send_frame(*l, cmd.op, frame.bytes(), frame_for_many(*l, frame, cmd.op, once));
    if (r == SendResult::queued || r == SendResult::queued_dropping_older) {
      ++delivered;
    } else {
      ++dropped;
      members_.note_lost(m.link, t, cmd.seq);
    }
    if (!lost_.empty()) settle_lost();
  }
  fanout_scratch_.clear();
  if (fanout_scratch_.capacity() > 65536) std::vector<TopicMembers::Member>().swap(fanout_scratch_);
  metrics_.topic_delivered.add(delivered);
  metrics_.topic_dropped.add(dropped);
  t->delivered.fetch_add(delivered, std::memory_order_relaxed);
  if (dropped != 0) t->dropped.fetch_add(dropped, std::memory_order_relaxed);
}

// Called by the outbound policy for each frame it drops from a queue:
// publications are noted here and settled after the send that dropped
// them, outside the queue's code.
void Reactor::note_dropped_frame(LinkId link, const SendFrame& f) noexcept {
  if (registry_ == nullptr || !f.payload) return;
  if (auto tag = publication_tag(f.payload)) {
    if (!push_nothrow(lost_, Lost{link, *tag})) metrics_.out_of_memory.add();
  }
}

void Reactor::settle_lost() noexcept {
  std::vector<Lost> batch;
  batch.swap(lost_);
  for (const Lost& x : batch) {
    Topic* t = members_.topic(x.tag.topic_serial);
    if (t == nullptr) continue;   // nobody here subscribes any more: nothing to tell
    metrics_.topic_dropped.add();
    t->dropped.fetch_add(1, std::memory_order_relaxed);
    members_.note_lost(x.link, t, x.tag.seq);
  }
  batch.clear();
  if (lost_.empty()) lost_.swap(batch);   // keep the capacity
}

}  // namespace ringlink
