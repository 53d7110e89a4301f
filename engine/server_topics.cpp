// Server's topic API: subscribe and unsubscribe go to the link's reactor (at
// once when called on that reactor's thread), a publication is framed once
// and posted to each reactor that holds subscribers.
#include <string>

#include "engine/publication.hpp"
#include "engine/server.hpp"

namespace ringlink {

SubscribeResult Server::subscribe(LinkId id, std::string_view topic) {
  if (!valid_topic(topic)) return SubscribeResult::invalid_topic;
  if (!topics_ || id.reactor() >= reactors_.size()) return SubscribeResult::closed;
  Reactor& r = *reactors_[id.reactor()];
  if (!r.alive(id)) return SubscribeResult::closed;
  std::uint64_t since = 0;
  std::shared_ptr<Topic> t = topics_->acquire(topic, id.reactor(), &since);
  if (!t) return SubscribeResult::refused_server_cap;
  if (Reactor::current() == &r) return r.subscribe(id, std::move(t), since);
  Command c;
  c.kind = Command::Kind::subscribe;
  c.id = id;
  c.topic = t;
  c.seq = since;
  if (r.post(std::move(c))) return SubscribeResult::posted;
  topics_->release(*t, id.reactor());
  return SubscribeResult::not_posted;
}

bool Server::unsubscribe(LinkId id, std::string_view topic) {
  if (!topics_ || !valid_topic(topic) || id.reactor() >= reactors_.size()) return false;
  Reactor& r = *reactors_[id.reactor()];
  if (!r.alive(id)) return false;
  std::shared_ptr<Topic> t = topics_->find(topic);
  if (!t) return false;
  if (Reactor::current() == &r) return r.unsubscribe(id, t);
  Command c;
  c.kind = Command::Kind::unsubscribe;
  c.id = id;
  c.topic = std::move(t);
  return r.post(std::move(c));
}

PublishResult Server::publish(std::string_view topic, std::span<const std::byte> payload, Opcode op) {
  PublishResult res = publish_local(topic, payload, op);
  if (bridge_ && !res.invalid_topic) (void)bridge_->forward(topic, payload, op);
  return res;
}

PublishResult Server::publish_local(std::string_view topic, std::span<const std::byte> payload, Opcode op) {
  PublishResult res;
  if (!valid_topic(topic)) {
    res.invalid_topic = true;
    return res;
  }
  if (!topics_) return res;
  // Framed on the first reactor that has subscribers, under the topic's
  // lock: a topic nobody here subscribes to costs no copy.
  PayloadRef frame;
  const TopicRegistry::Outcome out = topics_->publish(
      topic, [&](const std::shared_ptr<Topic>& t, std::uint64_t seq, const TopicRegistry::Delivery& d) {
        if (!frame) frame = frame_publication(payload, op, *t, seq);
        if (!frame) return false;
        Command c;
        c.kind = Command::Kind::publish;
        c.op = op;
        c.payload = frame;
        c.topic = t;
        c.seq = seq;
        c.missed_first = d.missed_first;
        c.missed_count = d.missed_count;
        return reactors_[d.reactor]->post(std::move(c));
      });
  res.seq = out.seq;
  res.subscribers = out.reached;
  res.dropped = out.not_posted;
  return res;
}

PublishResult Server::publish_text(std::string_view topic, std::string_view text) {
  return publish(topic, std::as_bytes(std::span<const char>(text.data(), text.size())), Opcode::text);
}

Server::TopicStats Server::topic_stats(std::string_view topic) const {
  if (!topics_) return {};
  const TopicRegistry::Stats s = topics_->stats(topic);
  return {s.subscribers, s.published, s.delivered, s.dropped};
}

namespace {

void server_series(std::string& out, const char* name, const char* type, const char* help, std::uint64_t v) {
  write_prometheus_header(out, name, type, help);
  out += name;
  out += ' ';
  out += std::to_string(v);
  out += '\n';
}

}  // namespace

void Server::write_metrics(std::string& out) const {
  std::vector<const ReactorMetrics*> all;
  for (const auto& r : reactors_) all.push_back(&r->metrics());
  write_prometheus(out, all);
  if (!topics_) return;
  server_series(out, "ringlink_topics", "gauge", "Topics with subscribers on this server.", topics_->topics());
  server_series(out, "ringlink_topic_published_total", "counter", "Publications made to topics with subscribers.",
                topics_->published());
  server_series(out, "ringlink_topic_published_unheard_total", "counter",
                "Publications to topics without a local subscriber.", topics_->published_unheard());
  server_series(out, "ringlink_topic_refused_total", "counter", "Subscribes refused: max_topics reached.",
                topics_->refused_server_cap());
  if (!bridge_) return;
  const BrokerStats& b = bridge_->stats();
  auto get = [](const std::atomic<std::uint64_t>& v) { return v.load(std::memory_order_relaxed); };
  server_series(out, "ringlink_broker_up", "gauge", "1 while the broker bridge is connected.", get(b.up));
  server_series(out, "ringlink_broker_published_total", "counter", "Local publications handed to the bridge.",
                get(b.published));
  server_series(out, "ringlink_broker_forwarded_total", "counter", "Publications the broker took.", get(b.forwarded));
  server_series(out, "ringlink_broker_publish_failures_total", "counter",
                "Publications not forwarded: broker down, queue full or an error.", get(b.publish_failures));
  server_series(out, "ringlink_broker_received_total", "counter",
                "Other nodes' publications handed to the local fan-out.", get(b.received));
  server_series(out, "ringlink_broker_gaps_total", "counter", "Other nodes' publications that never arrived.",
                get(b.gaps));
  server_series(out, "ringlink_broker_epochs_total", "counter", "Publishing nodes met for the first time.",
                get(b.epochs));
  server_series(out, "ringlink_broker_reconnects_total", "counter", "Connections to the broker after the first.",
                get(b.reconnects));
  server_series(out, "ringlink_broker_connect_failures_total", "counter", "Failed connection attempts.",
                get(b.connect_failures));
}

}  // namespace ringlink
