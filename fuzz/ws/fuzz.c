/* libFuzzer: arbitrary bytes as client frames after a handshake, by the fast path and by wslay alone, alike. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "net/net_internal.h"
#include "plaza/log.h"

static uv_loop_t loop;
/* Two servers: [0] as shipped, [1] with every frame through wslay
 * (ws_slow_only). Whole frames that net/ws.c takes without wslay must be
 * answered byte for byte as wslay's path answers them. */
static pz_server_t *srvs[2];
static pz_buf_t sinks[2];
static int opened, closed, close_code;

static const char handshake[] =
    "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

static void on_message(pz_ws_t *ws, bool is_text, const char *data, size_t len) {
  /* Text came through wslay's UTF-8 check; make sure it holds. */
  if (is_text && !pz_utf8_valid(data, len)) abort();
  if (len == 5 && memcmp(data, "close", 5) == 0)
    pz_ws_close(ws, 4000, "bye");
  else
    pz_ws_send(ws, is_text, data, len);
}

static void on_close(pz_ws_t *ws, int code) {
  closed++;
  close_code = code;
  if (pz_ws_send(ws, true, "x", 1) != PZ_EIO) abort();
}

static const pz_ws_cbs_t cbs = {on_message, on_close};

static void h_ws(pz_req_t *req) {
  pz_ws_t *ws;
  if (pz_req_upgrade_ws(req, &cbs, NULL, &ws) != 0) abort(); /* the handshake is ours: it must pass */
  opened++;
}

static void init(void) {
  pz_log_level = PZ_LOG_ERROR + 1;
  uv_loop_init(&loop);
  pz_server_config_t cfg = {.listen = "127.0.0.1:0", .limits = {.ws_max_message = 4096, .ws_max_backlog = 65536}};
  pz_err_t err;
  for (int i = 0; i < 2; i++) {
    if (pz_server_new(&srvs[i], &loop, &cfg, &err) != 0) abort();
    pz_router_add(pz_server_router(srvs[i]), PZ_HTTP_GET, "/ws", h_ws, NULL);
  }
  srvs[1]->ws_slow_only = true;
}

/* Every byte the server wrote after the 101 must be whole, unmasked frames. */
static void check_output(const pz_buf_t *sink) {
  const char *end = memmem(sink->data, sink->len, "\r\n\r\n", 4);
  if (end == NULL || strncmp(sink->data, "HTTP/1.1 101 ", 13) != 0) abort();
  const uint8_t *p = (const uint8_t *)end + 4, *stop = (const uint8_t *)sink->data + sink->len;
  while (p < stop) {
    if (stop - p < 2 || (p[1] & 0x80) || (p[0] & 0x70)) abort();
    uint64_t len = p[1] & 0x7f;
    size_t hdr = 2;
    if (len == 126 || len == 127) {
      size_t n = len == 126 ? 2 : 8;
      if ((size_t)(stop - p) < 2 + n) abort();
      len = 0;
      for (size_t i = 0; i < n; i++)
        len = len << 8 | p[2 + i];
      hdr += n;
    }
    if ((uint64_t)(stop - p) < hdr + len) abort();
    p += hdr + len;
  }
}

/* Feeds data to a fresh socket of srv in pieces of step bytes (0: at once); returns its close code. */
static int run1(pz_server_t *srv, pz_buf_t *sink, const uint8_t *data, size_t size, size_t step) {
  opened = closed = close_code = 0;
  pz_conn_t *c = pz__conn_fake_new(srv, sink);
  if (pz__conn_feed(c, handshake, sizeof(handshake) - 1) < 0 || opened != 1) abort();
  size_t off = 0;
  while (off < size && c) {
    size_t n = step && step < size - off ? step : size - off;
    if (pz__conn_feed(c, (const char *)data + off, n) < 0) c = NULL;
    off += n;
  }
  if (c) pz__conn_fake_end(c);
  if (closed != 1) abort(); /* on_close exactly once */
  check_output(sink);
  return close_code;
}

/* The frames after the 101 (whose Date may differ by a second). */
static pz_str_t frames(const pz_buf_t *sink) {
  const char *end = memmem(sink->data, sink->len, "\r\n\r\n", 4) + 4;
  return pz_str_n(end, (size_t)(sink->data + sink->len - end));
}

static void run(const uint8_t *data, size_t size, size_t step) {
  int code_fast = run1(srvs[0], &sinks[0], data, size, step);
  int code_slow = run1(srvs[1], &sinks[1], data, size, step);
  if (code_fast != code_slow || !pz_str_eq(frames(&sinks[0]), frames(&sinks[1]))) abort();
  sinks[0].len = sinks[1].len = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (srvs[0] == NULL) init();
  run(data, size, 0);
  run(data, size, 1 + size % 7);
  return 0;
}
