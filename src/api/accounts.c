/* POST /v1/accounts: sign-up, which answers with the new user and the token of a first session. */
#include "api/internal.h"
#include "plaza/id.h"
#include "plaza/metrics.h"

typedef struct {
  pz__api_ctx_t base;
  pz_user_rec_t user;
  pz_session_rec_t session;
  char token[PZ_TOKEN_LEN + 1];
} signup_ctx_t;

/* Writer: the username check and both inserts in one savepoint. */
static int signup_run(pz_db_t *db, pz_store_job_t *job) {
  signup_ctx_t *c = job->data;
  return pz_auth_register(db, &c->user, c->base.pw.hash_out, &c->session, &job->err);
}

static void signup_done(pz__api_ctx_t *base) {
  signup_ctx_t *c = (signup_ctx_t *)base;
  if (base->job.rc < 0) {
    pz__api_fail(base->req, &base->job.err);
    return;
  }
  pz_metrics_count("accounts_created", 1);
  json_t *body = json_object();
  json_object_set_new(body, "user", pz__api_user_json(&c->user));
  json_object_set_new(body, "token", json_string(c->token));
  pz__api_json(base->req, 201, body);
}

static void hashed(pz__api_ctx_t *base) {
  signup_ctx_t *c = (signup_ctx_t *)base;
  if (base->pw.rc < 0) {
    pz__api_fail_pw(base);
    return;
  }
  pz_req_t *req = base->req;
  pz_auth_session_init(&c->session, c->token, c->user.id, pz_req_header(req, "User-Agent"), req->remote_addr,
                       c->user.created_at);
  base->job.run = signup_run;
  base->done = signup_done;
  pz__api_write(base);
}

/* Reader: a taken username is refused before Argon2 spends its time. The
 * writer checks again, since someone may take the name meanwhile. */
static int check_run(pz_db_t *db, pz_store_job_t *job) {
  signup_ctx_t *c = job->data;
  pz_user_rec_t existing;
  int rc = pz_store_user_find(db, pz_str(c->user.username), &existing, NULL, &job->err);
  if (rc == 0) return pz_err_set(&job->err, PZ_ECONFLICT, "username_taken", "this username is already taken");
  if (rc == PZ_ENOTFOUND) {
    job->err = (pz_err_t){0};
    return 0;
  }
  return rc;
}

static void checked(pz__api_ctx_t *base) {
  if (base->job.rc < 0) {
    pz__api_fail(base->req, &base->job.err);
    return;
  }
  base->pw.op = PZ_AUTH_PW_HASH;
  base->pw_done = hashed;
  if (pz__api_hash(base) < 0) pz__api_fail_busy(base->req);
}

static void signup(pz_req_t *req) {
  pz_err_t err = {0};
  json_t *body;
  pz_str_t username, password, display_name;
  signup_ctx_t *c = pz__api_ctx_new(req, sizeof(*c), check_run);
  if (pz__api_body(req, &body, &err) < 0 || pz__api_str(body, "username", true, &username, NULL, &err) < 0 ||
      pz_auth_username_norm(username, c->user.username, &err) < 0 ||
      pz__api_str(body, "password", true, &password, NULL, &err) < 0 || pz_auth_password_check(password, &err) < 0 ||
      pz__api_str(body, "display_name", true, &display_name, NULL, &err) < 0 ||
      pz_auth_display_name_check(display_name, &err) < 0) {
    pz__api_fail(req, &err);
    return;
  }
  c->user.id = pz_id_next();
  memcpy(c->user.display_name, display_name.ptr, display_name.len);
  c->user.display_name[display_name.len] = '\0';
  c->user.created_at = pz_now_ms();
  c->base.pw.password = password;
  c->base.done = checked;
  pz__api_read(&c->base);
}

void pz__api_accounts_routes(pz_api_t *api, pz_router_t *r) {
  pz_router_add(r, PZ_HTTP_POST, "/v1/accounts", signup, api);
}
