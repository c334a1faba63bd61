/* /v1/sessions: log-in (rate limited per account and per address), the list of my devices, log-out and revocation. */
#include <stdio.h>
#include "api/internal.h"
#include "plaza/id.h"
#include "plaza/metrics.h"

/* ---- POST /v1/sessions ---- */

typedef struct {
  pz__api_ctx_t base;
  char username[PZ_USERNAME_MAX + 1];
  char addr[PZ_IP_MAX_BYTES + 1];
  bool found;
  pz_user_rec_t user;
  char hash[PZ_PASSWORD_HASH_MAX + 1];
  pz_session_rec_t session, evicted;
  char token[PZ_TOKEN_LEN + 1];
} login_ctx_t;

/* One answer for an unknown user and for a wrong password. */
static void bad_credentials(pz_req_t *req) {
  pz_err_t err;
  pz_err_set(&err, PZ_EUNAUTH, "invalid_credentials", "wrong username or password");
  pz_metrics_count("login_failures", 1);
  pz__api_fail(req, &err);
}

static void too_many(pz_req_t *req, unsigned retry_after_s) {
  char secs[16];
  snprintf(secs, sizeof(secs), "%u", retry_after_s);
  pz_req_add_header(req, "Retry-After", secs);
  pz_err_t err;
  pz_err_set(&err, PZ_ERATE, "too_many_attempts", "too many failed log-ins; try again in %u seconds",
             retry_after_s);
  pz_metrics_count("logins_rate_limited", 1);
  pz__api_fail(req, &err);
}

/* The attempt was counted as a failure up front; it did not get to be one. */
static void refund(login_ctx_t *c) {
  pz_auth_limiter_forgive(c->base.api->fail_addr, pz_str(c->addr), false);
  pz_auth_limiter_forgive(c->base.api->fail_account, pz_str(c->username), false);
}

static int open_run(pz_db_t *db, pz_store_job_t *job) {
  login_ctx_t *c = job->data;
  return pz_auth_session_open(db, &c->session, &c->evicted, &job->err);
}

static void opened(pz__api_ctx_t *base) {
  login_ctx_t *c = (login_ctx_t *)base;
  if (base->job.rc < 0) {
    pz__api_fail(base->req, &base->job.err);
    return;
  }
  if (c->evicted.id) pz__api_session_gone(base->api, &c->evicted);
  pz_metrics_count("logins", 1);
  json_t *body = json_object();
  json_object_set_new(body, "token", json_string(c->token));
  json_object_set_new(body, "user", pz__api_user_json(&c->user));
  pz__api_json(base->req, 201, body);
}

static void verified(pz__api_ctx_t *base) {
  login_ctx_t *c = (login_ctx_t *)base;
  pz_req_t *req = base->req;
  pz_api_t *api = base->api;
  if (base->pw.rc == PZ_EUNAUTH) {
    bad_credentials(req);
    return;
  }
  if (base->pw.rc < 0) {
    refund(c);
    pz__api_fail_pw(base);
    return;
  }
  /* A success clears the account's failures, but only takes back this
   * attempt from the address: one good password must not let an address
   * go on guessing at other accounts. */
  pz_auth_limiter_forgive(api->fail_addr, pz_str(c->addr), false);
  pz_auth_limiter_forgive(api->fail_account, pz_str(c->username), true);
  pz_auth_session_init(&c->session, c->token, c->user.id, pz_req_header(req, "User-Agent"), req->remote_addr,
                       pz_now_ms());
  base->job.run = open_run;
  base->done = opened;
  pz__api_write(base);
}

static int find_run(pz_db_t *db, pz_store_job_t *job) {
  login_ctx_t *c = job->data;
  int rc = pz_store_user_find(db, pz_str(c->username), &c->user, c->hash, &job->err);
  c->found = rc == 0;
  if (rc == PZ_ENOTFOUND) {
    job->err = (pz_err_t){0};
    return 0;
  }
  return rc;
}

static void found(pz__api_ctx_t *base) {
  login_ctx_t *c = (login_ctx_t *)base;
  if (base->job.rc < 0) {
    refund(c);
    pz__api_fail(base->req, &base->job.err);
    return;
  }
  base->pw.op = PZ_AUTH_PW_VERIFY;
  base->pw.hash = c->found ? c->hash : NULL; /* NULL still costs an Argon2 run */
  base->pw_done = verified;
  if (pz__api_hash(base) < 0) {
    refund(c); /* an overloaded server is no verdict on the password */
    pz__api_fail_busy(base->req);
  }
}

static void login(pz_req_t *req) {
  pz_api_t *api = req->route_data;
  pz_err_t err = {0};
  json_t *body;
  pz_str_t username, password;
  if (pz__api_body(req, &body, &err) < 0 || pz__api_str(body, "username", true, &username, NULL, &err) < 0 ||
      pz__api_str(body, "password", true, &password, NULL, &err) < 0) {
    pz__api_fail(req, &err);
    return;
  }
  login_ctx_t *c = pz__api_ctx_new(req, sizeof(*c), find_run);
  pz_auth_addr_key(req->remote_addr, c->addr);
  int64_t now = pz_now_ms();
  unsigned retry = 0;
  if (pz_auth_limiter_check(api->fail_addr, pz_str(c->addr), now, &retry) < 0) {
    too_many(req, retry);
    return;
  }
  /* A username or password that breaks the sign-up rules matches no
   * account, and the rules are public: that answer needs no Argon2 run to
   * hide anything, but it counts against the address all the same. */
  bool plausible = pz_auth_username_norm(username, c->username, NULL) == 0;
  if (plausible && pz_auth_limiter_check(api->fail_account, pz_str(c->username), now, &retry) < 0) {
    too_many(req, retry);
    return;
  }
  /* Counted as a failure now, taken back on success: guesses sent all at
   * once are limited like guesses sent one after another. */
  pz_auth_limiter_fail(api->fail_addr, pz_str(c->addr), now);
  if (plausible) pz_auth_limiter_fail(api->fail_account, pz_str(c->username), now);
  if (!plausible || pz_auth_password_check(password, NULL) < 0) {
    bad_credentials(req);
    return;
  }
  c->base.pw.password = password;
  c->base.done = found;
  pz__api_read(&c->base);
}

/* ---- GET /v1/sessions ---- */

typedef struct {
  pz__api_ctx_t base;
  int64_t user_id, current, now;
  json_t *list;
} list_ctx_t;

static int session_row(void *arg, const pz_session_rec_t *s, pz_err_t *err) {
  list_ctx_t *c = arg;
  json_t *o = json_object();
  json_object_set_new(o, "id", pz__api_id_json(s->id));
  json_object_set_new(o, "device", pz__api_text(s->device));
  json_object_set_new(o, "ip", pz__api_text(s->ip));
  json_object_set_new(o, "created_at", pz__api_time_json(s->created_at));
  json_object_set_new(o, "last_seen_at", pz__api_time_json(s->last_seen_at));
  json_object_set_new(o, "expires_at", pz__api_time_json(s->expires_at));
  json_object_set_new(o, "current", json_boolean(s->id == c->current));
  json_array_append_new(c->list, o);
  return 0;
}

static int list_run(pz_db_t *db, pz_store_job_t *job) {
  list_ctx_t *c = job->data;
  c->list = json_array();
  c->base.out = json_pack("{s:o}", "sessions", c->list);
  return pz_store_session_list(db, c->user_id, c->now, session_row, c, &job->err);
}

static void list_authed(pz_req_t *req) {
  list_ctx_t *c = pz__api_ctx_new(req, sizeof(*c), list_run);
  c->user_id = req->user_id;
  c->current = req->session_id;
  c->now = pz_now_ms();
  pz__api_read(&c->base);
}

static void list(pz_req_t *req) { pz__api_authed(req, list_authed); }

/* ---- DELETE /v1/sessions/{id|current} ---- */

typedef struct {
  pz__api_ctx_t base;
  int64_t user_id, session_id;
  pz_session_rec_t closed;
} close_ctx_t;

static int close_run(pz_db_t *db, pz_store_job_t *job) {
  close_ctx_t *c = job->data;
  return pz_auth_session_close(db, c->user_id, c->session_id, &c->closed, &job->err);
}

static void closed(pz__api_ctx_t *base) {
  close_ctx_t *c = (close_ctx_t *)base;
  /* The token stops working before the client hears 204. */
  if (base->job.rc == 0) pz__api_session_gone(base->api, &c->closed);
  pz__api_finish(base);
}

static void close_authed(pz_req_t *req) {
  pz_err_t err = {0};
  int64_t id = req->session_id;
  if (!pz_str_eq_c(req->params[0], "current") && pz__api_param_id(req, 0, "session id", &id, &err) < 0) {
    pz__api_fail(req, &err);
    return;
  }
  close_ctx_t *c = pz__api_ctx_new(req, sizeof(*c), close_run);
  c->user_id = req->user_id;
  c->session_id = id;
  c->base.done = closed;
  pz__api_write(&c->base);
}

static void close_session(pz_req_t *req) { pz__api_authed(req, close_authed); }

void pz__api_sessions_routes(pz_api_t *api, pz_router_t *r) {
  pz_router_add(r, PZ_HTTP_POST, "/v1/sessions", login, api);
  pz_router_add(r, PZ_HTTP_GET, "/v1/sessions", list, api);
  /* "current" is matched here rather than as a route of its own, so that
   * the answer does not hang on how the router orders literals and parameters. */
  pz_router_add(r, PZ_HTTP_DELETE, "/v1/sessions/{id}", close_session, api);
}
