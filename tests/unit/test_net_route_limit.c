/* Per-route body limits: a route may take more than the server's max_body_bytes while every other route keeps it. */
#include <signal.h>
#include "net_client.h"
#include "test.h"

#define SERVER_MAX 1000
#define ROUTE_MAX 5000

static void setup_routes(pz_server_t *srv, void *arg) {
  pz_router_t *r = pz_server_router(srv);
  pz_router_add(r, PZ_HTTP_POST, "/small", tsrv_h_body_len, NULL);
  pz_router_add(r, PZ_HTTP_POST, "/files", tsrv_h_body_len, NULL);
  pz_router_add(r, PZ_HTTP_PUT, "/files", tsrv_h_body_len, NULL);
  pz_router_add(r, PZ_HTTP_POST, "/files/{id}", tsrv_h_body_len, NULL);
  pz_router_add(r, PZ_HTTP_POST, "/files/{id}/parts", tsrv_h_body_len, NULL);
  pz_router_set_max_body(r, "/files", ROUTE_MAX);
  pz_router_set_max_body(r, "/files/{id}/parts", ROUTE_MAX * 2);
}

static tsrv_t S;

/* Sends a request with a body of n bytes declared by Content-Length (or
 * chunked) and returns the status; *len_seen is the body length the
 * handler reported (-1 if none). */
static int post(const char *method, const char *path, size_t n, bool chunked, long *len_seen) {
  cli_t *c = cli_open(S.port);
  if (c == NULL) return -1;
  char head[256];
  if (chunked)
    snprintf(head, sizeof(head), "%s %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", method, path);
  else
    snprintf(head, sizeof(head), "%s %s HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n", method, path, n);
  char *body = malloc(n ? n : 1);
  memset(body, 'z', n);
  bool ok = cli_send_str(c, head);
  if (chunked) {
    /* In 500-byte chunks: the limit must hold across them. */
    for (size_t off = 0; ok && off < n; off += 500) {
      size_t k = n - off < 500 ? n - off : 500;
      char size_line[32];
      snprintf(size_line, sizeof(size_line), "%zx\r\n", k);
      ok = cli_send_str(c, size_line) && cli_send(c, body + off, k) && cli_send_str(c, "\r\n");
    }
    if (ok) ok = cli_send_str(c, "0\r\n\r\n");
  } else if (n > 0) {
    ok = cli_send(c, body, n);
  }
  free(body);
  /* A refusal may close the connection before the body is all sent: the
   * answer is still there to read. */
  (void)ok;
  resp_t r;
  int status = cli_response(c, &r) == 0 ? r.status : -1;
  *len_seen = status == 200 && r.body ? strtol(r.body, NULL, 10) : -1;
  if (status >= 0) resp_free(&r);
  cli_close(c);
  return status;
}

static void test_other_routes_keep_the_server_limit(void) {
  long seen;
  CHECK_EQ_INT(post("POST", "/small", SERVER_MAX, false, &seen), 200);
  CHECK_EQ_INT(seen, SERVER_MAX);
  CHECK_EQ_INT(post("POST", "/small", SERVER_MAX + 1, false, &seen), 413);
  CHECK_EQ_INT(post("POST", "/small", SERVER_MAX + 1, true, &seen), 413);
  /* A parameter route under the big one is another route. */
  CHECK_EQ_INT(post("POST", "/files/42", SERVER_MAX + 1, false, &seen), 413);
  /* Unknown paths too: no route, no larger limit. */
  CHECK_EQ_INT(post("POST", "/nothing", SERVER_MAX + 1, false, &seen), 413);
}

static void test_route_takes_its_own_limit(void) {
  long seen;
  CHECK_EQ_INT(post("POST", "/files", ROUTE_MAX, false, &seen), 200);
  CHECK_EQ_INT(seen, ROUTE_MAX);
  CHECK_EQ_INT(post("POST", "/files", ROUTE_MAX + 1, false, &seen), 413);
  /* The same pattern with another method has the same limit. */
  CHECK_EQ_INT(post("PUT", "/files", ROUTE_MAX, false, &seen), 200);
  /* With a query string, and in absolute form. */
  CHECK_EQ_INT(post("POST", "/files?name=a.pdf", ROUTE_MAX, false, &seen), 200);
  CHECK_EQ_INT(post("POST", "http://x/files?name=a.pdf", ROUTE_MAX, false, &seen), 200);
  /* A path whose method the route does not take gets the server's limit. */
  CHECK_EQ_INT(post("PATCH", "/files", SERVER_MAX + 1, false, &seen), 413);
  /* Parameters and percent-encoding route as they do at dispatch. */
  CHECK_EQ_INT(post("POST", "/files/7/parts", ROUTE_MAX * 2, false, &seen), 200);
  CHECK_EQ_INT(seen, ROUTE_MAX * 2);
  CHECK_EQ_INT(post("POST", "/fil%65s", ROUTE_MAX, false, &seen), 200);
}

static void test_chunked_bodies_follow_the_route_limit(void) {
  long seen;
  CHECK_EQ_INT(post("POST", "/files", ROUTE_MAX, true, &seen), 200);
  CHECK_EQ_INT(seen, ROUTE_MAX);
  CHECK_EQ_INT(post("POST", "/files", ROUTE_MAX + 500, true, &seen), 413);
}

static void test_limit_resets_between_requests(void) {
  /* On one keep-alive connection, a large body to the big route must not
   * lift the limit of the next request to a small one. */
  cli_t *c = cli_open(S.port);
  NEED(c != NULL);
  char *body = malloc(ROUTE_MAX);
  memset(body, 'q', ROUTE_MAX);
  resp_t r;
  char head[128];
  snprintf(head, sizeof(head), "POST /files HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", ROUTE_MAX);
  CHECK(cli_send_str(c, head) && cli_send(c, body, ROUTE_MAX));
  CHECK_EQ_INT(cli_response(c, &r), 0);
  CHECK_EQ_INT(r.status, 200);
  resp_free(&r);
  CHECK(cli_send_str(c, "POST /small HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"));
  for (int i = 0; i < 3; i++) {
    CHECK(cli_send_str(c, "1f4\r\n") && cli_send(c, body, 500) && cli_send_str(c, "\r\n"));
  }
  CHECK_EQ_INT(cli_response(c, &r), 0);
  CHECK_EQ_INT(r.status, 413);
  resp_free(&r);
  free(body);
  cli_close(c);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  if (tsrv_start(&S, (pz_net_limits_t){.max_body_bytes = SERVER_MAX}, setup_routes, NULL) != 0) return 1;
  RUN(test_other_routes_keep_the_server_limit);
  RUN(test_route_takes_its_own_limit);
  RUN(test_chunked_bodies_follow_the_route_limit);
  RUN(test_limit_resets_between_requests);
  tsrv_stop(&S);
  TEST_EXIT();
}
