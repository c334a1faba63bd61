/* /v1/me: the signed-in user's own profile, to read and to change. */
#include "api/internal.h"
#include "plaza/id.h"

typedef struct {
  pz__api_ctx_t base;
  int64_t user_id;
  bool has_name, has_bio;
  pz_str_t display_name, bio;
} me_ctx_t;

static int get_run(pz_db_t *db, pz_store_job_t *job) {
  me_ctx_t *c = job->data;
  pz_user_rec_t u;
  int rc = pz_store_user_get(db, c->user_id, &u, &job->err);
  if (rc == 0) c->base.out = json_pack("{s:o}", "user", pz__api_user_json(&u));
  return rc;
}

static void get_authed(pz_req_t *req) {
  me_ctx_t *c = pz__api_ctx_new(req, sizeof(*c), get_run);
  c->user_id = req->user_id;
  pz__api_read(&c->base);
}

static void get_me(pz_req_t *req) { pz__api_authed(req, get_authed); }

static int patch_run(pz_db_t *db, pz_store_job_t *job) {
  me_ctx_t *c = job->data;
  pz_user_rec_t u;
  int rc = pz_auth_profile_update(db, c->user_id, c->has_name ? &c->display_name : NULL,
                                  c->has_bio ? &c->bio : NULL, pz_now_ms(), &u, &job->err);
  if (rc == 0) c->base.out = json_pack("{s:o}", "user", pz__api_user_json(&u));
  return rc;
}

static void patch_authed(pz_req_t *req) {
  pz_err_t err = {0};
  json_t *body;
  me_ctx_t *c = pz__api_ctx_new(req, sizeof(*c), patch_run);
  c->user_id = req->user_id;
  if (pz__api_body(req, &body, &err) < 0 ||
      pz__api_str(body, "display_name", false, &c->display_name, &c->has_name, &err) < 0 ||
      (c->has_name && pz_auth_display_name_check(c->display_name, &err) < 0) ||
      pz__api_str(body, "bio", false, &c->bio, &c->has_bio, &err) < 0 ||
      (c->has_bio && pz_auth_bio_check(c->bio, &err) < 0)) {
    pz__api_fail(req, &err);
    return;
  }
  if (!c->has_name && !c->has_bio) {
    pz_err_set(&err, PZ_EINVAL, NULL, "nothing to change: give display_name or bio");
    pz__api_fail(req, &err);
    return;
  }
  pz__api_write(&c->base);
}

static void patch_me(pz_req_t *req) { pz__api_authed(req, patch_authed); }

void pz__api_me_routes(pz_api_t *api, pz_router_t *r) {
  pz_router_add(r, PZ_HTTP_GET, "/v1/me", get_me, api);
  pz_router_add(r, PZ_HTTP_PATCH, "/v1/me", patch_me, api);
}
