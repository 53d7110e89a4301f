// Built without nats.c (-Dnats=disabled, or libnats-dev missing): nats://
// brokers are refused at Server::start with -EPROTONOSUPPORT.
#include "engine/broker_client.hpp"

namespace ringlink {

std::unique_ptr<BrokerClient> make_nats_client() { return nullptr; }

}  // namespace ringlink
