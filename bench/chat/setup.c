/* bench_chat: setup over HTTP: accounts, contacts, the pairs' direct chats and the fan-out group. */
#include <errno.h>
#include <http_parser.h>
#include <jansson.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "bench.h"

/* Setup runs a few thousand requests once, so a blocking client with a
 * thread per connection is simplest; only the phases need the loop. */

#define SETUP_THREADS 4
#define HTTP_RETRIES 60 /* 503 answers (Argon2 queue full), one second apart */
#define MAX_RESPONSE (1u << 20)

typedef struct {
  const struct sockaddr_in *server;
  int fd;
} hc_t;

typedef struct {
  bc_buf_t body;
  bool done, too_big;
} resp_t;

static int on_body(http_parser *p, const char *at, size_t n) {
  resp_t *r = p->data;
  if (r->body.len + n > MAX_RESPONSE) {
    r->too_big = true;
    return -1;
  }
  bc_buf_append(&r->body, at, n);
  return 0;
}

static int on_complete(http_parser *p) {
  ((resp_t *)p->data)->done = true;
  http_parser_pause(p, 1);
  return 0;
}

static void hc_close(hc_t *c) {
  if (c->fd >= 0) close(c->fd);
  c->fd = -1;
}

static int hc_connect(hc_t *c) {
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (c->fd < 0) return -1;
  struct timeval tv = {30, 0}; /* a server that stops answering fails setup, it does not hang it */
  setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  if (connect(c->fd, (const struct sockaddr *)c->server, sizeof(*c->server)) < 0) {
    hc_close(c);
    return -1;
  }
  return 0;
}

static int write_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* One request on the keep-alive connection: the status, or -1 when the
 * connection failed before any answer (the caller may retry on a new one). */
static int hc_once(hc_t *c, const char *method, const char *path, const char *token, const char *body, bc_buf_t *out) {
  if (c->fd < 0 && hc_connect(c) < 0) return -1;
  bc_buf_t req = {0};
  size_t blen = body ? strlen(body) : 0;
  bc_buf_printf(&req, "%s %s HTTP/1.1\r\nHost: bench\r\nUser-Agent: bench_chat\r\n", method, path);
  if (token) bc_buf_printf(&req, "Authorization: Bearer %s\r\n", token);
  if (body) bc_buf_printf(&req, "Content-Type: application/json\r\nContent-Length: %zu\r\n", blen);
  bc_buf_printf(&req, "\r\n");
  if (body) bc_buf_append(&req, body, blen);
  int status = -1;
  resp_t r = {0};
  if (write_all(c->fd, req.data, req.len) < 0) goto out;
  http_parser p;
  http_parser_init(&p, HTTP_RESPONSE);
  p.data = &r;
  http_parser_settings s;
  http_parser_settings_init(&s);
  s.on_body = on_body;
  s.on_message_complete = on_complete;
  char buf[16384];
  while (!r.done) {
    ssize_t n = read(c->fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) goto out;
    http_parser_execute(&p, &s, buf, (size_t)n);
    if (HTTP_PARSER_ERRNO(&p) != HPE_OK && HTTP_PARSER_ERRNO(&p) != HPE_PAUSED) {
      if (r.too_big) bc_die("%s %s: response over %u bytes", method, path, MAX_RESPONSE);
      bc_die("%s %s: bad response: %s", method, path, http_errno_name(HTTP_PARSER_ERRNO(&p)));
    }
  }
  status = (int)p.status_code;
  if (!http_should_keep_alive(&p)) hc_close(c);
  out->len = 0;
  bc_buf_append(out, r.body.data ? r.body.data : "", r.body.len);
  bc_buf_append(out, "", 1); /* NUL for jansson */
  out->len--;
out:
  if (status < 0) hc_close(c);
  bc_buf_free(&req);
  bc_buf_free(&r.body);
  return status;
}

/* A request that must succeed with want: retries a dropped keep-alive
 * connection and 503 (the server's Argon2 queue is full), dies otherwise.
 * Returns the parsed body; the caller decrefs. */
static json_t *hc_call(hc_t *c, const char *method, const char *path, const char *token, const char *body, int want) {
  bc_buf_t out = {0};
  int status = -1;
  for (unsigned attempt = 0; attempt < HTTP_RETRIES; attempt++) {
    status = hc_once(c, method, path, token, body, &out);
    if (status < 0 && attempt == 0) continue; /* the server closed an idle keep-alive connection */
    if (status == 503) {
      sleep(1);
      continue;
    }
    break;
  }
  if (status < 0) bc_die("%s %s: no answer from the server", method, path);
  /* Either status is fine where the API answers 200 for "already so". */
  if (status != want && !(want == 201 && status == 200))
    bc_die("%s %s: status %d, wanted %d: %.*s", method, path, status, want, (int)(out.len > 300 ? 300 : out.len),
           out.data ? out.data : "");
  json_error_t jerr;
  json_t *j = json_loadb(out.data ? out.data : "", out.len, 0, &jerr);
  if (j == NULL) bc_die("%s %s: the answer is not JSON: %s", method, path, jerr.text);
  bc_buf_free(&out);
  return j;
}

static const char *get_str(json_t *j, const char *a, const char *b, const char *what) {
  json_t *v = json_object_get(j, a);
  if (b) v = json_object_get(v, b);
  if (!json_is_string(v)) bc_die("%s: the answer has no %s%s%s", what, a, b ? "." : "", b ? b : "");
  return json_string_value(v);
}

static void copy(char *dst, size_t cap, const char *src, const char *what) {
  size_t n = strlen(src);
  if (n >= cap) bc_die("%s: a value longer than %zu bytes", what, cap - 1);
  memcpy(dst, src, n + 1);
}

/* ---- a few threads over the items ---- */

typedef struct job_s job_t;
typedef void (*item_fn)(job_t *job, hc_t *c, unsigned i);

struct job_s {
  const struct sockaddr_in *server;
  bc_state_t *st;
  atomic_uint next;
  unsigned n;
  item_fn fn;
  char run_id[16];
};

static void *worker(void *arg) {
  job_t *job = arg;
  hc_t c = {job->server, -1};
  for (;;) {
    unsigned i = atomic_fetch_add(&job->next, 1);
    if (i >= job->n) break;
    job->fn(job, &c, i);
  }
  hc_close(&c);
  return NULL;
}

static void parallel(job_t *job, unsigned n, item_fn fn) {
  pthread_t t[SETUP_THREADS];
  atomic_store(&job->next, 0);
  job->n = n;
  job->fn = fn;
  for (unsigned k = 0; k < SETUP_THREADS; k++)
    if (pthread_create(&t[k], NULL, worker, job) != 0) bc_die("pthread_create failed");
  for (unsigned k = 0; k < SETUP_THREADS; k++)
    pthread_join(t[k], NULL);
}

/* ---- the steps ---- */

static void make_account(job_t *job, hc_t *c, unsigned i) {
  char body[256];
  /* The run id keeps names unique when setup runs twice against one server. */
  snprintf(body, sizeof(body),
           "{\"username\":\"bc%s_%u\",\"password\":\"bench-password-%s\",\"display_name\":\"Bench %u\"}", job->run_id,
           i, job->run_id, i);
  json_t *j = hc_call(c, "POST", "/v1/accounts", NULL, body, 201);
  copy(job->st->users[i].id, sizeof(job->st->users[i].id), get_str(j, "user", "id", "sign-up"), "user id");
  copy(job->st->users[i].token, sizeof(job->st->users[i].token), get_str(j, "token", NULL, "sign-up"), "token");
  json_decref(j);
}

static void befriend(hc_t *c, const bc_user_t *from, const bc_user_t *to) {
  char body[128], path[128];
  snprintf(body, sizeof(body), "{\"user_id\":\"%s\"}", to->id);
  json_t *j = hc_call(c, "POST", "/v1/contacts/requests", from->token, body, 201);
  const char *status = get_str(j, "request", "status", "contact request");
  if (strcmp(status, "accepted") != 0) {
    snprintf(path, sizeof(path), "/v1/contacts/requests/%s/accept", get_str(j, "request", "id", "contact request"));
    json_t *a = hc_call(c, "POST", path, to->token, NULL, 200);
    json_decref(a);
  }
  json_decref(j);
}

/* Items 0..n_users-2: users[0] with users[i+1]; then one per pair. */
static void make_contacts(job_t *job, hc_t *c, unsigned i) {
  bc_state_t *st = job->st;
  if (i < st->n_users - 1) {
    befriend(c, &st->users[0], &st->users[i + 1]);
  } else {
    unsigned p = i - (st->n_users - 1);
    befriend(c, &st->users[2 * p + 1], &st->users[2 * p + 2]);
  }
}

static void make_direct(job_t *job, hc_t *c, unsigned p) {
  bc_state_t *st = job->st;
  char body[128];
  snprintf(body, sizeof(body), "{\"type\":\"direct\",\"user_id\":\"%s\"}", st->users[2 * p + 2].id);
  json_t *j = hc_call(c, "POST", "/v1/conversations", st->users[2 * p + 1].token, body, 201);
  copy(st->pair_conv[p], sizeof(st->pair_conv[p]), get_str(j, "conversation", "id", "direct chat"), "conversation id");
  json_decref(j);
}

static void make_group(bc_state_t *st, const struct sockaddr_in *server) {
  bc_buf_t body = {0};
  bc_buf_printf(&body, "{\"type\":\"group\",\"title\":\"bench fan-out\",\"member_ids\":[");
  for (unsigned i = 1; i < st->n_users; i++)
    bc_buf_printf(&body, "%s\"%s\"", i > 1 ? "," : "", st->users[i].id);
  bc_buf_printf(&body, "]}");
  hc_t c = {server, -1};
  json_t *j = hc_call(&c, "POST", "/v1/conversations", st->users[0].token, body.data, 201);
  copy(st->group_conv, sizeof(st->group_conv), get_str(j, "conversation", "id", "group"), "conversation id");
  json_t *members = json_object_get(json_object_get(j, "conversation"), "members");
  if (json_array_size(members) != st->n_users)
    bc_die("the group has %zu members, wanted %u", json_array_size(members), st->n_users);
  json_decref(j);
  hc_close(&c);
  bc_buf_free(&body);
}

void bc_setup(const struct sockaddr_in *server, unsigned n_users, unsigned n_pairs, bc_state_t *st) {
  if (n_users < 2 || 2 * n_pairs + 1 > n_users) bc_die("setup wants at least 2 users and 2 * pairs + 1 of them");
  memset(st, 0, sizeof(*st));
  st->n_users = n_users;
  st->users = bc_xcalloc(n_users, sizeof(*st->users));
  st->n_pairs = n_pairs;
  st->pair_conv = bc_xcalloc(n_pairs ? n_pairs : 1, sizeof(*st->pair_conv));
  job_t job = {.server = server, .st = st};
  uint8_t rnd[4];
  randombytes_buf(rnd, sizeof(rnd));
  snprintf(job.run_id, sizeof(job.run_id), "%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3]);
  uint64_t t0 = bc_now_ns();
  parallel(&job, n_users, make_account);
  uint64_t t1 = bc_now_ns();
  parallel(&job, n_users - 1 + n_pairs, make_contacts);
  parallel(&job, n_pairs, make_direct);
  make_group(st, server);
  uint64_t t2 = bc_now_ns();
  fprintf(stderr, "setup: %u accounts in %.1f s, contacts, %u direct chats and a group of %u in %.1f s\n", n_users,
          (double)(t1 - t0) / 1e9, n_pairs, n_users, (double)(t2 - t1) / 1e9);
}
