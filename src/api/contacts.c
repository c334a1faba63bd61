/* /v1/contacts and /v1/blocks: friend requests with greetings, the contact list, removal and blocking. */
#include "api/internal.h"
#include "plaza/id.h"

typedef struct {
  pz__api_ctx_t base;
  int64_t me, other, req_id;
  pz_str_t greeting;
  json_t *list;
} contacts_ctx_t;

static const char *const status_names[] = {"pending", "accepted", "declined"};

static json_t *request_json(const pz_contact_req_rec_t *r, const pz_user_rec_t *from, const pz_user_rec_t *to) {
  json_t *o = json_object();
  json_object_set_new(o, "id", pz__api_id_json(r->id));
  json_object_set_new(o, "from", pz__api_user_json(from));
  json_object_set_new(o, "to", pz__api_user_json(to));
  json_object_set_new(o, "greeting", pz__api_text(r->greeting));
  json_object_set_new(o, "status", json_string(status_names[r->status]));
  json_object_set_new(o, "created_at", pz__api_time_json(r->created_at));
  json_object_set_new(o, "updated_at", pz__api_time_json(r->updated_at));
  return o;
}

/* Sets the answer {"request": ...} with both users read in the same job. */
static int request_out(pz_db_t *db, contacts_ctx_t *c, const pz_contact_req_rec_t *r, pz_err_t *err) {
  pz_user_rec_t from, to;
  int rc = pz_store_user_get(db, r->from_id, &from, err);
  if (rc == 0) rc = pz_store_user_get(db, r->to_id, &to, err);
  if (rc == 0) c->base.out = json_pack("{s:o}", "request", request_json(r, &from, &to));
  return rc;
}

/* ---- POST /v1/contacts/requests ---- */

static int ask_run(pz_db_t *db, pz_store_job_t *job) {
  contacts_ctx_t *c = job->data;
  pz_contact_req_rec_t r;
  int outcome = 0;
  int rc = pz_auth_contact_request(db, c->me, c->other, c->greeting, pz_now_ms(), &r, &outcome, &job->err);
  if (rc < 0) return rc;
  c->base.status = outcome == PZ_AUTH_REQ_CREATED ? 201 : 200;
  return request_out(db, c, &r, &job->err);
}

static void ask_authed(pz_req_t *req) {
  pz_err_t err = {0};
  json_t *body;
  contacts_ctx_t *c = pz__api_ctx_new(req, sizeof(*c), ask_run);
  c->me = req->user_id;
  if (pz__api_body(req, &body, &err) < 0 || pz__api_id(body, "user_id", &c->other, &err) < 0 ||
      pz__api_str(body, "greeting", false, &c->greeting, NULL, &err) < 0 ||
      pz_auth_greeting_check(c->greeting, &err) < 0) {
    pz__api_fail(req, &err);
    return;
  }
  pz__api_write(&c->base);
}

static void ask(pz_req_t *req) { pz__api_authed(req, ask_authed); }

/* ---- POST /v1/contacts/requests/{id}/accept and /decline ---- */

static int accept_run(pz_db_t *db, pz_store_job_t *job) {
  contacts_ctx_t *c = job->data;
  pz_contact_req_rec_t r;
  int rc = pz_auth_contact_accept(db, c->me, c->req_id, pz_now_ms(), &r, &job->err);
  return rc < 0 ? rc : request_out(db, c, &r, &job->err);
}

static int decline_run(pz_db_t *db, pz_store_job_t *job) {
  contacts_ctx_t *c = job->data;
  pz_contact_req_rec_t r;
  int rc = pz_auth_contact_decline(db, c->me, c->req_id, pz_now_ms(), &r, &job->err);
  return rc < 0 ? rc : request_out(db, c, &r, &job->err);
}

static void answer_authed(pz_req_t *req, pz_store_run_fn run) {
  pz_err_t err = {0};
  int64_t id;
  if (pz__api_param_id(req, 0, "request id", &id, &err) < 0) {
    pz__api_fail(req, &err);
    return;
  }
  contacts_ctx_t *c = pz__api_ctx_new(req, sizeof(*c), run);
  c->me = req->user_id;
  c->req_id = id;
  pz__api_write(&c->base);
}

static void accept_authed(pz_req_t *req) { answer_authed(req, accept_run); }
static void decline_authed(pz_req_t *req) { answer_authed(req, decline_run); }
static void accept_req(pz_req_t *req) { pz__api_authed(req, accept_authed); }
static void decline_req(pz_req_t *req) { pz__api_authed(req, decline_authed); }

/* ---- GET /v1/contacts/requests ---- */

static int request_row(void *arg, const pz_contact_req_rec_t *r, const pz_user_rec_t *from, const pz_user_rec_t *to,
                       pz_err_t *err) {
  contacts_ctx_t *c = arg;
  json_array_append_new(c->list, request_json(r, from, to));
  return 0;
}

static int pending_run(pz_db_t *db, pz_store_job_t *job) {
  contacts_ctx_t *c = job->data;
  json_t *in = json_array(), *out = json_array();
  c->base.out = json_pack("{s:o,s:o}", "incoming", in, "outgoing", out);
  c->list = in;
  int rc = pz_store_contact_req_list(db, c->me, true, PZ_CONTACT_REQ_LIST_LIMIT, request_row, c, &job->err);
  if (rc < 0) return rc;
  c->list = out;
  return pz_store_contact_req_list(db, c->me, false, PZ_CONTACT_REQ_LIST_LIMIT, request_row, c, &job->err);
}

/* ---- GET /v1/contacts and GET /v1/blocks ---- */

static int relation_row(void *arg, const pz_user_rec_t *u, int64_t since, pz_err_t *err) {
  contacts_ctx_t *c = arg;
  json_array_append_new(c->list, json_pack("{s:o,s:o}", "user", pz__api_user_json(u), "since",
                                           pz__api_time_json(since)));
  return 0;
}

static int contacts_run(pz_db_t *db, pz_store_job_t *job) {
  contacts_ctx_t *c = job->data;
  c->list = json_array();
  c->base.out = json_pack("{s:o}", "contacts", c->list);
  return pz_store_contact_list(db, c->me, relation_row, c, &job->err);
}

static int blocks_run(pz_db_t *db, pz_store_job_t *job) {
  contacts_ctx_t *c = job->data;
  c->list = json_array();
  c->base.out = json_pack("{s:o}", "blocks", c->list);
  return pz_store_block_list(db, c->me, relation_row, c, &job->err);
}

static void read_authed(pz_req_t *req, pz_store_run_fn run) {
  contacts_ctx_t *c = pz__api_ctx_new(req, sizeof(*c), run);
  c->me = req->user_id;
  pz__api_read(&c->base);
}

static void pending_authed(pz_req_t *req) { read_authed(req, pending_run); }
static void contacts_authed(pz_req_t *req) { read_authed(req, contacts_run); }
static void blocks_authed(pz_req_t *req) { read_authed(req, blocks_run); }
static void list_pending(pz_req_t *req) { pz__api_authed(req, pending_authed); }
static void list_contacts(pz_req_t *req) { pz__api_authed(req, contacts_authed); }
static void list_blocks(pz_req_t *req) { pz__api_authed(req, blocks_authed); }

/* ---- DELETE /v1/contacts/{user_id} and DELETE /v1/blocks/{user_id} ---- */

static int remove_run(pz_db_t *db, pz_store_job_t *job) {
  contacts_ctx_t *c = job->data;
  return pz_auth_contact_remove(db, c->me, c->other, &job->err);
}

static int unblock_run(pz_db_t *db, pz_store_job_t *job) {
  contacts_ctx_t *c = job->data;
  return pz_auth_unblock(db, c->me, c->other, &job->err);
}

static void delete_authed(pz_req_t *req, pz_store_run_fn run) {
  pz_err_t err = {0};
  int64_t id;
  if (pz__api_param_id(req, 0, "user id", &id, &err) < 0) {
    pz__api_fail(req, &err);
    return;
  }
  contacts_ctx_t *c = pz__api_ctx_new(req, sizeof(*c), run);
  c->me = req->user_id;
  c->other = id;
  pz__api_write(&c->base); /* no body: 204 */
}

static void remove_authed(pz_req_t *req) { delete_authed(req, remove_run); }
static void unblock_authed(pz_req_t *req) { delete_authed(req, unblock_run); }
static void remove_contact(pz_req_t *req) { pz__api_authed(req, remove_authed); }
static void unblock(pz_req_t *req) { pz__api_authed(req, unblock_authed); }

/* ---- POST /v1/blocks ---- */

static int block_run(pz_db_t *db, pz_store_job_t *job) {
  contacts_ctx_t *c = job->data;
  bool created = false;
  int64_t since = 0;
  pz_user_rec_t u;
  int rc = pz_auth_block(db, c->me, c->other, pz_now_ms(), &created, &since, &u, &job->err);
  if (rc < 0) return rc;
  c->base.status = created ? 201 : 200;
  c->base.out = json_pack("{s:{s:o,s:o}}", "block", "user", pz__api_user_json(&u), "since", pz__api_time_json(since));
  return 0;
}

static void block_authed(pz_req_t *req) {
  pz_err_t err = {0};
  json_t *body;
  contacts_ctx_t *c = pz__api_ctx_new(req, sizeof(*c), block_run);
  c->me = req->user_id;
  if (pz__api_body(req, &body, &err) < 0 || pz__api_id(body, "user_id", &c->other, &err) < 0) {
    pz__api_fail(req, &err);
    return;
  }
  pz__api_write(&c->base);
}

static void block(pz_req_t *req) { pz__api_authed(req, block_authed); }

void pz__api_contacts_routes(pz_api_t *api, pz_router_t *r) {
  pz_router_add(r, PZ_HTTP_GET, "/v1/contacts", list_contacts, api);
  pz_router_add(r, PZ_HTTP_GET, "/v1/contacts/requests", list_pending, api);
  pz_router_add(r, PZ_HTTP_POST, "/v1/contacts/requests", ask, api);
  pz_router_add(r, PZ_HTTP_POST, "/v1/contacts/requests/{id}/accept", accept_req, api);
  pz_router_add(r, PZ_HTTP_POST, "/v1/contacts/requests/{id}/decline", decline_req, api);
  pz_router_add(r, PZ_HTTP_DELETE, "/v1/contacts/{user_id}", remove_contact, api);
  pz_router_add(r, PZ_HTTP_GET, "/v1/blocks", list_blocks, api);
  pz_router_add(r, PZ_HTTP_POST, "/v1/blocks", block, api);
  pz_router_add(r, PZ_HTTP_DELETE, "/v1/blocks/{user_id}", unblock, api);
}
