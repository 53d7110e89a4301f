/* raw_echo: the benchmark ceiling. A TCP echo server with no framing at all,
 * so that any WebSocket server's figures can be read as a fraction of what
 * the kernel's loopback and one core allow.
 *
 *   raw_echo --port N [--host 127.0.0.1]
 *
 * One thread, edge-triggered epoll, non-blocking sockets with TCP_NODELAY.
 * Each readiness event reads into one shared buffer until EAGAIN or a short
 * read and writes the bytes straight back. A short read means the socket was
 * empty at that moment and any later bytes raise a new edge, so the EAGAIN
 * read would be a wasted syscall per message (ringlink's epoll backend stops
 * there too; the ceiling must not pay for what the engine does not). With a
 * hang-up on the edge we read on to EOF, since no edge follows the FIN.
 * A read that fills the whole buffer ends the connection's turn: it goes on a
 * ready list served after the other edges, so a client that keeps its socket
 * full cannot hold the loop (the edge would not fire again for those bytes). What the socket does not take is kept per connection
 * in a bounded buffer (allocated only while something is pending); while that
 * buffer is full the connection is not read, so a client that does not read
 * its replies is throttled by TCP rather than growing our memory. EPOLLOUT
 * flushes it and resumes reading.
 *
 * Prints "raw_echo: listening on HOST:PORT" on stderr once (PORT is the bound
 * one, useful with --port 0) and nothing per message. Exits 0 on SIGTERM or
 * SIGINT.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

enum {
  read_size = 64 * 1024,
  /* At least read_size: the unsent tail of one read always fits. */
  pending_capacity = 64 * 1024,
  max_events = 512,
  listen_backlog = 65535, /* the kernel caps it at net.core.somaxconn */
};

/* Indexed by fd: fds are small and bounded by RLIMIT_NOFILE, and a lookup by
 * fd needs no per-connection allocation on the hot path. */
struct conn {
  char *pending;      /* pending_capacity bytes while anything is unsent, else NULL */
  uint32_t start;     /* first unsent byte in pending */
  uint32_t len;       /* unsent bytes */
  uint8_t open;
  uint8_t peer_done;  /* the peer shut down its side: close once pending is out */
  uint8_t queued;     /* on the ready list: bytes may be waiting without an edge */
  uint8_t hangup;     /* an edge carried RDHUP/HUP: read on to EOF */
};

static struct conn *conns;
static size_t conn_slots;
static char read_buffer[read_size];
static volatile sig_atomic_t stop_requested;
/* Connections whose turn ended with bytes possibly left; served every loop. */
static int *ready, *ready_next;
static size_t ready_len;

static void requeue(int fd) {
  if (conns[fd].queued) return;
  conns[fd].queued = 1;
  ready[ready_len++] = fd;
}

static void on_signal(int sig) {
  (void)sig;
  stop_requested = 1;
}

static void close_conn(int fd) {
  struct conn *c = &conns[fd];
  free(c->pending);
  memset(c, 0, sizeof *c);
  close(fd); /* also removes fd from the epoll set */
}

/* Keeps bytes the socket refused. The caller guarantees they fit. */
static int stash(struct conn *c, const char *data, size_t n) {
  if (c->pending == NULL) {
    c->pending = malloc(pending_capacity);
    if (c->pending == NULL) return -1;
    c->start = c->len = 0;
  }
  if (c->start + c->len + n > pending_capacity) {
    memmove(c->pending, c->pending + c->start, c->len);
    c->start = 0;
  }
  memcpy(c->pending + c->start + c->len, data, n);
  c->len += (uint32_t)n;
  return 0;
}

/* Writes pending bytes until they are out or the socket is full.
 * 1: all out, 0: EAGAIN (EPOLLOUT will follow), -1: connection failed. */
static int flush(int fd, struct conn *c) {
  while (c->len > 0) {
    const ssize_t n = write(fd, c->pending + c->start, c->len);
    if (n > 0) {
      c->start += (uint32_t)n;
      c->len -= (uint32_t)n;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return 0;
    } else {
      return -1;
    }
  }
  /* Idle connections hold no buffer, so 10,000 of them cost next to nothing. */
  free(c->pending);
  c->pending = NULL;
  c->start = 0;
  return 1;
}

/* Runs on every edge, in or out; `hangup` when the edge carried RDHUP/HUP.
 * Returns -1 when the connection must close. */
static int service(int fd, int hangup) {
  struct conn *c = &conns[fd];
  c->hangup |= (uint8_t)hangup;
  hangup = c->hangup;
  if (c->len > 0) {
    const int f = flush(fd, c);
    if (f < 0) return -1;
    if (c->len == pending_capacity) return 0; /* still full: read nothing until EPOLLOUT */
  }
  if (c->peer_done) return c->len == 0 ? -1 : 0;
  for (;;) {
    if (c->len == 0) {
      /* Hot path: read, write back the same buffer, keep only what is refused. */
      const ssize_t n = read(fd, read_buffer, sizeof read_buffer);
      if (n > 0) {
        ssize_t w = write(fd, read_buffer, (size_t)n);
        if (w < 0) {
          if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return -1;
          w = 0;
        }
        if (w < n) {
          if (stash(c, read_buffer + w, (size_t)(n - w)) < 0) return -1;
          /* Write until EAGAIN so the socket owes us an EPOLLOUT edge before
           * we might stop reading. */
          if (flush(fd, c) < 0) return -1;
        }
        if ((size_t)n < sizeof read_buffer && !hangup) return 0; /* drained */
        requeue(fd); /* the turn is over; the rest waits for the others */
        return 0;
      }
      if (n == 0) return -1; /* nothing pending: the peer is done and so are we */
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
      return -1;
    }
    /* Something is waiting for the socket. New bytes go behind it, straight
     * into the pending buffer, so order is kept without a second copy. */
    if (c->start + c->len == pending_capacity) {
      memmove(c->pending, c->pending + c->start, c->len);
      c->start = 0;
    }
    const size_t room = pending_capacity - (c->start + c->len);
    if (room == 0) return 0; /* full: flush() saw EAGAIN, so EPOLLOUT will resume us */
    const ssize_t n = read(fd, c->pending + c->start + c->len, room);
    if (n > 0) {
      c->len += (uint32_t)n;
      if (flush(fd, c) < 0) return -1;
      if ((size_t)n < room && !hangup) return 0; /* drained */
      requeue(fd);
      return 0;
    }
    if (n == 0) {
      c->peer_done = 1; /* echo what we still hold, then close */
      return 0;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    return -1;
  }
}

static void accept_all(int lfd, int ep) {
  for (;;) {
    const int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      /* EAGAIN: drained. EMFILE/ENFILE: the backlog stays queued and the next
       * connection's edge retries; nothing better to do in a benchmark peer. */
      return;
    }
    if ((size_t)fd >= conn_slots) {
      close(fd);
      continue;
    }
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.fd = fd};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
      close(fd);
      continue;
    }
    conns[fd].open = 1;
    /* Data may already be queued; with edge triggering it was announced
     * before we registered, so look now. */
    if (service(fd, 0) < 0) close_conn(fd);
  }
}

static int usage(void) {
  fprintf(stderr, "usage: raw_echo --port N [--host IPV4]\n");
  return 2;
}

int main(int argc, char **argv) {
  long port = -1;
  const char *host = "127.0.0.1";
  for (int i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
      char *end = NULL;
      port = strtol(argv[++i], &end, 10);
      if (*end != '\0' || port < 0 || port > 65535) return usage();
    } else if (strcmp(argv[i], "--host") == 0 && i + 1 < argc) {
      host = argv[++i];
    } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      usage();
      return 0;
    } else {
      return usage();
    }
  }
  if (port < 0) return usage();

  /* 10,000 connections need more than the usual soft limit of 1024. */
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) rl.rlim_cur = 1024;
  conn_slots = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (1u << 20) ? (1u << 20) : (size_t)rl.rlim_cur;
  conns = calloc(conn_slots, sizeof *conns);
  ready = calloc(conn_slots, sizeof *ready);
  ready_next = calloc(conn_slots, sizeof *ready_next);
  if (conns == NULL || ready == NULL || ready_next == NULL) {
    fprintf(stderr, "raw_echo: out of memory\n");
    return 1;
  }

  signal(SIGPIPE, SIG_IGN);
  /* Signals stay blocked except inside epoll_pwait, so a SIGTERM between the
   * flag check and the wait cannot be missed. */
  sigset_t blocked, during_wait;
  sigemptyset(&blocked);
  sigaddset(&blocked, SIGTERM);
  sigaddset(&blocked, SIGINT);
  sigprocmask(SIG_BLOCK, &blocked, &during_wait);
  sigdelset(&during_wait, SIGTERM);
  sigdelset(&during_wait, SIGINT);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);

  struct sockaddr_in addr;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
    fprintf(stderr, "raw_echo: --host %s is not an IPv4 address\n", host);
    return 2;
  }
  const int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const int one = 1;
  if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
      bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(lfd, listen_backlog) < 0) {
    fprintf(stderr, "raw_echo: cannot listen on %s:%ld: %s\n", host, port, strerror(errno));
    return 1;
  }
  socklen_t alen = sizeof addr;
  getsockname(lfd, (struct sockaddr *)&addr, &alen);

  const int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event lev = {.events = EPOLLIN | EPOLLET, .data.fd = lfd};
  if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) < 0) {
    fprintf(stderr, "raw_echo: epoll: %s\n", strerror(errno));
    return 1;
  }
  fprintf(stderr, "raw_echo: listening on %s:%u\n", host, (unsigned)ntohs(addr.sin_port));

  struct epoll_event events[max_events];
  while (!stop_requested) {
    const int n = epoll_pwait(ep, events, max_events, ready_len > 0 ? 0 : -1, &during_wait);
    if (n < 0) {
      if (errno == EINTR) continue;
      fprintf(stderr, "raw_echo: epoll_wait: %s\n", strerror(errno));
      return 1;
    }
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == lfd) {
        accept_all(lfd, ep);
        continue;
      }
      /* An fd closed earlier in this batch may have been reused by accept:
       * servicing the new connection once more is harmless. */
      if (!conns[fd].open) continue;
      const uint32_t ev = events[i].events;
      if ((ev & EPOLLERR) != 0 || service(fd, (ev & (EPOLLRDHUP | EPOLLHUP)) != 0) < 0) close_conn(fd);
    }
    /* One more turn for each connection that used its whole buffer. Entries
     * of connections closed meanwhile are skipped by their cleared flag. */
    int *turn = ready;
    const size_t turn_len = ready_len;
    ready = ready_next;
    ready_next = turn;
    ready_len = 0;
    for (size_t i = 0; i < turn_len; ++i) {
      const int fd = turn[i];
      if (!conns[fd].open || !conns[fd].queued) continue;
      conns[fd].queued = 0;
      if (service(fd, 0) < 0) close_conn(fd);
    }
  }

  for (size_t fd = 0; fd < conn_slots; ++fd)
    if (conns[fd].open) close_conn((int)fd);
  close(lfd);
  close(ep);
  free(conns);
  free(ready);
  free(ready_next);
  return 0;
}
