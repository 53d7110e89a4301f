// ringlink.hpp: everything an application needs to embed ringlink, in one
// include. A complete server that echoes every message on ws://127.0.0.1:9001/
// and stops on Ctrl-C:
//
//   #include <csignal>
//   #include <memory>
//   #include <vector>
//   #include "engine/ringlink.hpp"
//
//   // The one message a full send queue refused: reading is paused at once,
//   // so there is never a second.
//   struct Held { ringlink::Opcode op; std::vector<std::byte> bytes; };
//
//   struct Echo : ringlink::Handler {
//     void on_message(ringlink::Link& link, std::span<std::byte> msg, ringlink::Opcode op) override {
//       if (link.send(msg, op) != ringlink::SendResult::backpressured) return;
//       link.user_data() = new Held{op, {msg.begin(), msg.end()}};  // msg is borrowed: copy
//       link.pause_reading();                  // TCP now pushes back on the peer
//     }
//     void on_drain(ringlink::Link& link) override {   // queue empty: it takes one message
//       std::unique_ptr<Held> held{static_cast<Held*>(std::exchange(link.user_data(), nullptr))};
//       if (held) (void)link.send(held->bytes, held->op);
//       link.resume_reading();
//     }
//     void on_close(ringlink::Link& link, std::uint16_t, std::string_view) override {
//       delete static_cast<Held*>(link.user_data());
//     }
//   };
//
//   int main() {
//     sigset_t stop;                             // blocked before start(): the
//     sigemptyset(&stop);                        // engine's threads inherit the
//     sigaddset(&stop, SIGINT);                  // mask, so sigwait below gets
//     sigaddset(&stop, SIGTERM);                 // the signal
//     pthread_sigmask(SIG_BLOCK, &stop, nullptr);
//
//     Echo echo;
//     ringlink::ServerConfig cfg;
//     cfg.port = 9001;
//     ringlink::Server server{cfg, echo};
//     if (server.start() < 0) return 1;         // -errno: port in use, ...
//     int sig = 0;
//     sigwait(&stop, &sig);
//     server.stop(std::chrono::seconds(5));     // close 1001 to every link, flush, join
//   }
//
// (examples/echo.cpp is this program with a port argument; tests/embed
// compiles this comment, so it stays true.)
//
// Build it against the installed library:
//   c++ -std=c++20 echo.cpp $(pkg-config --cflags --libs ringlink)
// or, as a meson subproject: dependency('ringlink') (see docs/embedding.md).
//
// What is where:
//   Server        engine/server.hpp         start/stop, send/close/broadcast by LinkId from any thread
//   Handler       engine/handler.hpp        the callbacks you implement (reactor thread unless noted)
//   Link          engine/link.hpp           one connection, inside callbacks only (its reactor thread)
//   ServerConfig  engine/server_config.hpp  runtime settings: address, reactors, timeouts, policies
//   LinkId, SendResult, policies            engine/types.hpp
//   PayloadRef    engine/payload.hpp        shared, reference-counted bytes (encode once, send many)
//   MetricsSnapshot, CloseReason            engine/metrics.hpp
//   Opcode, close_code                      protocol/frame.hpp
//   ConnectRequest engine/connect_request.hpp  a client link to open (Server::connect); SocketAddress,
//                 resolve_address in engine/socket.hpp
//   ringlink::config::*                     the compile-time flags this library was built with
//   TlsConfig     engine/tls_config.hpp     wss://: certificates, SNI, versions, ciphers
//                 (ServerConfig::tls; ConnectRequest::tls for clients)
//
// wss:// (a build with the `tls` feature, the default when libssl-dev is
// there): name a certificate and key, and a TLS listener opens beside the
// plain one (set listen_plain = false to serve TLS only):
//
//   cfg.tls.cert_file = "chain.pem";     // PEM chain, leaf first
//   cfg.tls.key_file = "key.pem";
//   cfg.tls.port = 9443;                 // Server::tls_port() tells when 0
//   ringlink::Server server{cfg, echo};  // start(): -EINVAL when a file does not load
//   ...
//   server.reload_tls(&why);             // renewed files: new handshakes use them
//
// Threads, in one paragraph: each reactor thread owns its links; Handler
// callbacks run on the link's reactor thread (on_worker_message on a worker
// thread) and a Link& is used there only, never kept. Anything else, from any
// thread, goes through Server with a LinkId and never blocks. Buffers handed
// to a callback are borrowed until it returns. docs/threading.md has the
// table of who may call what from where.
//
// Everything else under engine/ and protocol/ is the implementation: those
// headers are installed because these include them, not to be used directly;
// they may change between versions.
#pragma once

#include "engine/connect_request.hpp"
#include "engine/handler.hpp"
#include "engine/link.hpp"
#include "engine/metrics.hpp"
#include "engine/payload.hpp"
#include "engine/server.hpp"
#include "engine/server_config.hpp"
#include "engine/socket.hpp"        // SocketAddress and resolve_address, for ConnectRequest
#include "engine/tls_config.hpp"
#include "engine/types.hpp"
#include "protocol/frame.hpp"
#include "ringlink_config.hpp"
