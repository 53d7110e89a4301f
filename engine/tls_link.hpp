// One link's TLS session: OpenSSL driven without a socket, so the same code
// runs over epoll and io_uring. Built only with the `tls` feature;
// reactor-internal (engine/reactor_tls.cpp drives it).
//
// The session's BIO reads the ciphertext straight from the receive chunk the
// reactor hands it (no copy into a memory BIO) and appends what OpenSSL
// writes to a buffer the reactor owns and empties into the link's send queue
// after every call. An idle link holds no buffer of its own: the BIO has
// none, and SSL_MODE_RELEASE_BUFFERS frees OpenSSL's record buffers.
//
//   TlsLink t(ssl);                 // takes the SSL
//   t.set_output(&scratch);
//   t.set_input(bytes, n);          // ciphertext just received
//   int r = t.read(plain);          // > 0 plaintext bytes; else a TlsLink::Status
//   t.write(plain_bytes);           // sealed records appended to scratch
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

struct ssl_st;
struct bio_st;

namespace ringlink {

class TlsLink {
 public:
  // What read() returns when it produced no plaintext.
  enum Status : int {
    want_input = 0,   // all ciphertext taken; more is needed
    peer_closed = -1, // the peer's close_notify: no more plaintext follows
    failed = -2,      // a fatal error: the alert (if any) is in the output
  };
  // Why the session failed (counted per reason).
  enum class Failure : std::uint8_t { none, protocol, certificate };

  explicit TlsLink(ssl_st* ssl) noexcept;
  ~TlsLink();
  TlsLink(const TlsLink&) = delete;
  TlsLink& operator=(const TlsLink&) = delete;
  // False when the BIO could not be made (the link cannot use TLS).
  bool ok() const noexcept { return ok_; }

  void set_output(std::vector<std::byte>* out) noexcept { out_ = out; }
  // Ciphertext for the next calls; read() takes from it.
  void set_input(const std::byte* data, std::size_t n) noexcept {
    in_ = data;
    in_len_ = n;
  }
  std::size_t input_left() const noexcept { return in_len_; }
  const std::byte* input() const noexcept { return in_; }

  // Plaintext into `out`: bytes (> 0) or a Status. Drives the handshake too.
  int read(std::span<std::byte> out) noexcept;
  // Seals `plain` into records (into the output). False on a fatal error.
  bool write(std::span<const std::byte> plain) noexcept;
  // Starts a client handshake (the ClientHello goes to the output).
  bool connect() noexcept;
  // Our close_notify into the output.
  void shutdown() noexcept;

  bool handshake_done() const noexcept;
  Failure failure() const noexcept { return failure_; }
  // Bytes of plaintext OpenSSL decrypted and holds (a record read past the
  // room given to read()).
  bool has_buffered_plaintext() const noexcept;
  // Has OpenSSL taken part of a record (a header, or part of a body) and
  // waits for the rest?
  bool mid_record() const noexcept;
  // Is a read() worth calling: ciphertext given, or bytes OpenSSL holds?
  // Calling it with neither would make OpenSSL allocate its 16 KiB record
  // buffer for a header that is not there, and keep it while the link idles.
  bool readable() const noexcept;

  // Reactor bookkeeping, kept here so that Link stays small.
  std::byte* held = nullptr;        // pool chunk holding unread ciphertext while paused
  std::uint32_t held_offset = 0, held_length = 0;
  std::uint64_t started_ns = 0;     // for the handshake-time histogram
  bool first_byte_seen = false;     // plaintext-on-a-TLS-port check done
  bool counted = false;             // handshake counted (done or failed)
  bool admitted = false;            // the admission queue granted its next handshake step

 private:
  friend struct TlsBio;
  int on_error(int ret) noexcept;

  ssl_st* ssl_;
  bio_st* bio_ = nullptr;
  const std::byte* in_ = nullptr;
  std::size_t in_len_ = 0;
  std::vector<std::byte>* out_ = nullptr;
  Failure failure_ = Failure::none;
  bool ok_ = false;
};

}  // namespace ringlink
