/* WebSocket (RFC 6455): handshake, frames in through wslay, messages out, ping, close codes, send backlog. */
#include <sodium.h>
#include <string.h>
#include <wslay/wslay.h>
#include "net/net_internal.h"
#include "plaza/id.h"
#include "plaza/log.h"
#include "plaza/metrics.h"

/* Memory: a wslay event context costs about 8.6 KiB (two 4 KiB frame
 * buffers), more than a whole idle socket may. So the context exists only
 * while a frame or a fragmented message is half received, or a reply to
 * the peer is pending, and is freed as soon as the socket is idle again.
 * Input is fed to wslay one frame at a time (the header is gathered here,
 * at most 14 bytes) so that wslay never holds the start of the next frame
 * when we free it. Our own frames (messages, pings, closes) are written
 * directly: a server frame is a plain header plus the payload, and wslay
 * only ever writes between our calls, so frames never interleave. */

struct pz_ws_s {
  pz_conn_t *conn;
  pz_ws_cbs_t cbs;
  void *udata;
  wslay_event_context_ptr ctx;
  const uint8_t *feed; /* the window recv_cb hands to wslay */
  size_t feed_len;
  uint64_t frame_left; /* bytes of the current frame wslay has not been fed */
  uint8_t stash[14];   /* a frame header that arrived in pieces */
  uint8_t stash_len;
  uint16_t close_code;   /* what on_close will report */
  unsigned msg_open : 1; /* a fragmented data message is half received */
  unsigned ping_out : 1; /* our ping has no answer yet */
  unsigned close_sent : 1;
  unsigned closing : 1; /* no more input is processed, nothing more is sent */
  unsigned in_wslay : 1;
  char id[17];
};

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* ---- frames we write ---- */

static void put_frame(pz_buf_t *b, uint8_t opcode, const void *data, size_t len) {
  uint8_t hdr[10];
  size_t n = 0;
  hdr[n++] = 0x80 | opcode;
  if (len < 126) {
    hdr[n++] = (uint8_t)len;
  } else if (len < 65536) {
    hdr[n++] = 126;
    hdr[n++] = (uint8_t)(len >> 8);
    hdr[n++] = (uint8_t)len;
  } else {
    hdr[n++] = 127;
    for (int i = 7; i >= 0; i--)
      hdr[n++] = (uint8_t)((uint64_t)len >> (8 * i));
  }
  pz_buf_append(b, hdr, n);
  pz_buf_append(b, data, len);
}

static void put_close(pz_ws_t *ws, int code, const char *reason) {
  uint8_t payload[125];
  size_t rlen = reason ? strlen(reason) : 0;
  if (rlen > 123) {
    rlen = 123;
    while (rlen > 0 && ((unsigned char)reason[rlen] & 0xC0) == 0x80)
      rlen--; /* keep UTF-8 whole */
  }
  payload[0] = (uint8_t)(code >> 8);
  payload[1] = (uint8_t)code;
  if (rlen) memcpy(payload + 2, reason, rlen);
  put_frame(&ws->conn->pend, WSLAY_CONNECTION_CLOSE, payload, 2 + rlen);
  ws->close_sent = 1;
  ws->close_code = (uint16_t)code;
}

/* ---- wslay glue ---- */

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user_data) {
  pz_ws_t *ws = user_data;
  if (ws->feed_len == 0) {
    wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    return -1;
  }
  size_t n = len < ws->feed_len ? len : ws->feed_len;
  memcpy(buf, ws->feed, n);
  ws->feed += n;
  ws->feed_len -= n;
  return (ssize_t)n;
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags, void *user_data) {
  pz_ws_t *ws = user_data;
  pz_buf_append(&ws->conn->pend, data, len); /* pongs and close replies: small */
  return (ssize_t)len;
}

static void on_frame_start(wslay_event_context_ptr ctx, const struct wslay_event_on_frame_recv_start_arg *arg,
                           void *user_data) {
  pz_ws_t *ws = user_data;
  if (!wslay_is_ctrl_frame(arg->opcode)) ws->msg_open = !arg->fin;
}

static void on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg, void *user_data) {
  pz_ws_t *ws = user_data;
  if (arg->opcode == WSLAY_PONG) {
    ws->ping_out = 0;
  } else if (arg->opcode == WSLAY_TEXT_FRAME || arg->opcode == WSLAY_BINARY_FRAME) {
    /* wslay has checked text to be UTF-8 across all fragments already. */
    if (!ws->close_sent && !ws->closing && ws->conn->state == PZ__C_WS && ws->cbs.on_message)
      ws->cbs.on_message(ws, arg->opcode == WSLAY_TEXT_FRAME, arg->msg ? (const char *)arg->msg : "",
                         arg->msg_length); /* wslay passes NULL for an empty message */
  }
}

static const struct wslay_event_callbacks wslay_cbs = {
    .recv_callback = recv_cb,
    .send_callback = send_cb,
    .on_frame_recv_start_callback = on_frame_start,
    .on_msg_recv_callback = on_msg,
};

static void ctx_ensure(pz_ws_t *ws) {
  if (ws->ctx) return;
  int rc = wslay_event_context_server_init(&ws->ctx, &wslay_cbs, ws);
  PZ_ASSERT(rc == 0); /* only fails when out of memory */
  wslay_event_config_set_max_recv_msg_length(ws->ctx, ws->conn->srv->lim.ws_max_message);
}

static void ctx_free(pz_ws_t *ws) {
  if (ws->ctx) wslay_event_context_free(ws->ctx);
  ws->ctx = NULL;
}

/* The socket is done: what is queued goes out, then FIN. on_close follows
 * from the connection's close callback. */
static void ws_end(pz_ws_t *ws) {
  pz_conn_t *c = ws->conn;
  ws->closing = 1;
  ctx_free(ws);
  if (pz__conn_flush(c, NULL, 0) == 0) pz__conn_linger(c);
}

/* wslay stopped reading: the peer's close arrived, or wslay failed the
 * connection (1002 bad frame, 1007 bad UTF-8, 1009 too big) and queued
 * its close. Sends the reply unless we sent a close of our own already. */
static void ws_read_stopped(pz_ws_t *ws) {
  wslay_event_context_ptr ctx = ws->ctx;
  if (wslay_event_get_close_received(ctx)) {
    if (!ws->close_sent) {
      wslay_event_send(ctx); /* echoes the peer's code */
      ws->close_sent = 1;
      ws->close_code = wslay_event_get_status_code_received(ctx);
    }
  } else if (!ws->close_sent) {
    wslay_event_send(ctx);
    ws->close_sent = 1;
    ws->close_code = wslay_event_get_status_code_sent(ctx);
    PZ_LOG(PZ_LOG_INFO, ws->id, "websocket failed by peer's data", "code=%d", ws->close_code);
  }
  ws_end(ws);
}

/* Feeds n bytes of the current frame to wslay; returns -1 once the socket is closing. */
static int feed(pz_ws_t *ws, const uint8_t *data, size_t n) {
  ctx_ensure(ws);
  ws->feed = data;
  ws->feed_len = n;
  ws->in_wslay = 1;
  int rc = wslay_event_recv(ws->ctx);
  ws->in_wslay = 0;
  ws->frame_left -= n - ws->feed_len;
  ws->feed_len = 0;
  if (ws->closing || ws->conn->state != PZ__C_WS) return -1; /* the socket failed while a callback ran */
  if (rc < 0) {
    /* A frame wslay cannot parse (bad length, fragmented control frame):
     * wslay queued a close without a code, ours says why. */
    if (!ws->close_sent) put_close(ws, 1002, "protocol error");
    PZ_LOG(PZ_LOG_INFO, ws->id, "websocket failed by peer's data", "code=%d", 1002);
    ws_end(ws);
    return -1;
  }
  if (!wslay_event_get_read_enabled(ws->ctx)) {
    ws_read_stopped(ws);
    return -1;
  }
  return 0;
}

static size_t hdr_len(const uint8_t *h, size_t have) {
  if (have < 2) return 2;
  size_t len7 = h[1] & 0x7f;
  return 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + ((h[1] & 0x80) ? 4 : 0);
}

static uint64_t hdr_payload(const uint8_t *h) {
  uint64_t len7 = h[1] & 0x7f;
  if (len7 < 126) return len7;
  uint64_t v = 0;
  int n = len7 == 126 ? 2 : 8;
  for (int i = 0; i < n; i++)
    v = v << 8 | h[2 + i];
  return v;
}

/* Payloads up to this size are unmasked on the stack by fast_frame. */
#define FAST_STACK 2048

/* The common frame, a client's whole message in one unfragmented frame,
 * needs neither wslay nor its context (allocated, cleared and freed for
 * every message otherwise). fast_frame takes a frame at p when it is
 * complete in the input and its outcome is plain: FIN set, no RSV bits,
 * text or binary, masked, its length in the shortest encoding and within
 * ws_max_message, text valid UTF-8 (the same strict check as wslay's).
 * Anything else, the frames wslay fails included, goes through wslay as
 * before. Call only between frames with nothing half received. Returns the
 * bytes taken, or 0 when the frame is not one of these. */
static size_t fast_frame(pz_ws_t *ws, const uint8_t *p, size_t left) {
  if (left < 6 || (p[0] != 0x81 && p[0] != 0x82) || !(p[1] & 0x80)) return 0;
  uint64_t plen = p[1] & 0x7f;
  size_t hdr = 2;
  if (plen == 126) {
    if (left < 8) return 0;
    plen = (uint64_t)p[2] << 8 | p[3];
    if (plen < 126) return 0;
    hdr = 4;
  } else if (plen == 127) {
    if (left < 14) return 0;
    plen = 0;
    for (int i = 0; i < 8; i++)
      plen = plen << 8 | p[2 + i];
    if (plen < 65536 || plen >> 63) return 0;
    hdr = 10;
  }
  const uint8_t *key = p + hdr;
  hdr += 4;
  if (plen > ws->conn->srv->lim.ws_max_message || plen > left - hdr) return 0;
  size_t n = (size_t)plen;
  uint8_t stack[FAST_STACK];
  uint8_t *msg = n <= sizeof(stack) ? stack : pz_malloc(n);
  const uint8_t *src = p + hdr;
  for (size_t i = 0; i < n; i++)
    msg[i] = src[i] ^ key[i & 3];
  bool is_text = p[0] == 0x81;
  if (is_text && !pz_utf8_valid((const char *)msg, n)) {
    n = 0; /* wslay fails it with 1007 */
  } else {
    n += hdr;
    if (!ws->close_sent && !ws->closing && ws->conn->state == PZ__C_WS && ws->cbs.on_message)
      ws->cbs.on_message(ws, is_text, (const char *)msg, (size_t)plen);
  }
  if (msg != stack) pz_free(msg);
  return n;
}

size_t pz__ws_input(pz_conn_t *c, const char *data, size_t len) {
  pz_ws_t *ws = c->ws;
  const uint8_t *p = (const uint8_t *)data;
  size_t left = len;
  if (ws->closing) return len;
  ws->ping_out = 0;                                   /* the peer is alive */
  if (!ws->close_sent) pz__conn_tl_set(c, PZ__TL_WS); /* next ping after a quiet interval */
  while (left > 0) {
    if (ws->frame_left == 0 && ws->stash_len == 0 && ws->ctx == NULL && !ws->msg_open && !c->srv->ws_slow_only) {
      size_t n = fast_frame(ws, p, left);
      if (n) {
        if (ws->closing || c->state != PZ__C_WS) return len; /* the socket failed while on_message ran */
        p += n;
        left -= n;
        continue;
      }
    }
    if (ws->frame_left == 0) {
      size_t need = hdr_len(ws->stash, ws->stash_len);
      while (ws->stash_len < need && left > 0) {
        ws->stash[ws->stash_len++] = *p++;
        left--;
        need = hdr_len(ws->stash, ws->stash_len);
      }
      if (ws->stash_len < need) break; /* the rest of the header comes later */
      uint64_t payload = hdr_payload(ws->stash);
      ws->frame_left = payload > UINT64_MAX - need ? UINT64_MAX : payload + need;
      uint8_t hdr[14];
      memcpy(hdr, ws->stash, need);
      ws->stash_len = 0;
      if (feed(ws, hdr, need) < 0) return len;
      continue;
    }
    size_t n = left < ws->frame_left ? left : (size_t)ws->frame_left;
    if (feed(ws, p, n) < 0) return len;
    p += n;
    left -= n;
  }
  if (ws->ctx) {
    if (!ws->close_sent && wslay_event_want_write(ws->ctx)) wslay_event_send(ws->ctx); /* pongs */
    if (ws->frame_left == 0 && !ws->msg_open && !wslay_event_want_write(ws->ctx)) ctx_free(ws);
  }
  if (c->pend.len) pz__conn_cork(c); /* pongs, with the replies of this turn */
  return len;
}

void pz__ws_eof(pz_conn_t *c) {
  pz_ws_t *ws = c->ws;
  if (!ws->close_sent) ws->close_code = 1006; /* gone without a close frame */
  ws->closing = 1;
  pz__conn_close(c);
}

void pz__ws_timeout(pz_conn_t *c) {
  pz_ws_t *ws = c->ws;
  if (ws->ping_out) {
    /* No answer to the last ping in a whole interval: tell it why, in case
     * it still reads, and cut the socket. */
    PZ_LOG(PZ_LOG_INFO, ws->id, "websocket ping timed out", "ping_ms=%u", c->srv->lim.ws_ping_ms);
    put_close(ws, 1001, "ping timeout");
    ws->close_code = 1006;
    ws->closing = 1;
    pz__conn_flush(c, NULL, 0);
    pz__conn_close(c);
    return;
  }
  put_frame(&c->pend, WSLAY_PING, NULL, 0);
  ws->ping_out = 1;
  pz__conn_tl_set(c, PZ__TL_WS);
  pz__conn_flush(c, NULL, 0);
}

void pz__ws_closed(pz_conn_t *c) {
  pz_ws_t *ws = c->ws;
  c->ws = NULL;
  ctx_free(ws);
  ws->closing = 1;
  ws->conn = NULL;
  if (!ws->close_code) ws->close_code = 1006;
  pz_metrics_websockets(-1);
  if (ws->cbs.on_close) ws->cbs.on_close(ws, ws->close_code);
  pz_free(ws);
}

void pz__ws_shutdown(pz_conn_t *c) { pz_ws_close(c->ws, 1001, "going away"); }

/* ---- public API ---- */

/* True when the comma-separated header value contains token (case-insensitive). */
static bool has_token(pz_str_t v, const char *token) {
  pz_str_t want = pz_str(token);
  const char *p = v.ptr, *end = v.ptr + v.len;
  while (p < end) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
      p++;
    const char *start = p;
    while (p < end && *p != ',')
      p++;
    const char *stop = p;
    while (stop > start && (stop[-1] == ' ' || stop[-1] == '\t'))
      stop--;
    if (pz_str_ieq(pz_str_n(start, (size_t)(stop - start)), want)) return true;
  }
  return false;
}

int pz_req_upgrade_ws(pz_req_t *req, const pz_ws_cbs_t *cbs, void *udata, pz_ws_t **out) {
  pz_http_t *h = (pz_http_t *)req;
  pz_conn_t *c = h->conn;
  PZ_ASSERT(h->phase == PZ__H_HANDLER);
  *out = NULL;
  if (c == NULL || c->state != PZ__C_HTTP) return PZ_EIO;
  pz_str_t key = pz_req_header(req, "Sec-WebSocket-Key");
  unsigned char raw[18];
  size_t raw_len = 0;
  if (req->method != PZ_HTTP_GET || h->http10 || !has_token(pz_req_header(req, "Upgrade"), "websocket") ||
      !has_token(pz_req_header(req, "Connection"), "upgrade") ||
      !pz_str_eq_c(pz_req_header(req, "Sec-WebSocket-Version"), "13") || key.len != 24 ||
      sodium_base642bin(raw, sizeof(raw), key.ptr, key.len, NULL, &raw_len, NULL, sodium_base64_VARIANT_ORIGINAL) !=
          0 ||
      raw_len != 16)
    return PZ_EINVAL;

  char concat[24 + sizeof(WS_GUID) - 1];
  memcpy(concat, key.ptr, 24);
  memcpy(concat + 24, WS_GUID, sizeof(WS_GUID) - 1);
  uint8_t digest[20];
  pz__sha1(concat, sizeof(concat), digest);
  char accept[sodium_base64_ENCODED_LEN(20, sodium_base64_VARIANT_ORIGINAL)];
  sodium_bin2base64(accept, sizeof(accept), digest, sizeof(digest), sodium_base64_VARIANT_ORIGINAL);

  pz_ws_t *ws = pz_calloc(1, sizeof(*ws));
  ws->conn = c;
  ws->cbs = *cbs;
  ws->udata = udata;
  memcpy(ws->id, req->id, sizeof(ws->id));

  pz_server_t *srv = c->srv;
  pz_buf_t *o = &c->pend;
  pz_buf_append_c(
      o, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ");
  pz_buf_append_c(o, accept);
  pz_buf_append_c(o, "\r\n");
  pz__http_date(srv, o);
  pz_buf_append(o, h->rhdr.data, h->rhdr.len);
  pz_buf_append_c(o, "\r\n");
  pz_metrics_request(req->route_id, 101, pz_mono_ns() - req->start_ns);
  if (srv->access_log)
    PZ_LOG(PZ_LOG_INFO, req->id, "request", "method=%.*s path=%.*s status=%d", (int)req->method_name.len,
           req->method_name.ptr, (int)req->path.len, req->path.ptr, 101);

  /* The request is over; the connection keeps only what a socket needs. */
  c->http = NULL;
  pz__http_free(h);
  c->ws = ws;
  c->state = PZ__C_WS;
  pz_metrics_websockets(1);
  pz__conn_tl_set(c, PZ__TL_WS);
  *out = ws;
  if (pz__conn_flush(c, NULL, 0) < 0) return 0; /* on_close follows from the close callback */
  /* Frames that came with the request are handled once the caller has
   * its pointer (inside conn_input the loop gets to them by itself). */
  if (!c->in_input) pz__conn_defer(c);
  return 0;
}

int pz_ws_send(pz_ws_t *ws, bool is_text, const char *data, size_t len) {
  pz_conn_t *c = ws->conn;
  if (ws->closing || ws->close_sent || c == NULL || c->state != PZ__C_WS) return PZ_EIO;
  if (pz__conn_backlog(c) + len + 14 > c->srv->lim.ws_max_backlog) {
    /* The peer does not read: no close frame would get through either. */
    PZ_LOG(PZ_LOG_WARN, ws->id, "websocket send backlog full, socket dropped", "backlog=%zu limit=%zu",
           pz__conn_backlog(c), c->srv->lim.ws_max_backlog);
    ws->close_code = 1008;
    ws->closing = 1;
    pz__conn_abort(c); /* and the kernel's copy too: it would never drain */
    return PZ_ETOOBIG;
  }
  put_frame(&c->pend, is_text ? WSLAY_TEXT_FRAME : WSLAY_BINARY_FRAME, data, len);
  pz__conn_cork(c); /* with the socket's other frames of this loop turn */
  return 0;
}

void pz_ws_close(pz_ws_t *ws, int code, const char *reason) {
  pz_conn_t *c = ws->conn;
  if (ws->closing || ws->close_sent || c == NULL || c->state != PZ__C_WS) return;
  /* 1005, 1006 and 1015 only ever describe a close, they are never sent (RFC 6455 section 7.4.1). */
  bool valid =
      (code >= 1000 && code <= 1014 && code != 1004 && code != 1005 && code != 1006) || (code >= 3000 && code <= 4999);
  if (!valid) code = 1011;
  put_close(ws, code, reason);
  /* Wait for the peer's close in reply, within the linger time. */
  pz__conn_tl_set(c, PZ__TL_LINGER);
  pz__conn_flush(c, NULL, 0);
}

void *pz_ws_udata(const pz_ws_t *ws) { return ws->udata; }

void pz_ws_set_udata(pz_ws_t *ws, void *udata) { ws->udata = udata; }

const char *pz_ws_id(const pz_ws_t *ws) { return ws->id; }
