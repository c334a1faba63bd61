/* /v1/conversations: direct chats and groups, the conversation list, message history, sending and read markers. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include "api/internal.h"
#include "plaza/id.h"
#include "plaza/metrics.h"

#define LIST_DEFAULT 100
#define LIST_MAX 500

/* ---- encoding ---- */

json_t *pz__api_message_json(const pz_msg_rec_t *m) {
  json_t *o = json_object();
  json_object_set_new(o, "id", pz__api_id_json(m->id));
  json_object_set_new(o, "conversation_id", pz__api_id_json(m->conversation_id));
  /* A system message (groups.c) comes from the member who made the change
   * but from no device of theirs: it has no client_id. */
  bool system = strcmp(m->type, "system") == 0;
  json_object_set_new(o, "sender_id", pz__api_id_json(m->sender_id));
  json_object_set_new(o, "client_id", system ? json_null() : pz__api_text(m->client_id));
  json_object_set_new(o, "type", json_string(m->type[0] ? m->type : "text"));
  /* A message with a body (an image, a file) has no text of its own. */
  json_t *text = m->body_len > 0 && m->text_len == 0 ? json_null() : json_stringn(m->text, m->text_len);
  json_object_set_new(o, "text", text ? text : json_string(""));
  if (m->body_len > 0) {
    /* The body is JSON we wrote; a damaged row shows as a null body. */
    json_t *body = json_loadb(m->body, m->body_len, 0, NULL);
    json_object_set_new(o, system ? "system" : "body", json_is_object(body) ? body : json_null());
    if (body && !json_is_object(body)) json_decref(body);
  }
  json_object_set_new(o, "reply_to", m->reply_to ? pz__api_id_json(m->reply_to) : json_null());
  json_object_set_new(o, "created_at", pz__api_time_json(m->created_at));
  /* Message operations (msgops.c): a recalled message shows that it was,
   * with nothing of what it said; reactions are read in the job that
   * needs them (pz__api_message_full_json). */
  if (m->recalled_at) {
    json_object_set_new(o, "text", json_null());
    json_object_del(o, "body");
  }
  json_object_set_new(o, "edited_at", m->edited_at ? pz__api_time_json(m->edited_at) : json_null());
  json_object_set_new(o, "recalled", json_boolean(m->recalled_at != 0));
  json_t *mentions = json_array();
  for (unsigned i = 0; i < m->n_mentions; i++) json_array_append_new(mentions, pz__api_id_json(m->mentions[i]));
  json_object_set_new(o, "mentions", mentions);
  json_object_set_new(o, "reactions", json_object());
  return o;
}

static int member_row(void *arg, const pz_member_rec_t *m, pz_err_t *err) {
  json_array_append_new(arg, json_pack("{s:o,s:s}", "user", pz__api_user_json(&m->user), "role",
                                       pz_store_role_name(m->role)));
  return 0;
}

int pz__api_conv_json(pz_db_t *db, const pz_conv_rec_t *c, json_t **out, pz_err_t *err) {
  json_t *members = json_array();
  json_t *o = json_object();
  *out = o;
  json_object_set_new(o, "id", pz__api_id_json(c->id));
  json_object_set_new(o, "type", json_string(c->type == PZ_CONV_GROUP ? "group" : "direct"));
  json_object_set_new(o, "title", c->type == PZ_CONV_GROUP ? pz__api_text(c->title) : json_null());
  json_object_set_new(o, "owner_id", c->owner_id ? pz__api_id_json(c->owner_id) : json_null());
  json_object_set_new(o, "members", members);
  json_object_set_new(o, "created_at", pz__api_time_json(c->created_at));
  int rc = pz_store_member_list(db, c->id, member_row, members, err);
  if (rc == 0) rc = pz__api_member_markers(db, c->id, members, err);
  json_object_set_new(o, "member_count", json_integer((json_int_t)json_array_size(members)));
  return rc;
}

/* Adds what one member sees of a conversation to its object o. */
static void view_fields(json_t *o, const pz_conv_view_t *v) {
  json_object_set_new(o, "last_message", v->has_last ? pz__api_message_json(&v->last) : json_null());
  json_object_set_new(o, "last_read_id", v->last_read_id ? pz__api_id_json(v->last_read_id) : json_null());
  json_object_set_new(o, "unread_count", json_integer(v->unread));
}

int pz__api_conv_view_json(pz_db_t *db, int64_t me, int64_t conv_id, json_t **out, pz_err_t *err) {
  *out = NULL;
  int rc = pz_chat_member_check(db, me, conv_id, NULL, err);
  if (rc < 0) return rc;
  pz_conv_view_t *v = pz_malloc(sizeof(*v)); /* a message record is too large for every stack */
  if ((rc = pz_store_conv_view(db, me, conv_id, v, err)) == 0 && (rc = pz__api_conv_json(db, &v->conv, out, err)) == 0)
    view_fields(*out, v);
  pz_free(v);
  if (rc < 0 && *out) {
    json_decref(*out);
    *out = NULL;
  }
  return rc;
}

/* ---- the event fan-out ---- */

void pz__api_event_frame(pz_buf_t *out, int64_t seq, pz_str_t type, pz_str_t payload) {
  pz_buf_append_c(out, "{\"seq\":");
  pz_buf_append_i64(out, seq);
  /* The payload is an object we wrote: its members follow seq. Should a
   * row be damaged, the event still says its seq and type. */
  if (payload.len > 2 && payload.ptr[0] == '{' && payload.ptr[payload.len - 1] == '}') {
    pz_buf_append_c(out, ",");
    pz_buf_append(out, payload.ptr + 1, payload.len - 1);
  } else {
    pz_buf_append_c(out, ",\"type\":\"");
    pz_buf_append_json_escaped(out, type.ptr, type.len);
    pz_buf_append_c(out, "\"}");
  }
}

void pz__api_publish(pz_api_t *api, const pz_chat_fanout_t *f, pz_str_t payload) {
  pz_buf_t frame = {0};
  for (unsigned i = 0; i < f->n; i++) {
    frame.len = 0;
    pz__api_event_frame(&frame, f->items[i].seq, PZ_STR_NULL, payload);
    pz__api_ws_push_event(api, f->items[i].user_id, f->items[i].seq, frame.data, frame.len);
  }
  pz_buf_free(&frame);
}

/* ---- sending, shared with the WebSocket ---- */

int pz__api_send_rate(pz_api_t *api, int64_t user_id, unsigned *retry_after_s, pz_err_t *err) {
  if (api->cfg.msg_unlimited) return 0;
  if (pz_chat_limiter_take(api->send_limit, user_id, pz_now_ms(), retry_after_s) == 0) return 0;
  pz_metrics_count("messages_rate_limited", 1);
  return pz_err_set(err, PZ_ERATE, NULL, "too many messages; try again in %u s", *retry_after_s);
}

/* The message.new event of a new text message, printed by hand: building
 * a jansson tree and printing it cost the loop more than anything else it
 * did for a send. The bytes are the ones json_dumps(JSON_COMPACT) writes
 * for {"type":"message.new","message":pz__api_message_json(m)}, as debug
 * builds check at every send; a message of another kind (a body, a
 * system message) is not sent this way. malloc'd, as json_dumps's
 * output is: the caller frees with free(); NULL when out of memory. */
static char *message_new_text(const pz_msg_rec_t *m, size_t *len) {
  pz_buf_t b = {0};
  pz_buf_reserve(&b, 512 + 6 * (strlen(m->client_id) + m->text_len) + 24 * (size_t)m->n_mentions);
  pz__api_put_id(&b, "{\"type\":\"" PZ_EVENT_MESSAGE_NEW "\",\"message\":{\"id\":", m->id);
  pz__api_put_id(&b, ",\"conversation_id\":", m->conversation_id);
  pz__api_put_id(&b, ",\"sender_id\":", m->sender_id);
  pz__api_put_text(&b, ",\"client_id\":", m->client_id, strlen(m->client_id));
  pz__api_put_text(&b, ",\"type\":\"text\",\"text\":", m->text, m->text_len);
  if (m->reply_to)
    pz__api_put_id(&b, ",\"reply_to\":", m->reply_to);
  else
    pz_buf_append_c(&b, ",\"reply_to\":null");
  pz__api_put_time(&b, ",\"created_at\":", m->created_at);
  pz_buf_append_c(&b, ",\"edited_at\":null,\"recalled\":false,\"mentions\":[");
  for (unsigned i = 0; i < m->n_mentions; i++)
    pz__api_put_id(&b, i ? "," : "", m->mentions[i]);
  pz_buf_append_c(&b, "],\"reactions\":{}}}");
  *len = b.len;
  char *out = pz__api_buf_take(&b);
#ifndef NDEBUG
  json_t *ev = json_pack("{s:s,s:o}", "type", PZ_EVENT_MESSAGE_NEW, "message", pz__api_message_json(m));
  char *text = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
  json_decref(ev);
  PZ_ASSERT(out == NULL || (text && strlen(text) == *len && memcmp(text, out, *len) == 0));
  free(text);
#endif
  return out;
}

int pz__api_send_decode(pz__api_send_t *s, int64_t user_id, int64_t conv_id, json_t *obj, pz_err_t *err) {
  pz_str_t client_id, text;
  int rc;
  if (conv_id == 0 && (rc = pz__api_id(obj, "conversation_id", &conv_id, err)) < 0) return rc;
  if ((rc = pz__api_str(obj, "client_id", true, &client_id, NULL, err)) < 0 ||
      (rc = pz_chat_client_id_check(client_id, err)) < 0)
    return rc;
  json_t *body = json_object_get(obj, "body");
  if (body != NULL) {
    text = PZ_STR_NULL;
    if (json_object_get(obj, "text") != NULL)
      return pz_err_set(err, PZ_EINVAL, NULL, "a message has either text or a body, not both");
    if ((rc = pz__api_attach_decode(s, body, err)) < 0) return rc;
  } else if ((rc = pz__api_str(obj, "text", true, &text, NULL, err)) < 0 || (rc = pz_chat_text_check(text, err)) < 0) {
    return rc;
  }
  if (json_object_get(obj, "reply_to") != NULL && !json_is_null(json_object_get(obj, "reply_to"))) {
    if ((rc = pz__api_id(obj, "reply_to", &s->msg.reply_to, err)) < 0) return rc;
  }
  bool has_mentions;
  if ((rc = pz__api_mentions_decode(obj, s->msg.mentions, &s->msg.n_mentions, &has_mentions, err)) < 0) return rc;
  pz_msg_rec_t *m = &s->msg;
  m->id = pz_id_next(); /* on the loop: ids follow the order jobs reach the writer */
  m->conversation_id = conv_id;
  m->sender_id = user_id;
  m->created_at = pz_now_ms();
  memcpy(m->client_id, client_id.ptr, client_id.len);
  m->client_id[client_id.len] = '\0';
  if (text.len) memcpy(m->text, text.ptr, text.len);
  m->text[text.len] = '\0';
  m->text_len = text.len;
  if (s->upload_id) return 0; /* its payload needs the upload: built in the job */
  if (m->body_len == 0 && m->type[0] == '\0') {
    s->payload = message_new_text(m, &s->payload_len);
  } else {
    json_t *ev = json_pack("{s:s,s:o}", "type", PZ_EVENT_MESSAGE_NEW, "message", pz__api_message_json(m));
    s->payload = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
    json_decref(ev);
    s->payload_len = s->payload ? strlen(s->payload) : 0;
  }
  return s->payload ? 0 : pz_err_set(err, PZ_ENOMEM, NULL, NULL);
}

int pz__api_send_run(pz_db_t *db, pz__api_send_t *s, pz_err_t *err) {
  int rc = s->upload_id ? pz__api_attach_prepare(db, s, err) : 0;
  if (rc == 0)
    rc = pz_chat_send(db, &s->msg, pz_str_n(s->payload, s->payload_len), &s->msg, &s->created, &s->fanout, err);
  /* The link makes the upload readable by the conversation's members, in
   * the same savepoint as the message that shows it. */
  if (rc == 0 && s->created && s->upload_id)
    rc = pz_chat_upload_link(db, s->upload_id, s->msg.conversation_id, s->msg.id, err);
  return rc;
}

int pz__api_send_log(pz_db_t *db, pz__api_send_t *s, pz_buf_t *rec, pz_err_t *err) {
  if (s->upload_id) return 0;
  int rc = pz_chat_send_log(db, &s->msg, pz_str_n(s->payload, s->payload_len), &s->fanout, rec, err);
  if (rc > 0) s->created = true;
  return rc;
}

void pz__api_send_publish(pz_api_t *api, pz__api_send_t *s) {
  if (s->created) pz_metrics_count("messages_sent", 1);
  pz__api_publish(api, &s->fanout, pz_str_n(s->payload, s->payload_len));
}

void pz__api_send_release(pz__api_send_t *s) {
  free(s->payload);
  s->payload = NULL;
  pz_free(s->caption);
  s->caption = NULL;
  pz_chat_fanout_free(&s->fanout);
}

/* ---- request contexts ---- */

typedef struct {
  pz__api_ctx_t base;
  int64_t me, conv_id, other, message_id, before;
  unsigned limit;
  bool group;
  pz_str_t title;
  int64_t *member_ids;
  unsigned n_members;
  json_t *list;
  pz_db_t *db; /* the job's connection, for row callbacks */
  /* events to push once durable */
  char *payload;
  pz_chat_fanout_t fanout;
  pz__api_receipt_t receipt; /* the read marker's receipt to every member (msgops.c) */
  int64_t last_activity;
  unsigned n_listed;
} conv_ctx_t;

static void conv_ctx_release(void *data) {
  conv_ctx_t *c = data;
  free(c->payload);
  pz_chat_fanout_free(&c->fanout);
  pz__api_receipt_release(&c->receipt);
}

static conv_ctx_t *conv_ctx_new(pz_req_t *req, pz_store_run_fn run) {
  conv_ctx_t *c = pz__api_ctx_new(req, sizeof(*c), run);
  c->me = req->user_id;
  pz_arena_on_reset(req->arena, conv_ctx_release, c);
  return c;
}

/* The default ending, after pushing the events of a job that succeeded. */
static void publish_done(pz__api_ctx_t *base) {
  conv_ctx_t *c = (conv_ctx_t *)base;
  if (base->job.rc == 0 && c->payload) pz__api_publish(base->api, &c->fanout, pz_str(c->payload));
  if (base->job.rc == 0) pz__api_receipt_publish(base->api, &c->receipt);
  pz__api_finish(base);
}

/* Parses ?key= as a count in 1..max (larger values are cut to max);
 * absent: dflt. */
static int query_limit(pz_req_t *req, const char *key, unsigned dflt, unsigned max, unsigned *out, pz_err_t *err) {
  pz_str_t v;
  *out = dflt;
  if (!pz_req_query(req, key, &v)) return 0;
  uint64_t n = 0;
  if (v.len == 0 || v.len > 9) goto bad;
  for (size_t i = 0; i < v.len; i++) {
    if (v.ptr[i] < '0' || v.ptr[i] > '9') goto bad;
    n = n * 10 + (uint64_t)(v.ptr[i] - '0');
  }
  if (n == 0) goto bad;
  *out = n > max ? max : (unsigned)n;
  return 0;
bad:
  return pz_err_set(err, PZ_EINVAL, NULL, "%s must be a whole number from 1 to %u", key, max);
}

/* Parses ?key= as an id; absent: 0. */
static int query_id(pz_req_t *req, const char *key, int64_t *out, pz_err_t *err) {
  pz_str_t v;
  *out = 0;
  if (!pz_req_query(req, key, &v)) return 0;
  if (pz_id_parse(v.ptr, v.len, out) < 0) return pz_err_set(err, PZ_EINVAL, NULL, "%s must be an id", key);
  return 0;
}

/* ---- POST /v1/conversations ---- */

static int create_run(pz_db_t *db, pz_store_job_t *job) {
  conv_ctx_t *c = job->data;
  pz_conv_rec_t conv;
  bool created = true;
  int64_t now = pz_now_ms(), new_id = pz_id_next();
  int rc = c->group
               ? pz_chat_group_create(db, c->me, c->title, c->member_ids, c->n_members, new_id, now, &conv, &job->err)
               : pz_chat_direct_open(db, c->me, c->other, new_id, now, &conv, &created, &job->err);
  if (rc < 0) return rc;
  json_t *o;
  c->base.out = json_object();
  rc = pz__api_conv_json(db, &conv, &o, &job->err);
  json_object_set_new(c->base.out, "conversation", o);
  if (rc < 0 || !created) return rc;
  c->base.status = 201;
  json_t *ev = json_pack("{s:s,s:O}", "type", PZ_EVENT_CONVERSATION_NEW, "conversation", o);
  c->payload = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
  json_decref(ev);
  if (c->payload == NULL) return pz_err_set(&job->err, PZ_ENOMEM, NULL, NULL);
  return pz_chat_publish(db, conv.id, PZ_STR(PZ_EVENT_CONVERSATION_NEW), pz_str(c->payload), now, &c->fanout,
                         &job->err);
}

static void create_authed(pz_req_t *req) {
  pz_err_t err = {0};
  json_t *body;
  pz_str_t type;
  conv_ctx_t *c = conv_ctx_new(req, create_run);
  c->base.done = publish_done;
  if (pz__api_body(req, &body, &err) < 0 || pz__api_str(body, "type", true, &type, NULL, &err) < 0) goto fail;
  if (pz_str_eq_c(type, "direct")) {
    if (pz__api_id(body, "user_id", &c->other, &err) < 0) goto fail;
  } else if (pz_str_eq_c(type, "group")) {
    c->group = true;
    json_t *ids = json_object_get(body, "member_ids");
    if (pz__api_str(body, "title", true, &c->title, NULL, &err) < 0 || pz_chat_title_check(c->title, &err) < 0)
      goto fail;
    if (!json_is_array(ids)) {
      pz_err_set(&err, PZ_EINVAL, NULL, "member_ids must be an array of user ids");
      goto fail;
    }
    size_t n = json_array_size(ids);
    if (n > PZ_CHAT_GROUP_MAX_MEMBERS) {
      pz_err_set(&err, PZ_EINVAL, NULL, "a group has at most %d members", PZ_CHAT_GROUP_MAX_MEMBERS);
      goto fail;
    }
    c->member_ids = pz_arena_calloc(req->arena, n ? n : 1, sizeof(int64_t));
    for (size_t i = 0; i < n; i++) {
      json_t *v = json_array_get(ids, i);
      if (!json_is_string(v) || pz_id_parse(json_string_value(v), json_string_length(v), &c->member_ids[i]) < 0) {
        pz_err_set(&err, PZ_EINVAL, NULL, "member_ids must be an array of user ids");
        goto fail;
      }
    }
    c->n_members = (unsigned)n;
  } else {
    pz_err_set(&err, PZ_EINVAL, NULL, "type must be \"direct\" or \"group\"");
    goto fail;
  }
  pz__api_write(&c->base);
  return;
fail:
  pz__api_fail(req, &err);
}

/* ---- GET /v1/conversations ---- */

static int view_row(void *arg, const pz_conv_view_t *v, pz_err_t *err) {
  conv_ctx_t *c = arg;
  json_t *o;
  int rc = pz__api_conv_json(c->db, &v->conv, &o, err);
  json_array_append_new(c->list, o);
  if (rc < 0) return rc;
  view_fields(o, v);
  c->last_activity = v->activity_id;
  c->n_listed++;
  return 0;
}

static int list_run(pz_db_t *db, pz_store_job_t *job) {
  conv_ctx_t *c = job->data;
  c->db = db;
  c->list = json_array();
  c->base.out = json_pack("{s:o}", "conversations", c->list);
  int rc = pz_store_conv_list(db, c->me, c->before, c->limit, view_row, c, &job->err);
  if (rc < 0) return rc;
  /* A full page may have a next one: its cursor is the last row's key. */
  json_object_set_new(c->base.out, "next_before",
                      c->n_listed == c->limit ? pz__api_id_json(c->last_activity) : json_null());
  return 0;
}

static void list_authed(pz_req_t *req) {
  pz_err_t err = {0};
  conv_ctx_t *c = conv_ctx_new(req, list_run);
  if (query_id(req, "before", &c->before, &err) < 0 ||
      query_limit(req, "limit", LIST_DEFAULT, LIST_MAX, &c->limit, &err) < 0) {
    pz__api_fail(req, &err);
    return;
  }
  pz__api_read(&c->base);
}

/* ---- GET /v1/conversations/{id} ---- */

static int get_run(pz_db_t *db, pz_store_job_t *job) {
  conv_ctx_t *c = job->data;
  json_t *o;
  int rc = pz__api_conv_view_json(db, c->me, c->conv_id, &o, &job->err);
  if (rc == 0) c->base.out = json_pack("{s:o}", "conversation", o);
  return rc;
}

static void get_authed(pz_req_t *req) {
  pz_err_t err = {0};
  conv_ctx_t *c = conv_ctx_new(req, get_run);
  if (pz__api_param_id(req, 0, "conversation id", &c->conv_id, &err) < 0) {
    pz__api_fail(req, &err);
    return;
  }
  pz__api_read(&c->base);
}

/* ---- GET /v1/conversations/{id}/messages ---- */

static int message_row(void *arg, const pz_msg_rec_t *m, pz_err_t *err) {
  conv_ctx_t *c = arg;
  json_t *o;
  int rc = pz__api_message_full_json(c->db, m, &o, err);
  json_array_append_new(c->list, o);
  return rc;
}

static int history_run(pz_db_t *db, pz_store_job_t *job) {
  conv_ctx_t *c = job->data;
  int rc = pz_chat_member_check(db, c->me, c->conv_id, NULL, &job->err);
  if (rc < 0) return rc;
  c->list = json_array();
  c->base.out = json_pack("{s:o}", "messages", c->list);
  c->db = db;
  /* Without the messages the caller deleted for themselves. */
  return pz_store_msg_list_visible(db, c->me, c->conv_id, c->before, c->limit, message_row, c, &job->err);
}

static void history_authed(pz_req_t *req) {
  pz_err_t err = {0};
  conv_ctx_t *c = conv_ctx_new(req, history_run);
  if (pz__api_param_id(req, 0, "conversation id", &c->conv_id, &err) < 0 ||
      query_id(req, "before", &c->before, &err) < 0 ||
      query_limit(req, "limit", PZ_CHAT_HISTORY_DEFAULT, PZ_CHAT_HISTORY_MAX, &c->limit, &err) < 0) {
    pz__api_fail(req, &err);
    return;
  }
  pz__api_read(&c->base);
}

/* ---- POST /v1/conversations/{id}/messages ---- */

typedef struct {
  pz__api_ctx_t base;
  pz__api_send_t send;
} send_ctx_t;

static void send_ctx_release(void *data) { pz__api_send_release(&((send_ctx_t *)data)->send); }

static int send_run(pz_db_t *db, pz_store_job_t *job) {
  send_ctx_t *c = job->data;
  return pz__api_send_run(db, &c->send, &job->err);
}

static int send_log(pz_db_t *db, pz_store_job_t *job, pz_buf_t *rec) {
  send_ctx_t *c = job->data;
  return pz__api_send_log(db, &c->send, rec, &job->err);
}

static void send_done(pz__api_ctx_t *base) {
  send_ctx_t *c = (send_ctx_t *)base;
  if (base->job.rc < 0) {
    pz__api_fail(base->req, &base->job.err);
    return;
  }
  pz__api_send_publish(base->api, &c->send);
  pz__api_json(base->req, c->send.created ? 201 : 200,
               json_pack("{s:o}", "message", pz__api_message_json(&c->send.msg)));
}

static void send_authed(pz_req_t *req) {
  pz_err_t err = {0};
  json_t *body;
  int64_t conv_id;
  unsigned retry = 0;
  if (pz__api_param_id(req, 0, "conversation id", &conv_id, &err) < 0 || pz__api_body(req, &body, &err) < 0) goto fail;
  if (pz__api_send_rate(req->route_data, req->user_id, &retry, &err) < 0) {
    char value[16];
    snprintf(value, sizeof(value), "%u", retry);
    pz_req_add_header(req, "Retry-After", value);
    goto fail;
  }
  send_ctx_t *c = pz__api_ctx_new(req, sizeof(*c), send_run);
  c->base.done = send_done;
  c->base.job.log = send_log;
  pz_arena_on_reset(req->arena, send_ctx_release, c);
  if (pz__api_send_decode(&c->send, req->user_id, conv_id, body, &err) < 0) goto fail;
  pz__api_write(&c->base);
  return;
fail:
  pz__api_fail(req, &err);
}

/* ---- POST /v1/conversations/{id}/read ---- */

static int read_run(pz_db_t *db, pz_store_job_t *job) {
  conv_ctx_t *c = job->data;
  int64_t marker = 0, was = 0;
  unsigned unread = 0;
  int rc = pz_chat_mark_read(db, c->me, c->conv_id, c->message_id, pz_str(c->payload), pz_now_ms(), &was, &marker,
                             &unread, &c->fanout, &job->err);
  if (rc < 0) return rc;
  c->base.out = json_pack("{s:o,s:o,s:o,s:I}", "conversation_id", pz__api_id_json(c->conv_id), "last_read_id",
                          pz__api_id_json(marker), "read_up_to", pz__api_id_json(marker), "unread_count",
                          (json_int_t)unread);
  /* The marker moved when its event was appended: every member hears. */
  if (c->fanout.n > 0) return pz__api_read_receipt_run(db, &c->receipt, c->me, c->conv_id, was, marker, &job->err);
  return 0;
}

static void read_authed(pz_req_t *req) {
  pz_err_t err = {0};
  json_t *body;
  conv_ctx_t *c = conv_ctx_new(req, read_run);
  c->base.done = publish_done;
  if (pz__api_param_id(req, 0, "conversation id", &c->conv_id, &err) < 0 || pz__api_body(req, &body, &err) < 0 ||
      pz__api_id(body, "message_id", &c->message_id, &err) < 0) {
    pz__api_fail(req, &err);
    return;
  }
  /* The event says where the marker went; it is stored only if it moved there. */
  json_t *ev = json_pack("{s:s,s:o,s:o}", "type", PZ_EVENT_CONVERSATION_READ, "conversation_id",
                         pz__api_id_json(c->conv_id), "last_read_id", pz__api_id_json(c->message_id));
  c->payload = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
  json_decref(ev);
  if (c->payload == NULL) {
    pz_err_set(&err, PZ_ENOMEM, NULL, NULL);
    pz__api_fail(req, &err);
    return;
  }
  pz__api_write_lazy(&c->base); /* a receipt: see pz_store_write_lazy */
}

static void create_conv(pz_req_t *req) { pz__api_authed(req, create_authed); }
static void list_convs(pz_req_t *req) { pz__api_authed(req, list_authed); }
static void get_conv(pz_req_t *req) { pz__api_authed(req, get_authed); }
static void history(pz_req_t *req) { pz__api_authed(req, history_authed); }
static void send_message(pz_req_t *req) { pz__api_authed(req, send_authed); }
static void mark_read(pz_req_t *req) { pz__api_authed(req, read_authed); }

void pz__api_conversations_routes(pz_api_t *api, pz_router_t *r) {
  pz_router_add(r, PZ_HTTP_POST, "/v1/conversations", create_conv, api);
  pz_router_add(r, PZ_HTTP_GET, "/v1/conversations", list_convs, api);
  pz_router_add(r, PZ_HTTP_GET, "/v1/conversations/{id}", get_conv, api);
  pz_router_add(r, PZ_HTTP_GET, "/v1/conversations/{id}/messages", history, api);
  pz_router_add(r, PZ_HTTP_POST, "/v1/conversations/{id}/messages", send_message, api);
  pz_router_add(r, PZ_HTTP_POST, "/v1/conversations/{id}/read", mark_read, api);
}
