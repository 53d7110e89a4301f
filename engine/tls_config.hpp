// TLS settings of a server's wss:// listener (ServerConfig::tls). Setting
// cert_file turns the listener on; everything else has a default.
//
//   cfg.tls.cert_file = "/etc/ringlink/chain.pem";   // leaf first, then intermediates
//   cfg.tls.key_file = "/etc/ringlink/key.pem";
//   cfg.tls.port = 443;                              // the wss:// listener
//   cfg.tls.sni.push_back({"*.example.org", "wild.pem", "wild.key"});
//
// Files are read at Server::start() and again at Server::reload_tls(); a
// file that fails to load is an error there, never a silent fallback.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ringlink {

enum class TlsVersion : std::uint8_t { tls1_2, tls1_3 };

// One certificate chosen by the name the client asks for (SNI).
struct TlsCertificate {
  // "example.org" matches that name exactly (case-insensitive);
  // "*.example.org" matches one label in its place ("a.example.org", not
  // "example.org" nor "a.b.example.org"). An exact name wins over a
  // wildcard; a name nothing matches gets the default certificate.
  std::string server_name;
  std::string cert_file;       // PEM chain, leaf first
  std::string key_file;        // PEM private key
  std::string key_passphrase;  // empty: the key is not encrypted
};

struct TlsConfig {
  // The default certificate (clients without SNI, names no entry matches).
  std::string cert_file;
  std::string key_file;
  std::string key_passphrase;
  std::vector<TlsCertificate> sni;
  // Port of the TLS listener (0: the kernel picks; Server::tls_port()
  // tells). The plain listener keeps ServerConfig::port unless
  // ServerConfig::listen_plain is false.
  std::uint16_t port = 0;
  TlsVersion min_version = TlsVersion::tls1_2;  // 1.3 is always offered
  // OpenSSL cipher strings; empty keeps OpenSSL's defaults.
  std::string ciphers;        // TLS 1.2 (SSL_CTX_set_cipher_list syntax)
  std::string ciphersuites;   // TLS 1.3 (SSL_CTX_set_ciphersuites syntax)

  bool enabled() const noexcept { return !cert_file.empty(); }
};

// A client link's TLS (ConnectRequest::tls): wss://.
struct TlsClientConfig {
  bool enabled = false;
  // The name sent in SNI and checked against the server's certificate;
  // empty: the host of the request.
  std::string server_name;
  std::string ca_file;        // PEM bundle to trust; empty: the system store
  bool insecure = false;      // skip certificate verification (test certificates only)
};

}  // namespace ringlink
