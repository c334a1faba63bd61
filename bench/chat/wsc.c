/* bench_chat: a WebSocket client (RFC 6455) on libuv: the upgrade, masked text frames out, frames in, ping and close.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bench.h"

struct bc_ws_s {
  uv_tcp_t tcp;
  uv_connect_t connect;
  uv_write_t write;
  bc_loop_t *loop;
  const bc_ws_cbs_t *cbs;
  void *udata;
  bc_buf_t in;     /* an incomplete response head or frame */
  bc_buf_t msg;    /* a fragmented message being put together */
  bc_buf_t out;    /* frames queued this turn */
  bc_buf_t flight; /* frames being written */
  bc_ws_t *next_dirty;
  int error, close_code;
  bool dirty, writing, upgraded, closing, in_msg;
};

/* ---- writing ---- */

static void fail(bc_ws_t *ws, int error);

static void mark_dirty(bc_ws_t *ws) {
  if (ws->dirty) return;
  ws->dirty = true;
  ws->next_dirty = ws->loop->dirty;
  ws->loop->dirty = ws;
}

static void on_write(uv_write_t *req, int status) {
  bc_ws_t *ws = req->data;
  ws->writing = false;
  ws->flight.len = 0;
  if (status < 0) {
    fail(ws, status);
    return;
  }
  if (ws->out.len) mark_dirty(ws);
}

static void flush_one(bc_ws_t *ws) {
  if (ws->closing || ws->writing || ws->out.len == 0) return;
  /* The queued frames become the write in flight; the next ones gather in
   * the emptied buffer of the last write, so no copy and no allocation. */
  bc_buf_t t = ws->flight;
  ws->flight = ws->out;
  ws->out = t;
  ws->out.len = 0;
  uv_buf_t b = uv_buf_init(ws->flight.data, (unsigned)ws->flight.len);
  ws->write.data = ws;
  int rc = uv_write(&ws->write, (uv_stream_t *)&ws->tcp, &b, 1, on_write);
  if (rc < 0) {
    fail(ws, rc);
    return;
  }
  ws->writing = true;
}

static void flush_all(bc_loop_t *l) {
  while (l->dirty) {
    bc_ws_t *ws = l->dirty;
    l->dirty = ws->next_dirty;
    ws->dirty = false;
    flush_one(ws);
  }
}

static void on_prepare(uv_prepare_t *h) { flush_all(h->data); }
static void on_check(uv_check_t *h) { flush_all(h->data); }

/* A frame with the client's mask (RFC 6455 5.3: every client frame is masked). */
static void queue_frame(bc_ws_t *ws, unsigned opcode, const char *data, size_t len) {
  if (ws->closing) return;
  bc_buf_t *o = &ws->out;
  bc_buf_reserve(o, len + 14);
  uint8_t *h = (uint8_t *)o->data + o->len;
  size_t n = 0;
  h[n++] = (uint8_t)(0x80 | opcode);
  if (len < 126) {
    h[n++] = (uint8_t)(0x80 | len);
  } else if (len <= 0xFFFF) {
    h[n++] = 0x80 | 126;
    h[n++] = (uint8_t)(len >> 8);
    h[n++] = (uint8_t)len;
  } else {
    h[n++] = 0x80 | 127;
    for (int i = 7; i >= 0; i--)
      h[n++] = (uint8_t)((uint64_t)len >> (8 * i));
  }
  uint32_t key = bc_rand32(&ws->loop->rng);
  uint8_t mask[4] = {(uint8_t)(key >> 24), (uint8_t)(key >> 16), (uint8_t)(key >> 8), (uint8_t)key};
  memcpy(h + n, mask, 4);
  n += 4;
  for (size_t i = 0; i < len; i++)
    h[n + i] = (uint8_t)data[i] ^ mask[i & 3];
  o->len += n + len;
  mark_dirty(ws);
}

void bc_ws_send_text(bc_ws_t *ws, const char *data, size_t len) { queue_frame(ws, 0x1, data, len); }

/* ---- closing ---- */

static void on_closed(uv_handle_t *h) {
  bc_ws_t *ws = h->data;
  bc_loop_t *l = ws->loop;
  if (ws->dirty) {
    for (bc_ws_t **pp = &l->dirty; *pp; pp = &(*pp)->next_dirty) {
      if (*pp == ws) {
        *pp = ws->next_dirty;
        break;
      }
    }
  }
  l->n_open--;
  if (ws->cbs->on_close) ws->cbs->on_close(ws, ws->error, ws->close_code);
  bc_buf_free(&ws->in);
  bc_buf_free(&ws->msg);
  bc_buf_free(&ws->out);
  bc_buf_free(&ws->flight);
  free(ws);
}

void bc_ws_close(bc_ws_t *ws) {
  if (ws->closing) return;
  ws->closing = true;
  uv_close((uv_handle_t *)&ws->tcp, on_closed);
}

static void fail(bc_ws_t *ws, int error) {
  if (ws->error == 0) ws->error = error;
  bc_ws_close(ws);
}

/* ---- reading ---- */

static uint64_t be(const uint8_t *p, unsigned n) {
  uint64_t v = 0;
  for (unsigned i = 0; i < n; i++)
    v = v << 8 | p[i];
  return v;
}

/* The response head: only 101 lets the socket on. The bench does not
 * check Sec-WebSocket-Accept: the server under test is ours and its
 * handshake has tests of its own (tests/api/ws.test.mjs). Returns the
 * bytes used, 0 when the head is incomplete, -1 on refusal. */
static long parse_head(bc_ws_t *ws, const char *p, size_t n) {
  const char *end = memmem(p, n, "\r\n\r\n", 4);
  if (end == NULL) return n > 16384 ? -1 : 0;
  if (n < 12 || memcmp(p, "HTTP/1.1 101", 12) != 0) return -1;
  ws->upgraded = true;
  return end + 4 - p;
}

static void deliver(bc_ws_t *ws, const char *data, size_t len) {
  if (ws->cbs->on_text) ws->cbs->on_text(ws, data, len);
}

/* Frames in p[0..n): returns the bytes used (whole frames), or -1 on a
 * protocol error. Stops early once the connection is closing. */
static long parse_frames(bc_ws_t *ws, const char *p, size_t n) {
  size_t used = 0;
  while (!ws->closing && n - used >= 2) {
    const uint8_t *h = (const uint8_t *)p + used;
    size_t avail = n - used;
    bool fin = h[0] & 0x80;
    unsigned op = h[0] & 0x0F;
    if (h[1] & 0x80) return -1; /* a server never masks */
    uint64_t len = h[1] & 0x7F;
    size_t hdr = 2;
    if (len == 126) {
      if (avail < 4) break;
      len = be(h + 2, 2);
      hdr = 4;
    } else if (len == 127) {
      if (avail < 10) break;
      len = be(h + 2, 8);
      hdr = 10;
    }
    if (len > BC_MAX_FRAME) return -1;
    if (avail < hdr + len) break;
    const char *payload = (const char *)h + hdr;
    switch (op) {
      case 0x1:
      case 0x2:
        if (ws->in_msg) return -1;
        if (fin) {
          if (op == 0x1) deliver(ws, payload, len);
        } else {
          ws->in_msg = true;
          ws->msg.len = 0;
          bc_buf_append(&ws->msg, payload, len);
        }
        break;
      case 0x0:
        if (!ws->in_msg || ws->msg.len + len > BC_MAX_FRAME) return -1;
        bc_buf_append(&ws->msg, payload, len);
        if (fin) {
          ws->in_msg = false;
          deliver(ws, ws->msg.data, ws->msg.len);
        }
        break;
      case 0x8:
        ws->close_code = len >= 2 ? (int)be((const uint8_t *)payload, 2) : 1005;
        bc_ws_close(ws);
        break;
      case 0x9:
        queue_frame(ws, 0xA, payload, len);
        break;
      case 0xA:
        break;
      default:
        return -1;
    }
    used += hdr + len;
  }
  return (long)used;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  bc_ws_t *ws = h->data;
  *buf = uv_buf_init(ws->loop->rbuf, sizeof(ws->loop->rbuf));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  bc_ws_t *ws = s->data;
  if (nread < 0) {
    fail(ws, nread == UV_EOF ? 0 : (int)nread);
    return;
  }
  if (nread == 0 || ws->closing) return;
  /* Parse straight from the loop's buffer unless a tail is waiting. */
  const char *p = buf->base;
  size_t n = (size_t)nread;
  if (ws->in.len) {
    bc_buf_append(&ws->in, buf->base, n);
    p = ws->in.data;
    n = ws->in.len;
  }
  size_t used = 0;
  if (!ws->upgraded) {
    long rc = parse_head(ws, p, n);
    if (rc < 0) {
      fail(ws, UV_EPROTO);
      return;
    }
    if (rc == 0) goto keep;
    used = (size_t)rc;
    if (ws->cbs->on_open) ws->cbs->on_open(ws);
  }
  if (!ws->closing) {
    long rc = parse_frames(ws, p + used, n - used);
    if (rc < 0) {
      fail(ws, UV_EPROTO);
      return;
    }
    used += (size_t)rc;
  }
keep:
  if (ws->closing) return;
  if (p == ws->in.data) {
    bc_buf_consume(&ws->in, used);
  } else if (used < n) {
    bc_buf_append(&ws->in, p + used, n - used);
  }
  /* An idle socket keeps no buffer. */
  if (ws->in.len == 0 && ws->in.cap > 64 * 1024) bc_buf_free(&ws->in);
}

/* ---- connecting ---- */

static void on_connect(uv_connect_t *req, int status) {
  bc_ws_t *ws = req->data;
  if (status < 0) {
    fail(ws, status);
    return;
  }
  if (ws->closing) return;
  uv_tcp_nodelay(&ws->tcp, 1);
  int rc = uv_read_start((uv_stream_t *)&ws->tcp, on_alloc, on_read);
  if (rc < 0) {
    fail(ws, rc);
    return;
  }
  /* The key only has to be 16 bytes in base64 (RFC 6455 4.1). */
  uint8_t key[16];
  for (unsigned i = 0; i < 16; i += 4) {
    uint32_t r = bc_rand32(&ws->loop->rng);
    memcpy(key + i, &r, 4);
  }
  char key64[32];
  sodium_bin2base64(key64, sizeof(key64), key, sizeof(key), sodium_base64_VARIANT_ORIGINAL);
  struct sockaddr_in peer;
  int len = sizeof(peer);
  char host[INET_ADDRSTRLEN] = "127.0.0.1";
  if (uv_tcp_getpeername(&ws->tcp, (struct sockaddr *)&peer, &len) == 0) uv_ip4_name(&peer, host, sizeof(host));
  bc_buf_printf(&ws->out,
                "GET /v1/ws HTTP/1.1\r\nHost: %s:%u\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nUser-Agent: bench_chat\r\n\r\n",
                host, ntohs(peer.sin_port), key64);
  mark_dirty(ws);
}

bc_ws_t *bc_ws_connect(bc_loop_t *l, const struct sockaddr_in *server, const struct sockaddr_in *src,
                       const bc_ws_cbs_t *cbs, void *udata) {
  bc_ws_t *ws = bc_xcalloc(1, sizeof(*ws));
  ws->loop = l;
  ws->cbs = cbs;
  ws->udata = udata;
  uv_tcp_init(&l->uv, &ws->tcp);
  ws->tcp.data = ws;
  ws->connect.data = ws;
  l->n_open++;
  int rc = 0;
  if (src) rc = uv_tcp_bind(&ws->tcp, (const struct sockaddr *)src, 0);
  if (rc == 0) rc = uv_tcp_connect(&ws->connect, &ws->tcp, (const struct sockaddr *)server, on_connect);
  /* A failure is reported like any other, through on_close, on a later turn. */
  if (rc < 0) fail(ws, rc);
  return ws;
}

void *bc_ws_udata(const bc_ws_t *ws) { return ws->udata; }

/* ---- the loop ---- */

void bc_loop_init(bc_loop_t *l) {
  memset(l, 0, sizeof(*l));
  if (uv_loop_init(&l->uv) < 0) bc_die("uv_loop_init failed");
  randombytes_buf(&l->rng, sizeof(l->rng));
  l->rng |= 1;
  uv_prepare_init(&l->uv, &l->flush_before);
  uv_check_init(&l->uv, &l->flush_after);
  l->flush_before.data = l->flush_after.data = l;
  uv_prepare_start(&l->flush_before, on_prepare);
  uv_check_start(&l->flush_after, on_check);
  /* They must not keep the loop alive on their own. */
  uv_unref((uv_handle_t *)&l->flush_before);
  uv_unref((uv_handle_t *)&l->flush_after);
}

void bc_loop_close(bc_loop_t *l) {
  uv_close((uv_handle_t *)&l->flush_before, NULL);
  uv_close((uv_handle_t *)&l->flush_after, NULL);
  uv_run(&l->uv, UV_RUN_DEFAULT);
  if (uv_loop_close(&l->uv) != 0) bc_die("a handle outlived its phase");
}
