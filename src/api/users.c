/* /v1/users: find people by username prefix, and look one up by id. */
#include "api/internal.h"

typedef struct {
  pz__api_ctx_t base;
  char prefix[PZ_USERNAME_MAX + 1];
  size_t prefix_len;
  int64_t user_id;
  json_t *list;
} users_ctx_t;

static int user_row(void *arg, const pz_user_rec_t *u, pz_err_t *err) {
  users_ctx_t *c = arg;
  json_array_append_new(c->list, pz__api_user_json(u));
  return 0;
}

static int search_run(pz_db_t *db, pz_store_job_t *job) {
  users_ctx_t *c = job->data;
  c->list = json_array();
  c->base.out = json_pack("{s:o}", "users", c->list);
  return pz_store_user_search(db, pz_str_n(c->prefix, c->prefix_len), PZ_SEARCH_LIMIT, user_row, c, &job->err);
}

static void search_authed(pz_req_t *req) {
  pz_err_t err = {0};
  pz_str_t q;
  if (!pz_req_query(req, "q", &q) || q.len == 0) {
    pz_err_set(&err, PZ_EINVAL, NULL, "q is required: the start of a username");
    pz__api_fail(req, &err);
    return;
  }
  if (!pz_utf8_valid(q.ptr, q.len)) {
    pz_err_set(&err, PZ_EUTF8, NULL, "q is not valid UTF-8");
    pz__api_fail(req, &err);
    return;
  }
  users_ctx_t *c = pz__api_ctx_new(req, sizeof(*c), search_run);
  if (!pz_auth_search_prefix(q, c->prefix, &c->prefix_len)) {
    /* No username can start with q: an empty result, not an error, for a
     * search box that holds whatever was typed. */
    pz__api_json(req, 200, json_pack("{s:[]}", "users"));
    return;
  }
  pz__api_read(&c->base);
}

static void search(pz_req_t *req) { pz__api_authed(req, search_authed); }

static int get_run(pz_db_t *db, pz_store_job_t *job) {
  users_ctx_t *c = job->data;
  pz_user_rec_t u;
  int rc = pz_store_user_get(db, c->user_id, &u, &job->err);
  if (rc == PZ_ENOTFOUND) return pz_err_set(&job->err, PZ_ENOTFOUND, NULL, "no such user");
  if (rc == 0) c->base.out = json_pack("{s:o}", "user", pz__api_user_json(&u));
  return rc;
}

static void get_authed(pz_req_t *req) {
  pz_err_t err = {0};
  int64_t id;
  if (pz__api_param_id(req, 0, "user id", &id, &err) < 0) {
    pz__api_fail(req, &err);
    return;
  }
  users_ctx_t *c = pz__api_ctx_new(req, sizeof(*c), get_run);
  c->user_id = id;
  pz__api_read(&c->base);
}

static void get_user(pz_req_t *req) { pz__api_authed(req, get_authed); }

void pz__api_users_routes(pz_api_t *api, pz_router_t *r) {
  pz_router_add(r, PZ_HTTP_GET, "/v1/users", search, api);
  pz_router_add(r, PZ_HTTP_GET, "/v1/users/{id}", get_user, api);
}
