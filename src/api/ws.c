/* GET /v1/ws: a device's WebSocket: the hello/ready handshake, ping, and the registry that pushes events to users. */
#include <stdlib.h>
#include "api/internal.h"
#include "plaza/id.h"
#include "plaza/log.h"

/* Close codes of the protocol (docs/api.md). */
#define WS_CLOSE_UNAUTHORIZED 4001
#define WS_CLOSE_PROTOCOL 4002
#define WS_CLOSE_HELLO_TIMEOUT 4008
#define WS_CLOSE_INTERNAL 1011

enum { WS_HELLO, WS_AUTH, WS_READY, WS_CLOSING };

/* One socket. It lives until the socket is gone, no session look-up is
 * under way, and its timer has closed (the timer's close callback frees it). */
struct ws_conn_s {
  pz_api_t *api;
  pz_ws_t *ws; /* NULL once the socket is gone */
  int state;
  int64_t user_id, session_id;
  int64_t since; /* the last event sequence the device saw, for the event stream */
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

static void registry_add(pz_api_t *api, ws_conn_t *c) {
  if (api->ws.count >= 2 * (api->ws.mask + 1)) grow(api);
  link_conn(api, c);
  c->registered = true;
  api->ws.count++;
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
}

void pz__api_ws_init(pz_api_t *api) {
  api->ws.mask = 1023;
  api->ws.buckets = pz_calloc(api->ws.mask + 1, sizeof(ws_conn_t *));
  api->ws.count = 0;
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
}

/* ---- lifetime ---- */

static void timer_closed(uv_handle_t *h) { pz_free(h->data); }

static void release(ws_conn_t *c) { uv_close((uv_handle_t *)&c->timer, timer_closed); }

static void on_close(pz_ws_t *ws, int code) {
  ws_conn_t *c = pz_ws_udata(ws);
  if (c == NULL) return;
  pz_ws_set_udata(ws, NULL);
  registry_remove(c->api, c);
  c->ws = NULL;
  c->state = WS_CLOSING;
  uv_timer_stop(&c->timer);
  if (!c->lookup) release(c);
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
    release(c); /* the socket went while the database answered */
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

static void on_message(pz_ws_t *ws, bool is_text, const char *data, size_t len) {
  ws_conn_t *c = pz_ws_udata(ws);
  if (c == NULL || c->state == WS_CLOSING) return;
  if (c->ws == NULL) c->ws = ws; /* a frame that came with the upgrade */
  json_t *msg = NULL;
  const char *type = NULL;
  if (is_text) {
    msg = json_loadb(data, len, JSON_REJECT_DUPLICATES, NULL);
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
