// Where an idle TLS link's memory goes: every allocation OpenSSL makes is
// counted (CRYPTO_set_mem_functions), by the side that made it and by its
// call site, while LINKS server sessions are made exactly as the reactor
// makes them (TlsServerContext, TlsLink over its BIO) and each one does a
// TLS 1.3 handshake, reads an upgrade request and writes a 101 with an
// in-memory client. Then the server side's live heap per idle link is
// printed: bytes asked for, bytes the allocator really holds for them
// (malloc_usable_size, plus glibc's 8-byte chunk header), the number of
// blocks, and the call sites that hold the most.
//
//   build/dev/bench/tls_idle_heap [LINKS] [--sites N] [--ciphersuites LIST] [--groups LIST] [--tls12]
//
// --ciphersuites sets the server's TLS 1.3 list (TlsConfig::ciphersuites),
// --groups the client's key exchange groups, --tls12 makes the client
// speak TLS 1.2: to see what each choice costs.
//
// The certificate is a P-256 one made with the openssl command in a
// temporary directory, as bench/scripts/tls_idle_links.sh does. This counts
// OpenSSL's heap and our TlsLink; the RSS per link that
// tls_idle_links.sh reports adds allocator fragmentation and the rest of
// the link (its Link, socket and table entries).
#include <malloc.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/tls_context.hpp"
#include "engine/tls_link.hpp"

namespace {

// Which side the current OpenSSL call works for.
enum Side : int { setup = 0, server = 1, client = 2 };
Side g_side = setup;
bool g_ready = false;  // the tables below exist

struct Block {
  std::size_t size;
  const char* file;
  int line;
  Side side;
};
std::unordered_map<void*, Block>* g_blocks = nullptr;

void note(void* p, std::size_t n, const char* file, int line) {
  if (p == nullptr || !g_ready) return;
  g_ready = false;  // the map's own allocations are not OpenSSL's
  (*g_blocks)[p] = Block{n, file, line, g_side};
  g_ready = true;
}
void forget(void* p) {
  if (p == nullptr || !g_ready) return;
  g_ready = false;
  g_blocks->erase(p);
  g_ready = true;
}

void* count_malloc(std::size_t n, const char* file, int line) {
  void* p = std::malloc(n);
  note(p, n, file, line);
  return p;
}
void* count_realloc(void* old, std::size_t n, const char* file, int line) {
  forget(old);
  void* p = std::realloc(old, n);
  note(p, n, file, line);
  return p;
}
void count_free(void* p, const char*, int) {
  forget(p);
  std::free(p);
}

struct Tally {
  std::size_t asked = 0, held = 0, blocks = 0;
};
Tally tally(Side side, std::map<std::string, Tally>* sites) {
  Tally t;
  for (const auto& [p, b] : *g_blocks) {
    if (b.side != side) continue;
    const std::size_t held = malloc_usable_size(p) + 8;
    t.asked += b.size;
    t.held += held;
    ++t.blocks;
    if (sites != nullptr) {
      Tally& s = (*sites)[std::string(b.file != nullptr ? b.file : "?") + ":" + std::to_string(b.line)];
      s.asked += b.size;
      s.held += held;
      ++s.blocks;
    }
  }
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  if (CRYPTO_set_mem_functions(count_malloc, count_realloc, count_free) != 1) {
    std::fprintf(stderr, "CRYPTO_set_mem_functions refused: OpenSSL allocated before main\n");
    return 1;
  }
  g_blocks = new std::unordered_map<void*, Block>();
  g_blocks->reserve(1 << 20);
  g_ready = true;
  int links = 1000;
  int sites = 25;
  std::string ciphersuites, groups;
  bool tls12 = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--sites") == 0 && i + 1 < argc) {
      sites = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--ciphersuites") == 0 && i + 1 < argc) {
      ciphersuites = argv[++i];
    } else if (std::strcmp(argv[i], "--tls12") == 0) {
      tls12 = true;
    } else if (std::strcmp(argv[i], "--groups") == 0 && i + 1 < argc) {
      groups = argv[++i];
    } else {
      links = std::atoi(argv[i]);
    }
  }
  if (links <= 0) {
    std::fprintf(stderr, "usage: tls_idle_heap [LINKS] [--sites N]\n");
    return 2;
  }

  char tmpl[] = "/tmp/tls-idle-heap-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) return 1;
  const std::string dir = tmpl;
  const std::string make_cert =
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -keyout " + dir +
      "/key.pem -out " + dir + "/cert.pem -subj /CN=localhost 2>/dev/null";
  if (std::system(make_cert.c_str()) != 0) return 1;
  ringlink::TlsConfig cfg;
  cfg.cert_file = dir + "/cert.pem";
  cfg.key_file = dir + "/key.pem";
  cfg.ciphersuites = ciphersuites;
  int err = 0;
  std::string why;
  auto ctx = ringlink::make_tls_server_context(cfg, &err, &why);
  std::filesystem::remove_all(dir);
  if (!ctx) {
    std::fprintf(stderr, "server context: %s\n", why.c_str());
    return 1;
  }
  SSL_CTX* cctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_min_proto_version(cctx, tls12 ? TLS1_2_VERSION : TLS1_3_VERSION);
  SSL_CTX_set_max_proto_version(cctx, tls12 ? TLS1_2_VERSION : TLS1_3_VERSION);
  if (!groups.empty() && SSL_CTX_set1_groups_list(cctx, groups.c_str()) != 1) {
    std::fprintf(stderr, "groups %s refused\n", groups.c_str());
    return 1;
  }

  static const char request[] =
      "GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  static const char response[] =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

  // One link: its server session as the reactor holds it, and a client.
  struct Link {
    std::unique_ptr<ringlink::TlsLink> server;
    SSL* client = nullptr;
    BIO* to_client = nullptr;    // the client's read BIO
    BIO* from_client = nullptr;  // the client's write BIO
  };
  std::vector<Link> all(static_cast<std::size_t>(links));
  std::vector<std::byte> out;  // the reactor's shared output (tls_out_)
  std::vector<std::byte> plain(16384);

  // The server side of one step: the client's bytes in, the server's out.
  auto serve = [&](Link& l) {
    char buf[16384];
    std::vector<char> in;
    int n;
    while ((n = BIO_read(l.from_client, buf, sizeof buf)) > 0) in.insert(in.end(), buf, buf + n);
    g_side = server;
    l.server->set_input(reinterpret_cast<const std::byte*>(in.data()), in.size());
    int got = 0;
    while (l.server->readable()) {
      const int r = l.server->read(plain);
      if (r <= 0) break;
      got += r;
    }
    l.server->set_input(nullptr, 0);
    g_side = setup;
    BIO_write(l.to_client, out.data(), static_cast<int>(out.size()));
    out.clear();
    return got;
  };

  // Warm-up: one link made and ended first, so one-time costs (fetched
  // algorithms, ticket keys) are not charged to the links measured.
  for (int round = 0; round < 2; ++round) {
    const std::size_t from = round == 0 ? 0 : 1;
    const std::size_t to = round == 0 ? 1 : all.size();
    for (std::size_t i = from; i < to; ++i) {
      Link& l = all[i];
      g_side = server;
      l.server = std::make_unique<ringlink::TlsLink>(ctx->new_session());
      l.server->set_output(&out);
      g_side = client;
      l.client = SSL_new(cctx);
      l.to_client = BIO_new(BIO_s_mem());
      l.from_client = BIO_new(BIO_s_mem());
      SSL_set_bio(l.client, l.to_client, l.from_client);
      SSL_set_connect_state(l.client);
      g_side = setup;
      for (int step = 0; step < 8 && !(SSL_is_init_finished(l.client) && l.server->handshake_done()); ++step) {
        g_side = client;
        SSL_do_handshake(l.client);
        g_side = setup;
        serve(l);
      }
      if (!l.server->handshake_done()) {
        std::fprintf(stderr, "handshake %zu did not finish\n", i);
        return 1;
      }
      g_side = client;
      SSL_write(l.client, request, sizeof request - 1);
      g_side = setup;
      if (serve(l) != static_cast<int>(sizeof request - 1)) {
        std::fprintf(stderr, "link %zu: the upgrade request did not arrive whole\n", i);
        return 1;
      }
      g_side = server;
      l.server->write(std::as_bytes(std::span<const char>(response, sizeof response - 1)));
      g_side = setup;
      BIO_write(l.to_client, out.data(), static_cast<int>(out.size()));
      out.clear();
      g_side = client;
      char buf[1024];
      SSL_read(l.client, buf, sizeof buf);  // the tickets and the 101
      g_side = setup;
    }
    if (round == 0) {
      g_side = server;
      all[0].server.reset();
      g_side = client;
      SSL_free(all[0].client);
      all[0].client = nullptr;
      g_side = setup;
      g_blocks->clear();  // what the warm-up left (caches) is not per link
    }
  }
  const std::size_t measured = all.size() - 1;
  std::map<std::string, Tally> by_site;
  const Tally s = tally(server, &by_site);
  const Tally c = tally(client, nullptr);
  std::printf("links=%zu openssl=\"%s\" version=%s cipher=%s client_groups=%s\n", measured,
              OpenSSL_version(OPENSSL_VERSION), SSL_get_version(all[1].client), SSL_get_cipher_name(all[1].client),
              groups.empty() ? "default" : groups.c_str());
  std::printf("server_per_link: asked=%zu held=%zu blocks=%.1f (OpenSSL heap; TlsLink object %zu B besides)\n",
              s.asked / measured, s.held / measured, static_cast<double>(s.blocks) / measured,
              sizeof(ringlink::TlsLink));
  std::printf("client_per_link: asked=%zu held=%zu blocks=%.1f (for comparison)\n", c.asked / measured,
              c.held / measured, static_cast<double>(c.blocks) / measured);
  std::vector<std::pair<std::string, Tally>> sorted(by_site.begin(), by_site.end());
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.second.held > b.second.held; });
  std::printf("%-44s %10s %10s %8s\n", "call site (server side)", "asked/link", "held/link", "blocks");
  for (int i = 0; i < sites && i < static_cast<int>(sorted.size()); ++i) {
    const Tally& t = sorted[static_cast<std::size_t>(i)].second;
    std::printf("%-44s %10zu %10zu %8.2f\n", sorted[static_cast<std::size_t>(i)].first.c_str(), t.asked / measured,
                t.held / measured, static_cast<double>(t.blocks) / measured);
  }
  for (Link& l : all) {
    g_side = server;
    l.server.reset();
    g_side = client;
    SSL_free(l.client);
  }
  g_side = setup;
  SSL_CTX_free(cctx);
  return 0;
}
