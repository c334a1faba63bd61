/* Static files as a browser sees them: types, ETags and 304, Cache-Control, SPA fallback, large bodies. */
#include <signal.h>
#include <sys/stat.h>
#include "net_client.h"
#include "test.h"

#define BIG (4u << 20)

static char *g_dir;
static tsrv_t S;

static void write_file(const char *rel, const char *data, size_t len) {
  char path[1024];
  snprintf(path, sizeof(path), "%s/%s", g_dir, rel);
  char *slash = strrchr(path, '/');
  *slash = '\0';
  mkdir(path, 0755);
  *slash = '/';
  FILE *f = fopen(path, "wb");
  if (!f) return;
  fwrite(data, 1, len, f);
  fclose(f);
}

static void h_ping(pz_req_t *req) { pz_req_respond(req, 200, "application/json", "{}", 2); }

static void setup(pz_server_t *srv, void *arg) {
  pz_router_add(pz_server_router(srv), PZ_HTTP_GET, "/v1/ping", h_ping, NULL);
  pz_err_t err = {0};
  if (pz_server_serve_static(srv, g_dir, &err) != 0) fprintf(stderr, "serve_static: %s\n", pz_err_message(&err));
}

static int get(const char *path, const char *extra, resp_t *r) {
  char req[1024];
  snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n", path, extra ? extra : "");
  return http_once(S.port, req, r);
}

static void test_files_and_types(void) {
  resp_t r;
  CHECK_EQ_INT(get("/", NULL, &r), 200);
  CHECK_EQ_STR(r.body, "<!doctype html><title>plaza</title>");
  CHECK_EQ_STR(resp_header(&r, "Content-Type"), "text/html; charset=utf-8");
  CHECK_EQ_STR(resp_header(&r, "Cache-Control"), "no-cache");
  CHECK_EQ_STR(resp_header(&r, "X-Content-Type-Options"), "nosniff");
  CHECK(resp_header(&r, "ETag") && strlen(resp_header(&r, "ETag")) == 18);
  resp_free(&r);
  CHECK_EQ_INT(get("/assets/app.js", NULL, &r), 200);
  CHECK_EQ_STR(r.body, "console.log(1)");
  CHECK_EQ_STR(resp_header(&r, "Content-Type"), "text/javascript; charset=utf-8");
  CHECK_EQ_STR(resp_header(&r, "Cache-Control"), "public, max-age=3600");
  resp_free(&r);
  CHECK_EQ_INT(get("/manifest.webmanifest", NULL, &r), 200);
  CHECK_EQ_STR(resp_header(&r, "Content-Type"), "application/manifest+json");
  CHECK_EQ_STR(resp_header(&r, "Cache-Control"), "no-cache");
  resp_free(&r);
  CHECK_EQ_INT(get("/sw.js", NULL, &r), 200);
  CHECK_EQ_STR(resp_header(&r, "Cache-Control"), "no-cache");
  resp_free(&r);
  CHECK_EQ_INT(get("/assets/style.css", NULL, &r), 200);
  CHECK_EQ_STR(resp_header(&r, "Content-Type"), "text/css; charset=utf-8");
  resp_free(&r);
  CHECK_EQ_INT(get("/img/logo.png", NULL, &r), 200);
  CHECK_EQ_STR(resp_header(&r, "Content-Type"), "image/png");
  CHECK_EQ_INT(r.body_len, 4);
  resp_free(&r);
  CHECK_EQ_INT(get("/assets/app%2Ejs", NULL, &r), 200); /* the decoded path is looked up */
  resp_free(&r);
}

static void test_etag_304(void) {
  resp_t r;
  char etag[64] = "", extra[128];
  CHECK_EQ_INT(get("/assets/app.js", NULL, &r), 200);
  if (resp_header(&r, "ETag")) snprintf(etag, sizeof(etag), "%s", resp_header(&r, "ETag"));
  resp_free(&r);
  snprintf(extra, sizeof(extra), "If-None-Match: %s\r\n", etag);
  CHECK_EQ_INT(get("/assets/app.js", extra, &r), 304);
  CHECK_EQ_INT(r.body_len, 0);
  CHECK_EQ_STR(resp_header(&r, "ETag"), etag);
  CHECK(resp_header(&r, "Content-Length") == NULL);
  resp_free(&r);
  snprintf(extra, sizeof(extra), "If-None-Match: \"nope\", W/%s\r\n", etag);
  CHECK_EQ_INT(get("/assets/app.js", extra, &r), 304);
  resp_free(&r);
  CHECK_EQ_INT(get("/assets/app.js", "If-None-Match: \"0000000000000000\"\r\n", &r), 200);
  resp_free(&r);
  /* A different file has a different tag. */
  CHECK_EQ_INT(get("/assets/style.css", extra, &r), 200);
  CHECK(strcmp(resp_header(&r, "ETag") ? resp_header(&r, "ETag") : "", etag) != 0);
  resp_free(&r);
}

static void test_spa_fallback_and_api_paths(void) {
  resp_t r;
  CHECK_EQ_INT(get("/chats/42", NULL, &r), 200);
  CHECK_EQ_STR(r.body, "<!doctype html><title>plaza</title>");
  resp_free(&r);
  CHECK_EQ_INT(get("/missing.js", NULL, &r), 404);
  resp_free(&r);
  CHECK_EQ_INT(get("/.hidden", NULL, &r), 404); /* dotfiles are never loaded */
  resp_free(&r);
  /* Paths only ever name the in-memory table: ".." reaches nothing outside. */
  CHECK_EQ_INT(get("/../etc/passwd", NULL, &r), 200);
  CHECK_EQ_STR(r.body, "<!doctype html><title>plaza</title>");
  resp_free(&r);
  CHECK_EQ_INT(get("/assets/../../etc/hosts.txt", NULL, &r), 404);
  resp_free(&r);
  CHECK_EQ_INT(get("/v1/ping", NULL, &r), 200);
  CHECK_EQ_STR(r.body, "{}");
  resp_free(&r);
  /* The API space never falls back to the page. */
  CHECK_EQ_INT(get("/v1/nothing", NULL, &r), 404);
  CHECK(strstr(r.body, "\"not_found\"") != NULL);
  resp_free(&r);
  CHECK_EQ_INT(http_once(S.port, "POST /index.html HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", NULL), 404);
}

static void test_head_and_large_pipelined(void) {
  cli_t *c = cli_open(S.port);
  NEED(c != NULL);
  resp_t r;
  CHECK(cli_send_str(c, "HEAD /big.bin HTTP/1.1\r\nHost: x\r\n\r\n"));
  CHECK_EQ_INT(cli_response_ex(c, &r, true), 0);
  CHECK_EQ_INT(r.status, 200);
  CHECK_EQ_INT(strtoul(resp_header(&r, "Content-Length"), NULL, 10), BIG);
  resp_free(&r);
  /* Two large answers in a row: more than the socket takes at once. */
  CHECK(cli_send_str(c, "GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\nGET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n"));
  for (int k = 0; k < 2; k++) {
    /* Read the head, then stream the body through the small client buffer. */
    char *end;
    while ((end = memmem(c->buf, c->len, "\r\n\r\n", 4)) == NULL)
      if (cli_fill(c) <= 0) break;
    NEED(end != NULL);
    CHECK(strncmp(c->buf, "HTTP/1.1 200", 12) == 0);
    cli_consume(c, (size_t)(end - c->buf) + 4);
    size_t got = 0;
    bool same = true;
    while (got < BIG) {
      if (c->len == 0 && cli_fill(c) <= 0) break;
      size_t n = c->len < BIG - got ? c->len : BIG - got;
      for (size_t i = 0; i < n; i++)
        same &= (unsigned char)c->buf[i] == (unsigned char)((got + i) * 7);
      got += n;
      cli_consume(c, n);
    }
    CHECK_EQ_INT(got, BIG);
    CHECK(same);
  }
  cli_close(c);
}

static void test_missing_dir_is_an_error(void) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  pz_server_t *srv;
  pz_err_t err = {0};
  pz_server_config_t cfg = {.listen = "127.0.0.1:0"};
  NEED(pz_server_new(&srv, &loop, &cfg, &err) == 0);
  CHECK(pz_server_serve_static(srv, "/nonexistent/plaza-web", &err) != 0);
  CHECK(strstr(pz_err_message(&err), "/nonexistent/plaza-web") != NULL);
  pz_server_free(srv);
  uv_loop_close(&loop);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  g_dir = pz_test_tmpdir("net-static");
  if (!g_dir) return 1;
  const char *index = "<!doctype html><title>plaza</title>";
  write_file("index.html", index, strlen(index));
  write_file("sw.js", "self.x=1", 8);
  write_file("manifest.webmanifest", "{}", 2);
  write_file("assets/app.js", "console.log(1)", 14);
  write_file("assets/style.css", "body{}", 6);
  write_file("img/logo.png", "\x89PNG", 4);
  write_file(".hidden", "secret", 6);
  char *big = malloc(BIG);
  for (size_t i = 0; i < BIG; i++)
    big[i] = (char)(i * 7);
  write_file("big.bin", big, BIG);
  free(big);
  if (tsrv_start(&S, (pz_net_limits_t){0}, setup, NULL) != 0) return 1;
  RUN(test_files_and_types);
  RUN(test_etag_304);
  RUN(test_spa_fallback_and_api_paths);
  RUN(test_head_and_large_pipelined);
  tsrv_stop(&S);
  RUN(test_missing_dir_is_an_error);
  free(g_dir);
  TEST_EXIT();
}
