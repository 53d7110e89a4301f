// The engine every ringlink-load mode drives its links through, started the
// same way for all of them: client links only (no listener), the mode's
// thread count, the timeouts below, and no keepalive or idle timeout (a mode
// that pings does so on its own schedule, and measures the round trip).
//
//   std::unique_ptr<ringlink::Server> server;
//   if (!start_client_engine(server, handler, o.threads, error)) return false;
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "engine/server.hpp"

namespace ringlink::load {

inline constexpr std::uint32_t handshake_timeout_ms = 10'000;
// After our close is answered the client waits for the server's FIN; the
// engine can miss a FIN that arrives together with the close reply, so this
// bounds that wait (it costs a run its length at the very end, nothing else).
inline constexpr std::uint32_t close_timeout_ms = 1000;

// Makes and starts the engine into `server`; false with `error` said if it
// cannot start.
bool start_client_engine(std::unique_ptr<Server>& server, Handler& handler, unsigned threads, std::string& error);

}  // namespace ringlink::load
