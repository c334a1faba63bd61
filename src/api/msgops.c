/* Message operations over HTTP: edit, recall, delete for me, reactions, receipts, settings, presence and search. */
#include <stdio.h>
#include <stdlib.h>
#include "api/internal.h"
#include "plaza/id.h"
#include "plaza/log.h"

#define PRESENCE_MAX_IDS 100
#define TYPING_PAIRS 65536

/* ---- set-up ---- */

/* The windows can be set by test-only environment variables (docs/api.md):
 * the API tests cannot wait 15 minutes for an edit window to pass. */
void pz__api_msgops_init(pz_api_t *api) {
  api->edit_window_ms = pz__api_test_knob("PLAZA_TEST_EDIT_WINDOW_MS", 0, INT64_MAX, PZ_CHAT_EDIT_WINDOW_MS);
  api->recall_window_ms = pz__api_test_knob("PLAZA_TEST_RECALL_WINDOW_MS", 0, INT64_MAX, PZ_CHAT_RECALL_WINDOW_MS);
  api->typing = pz_chat_throttle_new(TYPING_PAIRS, PZ_CHAT_TYPING_INTERVAL_MS);
}

void pz__api_msgops_release(pz_api_t *api) { pz_chat_throttle_free(api->typing); }

/* ---- encoding ---- */

typedef struct {
  json_t *reactions;
  json_t *users; /* the array of the emoji being listed */
  char emoji[PZ_CHAT_EMOJI_MAX_BYTES + 1];
} reactions_t;

static int reaction_row(void *arg, pz_str_t emoji, int64_t user_id, pz_err_t *err) {
  reactions_t *r = arg;
  if (r->users == NULL || !pz_str_eq_c(emoji, r->emoji)) {
    size_t n = emoji.len < sizeof(r->emoji) ? emoji.len : sizeof(r->emoji) - 1;
    memcpy(r->emoji, emoji.ptr, n);
    r->emoji[n] = '\0';
    r->users = json_array();
    json_object_set_new(r->reactions, r->emoji, r->users);
  }
  json_array_append_new(r->users, pz__api_id_json(user_id));
  return 0;
}

int pz__api_message_full_json(pz_db_t *db, const pz_msg_rec_t *m, json_t **out, pz_err_t *err) {
  *out = pz__api_message_json(m);
  reactions_t r = {json_object(), NULL, ""};
  json_object_set_new(*out, "reactions", r.reactions);
  if (m->recalled_at) return 0; /* a recall took its reactions */
  return pz_store_reaction_list(db, m->id, reaction_row, &r, err);
}

/* Adds read_up_to and delivered_up_to to each member object of members:
 * a user object, or {"user": {...}} with the user inside. */
typedef struct {
  json_t *members;
} markers_t;

static int marker_row(void *arg, int64_t user_id, int64_t read_up_to, int64_t delivered_up_to, pz_err_t *err) {
  markers_t *mk = arg;
  char digits[24];
  pz_id_format(user_id, digits);
  size_t i;
  json_t *o;
  json_array_foreach(mk->members, i, o) {
    json_t *user = json_object_get(o, "user");
    const char *id = json_string_value(json_object_get(user ? user : o, "id"));
    if (id && strcmp(id, digits) == 0) {
      json_object_set_new(o, "read_up_to", read_up_to ? pz__api_id_json(read_up_to) : json_null());
      json_object_set_new(o, "delivered_up_to", delivered_up_to ? pz__api_id_json(delivered_up_to) : json_null());
      break;
    }
  }
  return 0;
}

int pz__api_member_markers(pz_db_t *db, int64_t conv_id, json_t *members, pz_err_t *err) {
  markers_t mk = {members};
  return pz_store_member_markers(db, conv_id, marker_row, &mk, err);
}

/* ---- receipts, shared with the read marker and the WebSocket ---- */

/* Whom a receipt concerns: the member whose marker moved (all of their
 * devices), and whoever sent a message the marker passed, since their
 * Delivered and Read ticks move with it. Not every member: in a group of
 * 500, each receipt would be 500 events, and each message brings a
 * receipt from every member. Past RECEIPT_SCAN messages (a device back
 * after long) or RECEIPT_SENDERS senders, it goes to every member. */
#define RECEIPT_SCAN 1000
#define RECEIPT_SENDERS 64

typedef struct {
  int64_t me, ids[RECEIPT_SENDERS];
  unsigned n;
  bool many;
} senders_t;

static int sender_row(void *arg, int64_t user_id, pz_err_t *err) {
  (void)err;
  senders_t *s = arg;
  if (user_id == s->me) return 0;
  for (unsigned i = 0; i < s->n; i++)
    if (s->ids[i] == user_id) return 0;
  if (s->n == RECEIPT_SENDERS)
    s->many = true;
  else
    s->ids[s->n++] = user_id;
  return 0;
}

static int receipt_fanout(pz_db_t *db, pz__api_receipt_t *r, int64_t me, int64_t conv_id, int64_t passed_after,
                          int64_t passed_up_to, pz_err_t *err) {
  pz_str_t type = PZ_STR(PZ_EVENT_RECEIPT), payload = pz_str(r->payload);
  int64_t now = pz_now_ms();
  senders_t s = {.me = me};
  unsigned rows = 0;
  int rc = pz_store_msg_senders(db, conv_id, passed_after, passed_up_to, RECEIPT_SCAN, sender_row, &s, &rows, err);
  if (rc < 0) return rc;
  if (s.many || rows == RECEIPT_SCAN) return pz_chat_publish(db, conv_id, type, payload, now, &r->fanout, err);
  if ((rc = pz_chat_publish_user(db, me, type, payload, now, &r->fanout, err)) < 0) return rc;
  for (unsigned i = 0; i < s.n; i++) {
    rc = pz_store_member_get(db, conv_id, s.ids[i], NULL, err);
    if (rc == PZ_ENOTFOUND) { /* left the conversation since: hears nothing more of it */
      *err = (pz_err_t){0};
      continue;
    }
    if (rc < 0 || (rc = pz_chat_publish_user(db, s.ids[i], type, payload, now, &r->fanout, err)) < 0) return rc;
  }
  return 0;
}

/* The receipt event of me's markers, now read_up_to and delivered_up_to,
 * after they moved past the messages in (passed_after, passed_up_to]. */
static int receipt_run(pz_db_t *db, pz__api_receipt_t *r, int64_t me, int64_t conv_id, int64_t read_up_to,
                       int64_t delivered_up_to, int64_t passed_after, int64_t passed_up_to, pz_err_t *err) {
  json_t *ev = json_pack("{s:s,s:o,s:o,s:o,s:o}", "type", PZ_EVENT_RECEIPT, "conversation_id", pz__api_id_json(conv_id),
                         "user_id", pz__api_id_json(me), "delivered_up_to",
                         delivered_up_to ? pz__api_id_json(delivered_up_to) : json_null(), "read_up_to",
                         read_up_to ? pz__api_id_json(read_up_to) : json_null());
  free(r->payload);
  r->payload = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
  json_decref(ev);
  if (r->payload == NULL) return pz_err_set(err, PZ_ENOMEM, NULL, NULL);
  return receipt_fanout(db, r, me, conv_id, passed_after, passed_up_to, err);
}

int pz__api_read_receipt_run(pz_db_t *db, pz__api_receipt_t *r, int64_t me, int64_t conv_id, int64_t was,
                             int64_t marker, pz_err_t *err) {
  /* What was read was delivered. */
  bool moved;
  int64_t read_up_to = 0, delivered_up_to = 0;
  int rc;
  if ((rc = pz_store_member_set_delivered(db, conv_id, me, marker, &moved, err)) < 0 ||
      (rc = pz_store_member_marker(db, conv_id, me, &read_up_to, &delivered_up_to, err)) < 0)
    return rc;
  /* The read marker passed (was, marker]. Whatever the delivered one
   * passed below was had been read already: no tick moves there. */
  return receipt_run(db, r, me, conv_id, read_up_to, delivered_up_to, was, marker, err);
}

void pz__api_receipt_publish(pz_api_t *api, pz__api_receipt_t *r) {
  if (r->payload) pz__api_publish(api, &r->fanout, pz_str(r->payload));
}

void pz__api_receipt_release(pz__api_receipt_t *r) {
  free(r->payload);
  r->payload = NULL;
  pz_chat_fanout_free(&r->fanout);
}

int pz__api_delivered_run(pz_db_t *db, pz__api_receipt_t *r, int64_t me, int64_t conv_id, int64_t message_id,
                          int64_t *read_up_to, int64_t *delivered_up_to, pz_err_t *err) {
  bool moved = false;
  int64_t was = 0;
  int rc = pz_chat_mark_delivered(db, me, conv_id, message_id, &was, read_up_to, delivered_up_to, &moved, err);
  if (rc < 0 || !moved) return rc;
  return receipt_run(db, r, me, conv_id, *read_up_to, *delivered_up_to, was, *delivered_up_to, err);
}

/* ---- request contexts ---- */

typedef struct {
  pz__api_ctx_t base;
  int64_t me, conv_id, msg_id;
  pz_str_t text, emoji, query;
  bool add, has_mentions;
  unsigned n_mentions, limit;
  int64_t mentions[PZ_CHAT_MENTIONS_MAX];
  pz_db_t *db; /* the job's connection, for row callbacks */
  json_t *list;
  /* the event to push once durable */
  char *payload;
  pz_chat_fanout_t fanout;
  pz__api_receipt_t receipt;
  pz_settings_rec_t settings;
  /* presence */
  unsigned n_ids;
  int64_t *ids, *last_seen;
  bool *contact;
} op_ctx_t;

static void op_release(void *data) {
  op_ctx_t *c = data;
  free(c->payload);
  pz_chat_fanout_free(&c->fanout);
  pz__api_receipt_release(&c->receipt);
}

static op_ctx_t *op_new(pz_req_t *req, pz_store_run_fn run) {
  op_ctx_t *c = pz__api_ctx_new(req, sizeof(*c), run);
  c->me = req->user_id;
  pz_arena_on_reset(req->arena, op_release, c);
  return c;
}

static void publish_done(pz__api_ctx_t *base) {
  op_ctx_t *c = (op_ctx_t *)base;
  if (base->job.rc == 0) {
    if (c->payload) pz__api_publish(base->api, &c->fanout, pz_str(c->payload));
    pz__api_receipt_publish(base->api, &c->receipt);
  }
  pz__api_finish(base);
}

/* Serializes ev (stolen) into c->payload. */
static int set_payload(op_ctx_t *c, json_t *ev, pz_err_t *err) {
  c->payload = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
  json_decref(ev);
  return c->payload ? 0 : pz_err_set(err, PZ_ENOMEM, NULL, NULL);
}

/* Answers {"message"} and, when the message changed, tells every member
 * with event type {"message"}. */
static int answer_message(pz_db_t *db, op_ctx_t *c, const pz_msg_rec_t *m, const char *event, pz_err_t *err) {
  json_t *msg;
  int rc = pz__api_message_full_json(db, m, &msg, err);
  c->base.out = json_pack("{s:o}", "message", msg);
  if (rc < 0 || event == NULL) return rc;
  if ((rc = set_payload(c, json_pack("{s:s,s:O}", "type", event, "message", msg), err)) < 0) return rc;
  return pz_chat_publish_msg(db, c->conv_id, m->id, pz_str(event), pz_str(c->payload), pz_now_ms(), &c->fanout, err);
}

/* Route parameters 0 and 1: the conversation and the message. */
static int msg_params(pz_req_t *req, op_ctx_t *c, pz_err_t *err) {
  int rc = pz__api_param_id(req, 0, "conversation id", &c->conv_id, err);
  return rc < 0 ? rc : pz__api_param_id(req, 1, "message id", &c->msg_id, err);
}

int pz__api_mentions_decode(json_t *obj, int64_t *ids, unsigned *n, bool *present, pz_err_t *err) {
  json_t *v = json_object_get(obj, "mentions");
  *n = 0;
  *present = v != NULL && !json_is_null(v);
  if (!*present) return 0;
  if (!json_is_array(v)) goto bad;
  if (json_array_size(v) > PZ_CHAT_MENTIONS_MAX)
    return pz_err_set(err, PZ_EINVAL, NULL, "mentions names at most %d users", PZ_CHAT_MENTIONS_MAX);
  size_t i;
  json_t *e;
  json_array_foreach(v, i, e) {
    int64_t id;
    if (!json_is_string(e) || pz_id_parse(json_string_value(e), json_string_length(e), &id) < 0) goto bad;
    bool dup = false;
    for (unsigned j = 0; j < *n; j++)
      dup = dup || ids[j] == id;
    if (!dup) ids[(*n)++] = id;
  }
  return 0;
bad:
  return pz_err_set(err, PZ_EINVAL, NULL, "mentions must be an array of user ids");
}

/* ---- PATCH /v1/conversations/{cid}/messages/{mid}: edit ---- */

static int edit_run(pz_db_t *db, pz_store_job_t *job) {
  op_ctx_t *c = job->data;
  pz_msg_rec_t *m = pz_malloc(sizeof(*m));
  int rc = pz_chat_edit(db, c->me, c->conv_id, c->msg_id, c->text, c->has_mentions ? c->mentions : NULL, c->n_mentions,
                        pz_now_ms(), c->base.api->edit_window_ms, m, &job->err);
  if (rc == 0) rc = answer_message(db, c, m, PZ_EVENT_MESSAGE_EDITED, &job->err);
  pz_free(m);
  return rc;
}

static void edit_authed(pz_req_t *req) {
  pz_err_t err = {0};
  json_t *body;
  op_ctx_t *c = op_new(req, edit_run);
  c->base.done = publish_done;
  if (msg_params(req, c, &err) < 0 || pz__api_body(req, &body, &err) < 0 ||
      pz__api_str(body, "text", true, &c->text, NULL, &err) < 0 || pz_chat_text_check(c->text, &err) < 0 ||
      pz__api_mentions_decode(body, c->mentions, &c->n_mentions, &c->has_mentions, &err) < 0) {
    pz__api_fail(req, &err);
    return;
  }
  pz__api_write(&c->base);
}

/* ---- POST /v1/conversations/{cid}/messages/{mid}/recall ---- */

/* Rewrites the stored events that carry recalled message m as they would
 * be written now, so that a device syncing from before the recall never
 * receives what was said: the message inside is in its recalled form. */
static int recall_rewrite_events(pz_db_t *db, const pz_msg_rec_t *m, pz_err_t *err) {
  int rc;
  json_t *msg = pz__api_message_json(m);
  json_t *ev_new = json_pack("{s:s,s:O}", "type", PZ_EVENT_MESSAGE_NEW, "message", msg);
  json_t *ev_edited = json_pack("{s:s,s:O}", "type", PZ_EVENT_MESSAGE_EDITED, "message", msg);
  char *new_payload = ev_new ? json_dumps(ev_new, JSON_COMPACT) : NULL;
  char *edited_payload = ev_edited ? json_dumps(ev_edited, JSON_COMPACT) : NULL;
  if (new_payload == NULL || edited_payload == NULL) {
    rc = pz_err_set(err, PZ_ENOMEM, NULL, NULL);
    goto out;
  }
  rc = pz_chat_recall_events(db, m->id, pz_str(new_payload), pz_str(edited_payload), err);
out:
  free(new_payload);
  free(edited_payload);
  json_decref(ev_new);
  json_decref(ev_edited);
  json_decref(msg);
  return rc;
}

static int recall_run(pz_db_t *db, pz_store_job_t *job) {
  op_ctx_t *c = job->data;
  pz_msg_rec_t *m = pz_malloc(sizeof(*m));
  bool changed = false;
  int rc = pz_chat_recall(db, c->me, c->conv_id, c->msg_id, pz_now_ms(), c->base.api->recall_window_ms, m, &changed,
                          &job->err);
  /* In the recall's own job: the content leaves the row and the streams
   * in one transaction, or neither does. */
  if (rc == 0 && changed) rc = recall_rewrite_events(db, m, &job->err);
  if (rc == 0) rc = answer_message(db, c, m, changed ? PZ_EVENT_MESSAGE_RECALLED : NULL, &job->err);
  pz_free(m);
  return rc;
}

static void recall_authed(pz_req_t *req) {
  pz_err_t err = {0};
  op_ctx_t *c = op_new(req, recall_run);
  c->base.done = publish_done;
  if (msg_params(req, c, &err) < 0) {
    pz__api_fail(req, &err);
    return;
  }
  pz__api_write(&c->base);
}

/* ---- DELETE /v1/conversations/{cid}/messages/{mid}: delete for me ---- */

static int delete_run(pz_db_t *db, pz_store_job_t *job) {
  op_ctx_t *c = job->data;
  bool changed = false;
  int64_t now = pz_now_ms();
  int rc = pz_chat_delete_for_me(db, c->me, c->conv_id, c->msg_id, now, &changed, &job->err);
  if (rc < 0 || !changed) return rc;
  json_t *ev = json_pack("{s:s,s:o,s:o}", "type", PZ_EVENT_MESSAGE_DELETED, "conversation_id",
                         pz__api_id_json(c->conv_id), "message_id", pz__api_id_json(c->msg_id));
  if ((rc = set_payload(c, ev, &job->err)) < 0) return rc;
  return pz_chat_publish_user(db, c->me, PZ_STR(PZ_EVENT_MESSAGE_DELETED), pz_str(c->payload), now, &c->fanout,
                              &job->err);
}

static void delete_authed(pz_req_t *req) {
  pz_err_t err = {0};
  op_ctx_t *c = op_new(req, delete_run);
  c->base.done = publish_done;
  c->base.status = 204; /* out stays NULL: 204 */
  if (msg_params(req, c, &err) < 0) {
    pz__api_fail(req, &err);
    return;
  }
  pz__api_write(&c->base);
}

/* ---- PUT / DELETE .../reactions/{emoji} ---- */

static int react_run(pz_db_t *db, pz_store_job_t *job) {
  op_ctx_t *c = job->data;
  pz_msg_rec_t *m = pz_malloc(sizeof(*m));
  bool changed = false;
  int rc = pz_chat_react(db, c->me, c->conv_id, c->msg_id, c->emoji, c->add, pz_now_ms(), m, &changed, &job->err);
  if (rc == 0) rc = answer_message(db, c, m, NULL, &job->err);
  pz_free(m);
  if (rc < 0 || !changed) return rc;
  json_t *ev = json_pack("{s:s,s:o,s:o,s:o,s:s%,s:b}", "type", PZ_EVENT_MESSAGE_REACTION, "conversation_id",
                         pz__api_id_json(c->conv_id), "message_id", pz__api_id_json(c->msg_id), "user_id",
                         pz__api_id_json(c->me), "emoji", c->emoji.ptr, c->emoji.len, "added", c->add);
  if ((rc = set_payload(c, ev, &job->err)) < 0) return rc;
  return pz_chat_publish(db, c->conv_id, PZ_STR(PZ_EVENT_MESSAGE_REACTION), pz_str(c->payload), pz_now_ms(), &c->fanout,
                         &job->err);
}

static void react_authed(pz_req_t *req) {
  pz_err_t err = {0};
  op_ctx_t *c = op_new(req, react_run);
  c->base.done = publish_done;
  c->add = req->method == PZ_HTTP_PUT;
  c->emoji = req->params[2]; /* percent-decoded by the router */
  if (msg_params(req, c, &err) < 0 || pz_chat_emoji_check(c->emoji, &err) < 0) {
    pz__api_fail(req, &err);
    return;
  }
  pz__api_write(&c->base);
}

/* ---- POST /v1/conversations/{id}/delivered ---- */

static int delivered_run(pz_db_t *db, pz_store_job_t *job) {
  op_ctx_t *c = job->data;
  int64_t read_up_to = 0, delivered_up_to = 0;
  int rc =
      pz__api_delivered_run(db, &c->receipt, c->me, c->conv_id, c->msg_id, &read_up_to, &delivered_up_to, &job->err);
  if (rc < 0) return rc;
  c->base.out = json_pack("{s:o,s:o,s:o}", "conversation_id", pz__api_id_json(c->conv_id), "delivered_up_to",
                          delivered_up_to ? pz__api_id_json(delivered_up_to) : json_null(), "read_up_to",
                          read_up_to ? pz__api_id_json(read_up_to) : json_null());
  return 0;
}

static void delivered_authed(pz_req_t *req) {
  pz_err_t err = {0};
  json_t *body;
  op_ctx_t *c = op_new(req, delivered_run);
  c->base.done = publish_done;
  if (pz__api_param_id(req, 0, "conversation id", &c->conv_id, &err) < 0 || pz__api_body(req, &body, &err) < 0 ||
      pz__api_id(body, "message_id", &c->msg_id, &err) < 0) {
    pz__api_fail(req, &err);
    return;
  }
  pz__api_write_lazy(&c->base); /* a receipt: see pz_store_write_lazy */
}

/* ---- GET / PATCH /v1/me/settings ---- */

static json_t *settings_json(const pz_settings_rec_t *s) {
  return json_pack("{s:{s:s}}", "settings", "direct_chat_from",
                   s->direct_chat_from == PZ_DIRECT_FROM_EVERYONE ? "everyone" : "contacts");
}

static int settings_get_run(pz_db_t *db, pz_store_job_t *job) {
  op_ctx_t *c = job->data;
  int rc = pz_store_settings_get(db, c->me, &c->settings, &job->err);
  if (rc == 0) c->base.out = settings_json(&c->settings);
  return rc;
}

static void settings_get_authed(pz_req_t *req) { pz__api_read(&op_new(req, settings_get_run)->base); }

static int settings_set_run(pz_db_t *db, pz_store_job_t *job) {
  op_ctx_t *c = job->data;
  int rc = pz_store_settings_set(db, c->me, &c->settings, &job->err);
  if (rc == 0) c->base.out = settings_json(&c->settings);
  return rc;
}

static void settings_set_authed(pz_req_t *req) {
  pz_err_t err = {0};
  json_t *body;
  pz_str_t v;
  bool present = false;
  op_ctx_t *c = op_new(req, settings_set_run);
  if (pz__api_body(req, &body, &err) < 0) goto fail;
  json_t *inner = json_object_get(body, "settings");
  if (json_is_object(inner)) body = inner; /* {"settings":{...}}, the shape GET answers, or the bare object */
  if (pz__api_str(body, "direct_chat_from", false, &v, &present, &err) < 0) goto fail;
  if (!present) {
    pz_err_set(&err, PZ_EINVAL, NULL, "nothing to change: give direct_chat_from");
    goto fail;
  }
  if (pz_str_eq_c(v, "everyone")) {
    c->settings.direct_chat_from = PZ_DIRECT_FROM_EVERYONE;
  } else if (pz_str_eq_c(v, "contacts")) {
    c->settings.direct_chat_from = PZ_DIRECT_FROM_CONTACTS;
  } else {
    pz_err_set(&err, PZ_EINVAL, NULL, "direct_chat_from must be \"contacts\" or \"everyone\"");
    goto fail;
  }
  pz__api_write(&c->base);
  return;
fail:
  pz__api_fail(req, &err);
}

/* ---- GET /v1/presence?user_ids=1,2,3 ---- */

static int presence_run(pz_db_t *db, pz_store_job_t *job) {
  op_ctx_t *c = job->data;
  for (unsigned i = 0; i < c->n_ids; i++) {
    int rc = pz_store_contact_exists(db, c->me, c->ids[i], &c->contact[i], &job->err);
    if (rc == 0 && c->contact[i]) rc = pz_store_user_last_seen(db, c->ids[i], &c->last_seen[i], &job->err);
    if (rc < 0) return rc;
  }
  return 0;
}

/* Who is online is known on the loop only: the answer is built here. */
static void presence_done(pz__api_ctx_t *base) {
  op_ctx_t *c = (op_ctx_t *)base;
  if (base->job.rc < 0) {
    pz__api_fail(base->req, &base->job.err);
    return;
  }
  json_t *list = json_array();
  for (unsigned i = 0; i < c->n_ids; i++) {
    if (!c->contact[i]) continue;
    bool online = pz__api_ws_online(base->api, c->ids[i]);
    json_array_append_new(
        list, json_pack("{s:o,s:b,s:o}", "user_id", pz__api_id_json(c->ids[i]), "online", online, "last_seen_at",
                        c->last_seen[i] ? pz__api_time_json(c->last_seen[i]) : json_null()));
  }
  pz__api_json(base->req, 200, json_pack("{s:o}", "presence", list));
}

static void presence_authed(pz_req_t *req) {
  pz_err_t err = {0};
  pz_str_t v;
  op_ctx_t *c = op_new(req, presence_run);
  c->base.done = presence_done;
  if (!pz_req_query(req, "user_ids", &v) || v.len == 0) {
    pz_err_set(&err, PZ_EINVAL, NULL, "user_ids is required: ids separated by commas");
    goto fail;
  }
  c->ids = pz_arena_calloc(req->arena, PRESENCE_MAX_IDS, sizeof(int64_t));
  c->last_seen = pz_arena_calloc(req->arena, PRESENCE_MAX_IDS, sizeof(int64_t));
  c->contact = pz_arena_calloc(req->arena, PRESENCE_MAX_IDS, sizeof(bool));
  size_t start = 0;
  for (size_t i = 0; i <= v.len; i++) {
    if (i < v.len && v.ptr[i] != ',') continue;
    int64_t id;
    if (pz_id_parse(v.ptr + start, i - start, &id) < 0) {
      pz_err_set(&err, PZ_EINVAL, NULL, "user_ids must be ids separated by commas");
      goto fail;
    }
    bool dup = false;
    for (unsigned j = 0; j < c->n_ids; j++)
      dup = dup || c->ids[j] == id;
    if (!dup) {
      if (c->n_ids == PRESENCE_MAX_IDS) {
        pz_err_set(&err, PZ_EINVAL, NULL, "user_ids names at most %d users", PRESENCE_MAX_IDS);
        goto fail;
      }
      c->ids[c->n_ids++] = id;
    }
    start = i + 1;
  }
  pz__api_read(&c->base);
  return;
fail:
  pz__api_fail(req, &err);
}

/* ---- GET /v1/search/messages?q=&conversation_id=&limit= ---- */

static int search_row(void *arg, const pz_msg_rec_t *m, pz_err_t *err) {
  op_ctx_t *c = arg;
  json_t *o;
  int rc = pz__api_message_full_json(c->db, m, &o, err);
  json_array_append_new(c->list, o);
  return rc;
}

static int search_run(pz_db_t *db, pz_store_job_t *job) {
  op_ctx_t *c = job->data;
  int rc;
  if (c->conv_id && (rc = pz_chat_member_check(db, c->me, c->conv_id, NULL, &job->err)) < 0) return rc;
  c->db = db;
  c->list = json_array();
  c->base.out = json_pack("{s:o}", "messages", c->list);
  return pz_store_msg_search(db, c->me, c->query, c->conv_id, c->limit, search_row, c, &job->err);
}

static void search_authed(pz_req_t *req) {
  pz_err_t err = {0};
  pz_str_t v;
  op_ctx_t *c = op_new(req, search_run);
  c->limit = PZ_CHAT_SEARCH_DEFAULT;
  if (!pz_req_query(req, "q", &c->query)) {
    pz_err_set(&err, PZ_EINVAL, NULL, "q is required");
    goto fail;
  }
  if (pz_chat_search_check(c->query, &err) < 0) goto fail;
  if (pz_req_query(req, "conversation_id", &v) && pz_id_parse(v.ptr, v.len, &c->conv_id) < 0) {
    pz_err_set(&err, PZ_EINVAL, NULL, "conversation_id must be an id");
    goto fail;
  }
  if (pz_req_query(req, "limit", &v)) {
    unsigned n = 0;
    bool ok = v.len > 0 && v.len <= 6;
    for (size_t i = 0; ok && i < v.len; i++) {
      ok = v.ptr[i] >= '0' && v.ptr[i] <= '9';
      n = n * 10 + (unsigned)(v.ptr[i] - '0');
    }
    if (!ok || n == 0) {
      pz_err_set(&err, PZ_EINVAL, NULL, "limit must be a whole number from 1 to %d", PZ_CHAT_SEARCH_MAX);
      goto fail;
    }
    c->limit = n > PZ_CHAT_SEARCH_MAX ? PZ_CHAT_SEARCH_MAX : n;
  }
  pz__api_read(&c->base);
  return;
fail:
  pz__api_fail(req, &err);
}

/* ---- presence pushes, from the WebSocket registry ---- */

typedef struct {
  pz_store_job_t job;
  pz_api_t *api;
  int64_t user_id, session_id, now;
  int64_t *contacts;
  unsigned n, cap;
} presence_push_t;

static int contact_row(void *arg, const pz_user_rec_t *u, int64_t since, pz_err_t *err) {
  presence_push_t *p = arg;
  if (p->n == p->cap) {
    p->cap = p->cap ? p->cap * 2 : 16;
    p->contacts = pz_realloc(p->contacts, p->cap * sizeof(int64_t));
  }
  p->contacts[p->n++] = u->id;
  return 0;
}

static int presence_push_run(pz_db_t *db, pz_store_job_t *job) {
  presence_push_t *p = job->data;
  int rc;
  /* Going offline stamps the device's session: that is "last seen". */
  if (p->session_id && (rc = pz_store_session_touch(db, p->session_id, p->now, &job->err)) < 0) return rc;
  return pz_store_contact_list(db, p->user_id, contact_row, p, &job->err);
}

static void presence_push_done(pz_store_job_t *job) {
  presence_push_t *p = job->data;
  pz_api_t *api = p->api;
  if (job->rc == 0) {
    /* The state now, not the one that started the job: of two quick
     * changes whose jobs finish out of order, the last frame is true. */
    bool online = pz__api_ws_online(api, p->user_id);
    json_t *frame =
        json_pack("{s:s,s:o,s:b}", "type", "presence", "user_id", pz__api_id_json(p->user_id), "online", online);
    char *text = frame ? json_dumps(frame, JSON_COMPACT) : NULL;
    json_decref(frame);
    for (unsigned i = 0; text && i < p->n; i++)
      pz__api_ws_send_user(api, p->contacts[i], text, strlen(text));
    free(text);
  }
  pz_free(p->contacts);
  pz_free(p);
  pz__api_unbusy(api);
}

void pz__api_presence_changed(pz_api_t *api, int64_t user_id, int64_t offline_session_id) {
  presence_push_t *p = pz_calloc(1, sizeof(*p));
  p->api = api;
  p->user_id = user_id;
  p->session_id = offline_session_id;
  p->now = pz_now_ms();
  p->job.run = presence_push_run;
  p->job.done = presence_push_done;
  p->job.data = p;
  pz__api_busy(api);
  int rc = offline_session_id ? pz_store_write(api->st, &p->job) : pz_store_read(api->st, &p->job);
  if (rc < 0) { /* the store is closing: nobody is left to tell */
    pz_free(p);
    pz__api_unbusy(api);
  }
}

/* ---- routes ---- */

static void edit_message(pz_req_t *req) { pz__api_authed(req, edit_authed); }
static void recall_message(pz_req_t *req) { pz__api_authed(req, recall_authed); }
static void delete_message(pz_req_t *req) { pz__api_authed(req, delete_authed); }
static void react(pz_req_t *req) { pz__api_authed(req, react_authed); }
static void delivered(pz_req_t *req) { pz__api_authed(req, delivered_authed); }
static void settings_get(pz_req_t *req) { pz__api_authed(req, settings_get_authed); }
static void settings_set(pz_req_t *req) { pz__api_authed(req, settings_set_authed); }
static void presence(pz_req_t *req) { pz__api_authed(req, presence_authed); }
static void search(pz_req_t *req) { pz__api_authed(req, search_authed); }

void pz__api_msgops_routes(pz_api_t *api, pz_router_t *r) {
  pz_router_add(r, PZ_HTTP_PATCH, "/v1/conversations/{cid}/messages/{mid}", edit_message, api);
  pz_router_add(r, PZ_HTTP_DELETE, "/v1/conversations/{cid}/messages/{mid}", delete_message, api);
  pz_router_add(r, PZ_HTTP_POST, "/v1/conversations/{cid}/messages/{mid}/recall", recall_message, api);
  pz_router_add(r, PZ_HTTP_PUT | PZ_HTTP_DELETE, "/v1/conversations/{cid}/messages/{mid}/reactions/{emoji}", react,
                api);
  pz_router_add(r, PZ_HTTP_POST, "/v1/conversations/{id}/delivered", delivered, api);
  pz_router_add(r, PZ_HTTP_GET, "/v1/me/settings", settings_get, api);
  pz_router_add(r, PZ_HTTP_PATCH, "/v1/me/settings", settings_set, api);
  pz_router_add(r, PZ_HTTP_GET, "/v1/presence", presence, api);
  pz_router_add(r, PZ_HTTP_GET, "/v1/search/messages", search, api);
}
