// ConnectRequest: what Server::connect needs to open a client link.
//
//   ringlink::ConnectRequest req;
//   resolve_address("127.0.0.1", 8080, req.address);   // engine/socket.hpp
//   req.host_header = "127.0.0.1:8080";
//   req.path = "/chat";
//   req.tls.enabled = true;                // wss:// (verified against the system store)
//   server.connect(req);   // on_open, or on_connect_failed, follows
#pragma once

#include <string>

#include "engine/socket.hpp"
#include "engine/tls_config.hpp"
#include "protocol/deflate_negotiation.hpp"

namespace ringlink {

struct ConnectRequest {
  SocketAddress address;
  bool has_source = false;
  SocketAddress source;           // local address to bind (spreads source ports)
  std::string host_header;        // Host value
  std::string path = "/";
  std::string origin;
  std::string protocols;          // Sec-WebSocket-Protocol offer, comma-separated
  void* user_data = nullptr;      // becomes Link::user_data()
  // wss://: the TLS handshake comes before the upgrade. A failed one
  // reports on_connect_failed (Handler says which error).
  TlsClientConfig tls;
  // Offer permessage-deflate (with the meson feature `deflate`; ignored
  // without it). A server that answers what was not offered fails the
  // connection (on_connect_failed). The engine's DeflateConfig (threshold,
  // mem_level, memory_budget) applies to the link as on a server link.
  bool deflate = false;
  DeflateClientOptions deflate_offer;
};

}  // namespace ringlink
