/* GET /v1/ws: a device's WebSocket: hello/ready, catch-up and live events, sends, and the sockets of each user. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "api/internal.h"
#include "plaza/id.h"
#include "plaza/log.h"

/* Close codes of the protocol (docs/api.md). */
#define WS_CLOSE_UNAUTHORIZED 4001
#define WS_CLOSE_PROTOCOL 4002
#define WS_CLOSE_HELLO_TIMEOUT 4008
#define WS_CLOSE_INTERNAL 1011

enum { WS_HELLO, WS_AUTH, WS_READY, WS_CLOSING };

/* Catch-up reads the stream in pages of at most this many events and
 * bytes, so that one page never comes near the socket's backlog bound. */
#define CATCHUP_EVENTS 200
#define CATCHUP_BYTES (256 * 1024)

typedef struct catchup_s catchup_t;

/* One socket. It lives until the socket is gone, no session look-up is
 * under way, and its timer has closed (the timer's close callback frees it). */
struct ws_conn_s {
  pz_api_t *api;
  pz_ws_t *ws; /* NULL once the socket is gone */
  int state;
  int64_t user_id, session_id;
  int64_t since; /* the last event sequence the device saw, as it said in hello */
  /* The event stream: the last seq this socket was sent; while it catches
   * up from the database, live events are not sent but remembered by their
   * highest seq, which tells whether one more read is needed, and by
   * their lowest, which bounds where "the end of the stream" was when the
   * socket registered (see catchup_done). */
  int64_t sent, live_max, live_min;
  bool catching_up;
  catchup_t *catchup;     /* the catch-up read, while one is under way */
  unsigned jobs;          /* store jobs under way that point at this socket (catch-up, sends) */
  ws_conn_t *prev, *next; /* registry chain, while registered */
  bool registered;
  bool lookup; /* a session look-up is under way */
  uv_timer_t timer; /* the hello deadline, then the session's expiry */
  pz_store_job_t job;
  uint8_t hash[PZ_TOKEN_HASH_LEN];
  uint64_t epoch;
  int64_t now;
  pz_session_rec_t s;
};

/* ---- registry: user id -> sockets ---- */

static unsigned bucket_of(const pz_api_t *api, int64_t user_id) {
  /* Ids are time-ordered with a sequence in the low bits: a Fibonacci hash
   * spreads them. */
  return (unsigned)(((uint64_t)user_id * 0x9E3779B97F4A7C15ull) >> 32) & api->ws.mask;
}

static void link_conn(pz_api_t *api, ws_conn_t *c) {
  ws_conn_t **head = &api->ws.buckets[bucket_of(api, c->user_id)];
  c->prev = NULL;
  c->next = *head;
  if (*head) (*head)->prev = c;
  *head = c;
}

static void grow(pz_api_t *api) {
  unsigned old_n = api->ws.mask + 1;
  ws_conn_t **old = api->ws.buckets;
  api->ws.buckets = pz_calloc(old_n * 2, sizeof(ws_conn_t *));
  api->ws.mask = old_n * 2 - 1;
  for (unsigned i = 0; i < old_n; i++) {
    ws_conn_t *c = old[i];
    while (c) {
      ws_conn_t *next = c->next;
      link_conn(api, c);
      c = next;
    }
  }
  pz_free(old);
}

/* user_id's registered sockets, up to 2: enough to tell none, one, more. */
static unsigned user_sockets(pz_api_t *api, int64_t user_id) {
  unsigned n = 0;
  for (ws_conn_t *c = api->ws.buckets[bucket_of(api, user_id)]; c && n < 2; c = c->next)
    if (c->user_id == user_id && c->registered) n++;
  return n;
}

bool pz__api_ws_online(pz_api_t *api, int64_t user_id) { return user_sockets(api, user_id) > 0; }

static void registry_add(pz_api_t *api, ws_conn_t *c) {
  if (api->ws.count >= 2 * (api->ws.mask + 1)) grow(api);
  link_conn(api, c);
  c->registered = true;
  api->ws.count++;
  /* The first socket of a user brings them online for their contacts. */
  if (user_sockets(api, c->user_id) == 1) pz__api_presence_changed(api, c->user_id, 0);
}

static void registry_remove(pz_api_t *api, ws_conn_t *c) {
  if (!c->registered) return;
  if (c->prev)
    c->prev->next = c->next;
  else
    api->ws.buckets[bucket_of(api, c->user_id)] = c->next;
  if (c->next) c->next->prev = c->prev;
  c->prev = c->next = NULL;
  c->registered = false;
  api->ws.count--;
  if (user_sockets(api, c->user_id) == 0) pz__api_presence_changed(api, c->user_id, c->session_id);
}

void pz__api_ws_init(pz_api_t *api) {
  api->ws.mask = 1023;
  api->ws.buckets = pz_calloc(api->ws.mask + 1, sizeof(ws_conn_t *));
  api->ws.count = 0;
  /* For tests only (docs/api.md): holds each catch-up read back, so that a
   * test can commit events between a socket's registration and its read. */
  api->ws.test_catchup_delay_ms = (unsigned)pz__api_test_knob("PLAZA_TEST_CATCHUP_DELAY_MS", 1, 10000, 0);
}

void pz__api_ws_release(pz_api_t *api) {
  /* The server closed every socket before the api goes; any still listed
   * only lose their link to it. */
  for (unsigned i = 0; i <= api->ws.mask; i++)
    for (ws_conn_t *c = api->ws.buckets[i]; c; c = c->next) c->registered = false;
  pz_free(api->ws.buckets);
  api->ws.buckets = NULL;
}

/* ---- frames ---- */

static void send_json(ws_conn_t *c, json_t *msg) {
  char *text = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
  json_decref(msg);
  if (text && c->ws) pz_ws_send(c->ws, true, text, strlen(text));
  free(text);
}

static void send_error(ws_conn_t *c, const char *code, const char *message) {
  send_json(c, json_pack("{s:s,s:s,s:s}", "type", "error", "code", code, "message", message));
}

/* Sends an error frame, then closes: nothing the client sends after counts. */
static void fail_close(ws_conn_t *c, const char *code, const char *message, int close_code) {
  PZ_LOG(PZ_LOG_INFO, c->ws ? pz_ws_id(c->ws) : NULL, "websocket refused", "code=%s close=%d", code, close_code);
  send_error(c, code, message);
  c->state = WS_CLOSING;
  uv_timer_stop(&c->timer);
  registry_remove(c->api, c);
  if (c->ws) pz_ws_close(c->ws, close_code, code);
}

static void unauthorized(ws_conn_t *c) {
  fail_close(c, "unauthorized", "missing, invalid or expired token", WS_CLOSE_UNAUTHORIZED);
}

static void on_timer(uv_timer_t *t);
static void catchup_start(ws_conn_t *c);

static void ready(ws_conn_t *c, int64_t user_id, int64_t session_id, int64_t expires_at) {
  c->user_id = user_id;
  c->session_id = session_id;
  c->state = WS_READY;
  registry_add(c->api, c);
  /* A socket outliving its session would go on receiving events. */
  int64_t left = expires_at - pz_now_ms();
  uv_timer_start(&c->timer, on_timer, left > 0 ? (uint64_t)left : 0, 0);
  json_t *msg = json_pack("{s:s,s:o,s:o}", "type", "ready", "user_id", pz__api_id_json(user_id), "session_id",
                          pz__api_id_json(session_id));
  send_json(c, msg);
  /* Registered first, read second: an event committed before the read's
   * snapshot is in it, and one committed after reaches the registry. */
  c->sent = c->since;
  c->live_max = c->live_min = 0;
  c->catching_up = true;
  catchup_start(c);
}

/* ---- lifetime ---- */

static void timer_closed(uv_handle_t *h) { pz_free(h->data); }

static void release(ws_conn_t *c) { uv_close((uv_handle_t *)&c->timer, timer_closed); }

/* Frees c once the socket is gone and no job holds it. */
static void maybe_release(ws_conn_t *c) {
  if (c->ws == NULL && !c->lookup && c->jobs == 0) release(c);
}

static void on_close(pz_ws_t *ws, int code) {
  ws_conn_t *c = pz_ws_udata(ws);
  if (c == NULL) return;
  pz_ws_set_udata(ws, NULL);
  registry_remove(c->api, c);
  c->ws = NULL;
  c->state = WS_CLOSING;
  uv_timer_stop(&c->timer);
  maybe_release(c);
}

/* Before hello: the hello deadline. When ready: the session's expiry. */
static void on_timer(uv_timer_t *t) {
  ws_conn_t *c = t->data;
  if (c->ws == NULL) return;
  if (c->state == WS_HELLO)
    fail_close(c, "hello_timeout", "no hello within 10 seconds", WS_CLOSE_HELLO_TIMEOUT);
  else if (c->state == WS_READY)
    fail_close(c, "unauthorized", "the session expired", WS_CLOSE_UNAUTHORIZED);
}

/* ---- hello ---- */

static void start_lookup(ws_conn_t *c);

static int lookup_run(pz_db_t *db, pz_store_job_t *job) {
  ws_conn_t *c = job->data;
  return pz_store_session_by_token(db, c->hash, c->now, &c->s, &job->err);
}

static void lookup_done(pz_store_job_t *job) {
  ws_conn_t *c = job->data;
  pz_api_t *api = c->api;
  c->lookup = false;
  if (c->ws == NULL) {
    maybe_release(c); /* the socket went while the database answered */
  } else if (job->rc == 0 && c->epoch != pz_auth_cache_epoch(api->sessions)) {
    /* A session was revoked while this one was read: it may be this one,
     * and a socket lives too long to be let in on a stale answer. */
    start_lookup(c);
  } else if (job->rc == 0) {
    pz_auth_session_t s = {c->s.id, c->s.user_id, c->s.expires_at, c->s.last_seen_at};
    pz_auth_cache_put(api->sessions, c->hash, &s, c->epoch);
    ready(c, s.user_id, s.session_id, s.expires_at);
  } else if (job->rc == PZ_ENOTFOUND) {
    unauthorized(c);
  } else {
    fail_close(c, "internal", "internal error", WS_CLOSE_INTERNAL);
  }
  pz__api_unbusy(api);
}

static void start_lookup(ws_conn_t *c) {
  c->state = WS_AUTH;
  c->lookup = true;
  c->epoch = pz_auth_cache_epoch(c->api->sessions);
  c->now = pz_now_ms();
  c->job.run = lookup_run;
  c->job.done = lookup_done;
  c->job.data = c;
  pz__api_busy(c->api);
  int rc = pz_store_read(c->api->st, &c->job);
  if (rc < 0) {
    c->job.rc = rc;
    lookup_done(&c->job);
  }
}

static void hello(ws_conn_t *c, json_t *msg) {
  uv_timer_stop(&c->timer);
  json_t *since = json_object_get(msg, "since");
  if (since && !(json_is_integer(since) && json_integer_value(since) >= 0)) {
    fail_close(c, "invalid_request", "since must be a non-negative integer", WS_CLOSE_PROTOCOL);
    return;
  }
  c->since = since ? (int64_t)json_integer_value(since) : 0;
  json_t *token = json_object_get(msg, "token");
  if (!json_is_string(token) ||
      pz_auth_token_hash(pz_str_n(json_string_value(token), json_string_length(token)), c->hash) < 0) {
    unauthorized(c);
    return;
  }
  pz_auth_session_t *s = pz_auth_cache_get(c->api->sessions, c->hash, pz_now_ms());
  if (s) {
    ready(c, s->user_id, s->session_id, s->expires_at);
    return;
  }
  start_lookup(c);
}

/* ---- catch-up: the events after since, from the database ---- */

struct catchup_s {
  pz_store_job_t job;
  ws_conn_t *conn;
  int64_t user_id;
  int64_t after;     /* read events with seq > after */
  bool first;        /* the first page also clamps after to the stream's end */
  bool full;         /* the page stopped at a bound: more may follow */
  bool reset;        /* events after since were removed by retention: the device reloads (a reset frame) */
  unsigned delay_ms; /* test-only: how long the reader waits first */
  unsigned n;
  pz_buf_t frames;
  struct {
    int64_t seq;
    size_t off, len;
  } items[CATCHUP_EVENTS];
};

#define CATCHUP_STOP PZ_ETOOBIG /* a row callback's way to end the page early */

static int catchup_row(void *arg, int64_t seq, pz_str_t type, pz_str_t payload, pz_err_t *err) {
  catchup_t *cu = arg;
  if (cu->frames.len >= CATCHUP_BYTES) {
    cu->full = true;
    return CATCHUP_STOP;
  }
  size_t off = cu->frames.len;
  pz__api_event_frame(&cu->frames, seq, type, payload);
  cu->items[cu->n].seq = seq;
  cu->items[cu->n].off = off;
  cu->items[cu->n].len = cu->frames.len - off;
  if (++cu->n == CATCHUP_EVENTS) cu->full = true;
  return 0;
}

static int catchup_run(pz_db_t *db, pz_store_job_t *job) {
  catchup_t *cu = job->data;
  if (cu->delay_ms) uv_sleep(cu->delay_ms);
  cu->n = 0;
  cu->full = false;
  cu->frames.len = 0;
  if (cu->first) {
    /* A device that says it saw more than the stream holds (a database
     * restored from a backup, a confused client) resumes from the end,
     * rather than missing every event up to the number it gave. */
    int64_t head = 0;
    int rc = pz_store_event_head(db, cu->user_id, &head, &job->err);
    if (rc < 0) return rc;
    if (cu->after > head) cu->after = head;
    /* Events after since that retention removed: the device is told to
     * reload its lists and gets the stream from its end. */
    if ((rc = pz_store_event_gone(db, cu->user_id, cu->after, &cu->reset, &job->err)) < 0) return rc;
    if (cu->reset) cu->after = head;
  }
  int rc = pz_store_event_list(db, cu->user_id, cu->after, CATCHUP_EVENTS, catchup_row, cu, &job->err);
  return rc == CATCHUP_STOP ? 0 : rc;
}

static void catchup_done(pz_store_job_t *job);

static void catchup_read(ws_conn_t *c) {
  catchup_t *cu = c->catchup;
  cu->job.run = catchup_run;
  cu->job.done = catchup_done;
  cu->job.data = cu;
  c->jobs++;
  pz__api_busy(c->api);
  int rc = pz_store_read(c->api->st, &cu->job);
  if (rc < 0) {
    pz_err_set(&cu->job.err, cu->job.rc = rc, NULL, NULL);
    catchup_done(&cu->job);
  }
}

static void catchup_start(ws_conn_t *c) {
  catchup_t *cu = pz_calloc(1, sizeof(*cu));
  cu->conn = c;
  cu->user_id = c->user_id;
  cu->after = c->sent;
  cu->first = true;
  cu->delay_ms = c->api->ws.test_catchup_delay_ms;
  c->catchup = cu;
  catchup_read(c);
}

static void catchup_free(ws_conn_t *c) {
  if (c->catchup == NULL) return;
  pz_buf_free(&c->catchup->frames);
  pz_free(c->catchup);
  c->catchup = NULL;
}

/* Not part of the stream (no seq): what the device missed is gone, and
 * the events that follow start after next_since. */
static void send_reset(ws_conn_t *c, int64_t next_since) {
  char frame[64];
  int n = snprintf(frame, sizeof(frame), "{\"type\":\"reset\",\"next_since\":%lld}", (long long)next_since);
  pz_ws_send(c->ws, true, frame, (size_t)n);
}

static void catchup_done(pz_store_job_t *job) {
  catchup_t *cu = job->data;
  ws_conn_t *c = cu->conn;
  pz_api_t *api = c->api;
  c->jobs--;
  if (c->ws && c->state == WS_READY) {
    if (job->rc < 0) {
      catchup_free(c);
      fail_close(c, "internal", "internal error", WS_CLOSE_INTERNAL);
      goto out;
    }
    if (cu->first) {
      cu->first = false;
      /* A since beyond the stream was clamped to the head of the read's
       * snapshot, which runs after registration: events committed in
       * between are in that head, yet neither in the page (seq <= after)
       * nor sendable live (seq <= sent), and would be lost. Each of them
       * was pushed live, so the lowest live seq says where the end really
       * was when the socket registered: read again from just before it. */
      bool reread = c->live_min > 0 && c->live_min - 1 < cu->after;
      if (reread) cu->after = c->live_min - 1;
      c->sent = cu->after;
      if (cu->reset) send_reset(c, cu->after);
      if (reread) {
        catchup_read(c);
        goto out;
      }
    }
    for (unsigned i = 0; i < cu->n; i++) {
      if (cu->items[i].seq <= c->sent) continue;
      pz_ws_send(c->ws, true, cu->frames.data + cu->items[i].off, cu->items[i].len);
      c->sent = cu->items[i].seq;
    }
    /* A full page may have a next one; a live event newer than the page
     * was committed after its snapshot: read again from where we are. */
    if (cu->full || c->live_max > c->sent) {
      cu->after = c->sent;
      catchup_read(c);
      goto out;
    }
    c->catching_up = false;
  }
  catchup_free(c);
  maybe_release(c);
out:
  pz__api_unbusy(api);
}

/* ---- sending messages ---- */

typedef struct {
  pz_store_job_t job;
  ws_conn_t *conn;
  char client_id[PZ_CHAT_CLIENT_ID_MAX + 1]; /* echoed in the answer; "" when the frame had none usable */
  pz__api_send_t send;
} ws_send_t;

/* A send holds a message record of about 33 KiB, nearly all of it the
 * room for the longest text and body. Clearing all of it for every
 * message (calloc) cost more loop time than the rest of the frame's
 * decoding; so everything is zeroed but those two arrays, which are only
 * ever read within their lengths (text_len, body_len), and start empty. */
static ws_send_t *send_new(void) {
  ws_send_t *s = pz_malloc(sizeof(*s));
  const size_t skip[][2] = {
      {offsetof(ws_send_t, send.msg.text), sizeof(s->send.msg.text)},
      {offsetof(ws_send_t, send.msg.body), sizeof(s->send.msg.body)},
  };
  char *base = (char *)s;
  size_t at = 0;
  for (size_t i = 0; i < sizeof(skip) / sizeof(skip[0]); i++) {
    memset(base + at, 0, skip[i][0] - at);
    base[skip[i][0]] = '\0';
    at = skip[i][0] + skip[i][1];
  }
  memset(base + at, 0, sizeof(*s) - at);
  return s;
}

/* The ack of a new message: {"type":"ack","client_id","message"}, where
 * the message is the one its message.new event carries, as that payload
 * already spells it ({"type":"message.new","message":{...}}): taken from
 * there instead of building and printing its JSON a second time. A retry
 * of a stored message (no new event) or a payload of another shape gets
 * the ack from jansson. */
static void send_ack(ws_conn_t *c, ws_send_t *s) {
  static const char prefix[] = "{\"type\":\"" PZ_EVENT_MESSAGE_NEW "\",\"message\":";
  const pz__api_send_t *snd = &s->send;
  size_t plen = sizeof(prefix) - 1;
  if (!snd->created || snd->upload_id || snd->payload == NULL || snd->payload_len <= plen + 1 ||
      memcmp(snd->payload, prefix, plen) != 0 || snd->payload[snd->payload_len - 1] != '}') {
    send_json(c, json_pack("{s:s,s:s,s:o}", "type", "ack", "client_id", s->client_id, "message",
                           pz__api_message_json(&snd->msg)));
    return;
  }
  pz_buf_t b = {0};
  pz_buf_reserve(&b, snd->payload_len + sizeof(s->client_id) + 32);
  pz__api_put_text(&b, "{\"type\":\"ack\",\"client_id\":", s->client_id, strlen(s->client_id));
  pz_buf_append_c(&b, ",\"message\":");
  pz_buf_append(&b, snd->payload + plen, snd->payload_len - plen);
#ifndef NDEBUG
  /* Debug builds (the tests') check that the shortcut says what jansson would. */
  json_t *ack =
      json_pack("{s:s,s:s,s:o}", "type", "ack", "client_id", s->client_id, "message", pz__api_message_json(&snd->msg));
  char *text = ack ? json_dumps(ack, JSON_COMPACT) : NULL;
  json_decref(ack);
  PZ_ASSERT(text && strlen(text) == b.len && memcmp(text, b.data, b.len) == 0);
  free(text);
#endif
  if (c->ws) pz_ws_send(c->ws, true, b.data, b.len);
  pz_buf_free(&b);
}

static void send_failed(ws_conn_t *c, const char *client_id, const pz_err_t *err, unsigned retry_after_s) {
  json_t *msg = json_pack("{s:s,s:s,s:s,s:s}", "type", "error", "client_id", client_id, "code", pz_err_code_str(err),
                          "message", pz_err_message(err));
  if (msg && retry_after_s) json_object_set_new(msg, "retry_after", json_integer(retry_after_s));
  send_json(c, msg);
}

static int ws_send_run(pz_db_t *db, pz_store_job_t *job) {
  ws_send_t *s = job->data;
  return pz__api_send_run(db, &s->send, &job->err);
}

static int ws_send_log(pz_db_t *db, pz_store_job_t *job, pz_buf_t *rec) {
  ws_send_t *s = job->data;
  return pz__api_send_log(db, &s->send, rec, &job->err);
}

static void ws_send_done(pz_store_job_t *job) {
  ws_send_t *s = job->data;
  ws_conn_t *c = s->conn;
  pz_api_t *api = c->api;
  /* The other members get their events whether or not this socket is still there. */
  if (job->rc == 0) pz__api_send_publish(api, &s->send);
  if (c->ws && c->state == WS_READY) {
    if (job->rc < 0)
      send_failed(c, s->client_id, &job->err, 0);
    else
      send_ack(c, s);
  }
  c->jobs--;
  pz__api_send_release(&s->send);
  pz_free(s);
  maybe_release(c);
  pz__api_unbusy(api);
}

static void send_message(ws_conn_t *c, json_t *msg) {
  pz_api_t *api = c->api;
  pz_err_t err = {0};
  unsigned retry = 0;
  ws_send_t *s = send_new();
  json_t *cid = json_object_get(msg, "client_id");
  if (json_is_string(cid) && json_string_length(cid) <= PZ_CHAT_CLIENT_ID_MAX)
    memcpy(s->client_id, json_string_value(cid), json_string_length(cid));
  if (pz__api_send_rate(api, c->user_id, &retry, &err) < 0 ||
      pz__api_send_decode(&s->send, c->user_id, 0, msg, &err) < 0) {
    send_failed(c, s->client_id, &err, retry);
    pz__api_send_release(&s->send);
    pz_free(s);
    return;
  }
  s->conn = c;
  s->job.run = ws_send_run;
  s->job.log = ws_send_log;
  s->job.done = ws_send_done;
  s->job.data = s;
  c->jobs++;
  pz__api_busy(api);
  int rc = pz_store_write(api->st, &s->job);
  if (rc < 0) {
    pz_err_set(&s->job.err, s->job.rc = rc, NULL, NULL);
    ws_send_done(&s->job);
  }
}

/* ---- typing and delivered frames ---- */

enum { OP_TYPING, OP_DELIVERED };

typedef struct {
  pz_store_job_t job;
  ws_conn_t *conn;
  int kind;
  int64_t user_id, conv_id, message_id;
  int64_t *members; /* typing: the conversation's members */
  unsigned n_members, cap;
  pz__api_receipt_t receipt; /* delivered */
} ws_op_t;

static int op_member(void *arg, int64_t user_id, pz_err_t *err) {
  ws_op_t *op = arg;
  if (op->n_members == op->cap) {
    op->cap = op->cap ? op->cap * 2 : 8;
    op->members = pz_realloc(op->members, op->cap * sizeof(int64_t));
  }
  op->members[op->n_members++] = user_id;
  return 0;
}

static int op_run(pz_db_t *db, pz_store_job_t *job) {
  ws_op_t *op = job->data;
  if (op->kind == OP_DELIVERED) {
    int64_t read_up_to, delivered_up_to;
    return pz__api_delivered_run(db, &op->receipt, op->user_id, op->conv_id, op->message_id, &read_up_to,
                                 &delivered_up_to, &job->err);
  }
  int rc = pz_chat_member_check(db, op->user_id, op->conv_id, NULL, &job->err);
  return rc < 0 ? rc : pz_store_member_ids(db, op->conv_id, op_member, op, &job->err);
}

static void op_done(pz_store_job_t *job) {
  ws_op_t *op = job->data;
  ws_conn_t *c = op->conn;
  pz_api_t *api = c->api;
  if (job->rc == 0 && op->kind == OP_DELIVERED) {
    pz__api_receipt_publish(api, &op->receipt);
  } else if (job->rc == 0) {
    json_t *frame = json_pack("{s:s,s:o,s:o}", "type", "typing", "conversation_id", pz__api_id_json(op->conv_id),
                              "user_id", pz__api_id_json(op->user_id));
    char *text = frame ? json_dumps(frame, JSON_COMPACT) : NULL;
    json_decref(frame);
    for (unsigned i = 0; text && i < op->n_members; i++)
      if (op->members[i] != op->user_id) pz__api_ws_send_user(api, op->members[i], text, strlen(text));
    free(text);
  } else if (c->ws && c->state == WS_READY) {
    json_t *msg = json_pack("{s:s,s:s,s:s,s:o}", "type", "error", "code", pz_err_code_str(&job->err), "message",
                            pz_err_message(&job->err), "conversation_id", pz__api_id_json(op->conv_id));
    send_json(c, msg);
  }
  c->jobs--;
  pz__api_receipt_release(&op->receipt);
  pz_free(op->members);
  pz_free(op);
  maybe_release(c);
  pz__api_unbusy(api);
}

/* {"type":"typing","conversation_id"} goes to the other members' sockets,
 * at most once per PZ_CHAT_TYPING_INTERVAL_MS per user and conversation:
 * frames beyond are dropped without an answer, as typing is a hint.
 * {"type":"delivered","conversation_id","message_id"} moves the delivered
 * marker as POST .../delivered does; its answer is the receipt event. */
static void op_frame(ws_conn_t *c, json_t *msg, int kind) {
  pz_api_t *api = c->api;
  pz_err_t err = {0};
  int64_t conv_id = 0, message_id = 0;
  if (pz__api_id(msg, "conversation_id", &conv_id, &err) < 0 ||
      (kind == OP_DELIVERED && pz__api_id(msg, "message_id", &message_id, &err) < 0)) {
    send_error(c, pz_err_code_str(&err), pz_err_message(&err));
    return;
  }
  if (kind == OP_TYPING && !pz_chat_throttle_take(api->typing, c->user_id, conv_id, pz_now_ms())) return;
  ws_op_t *op = pz_calloc(1, sizeof(*op));
  op->conn = c;
  op->kind = kind;
  op->user_id = c->user_id;
  op->conv_id = conv_id;
  op->message_id = message_id;
  op->job.run = op_run;
  op->job.done = op_done;
  op->job.data = op;
  c->jobs++;
  pz__api_busy(api);
  /* A receipt comes with every message a device receives: lazily written. */
  int rc = kind == OP_DELIVERED ? pz_store_write_lazy(api->st, &op->job) : pz_store_read(api->st, &op->job);
  if (rc < 0) {
    pz_err_set(&op->job.err, op->job.rc = rc, NULL, NULL);
    op_done(&op->job);
  }
}

static void on_message(pz_ws_t *ws, bool is_text, const char *data, size_t len) {
  ws_conn_t *c = pz_ws_udata(ws);
  if (c == NULL || c->state == WS_CLOSING) return;
  if (c->ws == NULL) c->ws = ws; /* a frame that came with the upgrade */
  json_t *msg = NULL;
  const char *type = NULL;
  if (is_text) {
    msg = pz__api_json_load(data, len, JSON_REJECT_DUPLICATES, NULL);
    if (json_is_object(msg)) type = json_string_value(json_object_get(msg, "type"));
  }
  switch (c->state) {
    case WS_HELLO:
      if (!is_text)
        fail_close(c, "protocol", "frames are JSON text", WS_CLOSE_PROTOCOL);
      else if (msg == NULL)
        fail_close(c, "malformed_json", "the frame is not valid JSON", WS_CLOSE_PROTOCOL);
      else if (type == NULL || strcmp(type, "hello") != 0)
        fail_close(c, "protocol", "the first frame must be hello", WS_CLOSE_PROTOCOL);
      else
        hello(c, msg);
      break;
    case WS_AUTH:
      send_error(c, "not_ready", "wait for ready before sending more frames");
      break;
    case WS_READY:
      if (!is_text)
        send_error(c, "invalid_request", "frames are JSON text");
      else if (msg == NULL)
        send_error(c, "malformed_json", "the frame is not valid JSON");
      else if (!json_is_object(msg) || type == NULL)
        send_error(c, "invalid_request", "a frame is an object with a string type");
      else if (strcmp(type, "ping") == 0)
        send_json(c, json_pack("{s:s}", "type", "pong"));
      else if (strcmp(type, "send") == 0)
        send_message(c, msg);
      else if (strcmp(type, "typing") == 0)
        op_frame(c, msg, OP_TYPING);
      else if (strcmp(type, "delivered") == 0)
        op_frame(c, msg, OP_DELIVERED);
      else if (strcmp(type, "hello") == 0)
        send_error(c, "invalid_request", "hello was already answered");
      else
        send_error(c, "unknown_type", "unknown frame type");
      break;
  }
  json_decref(msg);
}

static const pz_ws_cbs_t ws_cbs = {on_message, on_close};

static void ws_open(pz_req_t *req) {
  pz_api_t *api = req->route_data;
  ws_conn_t *c = pz_calloc(1, sizeof(*c));
  c->api = api;
  c->state = WS_HELLO;
  uv_timer_init(api->loop, &c->timer);
  c->timer.data = c;
  pz_ws_t *ws = NULL;
  if (pz_req_upgrade_ws(req, &ws_cbs, c, &ws) < 0) {
    release(c);
    pz_err_t err;
    pz_err_set(&err, PZ_EINVAL, NULL, "expected a WebSocket upgrade");
    pz__api_fail(req, &err);
    return;
  }
  c->ws = ws;
  if (c->state == WS_HELLO) uv_timer_start(&c->timer, on_timer, PZ_API_WS_HELLO_MS, 0);
}

void pz__api_ws_routes(pz_api_t *api, pz_router_t *r) { pz_router_add(r, PZ_HTTP_GET, "/v1/ws", ws_open, api); }

/* ---- pushing and closing by user ---- */

void pz__api_ws_close_session(pz_api_t *api, int64_t user_id, int64_t session_id, int code, const char *reason) {
  ws_conn_t *c = api->ws.buckets[bucket_of(api, user_id)];
  while (c) {
    ws_conn_t *next = c->next; /* fail_close unlinks c */
    if (c->user_id == user_id && c->session_id == session_id && c->state == WS_READY) {
      c->state = WS_CLOSING;
      registry_remove(api, c);
      send_error(c, "unauthorized", reason);
      if (c->ws) pz_ws_close(c->ws, code, reason);
    }
    c = next;
  }
}

void pz__api_ws_push_event(pz_api_t *api, int64_t user_id, int64_t seq, const char *frame, size_t len) {
  ws_conn_t *c = api->ws.buckets[bucket_of(api, user_id)];
  while (c) {
    ws_conn_t *next = c->next; /* a send over the backlog closes, and may unlink, c */
    if (c->user_id == user_id && c->state == WS_READY && c->ws) {
      if (c->catching_up) {
        if (seq > c->live_max) c->live_max = seq;
        if (c->live_min == 0 || seq < c->live_min) c->live_min = seq;
      } else if (seq > c->sent) {
        pz_ws_send(c->ws, true, frame, len);
        c->sent = seq;
      }
    }
    c = next;
  }
}

unsigned pz__api_ws_send_user(pz_api_t *api, int64_t user_id, const char *data, size_t len) {
  unsigned n = 0;
  ws_conn_t *c = api->ws.buckets[bucket_of(api, user_id)];
  while (c) {
    ws_conn_t *next = c->next; /* a send over the backlog closes, and may unlink, c */
    if (c->user_id == user_id && c->state == WS_READY && c->ws && pz_ws_send(c->ws, true, data, len) == 0) n++;
    c = next;
  }
  return n;
}
