/* Test helpers for net/: a pz_server on its own loop thread, and a blocking raw-TCP HTTP and WebSocket client. */
#ifndef PLAZA_TEST_NET_CLIENT_H
#define PLAZA_TEST_NET_CLIENT_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>
#include "net/net_internal.h"
#include "plaza/net.h"

/* ---- the server, on a loop thread ---- */

typedef struct tsrv_s {
  uv_loop_t loop;
  pz_server_t *srv;
  uv_thread_t thread;
  uv_async_t async;
  uv_mutex_t mu;
  uv_sem_t sem;
  void (*fn)(struct tsrv_s *t, void *arg);
  void *arg;
  bool wait;
  int port;
  bool done;
} tsrv_t;

static inline void tsrv_on_async(uv_async_t *a) {
  tsrv_t *t = a->data;
  uv_mutex_lock(&t->mu);
  void (*fn)(tsrv_t *, void *) = t->fn;
  void *arg = t->arg;
  bool wait = t->wait;
  t->fn = NULL;
  uv_mutex_unlock(&t->mu);
  if (fn) fn(t, arg);
  if (fn && wait) uv_sem_post(&t->sem);
}

static inline void tsrv_thread(void *arg) {
  tsrv_t *t = arg;
  uv_run(&t->loop, UV_RUN_DEFAULT);
}

/* Starts a server on 127.0.0.1, port chosen by the kernel; setup registers
 * routes before the loop runs. Returns 0 or -1. */
static inline int tsrv_start(tsrv_t *t, pz_net_limits_t limits, void (*setup)(pz_server_t *srv, void *arg), void *arg) {
  memset(t, 0, sizeof(*t));
  uv_loop_init(&t->loop);
  uv_mutex_init(&t->mu);
  uv_sem_init(&t->sem, 0);
  pz_server_config_t cfg = {.listen = "127.0.0.1:0", .limits = limits};
  pz_err_t err = {0};
  if (pz_server_new(&t->srv, &t->loop, &cfg, &err) != 0) {
    fprintf(stderr, "pz_server_new: %s\n", pz_err_message(&err));
    return -1;
  }
  if (setup) setup(t->srv, arg);
  if (pz_server_start(t->srv, &err) != 0) {
    fprintf(stderr, "pz_server_start: %s\n", pz_err_message(&err));
    return -1;
  }
  t->port = pz__server_port(t->srv);
  uv_async_init(&t->loop, &t->async, tsrv_on_async);
  t->async.data = t;
  uv_thread_create(&t->thread, tsrv_thread, t);
  return 0;
}

/* Runs fn on the loop thread; waits for it to return when wait is set. */
static inline void tsrv_call_ex(tsrv_t *t, void (*fn)(tsrv_t *t, void *arg), void *arg, bool wait) {
  for (;;) { /* one call at a time */
    uv_mutex_lock(&t->mu);
    if (t->fn == NULL) break;
    uv_mutex_unlock(&t->mu);
    usleep(1000);
  }
  t->fn = fn;
  t->arg = arg;
  t->wait = wait;
  uv_mutex_unlock(&t->mu);
  uv_async_send(&t->async);
  if (wait) uv_sem_wait(&t->sem);
}

static inline void tsrv_call(tsrv_t *t, void (*fn)(tsrv_t *t, void *arg), void *arg) { tsrv_call_ex(t, fn, arg, true); }

static inline void tsrv_on_done(pz_server_t *srv, void *arg) {
  tsrv_t *t = arg;
  t->done = true;
  uv_close((uv_handle_t *)&t->async, NULL);
}

static inline void tsrv_do_shutdown(tsrv_t *t, void *arg) {
  pz_server_shutdown(t->srv, (unsigned)(uintptr_t)arg, tsrv_on_done, t);
}

/* A handler that answers with the request body's length, so that a test
 * sees how much arrived. */
static inline void tsrv_h_body_len(pz_req_t *req) {
  char *s = pz_arena_printf(req->arena, "%zu", req->body.len);
  pz_req_respond(req, 200, "text/plain", s, strlen(s));
}

/* Starts the graceful shutdown without waiting for it. */
static inline void tsrv_shutdown_async(tsrv_t *t, unsigned timeout_ms) {
  tsrv_call_ex(t, tsrv_do_shutdown, (void *)(uintptr_t)timeout_ms, true);
}

/* Waits for the loop to end (after a shutdown) and frees everything. */
static inline void tsrv_join(tsrv_t *t) {
  uv_thread_join(&t->thread);
  pz_server_free(t->srv);
  int rc = uv_loop_close(&t->loop);
  if (rc != 0) fprintf(stderr, "uv_loop_close: %s\n", uv_strerror(rc));
  uv_mutex_destroy(&t->mu);
  uv_sem_destroy(&t->sem);
}

static inline void tsrv_stop(tsrv_t *t) {
  tsrv_shutdown_async(t, 2000);
  tsrv_join(t);
}

static inline void tsrv_read_conns(tsrv_t *t, void *arg) { *(unsigned *)arg = pz_server_connections(t->srv); }

static inline unsigned tsrv_connections(tsrv_t *t) {
  unsigned n = 0;
  tsrv_call(t, tsrv_read_conns, &n);
  return n;
}

/* ---- the client ---- */

typedef struct cli_s {
  int fd;
  size_t len;
  char buf[256 * 1024];
} cli_t;

static inline cli_t *cli_open(int port) {
  cli_t *c = calloc(1, sizeof(*c));
  c->fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  struct timeval tv = {.tv_sec = 5};
  setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
    close(c->fd);
    free(c);
    return NULL;
  }
  return c;
}

static inline void cli_close(cli_t *c) {
  if (!c) return;
  close(c->fd);
  free(c);
}

/* Closes with a reset instead of a FIN: the peer sees the connection fail. */
static inline void cli_reset(cli_t *c) {
  struct linger lg = {.l_onoff = 1, .l_linger = 0};
  setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  cli_close(c);
}

static inline bool cli_send(cli_t *c, const void *data, size_t len) {
  const char *p = data;
  while (len) {
    ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
    if (n <= 0) return false;
    p += n;
    len -= (size_t)n;
  }
  return true;
}

static inline bool cli_send_str(cli_t *c, const char *s) { return cli_send(c, s, strlen(s)); }

/* Reads more bytes; returns how many, 0 at EOF, -1 on error or timeout. */
static inline ssize_t cli_fill(cli_t *c) {
  if (c->len == sizeof(c->buf)) return -1;
  ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
  if (n > 0) c->len += (size_t)n;
  return n;
}

static inline void cli_consume(cli_t *c, size_t n) {
  memmove(c->buf, c->buf + n, c->len - n);
  c->len -= n;
}

/* True when the server closed the connection (nothing else arrives). */
static inline bool cli_closed(cli_t *c) {
  for (;;) {
    if (c->len) return false;
    ssize_t n = cli_fill(c);
    if (n == 0) return true;
    if (n < 0) return errno == ECONNRESET;
  }
}

typedef struct resp_s {
  int status;
  char head[8192]; /* status line and headers, NUL-terminated */
  char *body;      /* malloc'd, NUL-terminated */
  size_t body_len;
} resp_t;

static inline void resp_free(resp_t *r) {
  free(r->body);
  r->body = NULL;
}

/* The value of header name in r (first occurrence), copied into a static buffer; NULL when absent. */
static inline const char *resp_header(const resp_t *r, const char *name) {
  static char val[1024];
  size_t nlen = strlen(name);
  const char *p = strstr(r->head, "\r\n");
  while (p && p[2] != '\0') {
    p += 2;
    const char *eol = strstr(p, "\r\n");
    if (!eol) break;
    if ((size_t)(eol - p) > nlen && strncasecmp(p, name, nlen) == 0 && p[nlen] == ':') {
      const char *v = p + nlen + 1;
      while (*v == ' ')
        v++;
      size_t n = (size_t)(eol - v) < sizeof(val) - 1 ? (size_t)(eol - v) : sizeof(val) - 1;
      memcpy(val, v, n);
      val[n] = '\0';
      return val;
    }
    p = eol;
  }
  return NULL;
}

/* Reads one response (a HEAD answer has no body). Returns 0, or -1 if the
 * connection ended or timed out first. Interim 1xx answers are returned too. */
static inline int cli_response_ex(cli_t *c, resp_t *r, bool head) {
  memset(r, 0, sizeof(*r));
  char *end;
  for (;;) {
    end = c->len ? memmem(c->buf, c->len, "\r\n\r\n", 4) : NULL;
    if (end) break;
    if (cli_fill(c) <= 0) return -1;
  }
  size_t hlen = (size_t)(end - c->buf) + 4;
  if (hlen >= sizeof(r->head)) return -1;
  memcpy(r->head, c->buf, hlen);
  r->head[hlen] = '\0';
  cli_consume(c, hlen);
  if (sscanf(r->head, "HTTP/1.%*d %d", &r->status) != 1) return -1;
  const char *cl = resp_header(r, "Content-Length");
  size_t len = cl && !head && r->status >= 200 ? strtoul(cl, NULL, 10) : 0;
  while (c->len < len)
    if (cli_fill(c) <= 0) return -1;
  r->body = malloc(len + 1);
  memcpy(r->body, c->buf, len);
  r->body[len] = '\0';
  r->body_len = len;
  cli_consume(c, len);
  return 0;
}

static inline int cli_response(cli_t *c, resp_t *r) { return cli_response_ex(c, r, false); }

/* One request on a fresh connection: returns the status, or -1. The body
 * goes to r (free with resp_free) when r is not NULL. */
static inline int http_once(int port, const char *request, resp_t *r) {
  resp_t tmp;
  if (!r) r = &tmp;
  cli_t *c = cli_open(port);
  if (!c) return -1;
  int status = -1;
  if (cli_send_str(c, request) && cli_response(c, r) == 0) status = r->status;
  cli_close(c);
  if (r == &tmp) resp_free(r);
  return status;
}

/* ---- WebSocket client ---- */

/* Upgrades c on path; returns the 101 status, or another status / -1. */
static inline int ws_handshake(cli_t *c, const char *path) {
  char req[512];
  snprintf(req, sizeof(req),
           "GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
           path);
  resp_t r;
  if (!cli_send_str(c, req) || cli_response(c, &r) != 0) return -1;
  const char *acc = resp_header(&r, "Sec-WebSocket-Accept");
  int status = r.status;
  if (status == 101 && (acc == NULL || strcmp(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") != 0)) status = -2;
  resp_free(&r);
  return status;
}

/* Sends one frame; client frames are masked unless mask is false. */
static inline bool ws_send_frame(cli_t *c, bool fin, int opcode, const void *data, size_t len, bool mask) {
  uint8_t *f = malloc(len + 14);
  size_t n = 0;
  f[n++] = (uint8_t)((fin ? 0x80 : 0) | opcode);
  uint8_t mbit = mask ? 0x80 : 0;
  if (len < 126) {
    f[n++] = (uint8_t)(mbit | len);
  } else if (len < 65536) {
    f[n++] = mbit | 126;
    f[n++] = (uint8_t)(len >> 8);
    f[n++] = (uint8_t)len;
  } else {
    f[n++] = mbit | 127;
    for (int i = 7; i >= 0; i--)
      f[n++] = (uint8_t)((uint64_t)len >> (8 * i));
  }
  const uint8_t key[4] = {0x12, 0x34, 0x56, 0x78};
  if (mask) {
    memcpy(f + n, key, 4);
    n += 4;
  }
  for (size_t i = 0; i < len; i++)
    f[n + i] = ((const uint8_t *)data)[i] ^ (mask ? key[i % 4] : 0);
  bool ok = cli_send(c, f, n + len);
  free(f);
  return ok;
}

static inline bool ws_send_text(cli_t *c, const char *s) { return ws_send_frame(c, true, 1, s, strlen(s), true); }

static inline bool ws_send_close(cli_t *c, int code) {
  uint8_t p[2] = {(uint8_t)(code >> 8), (uint8_t)code};
  return ws_send_frame(c, true, 8, p, 2, true);
}

typedef struct wsf_s {
  int opcode;
  bool fin;
  char *data; /* malloc'd, NUL-terminated */
  size_t len;
  int close_code; /* for close frames, 0 if none */
} wsf_t;

/* Reads one server frame; returns 0, or -1 when the connection ended or timed out. */
static inline int ws_read_frame(cli_t *c, wsf_t *f) {
  memset(f, 0, sizeof(*f));
  while (c->len < 2)
    if (cli_fill(c) <= 0) return -1;
  const uint8_t *b = (const uint8_t *)c->buf;
  size_t len7 = b[1] & 0x7f, hdr = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0);
  if (b[1] & 0x80) return -1; /* servers never mask */
  while (c->len < hdr)
    if (cli_fill(c) <= 0) return -1;
  b = (const uint8_t *)c->buf;
  uint64_t len = len7;
  if (len7 >= 126) {
    len = 0;
    for (size_t i = 2; i < hdr; i++)
      len = len << 8 | b[i];
  }
  if (len > sizeof(c->buf) - hdr) return -1;
  while (c->len < hdr + len)
    if (cli_fill(c) <= 0) return -1;
  b = (const uint8_t *)c->buf;
  f->fin = b[0] & 0x80;
  f->opcode = b[0] & 0x0f;
  f->len = (size_t)len;
  f->data = malloc(f->len + 1);
  memcpy(f->data, c->buf + hdr, f->len);
  f->data[f->len] = '\0';
  if (f->opcode == 8 && f->len >= 2) f->close_code = (uint8_t)f->data[0] << 8 | (uint8_t)f->data[1];
  cli_consume(c, hdr + f->len);
  return 0;
}

/* Reads frames until one with opcode arrives (others are skipped); -1 if none does. */
static inline int ws_read_until(cli_t *c, int opcode, wsf_t *f) {
  for (;;) {
    if (ws_read_frame(c, f) != 0) return -1;
    if (f->opcode == opcode) return 0;
    free(f->data);
  }
}

/* Sleeps ms milliseconds (polling loops only; tests never assert on time). */
static inline void msleep(unsigned ms) {
  struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

#endif
