/* WebSocket over loopback: handshake, echo, fragments, ping, limits, close codes, corking, backlog, idle memory. */
#include <signal.h>
#include "net_client.h"
#include "test.h"
#if defined(__SANITIZE_ADDRESS__)
#define PZ_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PZ_ASAN 1
#endif
#endif
#ifdef PZ_ASAN
/* From the sanitizer runtime (gcc ships no header for it). */
size_t __sanitizer_get_current_allocated_bytes(void);
#else
#include <malloc.h>
#endif

static uv_loop_t *g_loop;

/* What the sockets saw; written on the loop thread, read through tsrv_call. */
static int g_closes, g_last_code, g_send_rc, g_opens;

typedef struct later_send_s {
  uv_timer_t timer;
  pz_ws_t *ws;
} later_send_t;

/* The timer is closed only with the socket (on_close): a closing handle
 * would wake the loop by itself and hide a frame left unwritten. */
static void on_later_send(uv_timer_t *t) {
  later_send_t *l = t->data;
  pz_ws_send(l->ws, true, "late", 4);
}

static void on_message(pz_ws_t *ws, bool is_text, const char *data, size_t len) {
  if (is_text && len == 5 && memcmp(data, "burst", 5) == 0) {
    /* Many frames in one callback leave in one write; all of them, in order. */
    for (int i = 0; i < 300; i++) {
      char text[16];
      int n = snprintf(text, sizeof(text), "%d", i);
      pz_ws_send(ws, true, text, (size_t)n);
    }
  } else if (is_text && len == 5 && memcmp(data, "later", 5) == 0) {
    /* A frame sent from a timer, outside the poll phase, must not wait for
     * the next event to be written. */
    later_send_t *l = calloc(1, sizeof(*l));
    l->ws = ws;
    uv_timer_init(g_loop, &l->timer);
    l->timer.data = l;
    uv_timer_start(&l->timer, on_later_send, 5, 0);
    pz_ws_set_udata(ws, l);
  } else if (is_text && len == 5 && memcmp(data, "last!", 5) == 0) {
    pz_ws_send(ws, true, "last", 4); /* goes before the close frame */
    pz_ws_close(ws, 4000, "bye");
  } else if (is_text && len == 5 && memcmp(data, "close", 5) == 0) {
    pz_ws_close(ws, 4000, "bye");
  } else if (is_text && len == 5 && memcmp(data, "flood", 5) == 0) {
    /* The client stops reading: sends must hit the backlog bound. */
    static char chunk[16 * 1024];
    int rc = 0;
    for (int i = 0; i < 100000 && rc == 0; i++)
      rc = pz_ws_send(ws, false, chunk, sizeof(chunk));
    g_send_rc = rc;
    /* Once dropped, the socket refuses further sends. */
    if (rc == PZ_ETOOBIG && pz_ws_send(ws, true, "x", 1) != PZ_EIO) g_send_rc = 1;
  } else {
    pz_ws_send(ws, is_text, data, len);
  }
}

static void on_close(pz_ws_t *ws, int code) {
  later_send_t *l = pz_ws_udata(ws);
  if (l) uv_close((uv_handle_t *)&l->timer, (uv_close_cb)free);
  g_closes++;
  g_last_code = code;
  /* Sending from on_close is refused, not a crash. */
  if (pz_ws_send(ws, true, "x", 1) != PZ_EIO) g_last_code = -1;
}

static const pz_ws_cbs_t cbs = {on_message, on_close};

static void h_ws(pz_req_t *req) {
  pz_ws_t *ws;
  if (pz_req_upgrade_ws(req, &cbs, NULL, &ws) != 0) {
    pz_req_respond_code(req, PZ_EINVAL);
    return;
  }
  g_opens++;
}

typedef struct later_s {
  uv_timer_t timer;
  pz_req_t *req;
} later_t;

static void on_later(uv_timer_t *t) {
  later_t *l = t->data;
  h_ws(l->req);
  uv_close((uv_handle_t *)t, (uv_close_cb)free);
}

/* Upgrades from a timer, as a handler that first checks a token in the store would. */
static void h_ws_async(pz_req_t *req) {
  later_t *l = calloc(1, sizeof(*l));
  l->req = req;
  uv_timer_init(g_loop, &l->timer);
  l->timer.data = l;
  uv_timer_start(&l->timer, on_later, 10, 0);
}

static void setup(pz_server_t *srv, void *arg) {
  pz_router_add(pz_server_router(srv), PZ_HTTP_GET, "/ws", h_ws, NULL);
  pz_router_add(pz_server_router(srv), PZ_HTTP_GET, "/ws-async", h_ws_async, NULL);
}

static int start(tsrv_t *t, pz_net_limits_t lim) {
  int rc = tsrv_start(t, lim, setup, NULL);
  g_loop = &t->loop;
  return rc;
}

static void read_state(tsrv_t *t, void *arg) {
  int *out = arg;
  out[0] = g_closes, out[1] = g_last_code, out[2] = g_send_rc, out[3] = g_opens;
}

static void reset_state_cb(tsrv_t *t, void *arg) { g_closes = g_last_code = g_send_rc = g_opens = 0; }

/* Waits until earlier sockets are gone (their on_close has run), then
 * clears what the sockets saw. */
static void reset_state(tsrv_t *t) {
  for (int i = 0; i < 1000 && tsrv_connections(t) > 0; i++)
    msleep(5);
  tsrv_call(t, reset_state_cb, NULL);
}

/* Waits until on_close has run n times; returns the last code (or -100). */
static int wait_closes(tsrv_t *t, int n) {
  int st[4] = {0};
  for (int i = 0; i < 1000; i++) {
    tsrv_call(t, read_state, st);
    if (st[0] >= n) return st[1];
    msleep(5);
  }
  return -100;
}

static tsrv_t S;

static cli_t *ws_open(tsrv_t *t, const char *path) {
  cli_t *c = cli_open(t->port);
  if (c && ws_handshake(c, path) != 101) {
    cli_close(c);
    return NULL;
  }
  return c;
}

static void test_echo(void) {
  reset_state(&S);
  cli_t *c = ws_open(&S, "/ws");
  NEED(c != NULL);
  wsf_t f;
  CHECK(ws_send_text(c, "hello, 世界"));
  CHECK_EQ_INT(ws_read_frame(c, &f), 0);
  CHECK_EQ_INT(f.opcode, 1);
  CHECK(f.fin);
  CHECK_EQ_STR(f.data, "hello, 世界");
  free(f.data);
  uint8_t bin[300];
  for (size_t i = 0; i < sizeof(bin); i++)
    bin[i] = (uint8_t)i;
  CHECK(ws_send_frame(c, true, 2, bin, sizeof(bin), true));
  CHECK_EQ_INT(ws_read_frame(c, &f), 0);
  CHECK_EQ_INT(f.opcode, 2);
  CHECK(f.len == sizeof(bin) && memcmp(f.data, bin, sizeof(bin)) == 0);
  free(f.data);
  /* A header that arrives a byte at a time. */
  uint8_t frame[9] = {0x81, 0x83, 1, 2, 3, 4, 'a' ^ 1, 'b' ^ 2, 'c' ^ 3};
  for (size_t i = 0; i < sizeof(frame); i++) {
    CHECK(cli_send(c, frame + i, 1));
    msleep(1);
  }
  CHECK_EQ_INT(ws_read_frame(c, &f), 0);
  CHECK_EQ_STR(f.data, "abc");
  free(f.data);
  /* A message of 64 KiB exactly (the limit) is still fine. */
  char *big = malloc(65536);
  memset(big, 'z', 65536);
  CHECK(ws_send_frame(c, true, 1, big, 65536, true));
  CHECK_EQ_INT(ws_read_frame(c, &f), 0);
  CHECK(f.len == 65536 && memcmp(f.data, big, 65536) == 0);
  free(f.data);
  free(big);
  /* The close handshake: our code is echoed, then the server closes. */
  CHECK(ws_send_close(c, 1000));
  CHECK_EQ_INT(ws_read_frame(c, &f), 0);
  CHECK_EQ_INT(f.opcode, 8);
  CHECK_EQ_INT(f.close_code, 1000);
  free(f.data);
  CHECK(cli_closed(c));
  cli_close(c);
  CHECK_EQ_INT(wait_closes(&S, 1), 1000);
}

static void test_fragments_and_ping(void) {
  cli_t *c = ws_open(&S, "/ws");
  NEED(c != NULL);
  wsf_t f;
  /* A ping between the fragments of a message is answered at once. */
  CHECK(ws_send_frame(c, false, 1, "Hel", 3, true));
  CHECK(ws_send_frame(c, true, 9, "p1", 2, true));
  CHECK(ws_send_frame(c, false, 0, "lo, ", 4, true));
  CHECK(ws_send_frame(c, true, 0, "world", 5, true));
  /* The pong and the echo, in either order (both are sent in one go when
   * the frames arrive together). */
  bool pong = false, text = false;
  for (int i = 0; i < 2; i++) {
    CHECK_EQ_INT(ws_read_frame(c, &f), 0);
    if (f.opcode == 10) pong = strcmp(f.data, "p1") == 0;
    if (f.opcode == 1) text = strcmp(f.data, "Hello, world") == 0;
    free(f.data);
  }
  CHECK(pong);
  CHECK(text);
  /* A UTF-8 character split across fragments is fine. */
  CHECK(ws_send_frame(c, false, 1, "\xC3", 1, true));
  CHECK(ws_send_frame(c, true, 0, "\xA9", 1, true));
  CHECK_EQ_INT(ws_read_frame(c, &f), 0);
  CHECK_EQ_STR(f.data, "\xC3\xA9");
  free(f.data);
  cli_close(c);
}

static void test_corked_frames(void) {
  reset_state(&S);
  cli_t *c = ws_open(&S, "/ws");
  NEED(c != NULL);
  wsf_t f;
  CHECK(ws_send_text(c, "burst"));
  for (int i = 0; i < 300; i++) {
    char want[16];
    snprintf(want, sizeof(want), "%d", i);
    NEED(ws_read_frame(c, &f) == 0);
    CHECK_EQ_STR(f.data, want);
    free(f.data);
  }
  /* Three frames of one write, each answered: replies keep their order. */
  uint8_t three[3 * 9];
  for (int i = 0; i < 3; i++) {
    uint8_t fr[9] = {0x81, 0x83, 1, 2, 3, 4, (uint8_t)('a' + i) ^ 1, 'b' ^ 2, 'c' ^ 3};
    memcpy(three + 9 * i, fr, 9);
  }
  CHECK(cli_send(c, three, sizeof(three)));
  for (int i = 0; i < 3; i++) {
    char want[4] = {(char)('a' + i), 'b', 'c', 0};
    NEED(ws_read_frame(c, &f) == 0);
    CHECK_EQ_STR(f.data, want);
    free(f.data);
  }
  CHECK(ws_send_text(c, "last!"));
  NEED(ws_read_frame(c, &f) == 0);
  CHECK_EQ_INT(f.opcode, 1);
  CHECK_EQ_STR(f.data, "last");
  free(f.data);
  NEED(ws_read_frame(c, &f) == 0);
  CHECK_EQ_INT(f.opcode, 8);
  CHECK_EQ_INT(f.close_code, 4000);
  free(f.data);
  CHECK(ws_send_close(c, 4000));
  CHECK(cli_closed(c));
  cli_close(c);
  CHECK_EQ_INT(wait_closes(&S, 1), 4000);
}

/* A frame sent from a timer callback, on a server with nothing else to
 * do: no other socket and no timer due before the next ping (30 s), so a
 * frame left corked until the loop wakes up again would miss the
 * client's 5 s read timeout. */
static void test_frame_from_timer(void) {
  static tsrv_t t; /* g_loop points into it */
  NEED(start(&t, (pz_net_limits_t){0}) == 0);
  reset_state(&t);
  cli_t *c = ws_open(&t, "/ws");
  NEED(c != NULL);
  wsf_t f;
  CHECK(ws_send_text(c, "later"));
  if (ws_read_frame(c, &f) == 0) {
    CHECK_EQ_STR(f.data, "late");
    free(f.data);
  } else {
    CHECK(!"the frame sent from a timer did not arrive");
  }
  cli_close(c);
  CHECK_EQ_INT(wait_closes(&t, 1), 1006);
  tsrv_stop(&t);
}

/* Sends raw bytes after a handshake and expects a close frame with code. */
static void expect_close(const void *data, size_t len, int code, bool mask, int opcode) {
  reset_state(&S);
  cli_t *c = ws_open(&S, "/ws");
  NEED(c != NULL);
  CHECK(ws_send_frame(c, true, opcode, data, len, mask));
  wsf_t f;
  CHECK_EQ_INT(ws_read_until(c, 8, &f), 0);
  CHECK_EQ_INT(f.close_code, code);
  free(f.data);
  CHECK(cli_closed(c));
  cli_close(c);
  CHECK_EQ_INT(wait_closes(&S, 1), code);
}

static void test_oversize_1009(void) {
  char *big = calloc(1, 70000);
  expect_close(big, 70000, 1009, true, 2);
  free(big);
}

static void test_invalid_utf8_1007(void) { expect_close("ok \xC3\x28", 5, 1007, true, 1); }

static void test_unmasked_1002(void) { expect_close("hi", 2, 1002, false, 1); }

static void test_bad_opcode_1002(void) { expect_close("hi", 2, 1002, true, 3); }

static void test_fragmented_control_1002(void) {
  reset_state(&S);
  cli_t *c = ws_open(&S, "/ws");
  NEED(c != NULL);
  CHECK(ws_send_frame(c, false, 9, "x", 1, true)); /* control frames may not be fragmented */
  wsf_t f;
  CHECK_EQ_INT(ws_read_until(c, 8, &f), 0);
  CHECK_EQ_INT(f.close_code, 1002);
  free(f.data);
  CHECK(cli_closed(c));
  cli_close(c);
  CHECK_EQ_INT(wait_closes(&S, 1), 1002);
}

static void test_server_initiated_close(void) {
  reset_state(&S);
  cli_t *c = ws_open(&S, "/ws");
  NEED(c != NULL);
  CHECK(ws_send_text(c, "close"));
  wsf_t f;
  CHECK_EQ_INT(ws_read_frame(c, &f), 0);
  CHECK_EQ_INT(f.opcode, 8);
  CHECK_EQ_INT(f.close_code, 4000);
  CHECK(f.len == 5 && memcmp(f.data + 2, "bye", 3) == 0);
  free(f.data);
  CHECK(ws_send_close(c, 4000));
  CHECK(cli_closed(c));
  cli_close(c);
  CHECK_EQ_INT(wait_closes(&S, 1), 4000);
}

static void test_bad_handshakes(void) {
  const char *bad[] = {
      /* no key */
      "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n",
      /* wrong version */
      "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
      /* not an upgrade */
      "GET /ws HTTP/1.1\r\nHost: x\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
      /* a key that is not 16 bytes */
      "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    CHECK_EQ_INT(http_once(S.port, bad[i], NULL), 400);
}

static void test_frames_with_handshake_and_async_upgrade(void) {
  const char *paths[] = {"/ws", "/ws-async"};
  for (int i = 0; i < 2; i++) {
    cli_t *c = cli_open(S.port);
    NEED(c != NULL);
    char req[512];
    snprintf(req, sizeof(req),
             "GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
             paths[i]);
    /* The first frame rides in the same write as the handshake. */
    uint8_t frame[8] = {0x81, 0x82, 9, 9, 9, 9, 'h' ^ 9, 'i' ^ 9};
    char both[600];
    size_t n = strlen(req);
    memcpy(both, req, n);
    memcpy(both + n, frame, sizeof(frame));
    CHECK(cli_send(c, both, n + sizeof(frame)));
    resp_t r;
    CHECK_EQ_INT(cli_response(c, &r), 0);
    CHECK_EQ_INT(r.status, 101);
    CHECK_EQ_STR(resp_header(&r, "Sec-WebSocket-Accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    resp_free(&r);
    wsf_t f;
    CHECK_EQ_INT(ws_read_frame(c, &f), 0);
    CHECK_EQ_STR(f.data, "hi");
    free(f.data);
    cli_close(c);
  }
}

static void test_peer_vanishes_1006(void) {
  reset_state(&S);
  cli_t *c = ws_open(&S, "/ws");
  NEED(c != NULL);
  cli_close(c);
  CHECK_EQ_INT(wait_closes(&S, 1), 1006);
}

static void test_backlog_1008(void) {
  static tsrv_t t; /* g_loop points into it */
  pz_net_limits_t lim = {.ws_max_backlog = 64 * 1024};
  NEED(start(&t, lim) == 0);
  reset_state(&t);
  cli_t *c = ws_open(&t, "/ws");
  NEED(c != NULL);
  int rcv = 4096;
  setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
  CHECK(ws_send_text(c, "flood")); /* and never read */
  CHECK_EQ_INT(wait_closes(&t, 1), 1008);
  int st[4];
  tsrv_call(&t, read_state, st);
  CHECK_EQ_INT(st[2], PZ_ETOOBIG);
  /* What the kernel had taken arrives, then the connection ends. */
  for (;;) {
    c->len = 0;
    ssize_t n = cli_fill(c);
    if (n <= 0) break;
  }
  cli_close(c);
  tsrv_stop(&t);
}

static void test_ping_and_timeout(void) {
  static tsrv_t t; /* g_loop points into it */
  pz_net_limits_t lim = {.ws_ping_ms = 100};
  NEED(start(&t, lim) == 0);
  reset_state(&t);
  cli_t *c = ws_open(&t, "/ws");
  NEED(c != NULL);
  wsf_t f;
  /* A quiet socket is pinged; answering keeps it open. */
  for (int i = 0; i < 3; i++) {
    CHECK_EQ_INT(ws_read_frame(c, &f), 0);
    CHECK_EQ_INT(f.opcode, 9);
    free(f.data);
    CHECK(ws_send_frame(c, true, 10, NULL, 0, true));
  }
  int st[4];
  tsrv_call(&t, read_state, st);
  CHECK_EQ_INT(st[0], 0);
  /* Stop answering: the socket is dropped. */
  CHECK_EQ_INT(ws_read_until(c, 8, &f), 0);
  CHECK_EQ_INT(f.close_code, 1001);
  free(f.data);
  CHECK(cli_closed(c));
  cli_close(c);
  CHECK_EQ_INT(wait_closes(&t, 1), 1006);
  tsrv_stop(&t);
}

static void test_shutdown_going_away(void) {
  static tsrv_t t; /* g_loop points into it */
  NEED(start(&t, (pz_net_limits_t){0}) == 0);
  reset_state(&t);
  cli_t *c = ws_open(&t, "/ws");
  NEED(c != NULL);
  tsrv_shutdown_async(&t, 5000);
  wsf_t f;
  CHECK_EQ_INT(ws_read_frame(c, &f), 0);
  CHECK_EQ_INT(f.opcode, 8);
  CHECK_EQ_INT(f.close_code, 1001);
  free(f.data);
  CHECK(ws_send_close(c, 1001));
  CHECK(cli_closed(c));
  cli_close(c);
  tsrv_join(&t);
  CHECK(t.done);
  CHECK_EQ_INT(g_closes, 1);
  CHECK_EQ_INT(g_last_code, 1001);
}

static size_t allocated_bytes(void) {
#ifdef PZ_ASAN
  return __sanitizer_get_current_allocated_bytes();
#else
  return mallinfo2().uordblks;
#endif
}

static void measure(tsrv_t *t, void *arg) { *(size_t *)arg = allocated_bytes(); }

/* An idle WebSocket must cost well under 8 KiB: the server keeps no parser
 * state, no buffers and no wslay context for a socket with nothing pending. */
static void test_idle_socket_memory(void) {
  enum { N = 64 };
  cli_t *c[N];
  size_t before = 0, after = 0;
  tsrv_call(&S, measure, &before);
  for (int i = 0; i < N; i++) {
    c[i] = ws_open(&S, "/ws");
    NEED(c[i] != NULL);
    wsf_t f;
    CHECK(ws_send_text(c[i], "warm up")); /* a message has been through wslay */
    CHECK_EQ_INT(ws_read_frame(c[i], &f), 0);
    free(f.data);
  }
  tsrv_call(&S, measure, &after);
  size_t per = (after - before - N * sizeof(cli_t)) / N;
  fprintf(stderr, "idle websocket: %zu bytes\n", per);
  CHECK(per < 2048);
  for (int i = 0; i < N; i++)
    cli_close(c[i]);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  if (start(&S, (pz_net_limits_t){0}) != 0) return 1;
  RUN(test_echo);
  RUN(test_fragments_and_ping);
  RUN(test_corked_frames);
  RUN(test_oversize_1009);
  RUN(test_invalid_utf8_1007);
  RUN(test_unmasked_1002);
  RUN(test_bad_opcode_1002);
  RUN(test_fragmented_control_1002);
  RUN(test_server_initiated_close);
  RUN(test_bad_handshakes);
  RUN(test_frames_with_handshake_and_async_upgrade);
  RUN(test_peer_vanishes_1006);
  RUN(test_idle_socket_memory);
  tsrv_stop(&S);
  RUN(test_backlog_1008);
  RUN(test_frame_from_timer);
  RUN(test_ping_and_timeout);
  RUN(test_shutdown_going_away);
  TEST_EXIT();
}
