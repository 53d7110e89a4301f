// The server's TLS certificates and settings (an OpenSSL SSL_CTX and one per
// SNI entry), replaceable while links run. Built only with the `tls` feature;
// applications reach it through ServerConfig::tls and Server::reload_tls().
//
//   TlsServerContext ctx;
//   std::string why;
//   if (ctx.load(cfg.tls, &why) < 0) { /* nothing changed; `why` says what failed */ }
//   ssl_st* ssl = ctx.new_session();   // any thread: a server SSL on the current files
//
// load() builds a complete new set before it swaps it in, so a failure keeps
// the old one; sessions made earlier keep theirs (OpenSSL counts references)
// until they end.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "engine/tls_config.hpp"

struct ssl_st;
struct ssl_ctx_st;

namespace ringlink {

class TlsServerContext {
 public:
  TlsServerContext() = default;
  ~TlsServerContext();
  TlsServerContext(const TlsServerContext&) = delete;
  TlsServerContext& operator=(const TlsServerContext&) = delete;

  // Any thread. Returns 0, or -EINVAL (a file missing or unreadable, a key
  // that does not match its certificate, a wrong passphrase, a cipher list
  // OpenSSL rejects) or -ENOMEM, with the reason in *why.
  int load(const TlsConfig& cfg, std::string* why = nullptr) noexcept;
  // Any thread. A new server-side SSL, or null (nothing loaded, out of memory).
  ssl_st* new_session() noexcept;

 private:
  std::mutex mutex_;
  ssl_ctx_st* current_ = nullptr;  // one reference held here
};

// Client-side settings for wss:// links of one reactor, made on first use
// per (ca_file, insecure) and kept. Reactor thread.
class TlsClientContexts {
 public:
  TlsClientContexts();
  ~TlsClientContexts();
  TlsClientContexts(const TlsClientContexts&) = delete;
  TlsClientContexts& operator=(const TlsClientContexts&) = delete;

  // A client SSL that sends `server_name` (SNI) and, unless cfg.insecure,
  // verifies the server's chain against cfg.ca_file (or the system store)
  // and its name against `server_name`. Null with *why set on failure.
  ssl_st* new_session(const TlsClientConfig& cfg, const std::string& server_name, std::string* why) noexcept;

 private:
  struct Entry;
  std::unique_ptr<Entry> entries_;
};

// The OpenSSL error queue as one line, emptied ("" when empty).
std::string tls_error_text();

// A context loaded from `cfg`, or null with *error (-errno) and *why set.
std::shared_ptr<TlsServerContext> make_tls_server_context(const TlsConfig& cfg, int* error, std::string* why);

// Is the kernel's TLS offload (the `tls` ULP, for kTLS) available? Read
// from /proc/sys/net/ipv4/tcp_available_ulp; ringlink does not use it yet.
bool ktls_available() noexcept;

}  // namespace ringlink
