#include "tools/load/client_engine.hpp"

#include <cstring>

namespace ringlink::load {

bool start_client_engine(std::unique_ptr<Server>& server, Handler& handler, unsigned threads, std::string& error) {
  ServerConfig cfg;
  cfg.listen = false;
  cfg.reactors = threads;
  cfg.handshake_timeout_ms = handshake_timeout_ms;
  cfg.close_timeout_ms = close_timeout_ms;
  cfg.ping_interval_ms = 0;
  cfg.idle_timeout_ms = 0;
  server = std::make_unique<Server>(cfg, handler);
  if (const int err = server->start(); err < 0) {
    error = std::string("cannot start the engine: ") + std::strerror(-err);
    return false;
  }
  return true;
}

}  // namespace ringlink::load
