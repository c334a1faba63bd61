/* The bodies of all requests together stay under max_body_memory: beyond it a request gets 503 before its body is
 * read, and memory comes back once an answer is written. */
#include <signal.h>
#include <unistd.h>
#include "net_client.h"
#include "test.h"

#define SERVER_MAX 1000
#define ROUTE_MAX 5000
#define MEMORY 6000

static void setup_routes(pz_server_t *srv, void *arg) {
  pz_router_t *r = pz_server_router(srv);
  pz_router_add(r, PZ_HTTP_POST, "/small", tsrv_h_body_len, NULL);
  pz_router_add(r, PZ_HTTP_POST, "/files", tsrv_h_body_len, NULL);
  pz_router_set_max_body(r, "/files", ROUTE_MAX);
}

static tsrv_t S;
static char body[ROUTE_MAX];

/* Sends the head of a request declaring n bytes, and the first `sent` of them. */
static cli_t *start(const char *path, size_t n, size_t sent) {
  cli_t *c = cli_open(S.port);
  if (c == NULL) return NULL;
  char head[160];
  snprintf(head, sizeof(head), "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n", path, n);
  if (!cli_send_str(c, head) || (sent && !cli_send(c, body, sent))) {
    cli_close(c);
    return NULL;
  }
  /* Long enough for the server to have read the head: the order of two
   * connections' requests is what this test is about. */
  usleep(300 * 1000);
  return c;
}

/* The status of the answer on c, and its body's text in msg (may be NULL). */
static int status_of(cli_t *c, char *msg, size_t cap) {
  resp_t r;
  if (cli_response(c, &r) != 0) return -1;
  if (msg) snprintf(msg, cap, "%s", r.body ? r.body : "");
  int s = r.status;
  resp_free(&r);
  return s;
}

static void test_bodies_share_the_memory(void) {
  /* A holds 5000 of the 6000 from its head on, with 100 bytes sent. */
  cli_t *a = start("/files", ROUTE_MAX, 100);
  NEED(a != NULL);
  /* B would take 5000 more: refused before its body, saying why. */
  cli_t *b = start("/files", ROUTE_MAX, 0);
  NEED(b != NULL);
  char msg[512];
  CHECK_EQ_INT(status_of(b, msg, sizeof(msg)), 503);
  CHECK(strstr(msg, "too many request bodies") != NULL);
  cli_close(b);
  /* A small body still fits beside A. */
  cli_t *c = start("/small", 900, 900);
  NEED(c != NULL);
  CHECK_EQ_INT(status_of(c, NULL, 0), 200);
  cli_close(c);
  /* A chunked body is held as it grows: 5000 + 500 + 500 fit, one more
   * chunk does not. */
  cli_t *d = cli_open(S.port);
  NEED(d != NULL);
  bool ok = cli_send_str(d, "POST /files HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
  for (int i = 0; ok && i < 3; i++)
    ok = cli_send_str(d, "1f4\r\n") && cli_send(d, body, 500) && cli_send_str(d, "\r\n");
  if (ok) cli_send_str(d, "0\r\n\r\n");
  CHECK_EQ_INT(status_of(d, NULL, 0), 503);
  cli_close(d);
  /* A finishes; its answer gives the memory back while its connection
   * stays open, idle. */
  CHECK(cli_send(a, body, ROUTE_MAX - 100));
  CHECK_EQ_INT(status_of(a, msg, sizeof(msg)), 200);
  CHECK_EQ_STR(msg, "5000");
  cli_t *e = start("/files", ROUTE_MAX, ROUTE_MAX);
  NEED(e != NULL);
  CHECK_EQ_INT(status_of(e, msg, sizeof(msg)), 200);
  CHECK_EQ_STR(msg, "5000");
  cli_close(e);
  cli_close(a);
}

static void test_a_closed_connection_gives_its_memory_back(void) {
  for (int round = 0; round < 3; round++) {
    /* Gone in the middle of its body: what it held is free again. */
    cli_t *a = start("/files", ROUTE_MAX, 10);
    NEED(a != NULL);
    cli_reset(a);
    usleep(100 * 1000);
  }
  cli_t *b = start("/files", ROUTE_MAX, ROUTE_MAX);
  NEED(b != NULL);
  CHECK_EQ_INT(status_of(b, NULL, 0), 200);
  cli_close(b);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  memset(body, 'b', sizeof(body));
  pz_net_limits_t lim = {.max_body_bytes = SERVER_MAX, .max_body_memory = MEMORY};
  if (tsrv_start(&S, lim, setup_routes, NULL) != 0) return 1;
  RUN(test_bodies_share_the_memory);
  RUN(test_a_closed_connection_gives_its_memory_back);
  tsrv_stop(&S);
  TEST_EXIT();
}
