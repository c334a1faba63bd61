/* The HTTP API object: route registration, request contexts, JSON helpers and bearer authentication. */
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include "api/internal.h"
#include "plaza/id.h"
#include "plaza/log.h"

/* ---- the api object ---- */

int pz_api_new(pz_api_t **out, uv_loop_t *loop, pz_server_t *srv, pz_store_t *st, const pz_api_config_t *cfg,
               pz_err_t *err) {
  *out = NULL;
  if (sodium_init() < 0) return pz_err_set(err, PZ_EIO, NULL, "libsodium failed to initialize");
  pz_api_t *api = pz_calloc(1, sizeof(*api));
  api->loop = loop;
  api->srv = srv;
  api->st = st;
  if (cfg) api->cfg = *cfg;
  api->wallet = api->cfg.wallet;
  if (api->cfg.login_fail_per_account == 0) api->cfg.login_fail_per_account = 5;
  if (api->cfg.login_fail_per_addr == 0) api->cfg.login_fail_per_addr = 20;
  if (api->cfg.login_window_s == 0) api->cfg.login_window_s = 15 * 60;
  api->sessions = pz_auth_cache_new(PZ_API_SESSION_CACHE);
  api->fail_account =
      pz_auth_limiter_new(PZ_API_LIMITER_KEYS, api->cfg.login_fail_per_account, api->cfg.login_window_s);
  api->fail_addr = pz_auth_limiter_new(PZ_API_LIMITER_KEYS, api->cfg.login_fail_per_addr, api->cfg.login_window_s);
  api->pwq = pz_auth_pwq_new(loop, PZ_API_PW_RUNNING, PZ_API_PW_WAITING);
  if (api->cfg.msg_rate == 0) api->cfg.msg_rate = PZ_API_SEND_RATE;
  unsigned burst = api->cfg.msg_rate * 5 / 2 > PZ_API_SEND_BURST ? api->cfg.msg_rate * 5 / 2 : PZ_API_SEND_BURST;
  api->send_limit = pz_chat_limiter_new(PZ_API_SEND_USERS, api->cfg.msg_rate, burst);
  pz__api_ws_init(api);
  pz__api_msgops_init(api);

  pz_router_t *r = pz_server_router(srv);
  pz__api_health_routes(api, r);
  pz__api_accounts_routes(api, r);
  pz__api_sessions_routes(api, r);
  pz__api_me_routes(api, r);
  pz__api_users_routes(api, r);
  pz__api_contacts_routes(api, r);
  pz__api_conversations_routes(api, r);
  pz__api_groups_routes(api, r);
  pz__api_sync_routes(api, r);
  pz__api_wallet_routes(api, r);
  pz__api_wallet_history_routes(api, r);
  pz__api_red_packets_routes(api, r);
  pz__api_merchants_routes(api, r);
  pz__api_uploads_routes(api, r);
  pz__api_msgops_routes(api, r);
  pz__api_ws_routes(api, r);
  pz__api_admin_routes(api, r);
  pz__api_wallet_start(api);
  pz__api_red_packets_start(api);
  pz__api_merchants_start(api);
  pz__api_uploads_start(api);
  api->event_retention_ms = api->cfg.event_retention_ms;
  pz__api_sync_start(api);
  *out = api;
  return 0;
}

static void api_destroy(pz_api_t *api) {
  pz__api_ws_release(api);
  pz__api_msgops_release(api);
  pz_auth_cache_free(api->sessions);
  pz_auth_limiter_free(api->fail_account);
  pz_auth_limiter_free(api->fail_addr);
  pz_auth_pwq_free(api->pwq);
  pz_chat_limiter_free(api->send_limit);
  pz_free(api);
}

void pz_api_free(pz_api_t *api) {
  if (api == NULL) return;
  api->closing = true;
  pz__api_wallet_stop(api);
  pz__api_red_packets_stop(api);
  pz__api_merchants_stop(api);
  pz__api_uploads_stop(api);
  pz__api_sync_stop(api);
  if (api->busy == 0) api_destroy(api);
}

void pz__api_busy(pz_api_t *api) { api->busy++; }

void pz__api_unbusy(pz_api_t *api) {
  PZ_ASSERT(api->busy > 0);
  if (--api->busy == 0 && api->closing) api_destroy(api);
}

/* ---- request contexts ---- */

static void ctx_release(void *data) {
  pz__api_ctx_t *c = data;
  if (c->out) json_decref(c->out);
  c->out = NULL;
}

static void job_done(pz_store_job_t *job) {
  pz__api_ctx_t *c = job->data;
  pz_api_t *api = c->api; /* c may be gone once the request is answered */
  if (c->done)
    c->done(c);
  else
    pz__api_finish(c);
  pz__api_unbusy(api);
}

void *pz__api_ctx_new(pz_req_t *req, size_t size, pz_store_run_fn run) {
  PZ_ASSERT(size >= sizeof(pz__api_ctx_t));
  pz__api_ctx_t *c = pz_arena_calloc(req->arena, 1, size);
  c->req = req;
  c->api = req->route_data;
  c->status = 200;
  c->job.run = run;
  c->job.done = job_done;
  c->job.data = c;
  pz_arena_on_reset(req->arena, ctx_release, c);
  return c;
}

/* A store that is closing refuses jobs without calling done: the refusal
 * then takes the path of a failed job, so every handler answers. */
static void submitted(pz__api_ctx_t *c, int rc) {
  if (rc == 0) return;
  c->job.rc = rc;
  pz_err_set(&c->job.err, rc, NULL, NULL);
  job_done(&c->job);
}

void pz__api_read(pz__api_ctx_t *c) {
  pz__api_busy(c->api);
  submitted(c, pz_store_read(c->api->st, &c->job));
}

void pz__api_write(pz__api_ctx_t *c) {
  pz__api_busy(c->api);
  submitted(c, pz_store_write(c->api->st, &c->job));
}

void pz__api_write_lazy(pz__api_ctx_t *c) {
  pz__api_busy(c->api);
  submitted(c, pz_store_write_lazy(c->api->st, &c->job));
}

static void pw_done(pz_auth_pw_job_t *job) {
  pz__api_ctx_t *c = job->data;
  pz_api_t *api = c->api;
  c->pw_done(c);
  pz__api_unbusy(api);
}

int pz__api_hash(pz__api_ctx_t *c) {
  PZ_ASSERT(c->pw_done != NULL);
  c->pw.data = c;
  c->pw.done = pw_done;
  int rc = pz_auth_pwq_submit(c->api->pwq, &c->pw);
  if (rc == 0) pz__api_busy(c->api);
  return rc;
}

void pz__api_fail_busy(pz_req_t *req) {
  pz_err_t err;
  pz_err_set(&err, PZ_EUNAVAIL, NULL, "the server is busy; try again shortly");
  pz_req_add_header(req, "Retry-After", "1");
  pz__api_fail(req, &err);
}

void pz__api_fail_pw(pz__api_ctx_t *c) {
  if (c->pw.rc == PZ_ESHUTDOWN) {
    pz_err_t err;
    pz_err_set(&err, PZ_ESHUTDOWN, NULL, NULL);
    pz__api_fail(c->req, &err);
    return;
  }
  pz__api_fail_busy(c->req); /* Argon2 found no memory: a passing shortage */
}

void pz__api_finish(pz__api_ctx_t *c) {
  if (c->job.rc < 0) {
    pz__api_fail(c->req, &c->job.err);
  } else if (c->out) {
    json_t *body = c->out;
    c->out = NULL;
    pz__api_json(c->req, c->status, body);
  } else {
    pz__api_no_content(c->req);
  }
}

/* ---- answers ---- */

void pz__api_fail(pz_req_t *req, const pz_err_t *err) {
  /* pz_req_respond_err writes the one log line of the failure, with the
   * request id; our messages never hold a secret, so it may quote them. */
  int status = pz_err_http_status(err);
  if (status == 401) pz_req_add_header(req, "WWW-Authenticate", "Bearer");
  pz_req_add_header(req, "Cache-Control", "no-store");
  pz_req_respond_err(req, err);
}

void pz__api_json(pz_req_t *req, int status, json_t *body) {
  char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
  json_decref(body);
  if (text == NULL) {
    pz_err_t err;
    pz_err_set(&err, PZ_ENOMEM, NULL, NULL);
    pz__api_fail(req, &err);
    return;
  }
  /* Answers carry tokens and private data: no cache may keep them. */
  pz_req_add_header(req, "Cache-Control", "no-store");
  pz_req_respond(req, status, "application/json", text, strlen(text));
  free(text);
}

void pz__api_no_content(pz_req_t *req) { pz_req_respond(req, 204, NULL, NULL, 0); }

/* ---- decoding ---- */

static void json_release(void *data) { json_decref(data); }

int pz__api_body(pz_req_t *req, json_t **out, pz_err_t *err) {
  *out = NULL;
  if (req->body.len == 0) return pz_err_set(err, PZ_EJSON, NULL, "the request body must be a JSON object");
  json_error_t je;
  /* Duplicate keys are refused: two parsers that pick different ones are
   * how checks get bypassed. */
  json_t *v = pz__api_json_load(req->body.ptr, req->body.len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
  if (v == NULL) {
    if (json_error_code(&je) == json_error_invalid_utf8)
      return pz_err_set(err, PZ_EUTF8, NULL, "the request body is not valid UTF-8");
    /* jansson's own text quotes the input near the error, which may be a
     * password: only the position is repeated. */
    return pz_err_set(err, PZ_EJSON, NULL, "the request body is not valid JSON (line %d, column %d)", je.line,
                      je.column);
  }
  if (!json_is_object(v)) {
    json_decref(v);
    return pz_err_set(err, PZ_EINVAL, NULL, "the request body must be a JSON object");
  }
  pz_arena_on_reset(req->arena, json_release, v);
  *out = v;
  return 0;
}

int pz__api_str(json_t *obj, const char *key, bool required, pz_str_t *out, bool *present, pz_err_t *err) {
  json_t *v = json_object_get(obj, key);
  *out = PZ_STR_NULL;
  if (present) *present = v != NULL;
  if (v == NULL) return required ? pz_err_set(err, PZ_EINVAL, NULL, "%s is required", key) : 0;
  if (!json_is_string(v)) return pz_err_set(err, PZ_EINVAL, NULL, "%s must be a string", key);
  *out = pz_str_n(json_string_value(v), json_string_length(v));
  return 0;
}

int pz__api_id(json_t *obj, const char *key, int64_t *out, pz_err_t *err) {
  pz_str_t s;
  int rc = pz__api_str(obj, key, true, &s, NULL, err);
  if (rc == PZ_EINVAL && json_object_get(obj, key) != NULL)
    return pz_err_set(err, PZ_EINVAL, NULL, "%s must be an id, a decimal string", key);
  if (rc < 0) return rc;
  if (pz_id_parse(s.ptr, s.len, out) < 0)
    return pz_err_set(err, PZ_EINVAL, NULL, "%s must be an id, a decimal string", key);
  return 0;
}

int pz__api_param_id(pz_req_t *req, int i, const char *name, int64_t *out, pz_err_t *err) {
  PZ_ASSERT(i < req->n_params);
  if (pz_id_parse(req->params[i].ptr, req->params[i].len, out) < 0)
    return pz_err_set(err, PZ_EINVAL, NULL, "%s in the path must be an id, a decimal number", name);
  return 0;
}

/* ---- encoding ---- */

json_t *pz__api_id_json(int64_t id) {
  char buf[24];
  size_t n = pz_id_format(id, buf);
  return json_stringn(buf, n);
}

json_t *pz__api_time_json(int64_t ms) {
  char buf[32];
  pz_time_format(ms, buf);
  return json_string(buf);
}

void pz__api_put_text(pz_buf_t *b, const char *name, const char *s, size_t len) {
  pz_buf_append_c(b, name);
  pz_buf_append_c(b, "\"");
  pz_buf_append_json_escaped(b, s, len);
  pz_buf_append_c(b, "\"");
}

void pz__api_put_id(pz_buf_t *b, const char *name, int64_t id) {
  /* Digits need no escaping: the name, the quoted id, written in place. */
  size_t n = strlen(name);
  pz_buf_reserve(b, n + 24); /* an int64 in 20 characters at most, the NUL and two quotes */
  char *p = b->data + b->len;
  memcpy(p, name, n);
  p[n] = '"';
  n += 1 + pz_id_format(id, p + n + 1);
  p[n++] = '"';
  b->len += n;
}

void pz__api_put_time(pz_buf_t *b, const char *name, int64_t ms) {
  char s[32];
  pz_time_format(ms, s);
  pz__api_put_text(b, name, s, strlen(s));
}

char *pz__api_buf_take(pz_buf_t *b) {
  char *out = malloc(b->len + 1);
  if (out) {
    if (b->len) memcpy(out, b->data, b->len);
    out[b->len] = '\0';
  }
  pz_buf_free(b);
  return out;
}

json_t *pz__api_text(const char *s) {
  /* Stored text was checked to be UTF-8 on the way in; should a row be
   * damaged, the field reads empty rather than vanishing. */
  json_t *v = json_string(s);
  return v ? v : json_string("");
}

json_t *pz__api_user_json(const pz_user_rec_t *u) {
  json_t *o = json_object();
  json_object_set_new(o, "id", pz__api_id_json(u->id));
  json_object_set_new(o, "username", pz__api_text(u->username));
  json_object_set_new(o, "display_name", pz__api_text(u->display_name));
  json_object_set_new(o, "bio", pz__api_text(u->bio));
  return o;
}

/* ---- authentication ---- */

typedef struct {
  pz__api_ctx_t base;
  void (*next)(pz_req_t *req);
  uint8_t hash[PZ_TOKEN_HASH_LEN];
  uint64_t epoch;
  int64_t now;
  pz_session_rec_t s;
} auth_ctx_t;

static void unauthorized(pz_req_t *req) {
  pz_err_t err;
  pz_err_set(&err, PZ_EUNAUTH, NULL, NULL);
  pz__api_fail(req, &err);
}

typedef struct {
  pz_store_job_t job;
  int64_t session_id, now;
} touch_job_t;

static int touch_run(pz_db_t *db, pz_store_job_t *job) {
  touch_job_t *t = job->data;
  return pz_store_session_touch(db, t->session_id, t->now, &job->err);
}

static void touch_done(pz_store_job_t *job) { pz_free(job->data); }

/* Writes last_seen_at when the stored one is older than the granularity:
 * at most one write per session every few minutes, whatever the traffic. */
static void maybe_touch(pz_api_t *api, pz_auth_session_t *s, int64_t now) {
  if (now - s->last_seen_at < PZ_SESSION_SEEN_GRANULARITY_MS) return;
  s->last_seen_at = now;
  touch_job_t *t = pz_calloc(1, sizeof(*t));
  t->session_id = s->session_id;
  t->now = now;
  t->job.run = touch_run;
  t->job.done = touch_done;
  t->job.data = t;
  if (pz_store_write(api->st, &t->job) < 0) pz_free(t); /* the store is closing: last_seen_at can wait */
}

static int lookup_run(pz_db_t *db, pz_store_job_t *job) {
  auth_ctx_t *c = job->data;
  return pz_store_session_by_token(db, c->hash, c->now, &c->s, &job->err);
}

static void lookup_done(pz__api_ctx_t *base) {
  auth_ctx_t *c = (auth_ctx_t *)base;
  pz_req_t *req = base->req;
  if (base->job.rc == PZ_ENOTFOUND) {
    unauthorized(req);
    return;
  }
  if (base->job.rc < 0) {
    pz__api_fail(req, &base->job.err);
    return;
  }
  pz_auth_session_t s = {c->s.id, c->s.user_id, c->s.expires_at, c->s.last_seen_at};
  pz_auth_cache_put(base->api->sessions, c->hash, &s, c->epoch);
  maybe_touch(base->api, &s, c->now);
  req->user_id = s.user_id;
  req->session_id = s.session_id;
  c->next(req);
}

void pz__api_authed(pz_req_t *req, void (*next)(pz_req_t *req)) {
  pz_api_t *api = req->route_data;
  pz_str_t token;
  uint8_t hash[PZ_TOKEN_HASH_LEN];
  if (pz_auth_bearer(pz_req_header(req, "Authorization"), &token) < 0 || pz_auth_token_hash(token, hash) < 0) {
    unauthorized(req);
    return;
  }
  int64_t now = pz_now_ms();
  pz_auth_session_t *s = pz_auth_cache_get(api->sessions, hash, now);
  if (s) {
    maybe_touch(api, s, now);
    req->user_id = s->user_id;
    req->session_id = s->session_id;
    next(req);
    return;
  }
  auth_ctx_t *c = pz__api_ctx_new(req, sizeof(*c), lookup_run);
  c->base.done = lookup_done;
  c->next = next;
  memcpy(c->hash, hash, sizeof(hash));
  c->epoch = pz_auth_cache_epoch(api->sessions);
  c->now = now;
  pz__api_read(&c->base);
}

void pz__api_session_gone(pz_api_t *api, const pz_session_rec_t *s) {
  pz_auth_cache_forget(api->sessions, s->token_hash);
  pz__api_ws_close_session(api, s->user_id, s->id, 4001, "session ended");
}

int64_t pz__api_test_knob(const char *name, int64_t lo, int64_t hi, int64_t dflt) {
  const char *v = getenv(name);
  if (v == NULL || *v < '0' || *v > '9') return dflt;
  char *end;
  errno = 0;
  long long n = strtoll(v, &end, 10);
  if (errno || *end != '\0' || n < lo || n > hi) return dflt;
  PZ_LOG(PZ_LOG_WARN, NULL, "test-only setting in effect", "name=%s value=%lld", name, n);
  return n;
}
