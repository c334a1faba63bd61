/* Groups: rename, members, roles, ownership and invite links (with their QR codes), each change announced by a system
 * message and events. */
#include <stdio.h>
#include <stdlib.h>
#include "api/internal.h"
#include "plaza/id.h"
#include "plaza/log.h"
#include "plaza/metrics.h"

/* The longest system message body: every member named by id. */
_Static_assert(PZ_CHAT_GROUP_MAX_MEMBERS * 22 + 256 <= PZ_CHAT_BODY_MAX_BYTES,
               "a system message naming every member must fit a message body");

/* A Host header we put into a join URL: a name or address and a port. */
#define HOST_MAX 255

/* What change_run does; OP_NONE for the invite jobs, which run on their own. */
enum { OP_NONE, OP_RENAME, OP_ADD, OP_REMOVE, OP_ROLE, OP_OWNER, OP_JOIN };

/* The events of one change, each appended to its users' streams in this
 * order and pushed in the same order, so that every socket sees its
 * user's sequence numbers rise. */
#define MAX_EVENTS 3

typedef struct {
  char *payload; /* malloc'd by jansson */
  pz_chat_fanout_t fanout;
} group_event_t;

typedef struct {
  pz__api_ctx_t base;
  int op;
  int64_t me, conv_id, user_id;
  int role;
  pz_str_t title, code;
  int64_t *ids;
  unsigned n_ids;
  int64_t msg_id; /* the system message's, taken on the loop like every message id */
  unsigned max_members;
  bool no_content; /* answer 204 rather than the conversation */
  pz_group_change_t ch;
  pz_msg_rec_t *msg;
  group_event_t ev[MAX_EVENTS];
  unsigned n_ev;
  pz_buf_t url, svg; /* the QR code's: the join URL and the image */
} group_ctx_t;

static void group_ctx_release(void *data) {
  group_ctx_t *c = data;
  for (unsigned i = 0; i < c->n_ev; i++) {
    free(c->ev[i].payload);
    pz_chat_fanout_free(&c->ev[i].fanout);
  }
  c->n_ev = 0;
  pz_group_change_free(&c->ch);
  pz_free(c->msg);
  c->msg = NULL;
  pz_buf_free(&c->url);
  pz_buf_free(&c->svg);
}

static group_ctx_t *group_ctx_new(pz_req_t *req, int op, pz_store_run_fn run) {
  group_ctx_t *c = pz__api_ctx_new(req, sizeof(*c), run);
  c->op = op;
  c->me = req->user_id;
  c->max_members = c->base.api->group_max;
  pz_arena_on_reset(req->arena, group_ctx_release, c);
  return c;
}

/* ---- announcing a change (writer thread) ---- */

/* A new event of the change: its payload is ev, released here. */
static group_event_t *event_new(group_ctx_t *c, json_t *ev, pz_err_t *err) {
  PZ_ASSERT(c->n_ev < MAX_EVENTS);
  char *text = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
  json_decref(ev);
  if (text == NULL) {
    pz_err_set(err, PZ_ENOMEM, NULL, NULL);
    return NULL;
  }
  group_event_t *e = &c->ev[c->n_ev++];
  e->payload = text;
  return e;
}

/* {"action","actor_id","user_ids", and "title" / "role" / "owner_id" as
 * the action has them}: what clients need to word the change their way. */
static json_t *system_json(const pz_group_change_t *ch) {
  json_t *ids = json_array();
  for (unsigned i = 0; i < ch->n_users; i++)
    json_array_append_new(ids, pz__api_id_json(ch->user_ids[i]));
  json_t *o = json_pack("{s:s,s:o,s:o}", "action", pz_group_action_name(ch->action), "actor_id",
                        pz__api_id_json(ch->actor_id), "user_ids", ids);
  if (o == NULL) return NULL;
  if (ch->action == PZ_GROUP_RENAMED) json_object_set_new(o, "title", pz__api_text(ch->conv.title));
  if (ch->action == PZ_GROUP_ROLE) json_object_set_new(o, "role", json_string(pz_store_role_name(ch->role)));
  if (ch->new_owner_id) json_object_set_new(o, "owner_id", pz__api_id_json(ch->new_owner_id));
  return o;
}

/* Stores the system message of ch and appends its message.new event to every member. */
static int post_system(pz_db_t *db, group_ctx_t *c, int64_t now, pz_err_t *err) {
  pz_group_change_t *ch = &c->ch;
  pz_msg_rec_t *m = c->msg = pz_calloc(1, sizeof(*m));
  m->id = c->msg_id;
  m->conversation_id = ch->conv.id;
  m->sender_id = ch->actor_id;
  /* Unique per conversation and sender, as the schema asks of every
   * message; clients never see it. */
  snprintf(m->client_id, sizeof(m->client_id), "system:%lld", (long long)m->id);
  snprintf(m->type, sizeof(m->type), "system");
  m->created_at = now;
  memcpy(m->text, ch->text, ch->text_len + 1);
  m->text_len = ch->text_len;
  json_t *sys = system_json(ch);
  char *body = sys ? json_dumps(sys, JSON_COMPACT) : NULL;
  json_decref(sys);
  if (body == NULL) return pz_err_set(err, PZ_ENOMEM, NULL, NULL);
  size_t len = strlen(body);
  PZ_ASSERT(len <= PZ_CHAT_BODY_MAX_BYTES); /* the _Static_assert above */
  memcpy(m->body, body, len + 1);
  m->body_len = len;
  free(body);
  group_event_t *e =
      event_new(c, json_pack("{s:s,s:o}", "type", PZ_EVENT_MESSAGE_NEW, "message", pz__api_message_json(m)), err);
  if (e == NULL) return err->code;
  return pz_chat_group_post(db, m, pz_str(e->payload), &e->fanout, err);
}

/* The events of a change, in the job that made it: conversation.new to
 * newcomers and conversation.updated to the other members, then the
 * system message to all, then conversation.removed to whoever went. */
static int announce(pz_db_t *db, group_ctx_t *c, pz_err_t *err) {
  pz_group_change_t *ch = &c->ch;
  int64_t now = pz_now_ms(), conv_id = ch->conv.id;
  int rc = 0;
  group_event_t *e;
  if (!ch->ended) {
    json_t *conv;
    rc = pz__api_conv_json(db, &ch->conv, &conv, err);
    if (rc < 0) {
      json_decref(conv);
      return rc;
    }
    bool arrived = ch->action == PZ_GROUP_ADDED || ch->action == PZ_GROUP_JOINED;
    if (arrived) {
      /* To a newcomer the group is new: the same event as a creation. */
      if ((e = event_new(c, json_pack("{s:s,s:O}", "type", PZ_EVENT_CONVERSATION_NEW, "conversation", conv), err)) ==
          NULL) {
        json_decref(conv);
        return err->code;
      }
      for (unsigned i = 0; i < ch->n_users && rc == 0; i++)
        rc = pz_chat_publish_user(db, ch->user_ids[i], PZ_STR(PZ_EVENT_CONVERSATION_NEW), pz_str(e->payload), now,
                                  &e->fanout, err);
      if (rc < 0) {
        json_decref(conv);
        return rc;
      }
    }
    e = event_new(c, json_pack("{s:s,s:o}", "type", PZ_EVENT_CONVERSATION_UPDATED, "conversation", conv), err);
    if (e == NULL) return err->code;
    if ((rc = pz_chat_publish_except(db, conv_id, arrived ? ch->user_ids : NULL, arrived ? ch->n_users : 0,
                                     PZ_STR(PZ_EVENT_CONVERSATION_UPDATED), pz_str(e->payload), now, &e->fanout, err)) <
            0 ||
        (rc = post_system(db, c, now, err)) < 0)
      return rc;
  }
  if (ch->action == PZ_GROUP_REMOVED || ch->action == PZ_GROUP_LEFT) {
    /* The one who went keeps their past events; this one tells their
     * devices to drop the conversation. */
    e = event_new(
        c, json_pack("{s:s,s:o}", "type", PZ_EVENT_CONVERSATION_REMOVED, "conversation_id", pz__api_id_json(conv_id)),
        err);
    if (e == NULL) return err->code;
    rc = pz_chat_publish_user(db, ch->user_ids[0], PZ_STR(PZ_EVENT_CONVERSATION_REMOVED), pz_str(e->payload), now,
                              &e->fanout, err);
  }
  return rc;
}

static int change_run(pz_db_t *db, pz_store_job_t *job) {
  group_ctx_t *c = job->data;
  pz_group_change_t *ch = &c->ch;
  int64_t now = pz_now_ms();
  int rc;
  switch (c->op) {
    case OP_RENAME:
      rc = pz_chat_group_rename(db, c->me, c->conv_id, c->title, ch, &job->err);
      break;
    case OP_ADD:
      rc = pz_chat_group_add(db, c->me, c->conv_id, c->ids, c->n_ids, c->max_members, now, ch, &job->err);
      break;
    case OP_REMOVE:
      rc = pz_chat_group_remove(db, c->me, c->conv_id, c->user_id, ch, &job->err);
      break;
    case OP_ROLE:
      rc = pz_chat_group_set_role(db, c->me, c->conv_id, c->user_id, c->role, ch, &job->err);
      break;
    case OP_OWNER:
      rc = pz_chat_group_transfer(db, c->me, c->conv_id, c->user_id, ch, &job->err);
      break;
    case OP_JOIN:
      rc = pz_chat_invite_join(db, c->me, c->code, c->max_members, now, ch, &job->err);
      break;
    default:
      PZ_ASSERT(!"unknown group operation");
      return PZ_EIO;
  }
  if (rc < 0) return rc;
  if (ch->action != PZ_GROUP_NONE && (rc = announce(db, c, &job->err)) < 0) return rc;
  if (c->no_content) return 0;
  json_t *o;
  if ((rc = pz__api_conv_view_json(db, c->me, ch->conv.id, &o, &job->err)) < 0) return rc;
  c->base.out = json_pack("{s:o}", "conversation", o);
  return 0;
}

/* Pushes the events once the change is durable, in the order they were appended. */
static void change_done(pz__api_ctx_t *base) {
  group_ctx_t *c = (group_ctx_t *)base;
  if (base->job.rc == 0) {
    for (unsigned i = 0; i < c->n_ev; i++)
      pz__api_publish(base->api, &c->ev[i].fanout, pz_str(c->ev[i].payload));
    if (c->ch.action != PZ_GROUP_NONE) pz_metrics_count("group_changes", 1);
  }
  pz__api_finish(base);
}

/* Starts the change: the system message's id is taken now, on the loop. */
static void change_start(group_ctx_t *c) {
  c->base.done = change_done;
  c->msg_id = pz_id_next();
  pz__api_write(&c->base);
}

/* ---- PATCH /v1/conversations/{id} ---- */

static void rename_authed(pz_req_t *req) {
  pz_err_t err = {0};
  json_t *body;
  group_ctx_t *c = group_ctx_new(req, OP_RENAME, change_run);
  if (pz__api_param_id(req, 0, "conversation id", &c->conv_id, &err) < 0 || pz__api_body(req, &body, &err) < 0 ||
      pz__api_str(body, "title", true, &c->title, NULL, &err) < 0 || pz_chat_title_check(c->title, &err) < 0) {
    pz__api_fail(req, &err);
    return;
  }
  change_start(c);
}

/* ---- POST /v1/conversations/{id}/members ---- */

static void add_authed(pz_req_t *req) {
  pz_err_t err = {0};
  json_t *body;
  group_ctx_t *c = group_ctx_new(req, OP_ADD, change_run);
  if (pz__api_param_id(req, 0, "conversation id", &c->conv_id, &err) < 0 || pz__api_body(req, &body, &err) < 0)
    goto fail;
  json_t *ids = json_object_get(body, "user_ids");
  size_t n = json_array_size(ids);
  if (!json_is_array(ids) || n == 0) {
    pz_err_set(&err, PZ_EINVAL, NULL, "user_ids must be an array of one or more user ids");
    goto fail;
  }
  /* More than a group holds can never fit: refused before any allocation. */
  if (n > PZ_CHAT_GROUP_MAX_MEMBERS) {
    pz_err_set(&err, PZ_EINVAL, NULL, "user_ids names at most %d users", PZ_CHAT_GROUP_MAX_MEMBERS);
    goto fail;
  }
  c->ids = pz_arena_calloc(req->arena, n, sizeof(int64_t));
  for (size_t i = 0; i < n; i++) {
    json_t *v = json_array_get(ids, i);
    if (!json_is_string(v) || pz_id_parse(json_string_value(v), json_string_length(v), &c->ids[i]) < 0) {
      pz_err_set(&err, PZ_EINVAL, NULL, "user_ids must be an array of user ids");
      goto fail;
    }
  }
  c->n_ids = (unsigned)n;
  change_start(c);
  return;
fail:
  pz__api_fail(req, &err);
}

/* ---- DELETE /v1/conversations/{id}/members/{user_id} ---- */

static void remove_authed(pz_req_t *req) {
  pz_err_t err = {0};
  group_ctx_t *c = group_ctx_new(req, OP_REMOVE, change_run);
  c->no_content = true;
  if (pz__api_param_id(req, 0, "conversation id", &c->conv_id, &err) < 0 ||
      pz__api_param_id(req, 1, "user id", &c->user_id, &err) < 0) {
    pz__api_fail(req, &err);
    return;
  }
  change_start(c);
}

/* ---- PUT /v1/conversations/{id}/members/{user_id}/role ---- */

static void role_authed(pz_req_t *req) {
  pz_err_t err = {0};
  json_t *body;
  pz_str_t role;
  group_ctx_t *c = group_ctx_new(req, OP_ROLE, change_run);
  if (pz__api_param_id(req, 0, "conversation id", &c->conv_id, &err) < 0 ||
      pz__api_param_id(req, 1, "user id", &c->user_id, &err) < 0 || pz__api_body(req, &body, &err) < 0 ||
      pz__api_str(body, "role", true, &role, NULL, &err) < 0)
    goto fail;
  if (pz_str_eq_c(role, "admin")) {
    c->role = PZ_MEMBER_ADMIN;
  } else if (pz_str_eq_c(role, "member")) {
    c->role = PZ_MEMBER_MEMBER;
  } else {
    pz_err_set(&err, PZ_EINVAL, NULL, "role must be \"admin\" or \"member\" (ownership is handed over instead)");
    goto fail;
  }
  change_start(c);
  return;
fail:
  pz__api_fail(req, &err);
}

/* ---- POST /v1/conversations/{id}/owner ---- */

static void owner_authed(pz_req_t *req) {
  pz_err_t err = {0};
  json_t *body;
  group_ctx_t *c = group_ctx_new(req, OP_OWNER, change_run);
  if (pz__api_param_id(req, 0, "conversation id", &c->conv_id, &err) < 0 || pz__api_body(req, &body, &err) < 0 ||
      pz__api_id(body, "user_id", &c->user_id, &err) < 0) {
    pz__api_fail(req, &err);
    return;
  }
  change_start(c);
}

/* ---- invites ---- */

static json_t *invite_json(const pz_invite_rec_t *inv) {
  char url[16 + PZ_INVITE_CODE_LEN];
  snprintf(url, sizeof(url), "/join/%s", inv->code);
  return json_pack("{s:s,s:s,s:o}", "code", inv->code, "url", url, "expires_at", pz__api_time_json(inv->expires_at));
}

/* POST /v1/conversations/{id}/invites */

static int invite_create_run(pz_db_t *db, pz_store_job_t *job) {
  group_ctx_t *c = job->data;
  pz_invite_rec_t inv;
  int rc = pz_chat_invite_create(db, c->me, c->conv_id, pz_now_ms(), c->base.api->invite_ttl_ms, &inv, &job->err);
  if (rc < 0) return rc;
  c->base.status = 201;
  c->base.out = json_pack("{s:o}", "invite", invite_json(&inv));
  return 0;
}

static void invite_create_authed(pz_req_t *req) {
  pz_err_t err = {0};
  group_ctx_t *c = group_ctx_new(req, OP_NONE, invite_create_run);
  if (pz__api_param_id(req, 0, "conversation id", &c->conv_id, &err) < 0) {
    pz__api_fail(req, &err);
    return;
  }
  pz__api_write(&c->base);
}

/* GET /v1/invites/{code} */

static int invite_get_run(pz_db_t *db, pz_store_job_t *job) {
  group_ctx_t *c = job->data;
  pz_invite_rec_t inv;
  pz_conv_rec_t conv;
  unsigned n_members = 0;
  int rc = pz_chat_invite_get(db, c->code, pz_now_ms(), &inv, &conv, &n_members, &job->err);
  if (rc < 0) return rc;
  rc = pz_store_member_role(db, conv.id, c->me, NULL, NULL, &job->err);
  if (rc < 0 && rc != PZ_ENOTFOUND) return rc;
  json_t *o = invite_json(&inv);
  /* Who is in it is for members to see: the preview shows its name and size. */
  json_object_set_new(o, "conversation",
                      json_pack("{s:o,s:o,s:I}", "id", pz__api_id_json(conv.id), "title", pz__api_text(conv.title),
                                "member_count", (json_int_t)n_members));
  json_object_set_new(o, "is_member", json_boolean(rc == 0));
  c->base.out = json_pack("{s:o}", "invite", o);
  job->err = (pz_err_t){0};
  return 0;
}

static void invite_get_authed(pz_req_t *req) {
  group_ctx_t *c = group_ctx_new(req, OP_NONE, invite_get_run);
  c->code = req->params[0];
  pz__api_read(&c->base);
}

/* GET /v1/invites/{code}/qr.svg */

/* The origin the client reached us at: http://HOST, or https://HOST
 * behind a proxy that says X-Forwarded-Proto: https. The Host is checked
 * to be a name or an address with an optional port, so that nothing else
 * ends up in a code that people scan. */
static int public_origin(pz_req_t *req, pz_buf_t *out, pz_err_t *err) {
  pz_str_t host = pz_req_header(req, "Host");
  if (host.len == 0 || host.len > HOST_MAX) goto bad;
  for (size_t i = 0; i < host.len; i++) {
    char ch = host.ptr[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' ||
          ch == ':' || ch == '[' || ch == ']'))
      goto bad;
  }
  pz_str_t proto = pz_req_header(req, "X-Forwarded-Proto");
  pz_buf_append_c(out, pz_str_ieq(proto, PZ_STR("https")) ? "https://" : "http://");
  pz_buf_append_str(out, host);
  return 0;
bad:
  return pz_err_set(err, PZ_EINVAL, NULL, "the Host header must name this server (a host name or address and a port)");
}

static int qr_run(pz_db_t *db, pz_store_job_t *job) {
  group_ctx_t *c = job->data;
  pz_invite_rec_t inv;
  int rc = pz_chat_invite_get(db, c->code, pz_now_ms(), &inv, NULL, NULL, &job->err);
  if (rc < 0) return rc;
  pz_buf_printf(&c->url, "/join/%s", inv.code);
  return pz__api_qr_svg(pz_str_n(c->url.data, c->url.len), &c->svg, &job->err);
}

static void qr_done(pz__api_ctx_t *base) {
  group_ctx_t *c = (group_ctx_t *)base;
  if (base->job.rc < 0) {
    pz__api_fail(base->req, &base->job.err);
    return;
  }
  /* The image depends on the Host it was asked with: private, and short. */
  pz_req_add_header(base->req, "Cache-Control", "private, max-age=300");
  pz_req_add_header(base->req, "X-Content-Type-Options", "nosniff");
  pz_req_add_header(base->req, "Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'");
  pz_req_respond(base->req, 200, "image/svg+xml", c->svg.data, c->svg.len);
}

static void qr_authed(pz_req_t *req) {
  pz_err_t err = {0};
  group_ctx_t *c = group_ctx_new(req, OP_NONE, qr_run);
  c->base.done = qr_done;
  c->code = req->params[0];
  if (public_origin(req, &c->url, &err) < 0) {
    pz__api_fail(req, &err);
    return;
  }
  pz__api_read(&c->base);
}

/* POST /v1/invites/{code}/join */

static void join_authed(pz_req_t *req) {
  group_ctx_t *c = group_ctx_new(req, OP_JOIN, change_run);
  c->code = req->params[0];
  change_start(c);
}

/* DELETE /v1/invites/{code} */

static int revoke_run(pz_db_t *db, pz_store_job_t *job) {
  group_ctx_t *c = job->data;
  return pz_chat_invite_revoke(db, c->me, c->code, pz_now_ms(), &job->err);
}

static void revoke_authed(pz_req_t *req) {
  group_ctx_t *c = group_ctx_new(req, OP_NONE, revoke_run);
  c->code = req->params[0];
  pz__api_write(&c->base);
}

/* ---- routes ---- */

static void rename_group(pz_req_t *req) { pz__api_authed(req, rename_authed); }
static void add_members(pz_req_t *req) { pz__api_authed(req, add_authed); }
static void remove_member(pz_req_t *req) { pz__api_authed(req, remove_authed); }
static void set_role(pz_req_t *req) { pz__api_authed(req, role_authed); }
static void transfer(pz_req_t *req) { pz__api_authed(req, owner_authed); }
static void create_invite(pz_req_t *req) { pz__api_authed(req, invite_create_authed); }
static void get_invite(pz_req_t *req) { pz__api_authed(req, invite_get_authed); }
static void invite_qr(pz_req_t *req) { pz__api_authed(req, qr_authed); }
static void join(pz_req_t *req) { pz__api_authed(req, join_authed); }
static void revoke_invite(pz_req_t *req) { pz__api_authed(req, revoke_authed); }

void pz__api_groups_routes(pz_api_t *api, pz_router_t *r) {
  /* For tests only (docs/api.md): reaching the cap of 500 takes 500
   * sign-ups, and an invite expires after a week. They can only lower
   * the limits. */
  api->group_max = (unsigned)pz__api_test_knob("PLAZA_TEST_GROUP_MAX", 2, PZ_CHAT_GROUP_MAX_MEMBERS - 1,
                                                PZ_CHAT_GROUP_MAX_MEMBERS);
  api->invite_ttl_ms =
      pz__api_test_knob("PLAZA_TEST_INVITE_TTL_MS", 1, PZ_GROUP_INVITE_TTL_MS - 1, PZ_GROUP_INVITE_TTL_MS);
  pz_router_add(r, PZ_HTTP_PATCH, "/v1/conversations/{id}", rename_group, api);
  pz_router_add(r, PZ_HTTP_POST, "/v1/conversations/{id}/members", add_members, api);
  pz_router_add(r, PZ_HTTP_DELETE, "/v1/conversations/{id}/members/{user_id}", remove_member, api);
  pz_router_add(r, PZ_HTTP_PUT, "/v1/conversations/{id}/members/{user_id}/role", set_role, api);
  pz_router_add(r, PZ_HTTP_POST, "/v1/conversations/{id}/owner", transfer, api);
  pz_router_add(r, PZ_HTTP_POST, "/v1/conversations/{id}/invites", create_invite, api);
  pz_router_add(r, PZ_HTTP_GET, "/v1/invites/{code}", get_invite, api);
  pz_router_add(r, PZ_HTTP_GET, "/v1/invites/{code}/qr.svg", invite_qr, api);
  pz_router_add(r, PZ_HTTP_POST, "/v1/invites/{code}/join", join, api);
  pz_router_add(r, PZ_HTTP_DELETE, "/v1/invites/{code}", revoke_invite, api);
}
