/* Listener and connections: accept, a shared read buffer, writes, timer lists, lingering close, shutdown. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "net/net_internal.h"
#include "plaza/log.h"
#include "plaza/metrics.h"

/* Rejected connections answered at once; beyond this many still lingering,
 * further ones are cut without an answer so that a flood cannot grow memory. */
#define MAX_REJECTING 1024

static void on_closed(uv_handle_t *handle);
static void conn_closed(pz_conn_t *c);
static void maybe_done(pz_server_t *srv);

static void limits_defaults(pz_net_limits_t *l) {
  if (!l->max_header_bytes) l->max_header_bytes = 16 * 1024;
  if (!l->max_body_bytes) l->max_body_bytes = 1024 * 1024;
  if (!l->max_body_memory) l->max_body_memory = 256 * 1024 * 1024;
  if (!l->request_timeout_ms) l->request_timeout_ms = 30 * 1000;
  if (!l->idle_timeout_ms) l->idle_timeout_ms = 60 * 1000;
  if (!l->max_connections) l->max_connections = 10000;
  if (!l->ws_max_message) l->ws_max_message = 64 * 1024;
  if (!l->ws_max_backlog) l->ws_max_backlog = 1024 * 1024;
  if (!l->ws_ping_ms) l->ws_ping_ms = 30 * 1000;
}

/* Parses "host:port", ":port" or "[v6]:port" (numeric hosts only: a
 * listen address never waits on DNS). */
static int parse_listen(const char *s, struct sockaddr_storage *ss, pz_err_t *err) {
  char host[64];
  const char *port;
  memset(ss, 0, sizeof(*ss));
  if (s[0] == '[') {
    const char *end = strstr(s, "]:");
    if (end == NULL || (size_t)(end - s - 1) >= sizeof(host)) goto bad;
    memcpy(host, s + 1, (size_t)(end - s - 1));
    host[end - s - 1] = '\0';
    port = end + 2;
  } else {
    const char *colon = strrchr(s, ':');
    if (colon == NULL || (size_t)(colon - s) >= sizeof(host)) goto bad;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    if (host[0] == '\0') strcpy(host, "0.0.0.0");
    port = colon + 1;
  }
  unsigned long p = 0;
  if (*port == '\0' || strlen(port) > 5) goto bad;
  for (const char *q = port; *q; q++) {
    if (*q < '0' || *q > '9') goto bad;
    p = p * 10 + (unsigned long)(*q - '0');
  }
  if (p > 65535) goto bad;
  if (s[0] == '[') {
    if (uv_ip6_addr(host, (int)p, (struct sockaddr_in6 *)ss) != 0) goto bad;
  } else {
    if (uv_ip4_addr(host, (int)p, (struct sockaddr_in *)ss) != 0) goto bad;
  }
  return 0;
bad:
  return pz_err_set(err, PZ_EINVAL, NULL, "listen address must be host:port or [v6]:port with a numeric host: %s", s);
}

int pz_server_new(pz_server_t **out, uv_loop_t *loop, const pz_server_config_t *cfg, pz_err_t *err) {
  struct sockaddr_storage ss;
  *out = NULL;
  if (cfg == NULL || cfg->listen == NULL) return pz_err_set(err, PZ_EINVAL, NULL, "listen address missing");
  int rc = parse_listen(cfg->listen, &ss, err);
  if (rc) return rc;
  if (sodium_init() < 0) return pz_err_set(err, PZ_EIO, NULL, "libsodium failed to initialise");
  pz_server_t *srv = pz_calloc(1, sizeof(*srv));
  srv->loop = loop;
  srv->listen = pz_strdup(cfg->listen);
  srv->lim = cfg->limits;
  limits_defaults(&srv->lim);
  srv->access_log = cfg->access_log;
  srv->tl[PZ__TL_REQ].timeout_ms = srv->lim.request_timeout_ms;
  srv->tl[PZ__TL_IDLE].timeout_ms = srv->lim.idle_timeout_ms;
  srv->tl[PZ__TL_WS].timeout_ms = srv->lim.ws_ping_ms;
  srv->tl[PZ__TL_LINGER].timeout_ms = PZ__LINGER_MS;
  /* Request ids continue from a random point so that two processes (or
   * two runs) do not hand out the same ids. */
  randombytes_buf(&srv->rid_base, sizeof(srv->rid_base));
  *out = srv;
  return 0;
}

pz_router_t *pz_server_router(pz_server_t *srv) { return &srv->router; }

unsigned pz_server_connections(const pz_server_t *srv) { return srv->n_conns; }

int pz__server_port(const pz_server_t *srv) { return srv->port; }

/* ---- timer lists ----
 *
 * One uv_timer for the whole server instead of one per connection: a
 * uv_timer_t costs 152 bytes and a heap operation per reset, and every
 * request resets its connection's timer twice. Because all entries of a
 * list share one timeout, appending keeps each list sorted, so setting a
 * deadline is O(1) and the sweep only pops expired heads. The timer is
 * armed for the earliest head and left stopped while every list is empty. */

void pz__conn_tl_remove(pz_conn_t *c) {
  if (c->tlist == PZ__TL_NONE) return;
  pz__tlist_t *l = &c->srv->tl[c->tlist];
  if (c->tprev)
    c->tprev->tnext = c->tnext;
  else
    l->head = c->tnext;
  if (c->tnext)
    c->tnext->tprev = c->tprev;
  else
    l->tail = c->tprev;
  c->tprev = c->tnext = NULL;
  c->tlist = PZ__TL_NONE;
}

static void on_tick(uv_timer_t *t);

void pz__conn_tl_set(pz_conn_t *c, int list) {
  pz_server_t *srv = c->srv;
  pz__conn_tl_remove(c);
  if (list == PZ__TL_NONE || c->state == PZ__C_CLOSED) return;
  pz__tlist_t *l = &srv->tl[list];
  c->deadline = uv_now(srv->loop) + l->timeout_ms;
  c->tprev = l->tail;
  if (l->tail)
    l->tail->tnext = c;
  else
    l->head = c;
  l->tail = c;
  c->tlist = (uint8_t)list;
  if (srv->started && !uv_is_closing((uv_handle_t *)&srv->timer) &&
      (!uv_is_active((uv_handle_t *)&srv->timer) || uv_timer_get_due_in(&srv->timer) > l->timeout_ms))
    uv_timer_start(&srv->timer, on_tick, l->timeout_ms, 0);
}

static void expire(pz_conn_t *c, int list) {
  switch (list) {
    case PZ__TL_REQ:
      pz__http_timeout(c);
      break;
    case PZ__TL_WS:
      pz__ws_timeout(c);
      break;
    default: /* idle keep-alive, or lingering past its time: nothing to say */
      pz__conn_close(c);
      break;
  }
}

static void on_tick(uv_timer_t *t) {
  pz_server_t *srv = t->data;
  uint64_t now = uv_now(srv->loop), next = UINT64_MAX;
  for (int i = PZ__TL_NONE + 1; i < PZ__TL_N; i++) {
    pz_conn_t *c;
    while ((c = srv->tl[i].head) != NULL && c->deadline <= now) {
      pz__conn_tl_remove(c);
      expire(c, i);
    }
  }
  for (int i = PZ__TL_NONE + 1; i < PZ__TL_N; i++)
    if (srv->tl[i].head && srv->tl[i].head->deadline < next) next = srv->tl[i].head->deadline;
  if (next != UINT64_MAX) uv_timer_start(&srv->timer, on_tick, next > now ? next - now : 1, 0);
}

/* ---- deferred work: input to resume once the current callback is over ---- */

static void defer_remove(pz_conn_t *c) {
  pz_server_t *srv = c->srv;
  if (!c->deferred) return;
  if (c->dprev)
    c->dprev->dnext = c->dnext;
  else
    srv->dhead = c->dnext;
  if (c->dnext)
    c->dnext->dprev = c->dprev;
  else
    srv->dtail = c->dprev;
  c->dprev = c->dnext = NULL;
  c->deferred = 0;
}

static void run_deferred(pz_server_t *srv) {
  /* Only what was queued before we started: work queued meanwhile waits
   * for the next iteration, so a busy pipeline cannot starve the loop. */
  size_t n = 0;
  for (pz_conn_t *c = srv->dhead; c; c = c->dnext)
    n++;
  while (n-- > 0 && srv->dhead) {
    pz_conn_t *c = srv->dhead;
    defer_remove(c);
    pz__conn_resume(c);
  }
}

static void on_defer(uv_idle_t *idle) {
  pz_server_t *srv = idle->data;
  run_deferred(srv);
  if (srv->dhead == NULL) uv_idle_stop(idle);
}

void pz__conn_defer(pz_conn_t *c) {
  pz_server_t *srv = c->srv;
  if (c->deferred || c->state == PZ__C_CLOSED) return;
  c->dprev = srv->dtail;
  c->dnext = NULL;
  if (srv->dtail)
    srv->dtail->dnext = c;
  else
    srv->dhead = c;
  srv->dtail = c;
  c->deferred = 1;
  if (srv->started && !uv_is_closing((uv_handle_t *)&srv->defer)) uv_idle_start(&srv->defer, on_defer);
}

/* ---- reading ---- */

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
  pz_conn_t *c = handle->data;
  /* libuv reads one stream at a time and hands the bytes to on_read before
   * the next alloc, so every connection can share one buffer. */
  buf->base = c->srv->rbuf;
  buf->len = sizeof(c->srv->rbuf);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

void pz__conn_read_start(pz_conn_t *c) {
  if (c->reading || c->fake || c->read_eof || c->state == PZ__C_CLOSED) return;
  if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0) c->reading = 1;
}

void pz__conn_read_stop(pz_conn_t *c) {
  if (!c->reading) return;
  uv_read_stop((uv_stream_t *)&c->tcp);
  c->reading = 0;
}

/* Runs the protocol over data; returns the bytes consumed. */
static size_t input_loop(pz_conn_t *c, const char *data, size_t len) {
  size_t off = 0;
  c->in_input = 1;
  while (off < len) {
    if (c->state == PZ__C_HTTP) {
      off += pz__http_input(c, data + off, len - off);
      if (c->state == PZ__C_HTTP) break; /* waiting for an answer */
    } else if (c->state == PZ__C_WS) {
      off += pz__ws_input(c, data + off, len - off);
      break;
    } else {
      off = len; /* closing: input is dropped */
    }
  }
  c->in_input = 0;
  return off;
}

/* Feeds new bytes (or, with len 0, what c->in holds) to the connection. */
static void conn_input(pz_conn_t *c, const char *data, size_t len) {
  if (c->in_input || c->state == PZ__C_CLOSED) return;
  if (c->in.len) {
    pz_buf_append(&c->in, data, len);
    size_t off = input_loop(c, c->in.data, c->in.len);
    pz_buf_consume(&c->in, off < c->in.len ? off : c->in.len);
  } else if (len) {
    size_t off = input_loop(c, data, len);
    if (off < len && (c->state == PZ__C_HTTP || c->state == PZ__C_WS)) pz_buf_append(&c->in, data + off, len - off);
  }
  if (c->state != PZ__C_HTTP && c->state != PZ__C_WS) return;
  /* A client that shut down its side after its requests: once the last
   * one is answered there is nothing more to do. */
  if (c->read_eof && c->in.len == 0 && c->state == PZ__C_HTTP && c->http && c->http->phase <= PZ__H_READING) {
    pz__conn_linger(c);
    return;
  }
  /* Bytes wait here only while a request waits for its answer; past a
   * bound the socket is left unread, so the kernel's window pushes back. */
  if (c->in.len > PZ__IN_MAX)
    pz__conn_read_stop(c);
  else
    pz__conn_read_start(c);
  if (c->in.len == 0 && c->in.cap) pz_buf_free(&c->in);
}

void pz__conn_resume(pz_conn_t *c) {
  if (c->state == PZ__C_CLOSED) return;
  conn_input(c, NULL, 0);
}

static void on_eof(pz_conn_t *c) {
  c->read_eof = 1;
  pz__conn_read_stop(c);
  switch (c->state) {
    case PZ__C_HTTP:
      /* A client may send its requests and then shut down its side; those
       * still get their answers. Otherwise nothing more can come. */
      if (c->http == NULL || c->http->phase == PZ__H_IDLE || c->http->phase == PZ__H_READING) {
        if (c->in.len == 0) pz__conn_close(c);
      }
      break;
    case PZ__C_WS:
      pz__ws_eof(c);
      break;
    default:
      pz__conn_close(c);
      break;
  }
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  pz_conn_t *c = stream->data;
  if (nread > 0) {
    if (c->state == PZ__C_LINGER) {
      c->discarded += (size_t)nread;
      if (c->discarded > PZ__LINGER_MAX) pz__conn_close(c);
    } else {
      conn_input(c, buf->base, (size_t)nread);
    }
  } else if (nread == UV_EOF) {
    on_eof(c);
  } else if (nread < 0) {
    if (c->state == PZ__C_WS && c->ws)
      pz__ws_eof(c);
    else
      pz__conn_close(c);
  }
}

/* ---- corking: a connection's output of one loop turn in one write ----
 *
 * A store batch completes hundreds of jobs in one callback, and each of
 * them may send frames to the same sockets (an ack to the sender, the
 * event to the sender's and the receiver's devices). Writing each frame
 * at once costs a system call and a trip through the loopback or network
 * stack per frame; instead the frames gather in c->pend and each corked
 * connection is written once: by the check handle, after the callbacks of
 * the poll phase that corked them, or by the prepare handle, before the
 * loop blocks again, for what timers and close callbacks corked. Either
 * way within the turn: corking adds no wait. */

static void cork_remove(pz_conn_t *c) {
  pz_server_t *srv = c->srv;
  if (!c->corked) return;
  if (c->cprev)
    c->cprev->cnext = c->cnext;
  else
    srv->chead = c->cnext;
  if (c->cnext)
    c->cnext->cprev = c->cprev;
  else
    srv->ctail = c->cprev;
  c->cprev = c->cnext = NULL;
  c->corked = 0;
}

static void cork_run(pz_server_t *srv) {
  /* A flush never corks (its failure closes, and closing calls nobody
   * back before the close callback), so this ends. */
  while (srv->chead) {
    pz_conn_t *c = srv->chead;
    cork_remove(c);
    pz__conn_flush(c, NULL, 0);
  }
  uv_check_stop(&srv->cork_check);
  uv_prepare_stop(&srv->cork_prep);
}

static void on_cork_check(uv_check_t *h) { cork_run(h->data); }

static void on_cork_prep(uv_prepare_t *h) { cork_run(h->data); }

void pz__conn_cork(pz_conn_t *c) {
  pz_server_t *srv = c->srv;
  if (c->state == PZ__C_CLOSED) return;
  if (c->flight) return; /* on_write writes pend once the kernel has taken the rest */
  if (c->pend.len >= PZ__CORK_MAX || c->fake || !srv->started || uv_is_closing((uv_handle_t *)&srv->cork_check)) {
    pz__conn_flush(c, NULL, 0); /* which uncorks c */
    return;
  }
  if (c->corked) return;
  if (srv->chead == NULL) {
    uv_check_start(&srv->cork_check, on_cork_check);
    uv_prepare_start(&srv->cork_prep, on_cork_prep);
  }
  c->cprev = srv->ctail;
  c->cnext = NULL;
  if (srv->ctail)
    srv->ctail->cnext = c;
  else
    srv->chead = c;
  srv->ctail = c;
  c->corked = 1;
}

/* ---- writing ---- */

static void on_write(uv_write_t *req, int status);

size_t pz__conn_backlog(const pz_conn_t *c) {
  size_t n = c->pend.len;
  if (c->flight) n += c->flight->buf.len - c->flight->off + c->flight->tail_len;
  return n;
}

int pz__conn_flush(pz_conn_t *c, const char *tail, size_t tail_len) {
  if (c->state == PZ__C_CLOSED) return PZ_EIO;
  cork_remove(c); /* its corked bytes go now, in this write */
  if (c->fake) {
    if (c->srv->fake_sink) {
      pz_buf_append(c->srv->fake_sink, c->pend.data, c->pend.len);
      pz_buf_append(c->srv->fake_sink, tail, tail_len);
    }
    c->pend.len = 0;
    return 0;
  }
  if (c->flight) { /* one write at a time: the rest queues behind it */
    pz_buf_append(&c->pend, tail, tail_len);
    return 0;
  }
  size_t total = c->pend.len + tail_len;
  if (total == 0) return 0;
  uv_buf_t bufs[2];
  unsigned n = 0;
  if (c->pend.len) bufs[n++] = uv_buf_init(c->pend.data, (unsigned)c->pend.len);
  if (tail_len) bufs[n++] = uv_buf_init((char *)tail, (unsigned)tail_len);
  int w = uv_try_write((uv_stream_t *)&c->tcp, bufs, n);
  if (w == UV_EAGAIN || w == UV_ENOSYS) w = 0;
  if (w < 0) {
    pz__conn_close(c);
    return PZ_EIO;
  }
  if ((size_t)w == total) {
    c->pend.len = 0;
    if (c->state == PZ__C_WS && c->pend.cap) pz_buf_free(&c->pend); /* idle sockets hold no buffers */
    return 0;
  }
  /* The kernel took part of it: libuv keeps the rest, our bytes stay put
   * in flight->buf until on_write. */
  pz__flight_t *f = pz_calloc(1, sizeof(*f));
  f->buf = c->pend;
  c->pend = (pz_buf_t){0};
  size_t done = (size_t)w;
  if (done < f->buf.len) {
    f->off = done;
    f->tail = tail;
    f->tail_len = tail_len;
  } else {
    f->off = f->buf.len;
    f->tail = tail + (done - f->buf.len);
    f->tail_len = tail_len - (done - f->buf.len);
  }
  n = 0;
  if (f->off < f->buf.len) bufs[n++] = uv_buf_init(f->buf.data + f->off, (unsigned)(f->buf.len - f->off));
  if (f->tail_len) bufs[n++] = uv_buf_init((char *)f->tail, (unsigned)f->tail_len);
  f->req.data = c;
  int rc = uv_write(&f->req, (uv_stream_t *)&c->tcp, bufs, n, on_write);
  if (rc < 0) {
    pz_buf_free(&f->buf);
    pz_free(f);
    pz__conn_close(c);
    return PZ_EIO;
  }
  c->flight = f;
  return 0;
}

static void on_write(uv_write_t *req, int status) {
  pz__flight_t *f = (pz__flight_t *)req;
  pz_conn_t *c = req->data;
  c->flight = NULL;
  pz_buf_free(&f->buf);
  pz_free(f);
  if (c->state == PZ__C_CLOSED) return;
  if (status < 0) {
    pz__conn_close(c);
    return;
  }
  if (c->pend.len) {
    if (pz__conn_flush(c, NULL, 0) < 0 || c->flight) return;
  }
  if (c->state == PZ__C_HTTP && c->http && c->http->phase == PZ__H_WRITING) pz__http_written(c);
}

/* ---- closing ---- */

static void on_shutdown(uv_shutdown_t *req, int status) {
  pz_conn_t *c = req->data;
  pz_free(req);
  c->shut = NULL;
  if (c->state == PZ__C_CLOSED) return;
  if (status < 0 || c->read_eof) pz__conn_close(c);
}

/* Closing at once would make the kernel answer the peer's unread bytes
 * with a reset, which can destroy our last response before the client
 * reads it: so send FIN after the queued output and drain input until the
 * peer's FIN, within PZ__LINGER_MS (what nginx calls lingering close). */
void pz__conn_linger(pz_conn_t *c) {
  if (c->state == PZ__C_LINGER || c->state == PZ__C_CLOSED) return;
  if (c->corked && pz__conn_flush(c, NULL, 0) < 0) return; /* the FIN goes after them */
  if (c->state == PZ__C_HTTP) pz__http_detach(c);
  c->state = PZ__C_LINGER;
  defer_remove(c);
  if (c->fake) {
    pz__conn_close(c);
    return;
  }
  /* With the peer's FIN already in, on_shutdown closes as soon as the
   * queued output is out; otherwise we drain until it comes. */
  pz__conn_tl_set(c, PZ__TL_LINGER);
  c->shut = pz_malloc(sizeof(*c->shut));
  c->shut->data = c;
  if (uv_shutdown(c->shut, (uv_stream_t *)&c->tcp, on_shutdown) < 0) {
    pz_free(c->shut);
    c->shut = NULL;
    pz__conn_close(c);
    return;
  }
  pz__conn_read_start(c);
}

static void conn_close(pz_conn_t *c, bool reset) {
  if (c->state == PZ__C_CLOSED) return;
  if (c->state == PZ__C_HTTP) pz__http_detach(c);
  c->state = PZ__C_CLOSED;
  pz__conn_tl_remove(c);
  defer_remove(c);
  if (c->corked) {
    cork_remove(c);
    /* Written at once, these bytes would be in the kernel by now, and a
     * plain close still delivers what the kernel holds: so hand them over
     * now, as far as it takes them without waiting. */
    if (!reset && !c->flight && c->pend.len) {
      uv_buf_t b = uv_buf_init(c->pend.data, (unsigned)c->pend.len);
      (void)uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    }
  }
  c->reading = 0;
  if (c->fake) {
    c->fake_closed = 1;
    return;
  }
  if (!reset || c->shut || uv_tcp_close_reset(&c->tcp, on_closed) != 0) uv_close((uv_handle_t *)&c->tcp, on_closed);
}

void pz__conn_close(pz_conn_t *c) { conn_close(c, false); }

void pz__conn_abort(pz_conn_t *c) { conn_close(c, true); }

static void on_closed(uv_handle_t *handle) { conn_closed(handle->data); }

static void conn_closed(pz_conn_t *c) {
  pz_server_t *srv = c->srv;
  if (c->ws) pz__ws_closed(c);
  if (c->prev)
    c->prev->next = c->next;
  else
    srv->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  srv->n_conns--;
  if (c->rejected) srv->n_rejecting--;
  pz_metrics_connections(-1);
  pz_buf_free(&c->in);
  pz_buf_free(&c->pend);
  pz_free(c);
  maybe_done(srv);
}

/* ---- accepting ---- */

static void link_conn(pz_server_t *srv, pz_conn_t *c) {
  c->srv = srv;
  c->next = srv->conns;
  if (srv->conns) srv->conns->prev = c;
  srv->conns = c;
  srv->n_conns++;
  pz_metrics_connections(1);
}

static void peer_name(pz_conn_t *c, char *out, size_t size) {
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  out[0] = '\0';
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) != 0) return;
  if (ss.ss_family == AF_INET) {
    uv_ip4_name((struct sockaddr_in *)&ss, out, size);
  } else if (ss.ss_family == AF_INET6) {
    uv_ip6_name((struct sockaddr_in6 *)&ss, out, size);
    /* An IPv4 client of a dual-stack socket reads better as plain IPv4. */
    if (strncmp(out, "::ffff:", 7) == 0 && strchr(out + 7, '.')) memmove(out, out + 7, strlen(out + 7) + 1);
  }
}

static void on_connection(uv_stream_t *server, int status) {
  pz_server_t *srv = server->data;
  if (status < 0) {
    PZ_LOG(PZ_LOG_WARN, NULL, "accept failed", "error=%s", uv_strerror(status));
    return;
  }
  pz_conn_t *c = pz_calloc(1, sizeof(*c));
  uv_tcp_init(srv->loop, &c->tcp);
  c->tcp.data = c;
  link_conn(srv, c);
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
    pz__conn_close(c);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  if (srv->n_conns - srv->n_rejecting > srv->lim.max_connections) {
    c->rejected = 1;
    srv->n_rejecting++;
    if (srv->n_rejecting > MAX_REJECTING) {
      pz__conn_close(c);
      return;
    }
    c->state = PZ__C_HTTP;
    pz__http_reject(c);
    return;
  }
  char addr[48];
  peer_name(c, addr, sizeof(addr));
  c->http = pz__http_new(c, addr);
  c->state = PZ__C_HTTP;
  pz__conn_tl_set(c, PZ__TL_IDLE);
  pz__conn_read_start(c);
}

/* Binds with plain sockets before any libuv handle exists, so that a
 * failure leaves nothing registered on the loop and the caller can free
 * the server without running the loop. */
static int bind_listen(pz_server_t *srv, int *out_fd, pz_err_t *err) {
  struct sockaddr_storage ss;
  int rc = parse_listen(srv->listen, &ss, err);
  if (rc) return rc;
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return pz_err_set(err, PZ_EIO, NULL, "socket: %s", strerror(errno));
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  socklen_t len = ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
  if (bind(fd, (struct sockaddr *)&ss, len) != 0) {
    rc = pz_err_set(err, PZ_EIO, NULL, "cannot listen on %s: %s", srv->listen, strerror(errno));
    goto out;
  }
  if (listen(fd, 1024) != 0) {
    rc = pz_err_set(err, PZ_EIO, NULL, "cannot listen on %s: %s", srv->listen, strerror(errno));
    goto out;
  }
  len = sizeof(ss);
  if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
    srv->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                               : ((struct sockaddr_in *)&ss)->sin_port);
  *out_fd = fd;
  fd = -1;
out:
  if (fd >= 0) close(fd);
  return rc;
}

int pz_server_start(pz_server_t *srv, pz_err_t *err) {
  int fd = -1;
  if (srv->started || srv->stopping) return pz_err_set(err, PZ_EINVAL, NULL, "server already started");
  int rc = bind_listen(srv, &fd, err);
  if (rc) return rc;
  uv_tcp_init(srv->loop, &srv->listener);
  srv->listener.data = srv;
  srv->listener_open = true;
  uv_timer_init(srv->loop, &srv->timer);
  srv->timer.data = srv;
  uv_timer_init(srv->loop, &srv->stop_timer);
  srv->stop_timer.data = srv;
  uv_idle_init(srv->loop, &srv->defer);
  srv->defer.data = srv;
  uv_check_init(srv->loop, &srv->cork_check);
  srv->cork_check.data = srv;
  uv_prepare_init(srv->loop, &srv->cork_prep);
  srv->cork_prep.data = srv;
  srv->handles_open = 6;
  srv->started = true;
  /* From here on, failures are reported but the handles stay: the caller
   * shuts the server down as usual, which closes them. */
  rc = uv_tcp_open(&srv->listener, fd);
  if (rc == 0) rc = uv_listen((uv_stream_t *)&srv->listener, 1024, on_connection);
  if (rc != 0) {
    if (!uv_is_active((uv_handle_t *)&srv->listener)) close(fd);
    return pz_err_set(err, PZ_EIO, NULL, "cannot listen on %s: %s", srv->listen, uv_strerror(rc));
  }
  PZ_LOG(PZ_LOG_INFO, NULL, "listening", "addr=%s port=%d", srv->listen, srv->port);
  return 0;
}

/* ---- shutdown ---- */

static void on_handle_closed(uv_handle_t *h) {
  pz_server_t *srv = h->data;
  if (--srv->handles_open == 0 && srv->done) srv->done(srv, srv->done_arg);
}

static void maybe_done(pz_server_t *srv) {
  if (!srv->stopping || srv->done_called || srv->n_conns > 0) return;
  srv->done_called = true;
  if (!srv->started) {
    if (srv->done) srv->done(srv, srv->done_arg);
    return;
  }
  /* done runs from the last close callback, once the loop holds nothing of ours. */
  if (srv->listener_open) {
    srv->listener_open = false;
    uv_close((uv_handle_t *)&srv->listener, on_handle_closed);
  }
  uv_close((uv_handle_t *)&srv->timer, on_handle_closed);
  uv_close((uv_handle_t *)&srv->stop_timer, on_handle_closed);
  uv_close((uv_handle_t *)&srv->defer, on_handle_closed);
  uv_close((uv_handle_t *)&srv->cork_check, on_handle_closed);
  uv_close((uv_handle_t *)&srv->cork_prep, on_handle_closed);
}

static void on_stop_timeout(uv_timer_t *t) {
  pz_server_t *srv = t->data;
  unsigned n = 0;
  for (pz_conn_t *c = srv->conns; c; c = c->next) {
    if (c->state != PZ__C_CLOSED) n++;
    pz__conn_close(c);
  }
  if (n) PZ_LOG(PZ_LOG_WARN, NULL, "shutdown timed out, connections cut", "connections=%u", n);
}

void pz_server_shutdown(pz_server_t *srv, unsigned timeout_ms, void (*done)(pz_server_t *srv, void *arg), void *arg) {
  if (srv->stopping) return;
  srv->stopping = true;
  srv->done = done;
  srv->done_arg = arg;
  if (srv->listener_open) {
    srv->listener_open = false;
    uv_close((uv_handle_t *)&srv->listener, on_handle_closed);
  }
  /* Closing never frees a connection synchronously (that happens in the
   * close callback), so the list can be walked while we close. */
  for (pz_conn_t *c = srv->conns; c; c = c->next) {
    if (c->state == PZ__C_HTTP)
      pz__http_shutdown(c);
    else if (c->state == PZ__C_WS)
      pz__ws_shutdown(c);
  }
  if (srv->started && srv->n_conns) uv_timer_start(&srv->stop_timer, on_stop_timeout, timeout_ms, 0);
  maybe_done(srv);
}

void pz_server_free(pz_server_t *srv) {
  if (srv == NULL) return;
  /* A started server must have finished pz_server_shutdown: its handles
   * are registered on the loop until their close callbacks ran. */
  PZ_ASSERT(srv->handles_open == 0);
  while (srv->conns) { /* only connections without a socket can be left */
    pz_conn_t *c = srv->conns;
    PZ_ASSERT(c->fake);
    pz__conn_close(c);
    conn_closed(c);
  }
  while (srv->orphans) {
    pz_http_t *h = srv->orphans;
    srv->orphans = h->onext;
    pz__http_free(h);
  }
  pz__router_free(&srv->router);
  pz__static_free(srv->statics);
  pz_free(srv->listen);
  pz_free(srv);
}

/* ---- connections without a socket, for fuzzing ---- */

pz_conn_t *pz__conn_fake_new(pz_server_t *srv, pz_buf_t *sink) {
  pz_conn_t *c = pz_calloc(1, sizeof(*c));
  c->fake = 1;
  link_conn(srv, c);
  srv->fake_sink = sink;
  c->http = pz__http_new(c, "127.0.0.1");
  c->state = PZ__C_HTTP;
  pz__conn_tl_set(c, PZ__TL_IDLE);
  return c;
}

int pz__conn_feed(pz_conn_t *c, const char *data, size_t len) {
  pz_server_t *srv = c->srv;
  if (c->state != PZ__C_CLOSED) conn_input(c, data, len);
  while (srv->dhead)
    run_deferred(srv);
  if (c->fake_closed) {
    conn_closed(c);
    return -1;
  }
  return 0;
}

void pz__conn_fake_end(pz_conn_t *c) {
  pz__conn_close(c);
  conn_closed(c);
}
