/* libFuzzer: arbitrary bytes through the real HTTP path (parser, limits, router, answers), no socket. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "net/net_internal.h"
#include "plaza/log.h"

static uv_loop_t loop;
static pz_server_t *srv;
static pz_buf_t sink;
static pz_req_t *parked[4];
static int n_parked;

static void h_hello(pz_req_t *req) { pz_req_respond(req, 200, "text/plain", "hello", 5); }

static void h_echo(pz_req_t *req) {
  pz_str_t v;
  if (pz_req_query(req, "a", &v)) pz_req_add_header(req, "X-A", pz_arena_cstr(req->arena, v));
  pz_str_t h = pz_req_header(req, "X-Test");
  pz_req_add_header(req, "X-Test", pz_arena_cstr(req->arena, h)); /* CR/LF inside are refused */
  pz_req_respond(req, 200, "text/plain", req->body.ptr, req->body.len);
}

/* Answered later, possibly after the connection is gone. */
static void h_async(pz_req_t *req) {
  if (n_parked == 4) {
    pz_req_respond_code(req, PZ_EUNAVAIL);
    return;
  }
  parked[n_parked++] = req;
}

static void on_message(pz_ws_t *ws, bool is_text, const char *data, size_t len) { pz_ws_send(ws, is_text, data, len); }
static void on_close(pz_ws_t *ws, int code) {}
static const pz_ws_cbs_t cbs = {on_message, on_close};

static void h_ws(pz_req_t *req) {
  pz_ws_t *ws;
  if (pz_req_upgrade_ws(req, &cbs, NULL, &ws) != 0) pz_req_respond_code(req, PZ_EINVAL);
}

static void answer_parked(int keep) {
  while (n_parked > keep) {
    pz_req_t *req = parked[--n_parked];
    pz_req_respond(req, 201, "application/json", "{}", 2);
  }
}

static void init(void) {
  pz_log_level = PZ_LOG_ERROR + 1; /* quiet: every input would log */
  uv_loop_init(&loop);
  pz_server_config_t cfg = {.listen = "127.0.0.1:0",
                            .limits = {.max_header_bytes = 2048, .max_body_bytes = 4096, .ws_max_message = 1024}};
  pz_err_t err;
  if (pz_server_new(&srv, &loop, &cfg, &err) != 0) abort();
  pz_router_t *r = pz_server_router(srv);
  pz_router_add(r, PZ_HTTP_GET, "/hello", h_hello, NULL);
  pz_router_add(r, PZ_HTTP_GET | PZ_HTTP_POST | PZ_HTTP_PUT, "/echo/{x}", h_echo, NULL);
  pz_router_add(r, PZ_HTTP_GET | PZ_HTTP_DELETE, "/async/{x}/{y}", h_async, NULL);
  pz_router_add(r, PZ_HTTP_GET, "/ws", h_ws, NULL);
  char dir[] = "/tmp/pz-fuzz-http-XXXXXX";
  if (mkdtemp(dir) == NULL) abort();
  char path[64];
  snprintf(path, sizeof(path), "%s/index.html", dir);
  FILE *f = fopen(path, "w");
  if (f) fputs("<!doctype html>", f), fclose(f);
  snprintf(path, sizeof(path), "%s/app.js", dir);
  f = fopen(path, "w");
  if (f) fputs("1", f), fclose(f);
  if (pz_server_serve_static(srv, dir, &err) != 0) abort();
}

/* Feeds data in pieces of `step` bytes (0: all at once), answering
 * asynchronous requests now and then; ends the connection. */
static void run(const uint8_t *data, size_t size, size_t step) {
  pz_conn_t *c = pz__conn_fake_new(srv, &sink);
  size_t off = 0;
  int round = 0;
  while (off < size) {
    size_t n = step && step < size - off ? step : size - off;
    if (pz__conn_feed(c, (const char *)data + off, n) < 0) {
      c = NULL;
      break;
    }
    off += n;
    if (++round % 2 == 0) answer_parked(1);
  }
  answer_parked(1);
  if (c) pz__conn_fake_end(c);
  answer_parked(0); /* after the client is gone: dropped */
  sink.len = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (srv == NULL) init();
  run(data, size, 0);
  run(data, size, 1 + size % 13);
  return 0;
}
