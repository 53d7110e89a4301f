// Built without hiredis (-Dredis=disabled, or libhiredis-dev missing):
// redis:// brokers are refused at Server::start with -EPROTONOSUPPORT.
#include "engine/broker_client.hpp"

namespace ringlink {

std::unique_ptr<BrokerClient> make_redis_client() { return nullptr; }

}  // namespace ringlink
