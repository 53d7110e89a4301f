#include "engine/tls_context.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>

namespace ringlink {

namespace {

void set_why(std::string* why, std::string text) noexcept {
  if (why == nullptr) return;
  try {
    *why = std::move(text);
  } catch (...) {
  }
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

struct CtxFree {
  void operator()(SSL_CTX* c) const noexcept { SSL_CTX_free(c); }
};
using CtxPtr = std::unique_ptr<SSL_CTX, CtxFree>;

// The SNI table rides on the default SSL_CTX as ex_data and dies with it:
// a handshake still running on an older set (after a reload) keeps that
// set's context, and with it this table, alive.
struct SniTable {
  std::map<std::string, CtxPtr, std::less<>> names;  // lower case; "*.x" for wildcards
};

int sni_index() noexcept {
  static const int index = SSL_CTX_get_ex_new_index(
      0, nullptr, nullptr, nullptr, [](void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
        delete static_cast<SniTable*>(ptr);
      });
  return index;
}

int on_server_name(SSL* ssl, int*, void*) {
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (name == nullptr) return SSL_TLSEXT_ERR_NOACK;
  auto* table = static_cast<SniTable*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), sni_index()));
  if (table == nullptr || table->names.empty()) return SSL_TLSEXT_ERR_OK;
  std::string key;
  try {
    key = lower(name);
  } catch (...) {
    return SSL_TLSEXT_ERR_OK;
  }
  auto it = table->names.find(key);
  if (it == table->names.end()) {
    const std::size_t dot = key.find('.');
    if (dot != std::string::npos && dot > 0) {
      try {
        // Built by append, not "*" + substr: GCC 12 at -O3 warns falsely
        // (-Wrestrict) inside operator+ here.
        std::string wildcard(1, '*');
        wildcard.append(key, dot, std::string::npos);
        it = table->names.find(wildcard);
      } catch (...) {
        return SSL_TLSEXT_ERR_OK;
      }
    }
  }
  // An unknown name gets the default certificate, as most servers answer.
  if (it != table->names.end()) SSL_set_SSL_CTX(ssl, it->second.get());
  return SSL_TLSEXT_ERR_OK;
}

// WebSocket runs over HTTP/1.1: that is the one protocol we select. A client
// that offers only others (h2 alone) is answered without ALPN rather than
// refused: the upgrade request will show what it speaks.
int on_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned inlen, void*) {
  static const unsigned char ours[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, ours, sizeof ours, in, inlen) == OPENSSL_NPN_NEGOTIATED) {
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
  }
  return SSL_TLSEXT_ERR_NOACK;
}

// One certificate and key into `ctx`. The key is read here rather than by
// SSL_CTX_use_PrivateKey_file so that the passphrase is given directly
// (no callback state shared between contexts).
bool use_pair(SSL_CTX* ctx, const std::string& cert, const std::string& key, const std::string& pass, std::string* why) {
  if (SSL_CTX_use_certificate_chain_file(ctx, cert.c_str()) != 1) {
    set_why(why, "certificate " + cert + ": " + tls_error_text());
    return false;
  }
  BIO* bio = BIO_new_file(key.c_str(), "r");
  if (bio == nullptr) {
    set_why(why, "key " + key + ": " + tls_error_text());
    return false;
  }
  EVP_PKEY* pkey = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, const_cast<char*>(pass.c_str()));
  BIO_free(bio);
  if (pkey == nullptr) {
    set_why(why, "key " + key + " (wrong passphrase or not a PEM key): " + tls_error_text());
    return false;
  }
  const int used = SSL_CTX_use_PrivateKey(ctx, pkey);
  EVP_PKEY_free(pkey);
  if (used != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    set_why(why, "key " + key + " does not match certificate " + cert + ": " + tls_error_text());
    return false;
  }
  return true;
}

CtxPtr make_server_ctx(const TlsConfig& cfg, const std::string& cert, const std::string& key,
                       const std::string& pass, std::string* why) {
  CtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx) {
    set_why(why, "SSL_CTX_new: " + tls_error_text());
    return nullptr;
  }
  SSL_CTX_set_min_proto_version(ctx.get(), cfg.min_version == TlsVersion::tls1_3 ? TLS1_3_VERSION : TLS1_2_VERSION);
  // Renegotiation is refused: it lets a client make the server redo the
  // costly half of a handshake at will, past the handshake admission.
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
  // Idle links hold no record buffers; the copies are ours (a moved write
  // buffer is fine: records are sealed whole).
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (!cfg.ciphers.empty() && SSL_CTX_set_cipher_list(ctx.get(), cfg.ciphers.c_str()) != 1) {
    set_why(why, "ciphers \"" + cfg.ciphers + "\": " + tls_error_text());
    return nullptr;
  }
  if (!cfg.ciphersuites.empty() && SSL_CTX_set_ciphersuites(ctx.get(), cfg.ciphersuites.c_str()) != 1) {
    set_why(why, "ciphersuites \"" + cfg.ciphersuites + "\": " + tls_error_text());
    return nullptr;
  }
  SSL_CTX_set_alpn_select_cb(ctx.get(), on_alpn, nullptr);
  // Resumption rides on stateless tickets: no per-session state stays on
  // the server (the internal cache would keep one per handshake, up to
  // 20,480 by default, long after the links ended).
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
  if (!use_pair(ctx.get(), cert, key, pass, why)) return nullptr;
  return ctx;
}

}  // namespace

std::string tls_error_text() {
  std::string out;
  char buf[256];
  while (unsigned long e = ERR_get_error()) {
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  if (out.empty()) out = std::strerror(errno);
  return out;
}

std::shared_ptr<TlsServerContext> make_tls_server_context(const TlsConfig& cfg, int* error, std::string* why) {
  auto ctx = std::make_shared<TlsServerContext>();
  *error = ctx->load(cfg, why);
  if (*error < 0) return nullptr;
  return ctx;
}

bool ktls_available() noexcept {
  std::FILE* f = std::fopen("/proc/sys/net/ipv4/tcp_available_ulp", "r");
  if (f == nullptr) return false;
  char line[256] = {};
  const bool read = std::fgets(line, sizeof line, f) != nullptr;
  std::fclose(f);
  if (!read) return false;
  // Space-separated names: look for the word "tls".
  for (const char* p = line; (p = std::strstr(p, "tls")) != nullptr; p += 3) {
    const bool starts = p == line || p[-1] == ' ';
    const bool ends = p[3] == '\0' || p[3] == ' ' || p[3] == '\n';
    if (starts && ends) return true;
  }
  return false;
}

TlsServerContext::~TlsServerContext() { SSL_CTX_free(current_); }

int TlsServerContext::load(const TlsConfig& cfg, std::string* why) noexcept {
  ERR_clear_error();
  try {
    if (!cfg.enabled()) {
      set_why(why, "no certificate file configured");
      return -EINVAL;
    }
    CtxPtr main = make_server_ctx(cfg, cfg.cert_file, cfg.key_file, cfg.key_passphrase, why);
    if (!main) return -EINVAL;
    auto table = std::make_unique<SniTable>();
    for (const TlsCertificate& c : cfg.sni) {
      if (c.server_name.empty()) {
        set_why(why, "an SNI certificate without a server name: " + c.cert_file);
        return -EINVAL;
      }
      CtxPtr one = make_server_ctx(cfg, c.cert_file, c.key_file, c.key_passphrase, why);
      if (!one) return -EINVAL;
      table->names[lower(c.server_name)] = std::move(one);
    }
    SSL_CTX_set_tlsext_servername_callback(main.get(), on_server_name);
    if (SSL_CTX_set_ex_data(main.get(), sni_index(), table.get()) != 1) {
      set_why(why, "SSL_CTX_set_ex_data: " + tls_error_text());
      return -ENOMEM;
    }
    table.release();  // the context owns it now (freed with it)
    SSL_CTX* old = nullptr;
    {
      std::lock_guard lock(mutex_);
      old = current_;
      current_ = main.release();
    }
    SSL_CTX_free(old);
    return 0;
  } catch (const std::bad_alloc&) {
    set_why(why, "out of memory");
    return -ENOMEM;
  }
}

SSL* TlsServerContext::new_session() noexcept {
  std::lock_guard lock(mutex_);
  if (current_ == nullptr) return nullptr;
  SSL* ssl = SSL_new(current_);
  if (ssl != nullptr) SSL_set_accept_state(ssl);
  return ssl;
}

struct TlsClientContexts::Entry {
  std::string ca_file;
  bool insecure = false;
  CtxPtr ctx;
  std::unique_ptr<Entry> next;
};

TlsClientContexts::TlsClientContexts() = default;

TlsClientContexts::~TlsClientContexts() {
  // Unlinked one at a time: a long list must not recurse.
  while (entries_) entries_ = std::move(entries_->next);
}

SSL* TlsClientContexts::new_session(const TlsClientConfig& cfg, const std::string& server_name,
                                    std::string* why) noexcept {
  ERR_clear_error();
  try {
    Entry* e = entries_.get();
    while (e != nullptr && !(e->ca_file == cfg.ca_file && e->insecure == cfg.insecure)) e = e->next.get();
    if (e == nullptr) {
      auto fresh = std::make_unique<Entry>();
      fresh->ca_file = cfg.ca_file;
      fresh->insecure = cfg.insecure;
      fresh->ctx.reset(SSL_CTX_new(TLS_client_method()));
      if (!fresh->ctx) {
        set_why(why, "SSL_CTX_new: " + tls_error_text());
        return nullptr;
      }
      SSL_CTX* c = fresh->ctx.get();
      SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
      SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
      SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
      static const unsigned char alpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
      SSL_CTX_set_alpn_protos(c, alpn, sizeof alpn);
      if (!cfg.insecure) {
        const int ok = cfg.ca_file.empty() ? SSL_CTX_set_default_verify_paths(c)
                                           : SSL_CTX_load_verify_locations(c, cfg.ca_file.c_str(), nullptr);
        if (ok != 1) {
          set_why(why, "CA " + (cfg.ca_file.empty() ? std::string("system store") : cfg.ca_file) + ": " +
                           tls_error_text());
          return nullptr;
        }
        SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);
      }
      fresh->next = std::move(entries_);
      entries_ = std::move(fresh);
      e = entries_.get();
    }
    SSL* ssl = SSL_new(e->ctx.get());
    if (ssl == nullptr) {
      set_why(why, "SSL_new: " + tls_error_text());
      return nullptr;
    }
    SSL_set_connect_state(ssl);
    if (!server_name.empty()) {
      SSL_set_tlsext_host_name(ssl, server_name.c_str());
      // The certificate must name the host we meant (a name, or an address).
      if (!cfg.insecure) {
        X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        const bool ok = X509_VERIFY_PARAM_set1_ip_asc(param, server_name.c_str()) == 1 ||
                        X509_VERIFY_PARAM_set1_host(param, server_name.c_str(), 0) == 1;
        ERR_clear_error();  // set1_ip_asc fails for names, by design
        if (!ok) {
          SSL_free(ssl);
          set_why(why, "bad server name " + server_name);
          return nullptr;
        }
      }
    }
    return ssl;
  } catch (const std::bad_alloc&) {
    set_why(why, "out of memory");
    return nullptr;
  }
}

}  // namespace ringlink
