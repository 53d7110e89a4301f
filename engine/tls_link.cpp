#include "engine/tls_link.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cstring>
#include <new>

namespace ringlink {

// The BIO between OpenSSL and the reactor's buffers. Its data pointer is the
// TlsLink.
struct TlsBio {
  static int write(BIO* b, const char* data, std::size_t n, std::size_t* written) {
    auto* t = static_cast<TlsLink*>(BIO_get_data(b));
    BIO_clear_retry_flags(b);
    if (t == nullptr || t->out_ == nullptr) return 0;
    try {
      const auto* p = reinterpret_cast<const std::byte*>(data);
      t->out_->insert(t->out_->end(), p, p + n);
    } catch (const std::bad_alloc&) {
      return 0;  // OpenSSL reports a fatal error: the link ends
    }
    *written = n;
    return 1;
  }
  static int read(BIO* b, char* data, std::size_t n, std::size_t* got) {
    auto* t = static_cast<TlsLink*>(BIO_get_data(b));
    BIO_clear_retry_flags(b);
    if (t == nullptr || t->in_len_ == 0) {
      BIO_set_retry_read(b);  // not an end: more arrives with the next receive
      return 0;
    }
    const std::size_t k = n < t->in_len_ ? n : t->in_len_;
    std::memcpy(data, t->in_, k);
    t->in_ += k;
    t->in_len_ -= k;
    *got = k;
    return 1;
  }
  static long ctrl(BIO*, int cmd, long, void*) {
    switch (cmd) {
      case BIO_CTRL_FLUSH:
        return 1;  // written bytes are in the output already
      default:
        return 0;
    }
  }
  static int create(BIO* b) {
    BIO_set_init(b, 1);
    return 1;
  }

  static BIO_METHOD* method() noexcept {
    // Made once, never freed: it lives as long as the process.
    static BIO_METHOD* m = [] {
      BIO_METHOD* made = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "ringlink");
      if (made != nullptr) {
        BIO_meth_set_write_ex(made, write);
        BIO_meth_set_read_ex(made, read);
        BIO_meth_set_ctrl(made, ctrl);
        BIO_meth_set_create(made, create);
      }
      return made;
    }();
    return m;
  }
};

TlsLink::TlsLink(SSL* ssl) noexcept : ssl_(ssl) {
  if (ssl_ == nullptr) return;
  BIO_METHOD* m = TlsBio::method();
  if (m == nullptr) return;
  bio_ = BIO_new(m);
  if (bio_ == nullptr) return;
  BIO_set_data(bio_, this);
  // One BIO for both directions: SSL_set_bio takes the second reference
  // itself when both are the same, so ours is the only one to hand over.
  SSL_set_bio(ssl_, bio_, bio_);
  ok_ = true;
}

TlsLink::~TlsLink() {
  if (ssl_ != nullptr) {
    SSL_free(ssl_);  // frees the BIO's references too
  } else if (bio_ != nullptr) {
    BIO_free(bio_);
  }
}

int TlsLink::on_error(int ret) noexcept {
  switch (SSL_get_error(ssl_, ret)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:  // our BIO never refuses a write; kept for form
      return want_input;
    case SSL_ERROR_ZERO_RETURN:
      return peer_closed;
    default: {
      // The reason's library and code say whether the peer's certificate
      // was the problem (a client that does not trust ours alerts us, our
      // client rejects theirs).
      const unsigned long e = ERR_peek_error();
      const int reason = ERR_GET_REASON(e);
      const bool cert = reason == SSL_R_CERTIFICATE_VERIFY_FAILED || reason == SSL_R_SSLV3_ALERT_BAD_CERTIFICATE ||
                        reason == SSL_R_TLSV1_ALERT_UNKNOWN_CA || reason == SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN ||
                        reason == SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED ||
                        reason == SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE;
      failure_ = cert ? Failure::certificate : Failure::protocol;
      ERR_clear_error();
      return failed;
    }
  }
}

int TlsLink::read(std::span<std::byte> out) noexcept {
  if (failure_ != Failure::none) return failed;
  std::size_t got = 0;
  const int r = SSL_read_ex(ssl_, out.data(), out.size(), &got);
  if (r == 1) return static_cast<int>(got);
  return on_error(r);
}

bool TlsLink::write(std::span<const std::byte> plain) noexcept {
  if (failure_ != Failure::none) return false;
  std::size_t done = 0;
  while (done < plain.size()) {
    std::size_t n = 0;
    const int r = SSL_write_ex(ssl_, plain.data() + done, plain.size() - done, &n);
    if (r != 1) {
      on_error(r);
      if (failure_ == Failure::none) failure_ = Failure::protocol;  // cannot seal now: the stream is broken
      return false;
    }
    done += n;
  }
  return true;
}

bool TlsLink::connect() noexcept {
  const int r = SSL_do_handshake(ssl_);
  if (r == 1) return true;
  return on_error(r) == want_input;
}

void TlsLink::shutdown() noexcept {
  if (failure_ == Failure::none && SSL_is_init_finished(ssl_)) SSL_shutdown(ssl_);
  ERR_clear_error();
}

bool TlsLink::handshake_done() const noexcept { return SSL_is_init_finished(ssl_) == 1; }

bool TlsLink::has_buffered_plaintext() const noexcept { return SSL_pending(ssl_) > 0; }

// SSL_has_pending also counts a record's bytes read but not yet decrypted
// (a record OpenSSL has begun); SSL_pending only decrypted plaintext.
// A session that failed is no truncation, whatever it holds.
bool TlsLink::mid_record() const noexcept {
  return failure_ == Failure::none && SSL_has_pending(ssl_) == 1 && SSL_pending(ssl_) == 0;
}

bool TlsLink::readable() const noexcept { return in_len_ > 0 || SSL_has_pending(ssl_) == 1; }

}  // namespace ringlink
