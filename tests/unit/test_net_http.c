/* HTTP/1.1 over loopback: keep-alive, pipelining, limits, routing, timeouts, connection limit, shutdown. */
#include <signal.h>
#include "net_client.h"
#include "plaza/metrics.h"
#include "test.h"

/* A check that the rest of the test depends on. */
static uv_loop_t *g_loop; /* the loop of the server being tested, for async handlers */

/* ---- handlers ---- */

static void h_hello(pz_req_t *req) { pz_req_respond(req, 200, "text/plain", "hello", 5); }

static void h_echo(pz_req_t *req) {
  pz_req_add_header(req, "X-Req-Id", req->id);
  pz_req_add_header(req, "X-Remote", req->remote_addr);
  pz_req_respond(req, 200, "text/plain", req->body.ptr, req->body.len);
}

static void h_items(pz_req_t *req) {
  char *s =
      pz_arena_printf(req->arena, "id=%.*s tag=%.*s path=%.*s n=%d", (int)req->params[0].len, req->params[0].ptr,
                      (int)req->params[1].len, req->params[1].ptr, (int)req->path.len, req->path.ptr, req->n_params);
  pz_req_respond(req, 200, "text/plain", s, strlen(s));
}

static void h_items_me(pz_req_t *req) { pz_req_respond(req, 200, "text/plain", "me", 2); }

static void h_query(pz_req_t *req) {
  pz_str_t a, b, c;
  bool ha = pz_req_query(req, "a", &a), hb = pz_req_query(req, "b", &b), hc = pz_req_query(req, "c", &c);
  bool hd = pz_req_query(req, "d", &c);
  char *s = pz_arena_printf(req->arena, "a=%.*s|b=%.*s|c=%s|d=%s", ha ? (int)a.len : 0, ha ? a.ptr : "",
                            hb ? (int)b.len : 0, hb ? b.ptr : "", hc ? "present" : "absent", hd ? "present" : "absent");
  pz_req_respond(req, 200, "text/plain", s, strlen(s));
}

static void h_hdr(pz_req_t *req) {
  pz_str_t v = pz_req_header(req, "x-TEST");
  pz_str_t e = pz_req_header(req, "X-Empty");
  pz_str_t missing = pz_req_header(req, "X-Missing");
  char *s =
      pz_arena_printf(req->arena, "test=%.*s empty_len=%zu missing_len=%zu", (int)v.len, v.ptr, e.len, missing.len);
  pz_req_respond(req, 200, "text/plain", s, strlen(s));
}

typedef struct later_s {
  uv_timer_t timer;
  pz_req_t *req;
} later_t;

static void on_later(uv_timer_t *t) {
  later_t *l = t->data;
  pz_req_t *req = l->req;
  pz_req_respond(req, 200, "text/plain", req->params[0].ptr, req->params[0].len);
  uv_close((uv_handle_t *)t, (uv_close_cb)free);
}

/* Answers after {ms} milliseconds with the text "{ms}". */
static void h_slow(pz_req_t *req) {
  later_t *l = calloc(1, sizeof(*l));
  l->req = req;
  uv_timer_init(g_loop, &l->timer);
  l->timer.data = l;
  uv_timer_start(&l->timer, on_later, strtoul(pz_arena_cstr(req->arena, req->params[0]), NULL, 10), 0);
}

/* 8 MiB: far more than the socket buffers hold. */
static void h_big(pz_req_t *req) {
  size_t n = 8u << 20;
  char *body = pz_arena_alloc(req->arena, n);
  memset(body, 'b', n);
  pz_req_respond(req, 200, "application/octet-stream", body, n);
}

static pz_req_t *g_parked;
static void h_park(pz_req_t *req) { g_parked = req; }

static void setup_routes(pz_server_t *srv, void *arg) {
  pz_router_t *r = pz_server_router(srv);
  pz_router_add(r, PZ_HTTP_GET, "/hello", h_hello, NULL);
  pz_router_add(r, PZ_HTTP_GET | PZ_HTTP_POST, "/echo", h_echo, NULL);
  pz_router_add(r, PZ_HTTP_GET, "/items/{id}/tags/{tag}", h_items, NULL);
  pz_router_add(r, PZ_HTTP_GET, "/items/{id}", h_items, NULL);
  pz_router_add(r, PZ_HTTP_GET, "/items/me", h_items_me, NULL);
  pz_router_add(r, PZ_HTTP_GET, "/q", h_query, NULL);
  pz_router_add(r, PZ_HTTP_GET, "/hdr", h_hdr, NULL);
  pz_router_add(r, PZ_HTTP_POST, "/only-post", h_hello, NULL);
  pz_router_add(r, PZ_HTTP_GET, "/slow/{ms}", h_slow, NULL);
  pz_router_add(r, PZ_HTTP_GET, "/park", h_park, NULL);
  pz_router_add(r, PZ_HTTP_GET, "/big", h_big, NULL);
  pz_router_add(r, PZ_HTTP_GET, "/once", h_hello, NULL);
}

static tsrv_t S; /* the server with default limits */

static int start(tsrv_t *t, pz_net_limits_t lim) {
  int rc = tsrv_start(t, lim, setup_routes, NULL);
  g_loop = &t->loop;
  return rc;
}

static bool has(const char *hay, const char *needle) { return hay && strstr(hay, needle) != NULL; }

/* ---- tests ---- */

static void test_keep_alive(void) {
  cli_t *c = cli_open(S.port);
  NEED(c != NULL);
  resp_t r;
  for (int i = 0; i < 3; i++) {
    CHECK(cli_send_str(c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
    CHECK_EQ_INT(cli_response(c, &r), 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK_EQ_STR(r.body, "hello");
    CHECK_EQ_STR(resp_header(&r, "Content-Length"), "5");
    CHECK_EQ_STR(resp_header(&r, "Content-Type"), "text/plain");
    CHECK(has(resp_header(&r, "Date"), " GMT"));
    CHECK(resp_header(&r, "Connection") == NULL);
    resp_free(&r);
  }
  CHECK(cli_send_str(c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world"));
  CHECK_EQ_INT(cli_response(c, &r), 0);
  CHECK_EQ_STR(r.body, "hello world");
  CHECK_EQ_STR(resp_header(&r, "X-Remote"), "127.0.0.1");
  resp_free(&r);
  /* HEAD is answered by the GET route: the same headers, no body. */
  CHECK(cli_send_str(c, "HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
  CHECK_EQ_INT(cli_response_ex(c, &r, true), 0);
  CHECK_EQ_INT(r.status, 200);
  CHECK_EQ_STR(resp_header(&r, "Content-Length"), "5");
  resp_free(&r);
  /* The HEAD answer carried no body: the next response starts right away. */
  CHECK(cli_send_str(c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
  CHECK_EQ_INT(cli_response(c, &r), 0);
  CHECK_EQ_STR(r.body, "hello");
  resp_free(&r);
  cli_close(c);
}

static void test_pipelining_async_in_order(void) {
  cli_t *c = cli_open(S.port);
  NEED(c != NULL);
  /* One write, three requests; the first two are answered asynchronously,
   * the slow one first. */
  CHECK(cli_send_str(c,
                     "GET /slow/60 HTTP/1.1\r\nHost: x\r\n\r\n"
                     "GET /slow/5 HTTP/1.1\r\nHost: x\r\n\r\n"
                     "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
  const char *want[] = {"60", "5", "hello"};
  for (int i = 0; i < 3; i++) {
    resp_t r;
    CHECK_EQ_INT(cli_response(c, &r), 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK_EQ_STR(r.body, want[i]);
    resp_free(&r);
  }
  /* A pipelined POST body split across writes. */
  CHECK(cli_send_str(c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nabc"));
  msleep(20);
  CHECK(cli_send_str(c,
                     "def"
                     "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
  resp_t r;
  CHECK_EQ_INT(cli_response(c, &r), 0);
  CHECK_EQ_STR(r.body, "abcdef");
  resp_free(&r);
  CHECK_EQ_INT(cli_response(c, &r), 0);
  CHECK_EQ_STR(r.body, "hello");
  resp_free(&r);
  cli_close(c);
}

static void test_not_found_and_method(void) {
  resp_t r;
  cli_t *c = cli_open(S.port);
  NEED(c != NULL);
  CHECK(cli_send_str(c, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"));
  CHECK_EQ_INT(cli_response(c, &r), 0);
  CHECK_EQ_INT(r.status, 404);
  CHECK_EQ_STR(resp_header(&r, "Content-Type"), "application/json");
  CHECK_EQ_STR(r.body, "{\"error\":{\"code\":\"not_found\",\"message\":\"not found\"}}");
  resp_free(&r);
  /* A 404 keeps the connection. */
  CHECK(cli_send_str(c, "DELETE /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
  CHECK_EQ_INT(cli_response(c, &r), 0);
  CHECK_EQ_INT(r.status, 405);
  CHECK_EQ_STR(resp_header(&r, "Allow"), "GET, HEAD");
  CHECK(has(r.body, "\"code\":\"method_not_allowed\""));
  resp_free(&r);
  CHECK(cli_send_str(c, "GET /only-post HTTP/1.1\r\nHost: x\r\n\r\n"));
  CHECK_EQ_INT(cli_response(c, &r), 0);
  CHECK_EQ_INT(r.status, 405);
  CHECK_EQ_STR(resp_header(&r, "Allow"), "POST");
  resp_free(&r);
  /* A method we do not serve at all. */
  CHECK(cli_send_str(c, "PROPFIND /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
  CHECK_EQ_INT(cli_response(c, &r), 0);
  CHECK_EQ_INT(r.status, 501);
  CHECK(has(r.body, "\"code\":\"not_implemented\""));
  resp_free(&r);
  cli_close(c);
}

static void test_params_and_decoding(void) {
  resp_t r;
  CHECK_EQ_INT(http_once(S.port, "GET /items/a%20b/tags/x%2Fy HTTP/1.1\r\nHost: x\r\n\r\n", &r), 200);
  /* %2F stays inside its segment for routing; the decoded path shows it as '/'. */
  CHECK_EQ_STR(r.body, "id=a b tag=x/y path=/items/a b/tags/x/y n=2");
  resp_free(&r);
  CHECK_EQ_INT(http_once(S.port, "GET /items/42 HTTP/1.1\r\nHost: x\r\n\r\n", &r), 200);
  CHECK_EQ_STR(r.body, "id=42 tag= path=/items/42 n=1");
  resp_free(&r);
  /* A literal segment beats a parameter whatever the registration order. */
  CHECK_EQ_INT(http_once(S.port, "GET /items/me HTTP/1.1\r\nHost: x\r\n\r\n", &r), 200);
  CHECK_EQ_STR(r.body, "me");
  resp_free(&r);
  CHECK_EQ_INT(http_once(S.port, "GET /items/ HTTP/1.1\r\nHost: x\r\n\r\n", NULL), 404);
  CHECK_EQ_INT(http_once(S.port, "GET /items/a%00b HTTP/1.1\r\nHost: x\r\n\r\n", &r), 400);
  CHECK(has(r.body, "\"code\":\"invalid_request\""));
  resp_free(&r);
  CHECK_EQ_INT(http_once(S.port, "GET /items/a%zzb HTTP/1.1\r\nHost: x\r\n\r\n", NULL), 400);
  CHECK_EQ_INT(http_once(S.port, "GET /items/a%4 HTTP/1.1\r\nHost: x\r\n\r\n", NULL), 400);
  CHECK_EQ_INT(http_once(S.port, "GET /q?a=1+2&b=%C3%A9t%C3%A9&c HTTP/1.1\r\nHost: x\r\n\r\n", &r), 200);
  CHECK_EQ_STR(r.body, "a=1 2|b=\xC3\xA9t\xC3\xA9|c=present|d=absent");
  resp_free(&r);
  CHECK_EQ_INT(http_once(S.port, "GET /q?b=%zz&a=x HTTP/1.1\r\nHost: x\r\n\r\n", &r), 200);
  CHECK_EQ_STR(r.body, "a=x|b=|c=absent|d=absent");
  resp_free(&r);
  /* Absolute-form request targets route by their path. */
  CHECK_EQ_INT(http_once(S.port, "GET http://example.com/items/7?z=1 HTTP/1.1\r\nHost: x\r\n\r\n", &r), 200);
  CHECK_EQ_STR(r.body, "id=7 tag= path=/items/7 n=1");
  resp_free(&r);
}

static void test_headers(void) {
  resp_t r;
  CHECK_EQ_INT(http_once(S.port, "GET /hdr HTTP/1.1\r\nHost: x\r\nX-Empty:\r\nX-Test: v1\r\nX-Test: v2\r\n\r\n", &r),
               200);
  CHECK_EQ_STR(r.body, "test=v1 empty_len=0 missing_len=0");
  resp_free(&r);
  /* Request ids: 16 hex digits, different for each request. */
  char id1[32] = "", id2[32] = "";
  CHECK_EQ_INT(http_once(S.port, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n", &r), 200);
  if (resp_header(&r, "X-Req-Id")) snprintf(id1, sizeof(id1), "%s", resp_header(&r, "X-Req-Id"));
  resp_free(&r);
  CHECK_EQ_INT(http_once(S.port, "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n", &r), 200);
  if (resp_header(&r, "X-Req-Id")) snprintf(id2, sizeof(id2), "%s", resp_header(&r, "X-Req-Id"));
  resp_free(&r);
  CHECK_EQ_INT(strlen(id1), 16);
  CHECK_EQ_INT(strspn(id1, "0123456789abcdef"), 16);
  CHECK(strcmp(id1, id2) != 0);
}

static void test_http10(void) {
  cli_t *c = cli_open(S.port);
  NEED(c != NULL);
  resp_t r;
  CHECK(cli_send_str(c, "GET /hello HTTP/1.0\r\n\r\n"));
  CHECK_EQ_INT(cli_response(c, &r), 0);
  CHECK_EQ_INT(r.status, 200);
  CHECK_EQ_STR(resp_header(&r, "Connection"), "close");
  resp_free(&r);
  CHECK(cli_closed(c));
  cli_close(c);
  c = cli_open(S.port);
  NEED(c != NULL);
  CHECK(cli_send_str(c, "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  CHECK_EQ_INT(cli_response(c, &r), 0);
  CHECK_EQ_STR(resp_header(&r, "Connection"), "keep-alive");
  resp_free(&r);
  CHECK(cli_send_str(c, "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  CHECK_EQ_INT(cli_response(c, &r), 0);
  CHECK_EQ_INT(r.status, 200);
  CHECK_EQ_STR(resp_header(&r, "Connection"), "close");
  resp_free(&r);
  CHECK(cli_closed(c));
  cli_close(c);
}

static void test_bad_requests_close(void) {
  const char *bad[] = {
      "\x01\x02garbage\r\n\r\n",
      "GET / HTTP/1.1\r\nHost x\r\n\r\n",
      "GET / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcde",
      "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    cli_t *c = cli_open(S.port);
    NEED(c != NULL);
    resp_t r;
    CHECK(cli_send_str(c, bad[i]));
    CHECK_EQ_INT(cli_response(c, &r), 0);
    CHECK_EQ_INT(r.status, 400);
    CHECK_EQ_STR(resp_header(&r, "Connection"), "close");
    CHECK(has(r.body, "{\"error\":{\"code\":\"invalid_request\""));
    resp_free(&r);
    CHECK(cli_closed(c));
    cli_close(c);
  }
}

static void test_expect_continue(void) {
  cli_t *c = cli_open(S.port);
  NEED(c != NULL);
  resp_t r;
  CHECK(cli_send_str(c, "POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"));
  CHECK_EQ_INT(cli_response(c, &r), 0);
  CHECK_EQ_INT(r.status, 100);
  resp_free(&r);
  CHECK(cli_send_str(c, "ping"));
  CHECK_EQ_INT(cli_response(c, &r), 0);
  CHECK_EQ_INT(r.status, 200);
  CHECK_EQ_STR(r.body, "ping");
  resp_free(&r);
  cli_close(c);
}

/* ---- limits, on a server with small ones ---- */

static tsrv_t L;

static void test_header_limit_431(void) {
  char *big = malloc(4096);
  snprintf(big, 4096, "GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: %0*d\r\n\r\n", 2000, 0);
  cli_t *c = cli_open(L.port);
  NEED(c != NULL);
  resp_t r;
  CHECK(cli_send_str(c, big));
  CHECK_EQ_INT(cli_response(c, &r), 0);
  CHECK_EQ_INT(r.status, 431);
  CHECK(has(r.body, "\"code\":\"headers_too_large\""));
  CHECK_EQ_STR(resp_header(&r, "Connection"), "close");
  resp_free(&r);
  CHECK(cli_closed(c));
  cli_close(c);
  /* Too many header lines, each small. */
  size_t off = (size_t)snprintf(big, 4096, "GET /hello HTTP/1.1\r\n");
  for (int i = 0; i < 120 && off < 3000; i++)
    off += (size_t)snprintf(big + off, 4096 - off, "A%d:\r\n", i);
  snprintf(big + off, 4096 - off, "\r\n");
  CHECK_EQ_INT(http_once(L.port, big, NULL), 431);
  /* Just under the limit still works. */
  snprintf(big, 4096, "GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: %0*d\r\n\r\n", 900, 0);
  CHECK_EQ_INT(http_once(L.port, big, NULL), 200);
  free(big);
}

static void test_body_limit_413(void) {
  /* Refused on Content-Length alone: the client need not send the body. */
  cli_t *c = cli_open(L.port);
  NEED(c != NULL);
  resp_t r;
  CHECK(cli_send_str(c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n"));
  CHECK_EQ_INT(cli_response(c, &r), 0);
  CHECK_EQ_INT(r.status, 413);
  CHECK(has(r.body, "\"code\":\"payload_too_large\""));
  resp_free(&r);
  CHECK(cli_closed(c));
  cli_close(c);
  /* Chunked: refused when the body grows past the limit. */
  c = cli_open(L.port);
  NEED(c != NULL);
  char chunk[600];
  memset(chunk, 'x', sizeof(chunk));
  CHECK(cli_send_str(c, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"));
  for (int i = 0; i < 2; i++) {
    CHECK(cli_send_str(c, "258\r\n")); /* 600 bytes */
    CHECK(cli_send(c, chunk, sizeof(chunk)));
    CHECK(cli_send_str(c, "\r\n"));
  }
  CHECK_EQ_INT(cli_response(c, &r), 0);
  CHECK_EQ_INT(r.status, 413);
  resp_free(&r);
  CHECK(cli_closed(c));
  cli_close(c);
  /* At the limit exactly, chunked, it is accepted. */
  c = cli_open(L.port);
  NEED(c != NULL);
  CHECK(cli_send_str(c, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1f4\r\n"));
  CHECK(cli_send(c, chunk, 500));
  CHECK(cli_send_str(c, "\r\n1f4\r\n"));
  CHECK(cli_send(c, chunk, 500));
  CHECK(cli_send_str(c, "\r\n0\r\n\r\n"));
  CHECK_EQ_INT(cli_response(c, &r), 0);
  CHECK_EQ_INT(r.status, 200);
  CHECK_EQ_INT(r.body_len, 1000);
  resp_free(&r);
  cli_close(c);
}

static void test_request_timeout_408(void) {
  cli_t *c = cli_open(L.port);
  NEED(c != NULL);
  resp_t r;
  CHECK(cli_send_str(c, "GET /hello HTTP/1.1\r\nHost: x\r\n")); /* never finished */
  CHECK_EQ_INT(cli_response(c, &r), 0);
  CHECK_EQ_INT(r.status, 408);
  CHECK(has(r.body, "\"code\":\"request_timeout\""));
  CHECK_EQ_STR(resp_header(&r, "Connection"), "close");
  resp_free(&r);
  CHECK(cli_closed(c));
  cli_close(c);
}

static void test_idle_timeout_closes_silently(void) {
  cli_t *c = cli_open(L.port);
  NEED(c != NULL);
  resp_t r;
  CHECK(cli_send_str(c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
  CHECK_EQ_INT(cli_response(c, &r), 0);
  resp_free(&r);
  CHECK(cli_closed(c)); /* no bytes, just the close */
  cli_close(c);
}

/* ---- the connection limit ---- */

static void test_connection_limit_503(void) {
  static tsrv_t t; /* g_loop points into it */
  pz_net_limits_t lim = {.max_connections = 2};
  NEED(start(&t, lim) == 0);
  cli_t *a = cli_open(t.port), *b = cli_open(t.port);
  resp_t r;
  /* Answered requests prove both are accepted before the third arrives. */
  CHECK(a && cli_send_str(a, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n") && cli_response(a, &r) == 0);
  resp_free(&r);
  CHECK(b && cli_send_str(b, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n") && cli_response(b, &r) == 0);
  resp_free(&r);
  cli_t *c = cli_open(t.port);
  CHECK(c != NULL);
  if (c) {
    CHECK(cli_send_str(c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
    CHECK_EQ_INT(cli_response(c, &r), 0);
    CHECK_EQ_INT(r.status, 503);
    CHECK_EQ_STR(resp_header(&r, "Connection"), "close");
    CHECK(has(r.body, "{\"error\":{\"code\":\"unavailable\""));
    resp_free(&r);
    CHECK(cli_closed(c));
    cli_close(c);
  }
  /* Once a slot frees up, new connections are served again. */
  cli_close(a);
  for (int i = 0; i < 500 && tsrv_connections(&t) > 1; i++)
    msleep(10);
  CHECK_EQ_INT(http_once(t.port, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", NULL), 200);
  cli_close(b);
  tsrv_stop(&t);
  CHECK(t.done);
}

/* ---- asynchronous answers to clients that left ---- */

static void park_check(tsrv_t *t, void *arg) { *(int *)arg = g_parked ? pz_req_connected(g_parked) : -1; }
static void park_answer(tsrv_t *t, void *arg) {
  pz_req_respond(g_parked, 200, "text/plain", "late", 4);
  g_parked = NULL;
}

static void test_async_answer_after_client_vanished(void) {
  g_parked = NULL;
  cli_t *c = cli_open(S.port);
  NEED(c != NULL);
  CHECK(cli_send_str(c, "GET /park HTTP/1.1\r\nHost: x\r\n\r\n"));
  int connected = -1;
  for (int i = 0; i < 500 && connected != 1; i++) {
    tsrv_call(&S, park_check, &connected);
    if (connected != 1) msleep(5);
  }
  CHECK_EQ_INT(connected, 1);
  cli_reset(c); /* the client gives up */
  for (int i = 0; i < 500 && connected != 0; i++) {
    tsrv_call(&S, park_check, &connected);
    if (connected != 0) msleep(5);
  }
  CHECK_EQ_INT(connected, 0);
  /* The request is still valid for its handler; the answer is dropped. */
  if (connected == 0) tsrv_call(&S, park_answer, NULL);
  CHECK_EQ_INT(http_once(S.port, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", NULL), 200);
}

static void test_half_closed_client_still_answered(void) {
  cli_t *c = cli_open(S.port);
  NEED(c != NULL);
  CHECK(cli_send_str(c, "GET /slow/20 HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
  shutdown(c->fd, SHUT_WR);
  resp_t r;
  CHECK_EQ_INT(cli_response(c, &r), 0);
  CHECK_EQ_STR(r.body, "20");
  resp_free(&r);
  CHECK_EQ_INT(cli_response(c, &r), 0);
  CHECK_EQ_STR(r.body, "hello");
  resp_free(&r);
  CHECK(cli_closed(c));
  cli_close(c);
}

/* ---- graceful shutdown ---- */

static void test_shutdown_finishes_in_flight(void) {
  static tsrv_t t; /* g_loop points into it */
  NEED(start(&t, (pz_net_limits_t){0}) == 0);
  g_parked = NULL;
  cli_t *idle = cli_open(t.port), *busy = cli_open(t.port);
  resp_t r;
  CHECK(idle && cli_send_str(idle, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n") && cli_response(idle, &r) == 0);
  resp_free(&r);
  CHECK(busy && cli_send_str(busy, "GET /park HTTP/1.1\r\nHost: x\r\n\r\n"));
  int connected = -1;
  for (int i = 0; i < 500 && connected != 1; i++) {
    tsrv_call(&t, park_check, &connected);
    if (connected != 1) msleep(5);
  }
  CHECK_EQ_INT(connected, 1);
  tsrv_shutdown_async(&t, 5000);
  CHECK(cli_closed(idle));         /* idle keep-alive connections go at once */
  CHECK(cli_open(t.port) == NULL); /* no new connections */
  tsrv_call(&t, park_answer, NULL);
  if (busy) {
    CHECK_EQ_INT(cli_response(busy, &r), 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK_EQ_STR(r.body, "late");
    CHECK_EQ_STR(resp_header(&r, "Connection"), "close");
    resp_free(&r);
    CHECK(cli_closed(busy));
  }
  cli_close(idle);
  cli_close(busy);
  tsrv_join(&t);
  CHECK(t.done);
}

/* ---- back-pressure ---- */

typedef struct in_state_s {
  size_t max_in;
  int not_reading;
} in_state_t;

static void read_in_state(tsrv_t *t, void *arg) {
  in_state_t *st = arg;
  st->max_in = 0;
  st->not_reading = 0;
  for (pz_conn_t *c = t->srv->conns; c; c = c->next) {
    if (c->in.len > st->max_in) st->max_in = c->in.len;
    if (c->state == PZ__C_HTTP && !c->reading) st->not_reading++;
  }
}

/* A client that pipelines far more than it waits for: the server buffers
 * a bounded amount and leaves the rest in the kernel, unread. */
static void test_pipelined_flood_is_bounded(void) {
  g_parked = NULL;
  cli_t *c = cli_open(S.port);
  NEED(c != NULL);
  CHECK(cli_send_str(c, "GET /park HTTP/1.1\r\nHost: x\r\n\r\n"));
  static const char req[] = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
  char *chunk = malloc(64 * 1024);
  size_t per = sizeof(req) - 1, n = 64 * 1024 / per;
  for (size_t i = 0; i < n; i++)
    memcpy(chunk + i * per, req, per);
  struct timeval tv = {.tv_sec = 0, .tv_usec = 200000};
  setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  size_t sent = 0;
  for (int i = 0; i < 1000; i++) { /* until the socket buffers are full */
    ssize_t k = send(c->fd, chunk, n * per, MSG_NOSIGNAL);
    if (k <= 0) break;
    sent += (size_t)k;
  }
  free(chunk);
  in_state_t st;
  tsrv_call(&S, read_in_state, &st);
  CHECK(sent > 2 * PZ__IN_MAX);
  CHECK(st.max_in <= PZ__IN_MAX + PZ__READ_BUF);
  CHECK(st.not_reading >= 1);
  /* The server does not read this socket, so it cannot see the reset;
   * the answer finds out (the write fails) and the connection goes. */
  cli_reset(c);
  tsrv_call(&S, park_answer, NULL);
  unsigned conns = 1;
  for (int i = 0; i < 1000 && (conns = tsrv_connections(&S)) > 0; i++)
    msleep(5);
  CHECK_EQ_INT(conns, 0);
}

/* A client that never reads its response is cut after the request timeout. */
static void test_slow_reader_is_cut(void) {
  cli_t *c = cli_open(L.port);
  NEED(c != NULL);
  int rcv = 4096;
  setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
  CHECK(cli_send_str(c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n"));
  unsigned n = 1;
  for (int i = 0; i < 1000 && (n = tsrv_connections(&L)) > 0; i++)
    msleep(5);
  CHECK_EQ_INT(n, 0);
  cli_close(c);
}

static void test_listen_addresses(void) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  const char *bad[] = {"127.0.0.1", "localhost:80", "[::1]80", "1.2.3.4:65536", "1.2.3.4:-1", ":x"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    pz_server_t *srv = NULL;
    pz_err_t err = {0};
    pz_server_config_t cfg = {.listen = bad[i]};
    CHECK_EQ_INT(pz_server_new(&srv, &loop, &cfg, &err), PZ_EINVAL);
    CHECK(srv == NULL);
  }
  /* A port in use is reported by start, and the server can still be freed. */
  pz_server_t *a = NULL, *b = NULL;
  pz_err_t err = {0};
  pz_server_config_t cfg = {.listen = "127.0.0.1:0"};
  CHECK_EQ_INT(pz_server_new(&a, &loop, &cfg, &err), 0);
  CHECK_EQ_INT(pz_server_start(a, &err), 0);
  char addr[32];
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", pz__server_port(a));
  cfg.listen = addr;
  CHECK_EQ_INT(pz_server_new(&b, &loop, &cfg, &err), 0);
  CHECK_EQ_INT(pz_server_start(b, &err), PZ_EIO);
  CHECK(strstr(pz_err_message(&err), addr) != NULL);
  pz_server_free(b);
  pz_server_shutdown(a, 100, NULL, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  pz_server_free(a);
  CHECK_EQ_INT(uv_loop_close(&loop), 0);
}

static void test_ipv6(void) {
  static tsrv_t t; /* g_loop points into it */
  memset(&t, 0, sizeof(t));
  uv_loop_init(&t.loop);
  uv_mutex_init(&t.mu);
  uv_sem_init(&t.sem, 0);
  pz_server_config_t cfg = {.listen = "[::1]:0"};
  pz_err_t err = {0};
  NEED(pz_server_new(&t.srv, &t.loop, &cfg, &err) == 0);
  setup_routes(t.srv, NULL);
  g_loop = &t.loop;
  if (pz_server_start(t.srv, &err) != 0) { /* a machine without IPv6 loopback */
    fprintf(stderr, "skipping IPv6: %s\n", pz_err_message(&err));
    pz_server_shutdown(t.srv, 100, NULL, NULL);
    uv_run(&t.loop, UV_RUN_DEFAULT);
    pz_server_free(t.srv);
    uv_loop_close(&t.loop);
    return;
  }
  uv_async_init(&t.loop, &t.async, tsrv_on_async);
  t.async.data = &t;
  uv_thread_create(&t.thread, tsrv_thread, &t);
  int fd = socket(AF_INET6, SOCK_STREAM, 0);
  struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)pz__server_port(t.srv))};
  inet_pton(AF_INET6, "::1", &sa.sin6_addr);
  struct timeval tv = {.tv_sec = 5};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  CHECK_EQ_INT(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  const char *req = "GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  CHECK(send(fd, req, strlen(req), 0) == (ssize_t)strlen(req));
  char buf[2048] = {0};
  size_t got = 0;
  for (ssize_t k; (k = recv(fd, buf + got, sizeof(buf) - 1 - got, 0)) > 0;)
    got += (size_t)k;
  CHECK(strncmp(buf, "HTTP/1.1 200", 12) == 0);
  CHECK(strstr(buf, "X-Remote: ::1\r\n") != NULL);
  close(fd);
  tsrv_stop(&t);
}

static void render_metrics(tsrv_t *t, void *arg) { pz_metrics_render(arg); }

static void test_metrics_count_requests(void) {
  /* Garbage after a good request on the same connection: its 400 must not
   * be counted under the route of the request before it. */
  cli_t *c = cli_open(S.port);
  NEED(c != NULL);
  resp_t r;
  CHECK(cli_send_str(c, "GET /once HTTP/1.1\r\nHost: x\r\n\r\n"));
  CHECK_EQ_INT(cli_response(c, &r), 0);
  resp_free(&r);
  CHECK(cli_send_str(c, "\x01garbage\r\n\r\n"));
  CHECK_EQ_INT(cli_response(c, &r), 0);
  CHECK_EQ_INT(r.status, 400);
  resp_free(&r);
  cli_close(c);
  pz_buf_t m = {0};
  tsrv_call(&S, render_metrics, &m);
  pz_buf_append(&m, "", 1);
  CHECK(has(m.data, "plaza_http_requests_total{method=\"GET\",route=\"/items/{id}/tags/{tag}\",status=\"200\"}"));
  CHECK(has(m.data, "plaza_http_requests_total{method=\"GET\",route=\"/once\",status=\"200\"} 1\n"));
  CHECK(!has(m.data, "route=\"/once\",status=\"400\""));
  pz_buf_free(&m);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  if (start(&S, (pz_net_limits_t){0}) != 0) return 1;
  RUN(test_keep_alive);
  RUN(test_pipelining_async_in_order);
  RUN(test_not_found_and_method);
  RUN(test_params_and_decoding);
  RUN(test_headers);
  RUN(test_http10);
  RUN(test_bad_requests_close);
  RUN(test_expect_continue);
  RUN(test_async_answer_after_client_vanished);
  RUN(test_half_closed_client_still_answered);
  RUN(test_pipelined_flood_is_bounded);
  RUN(test_metrics_count_requests);
  tsrv_stop(&S);
  CHECK(S.done);

  pz_net_limits_t lim = {
      .max_header_bytes = 1024, .max_body_bytes = 1000, .request_timeout_ms = 300, .idle_timeout_ms = 300};
  if (start(&L, lim) != 0) return 1;
  RUN(test_header_limit_431);
  RUN(test_body_limit_413);
  RUN(test_request_timeout_408);
  RUN(test_idle_timeout_closes_silently);
  RUN(test_slow_reader_is_cut);
  tsrv_stop(&L);

  RUN(test_connection_limit_503);
  RUN(test_shutdown_finishes_in_flight);
  RUN(test_listen_addresses);
  RUN(test_ipv6);
  TEST_EXIT();
}
