/* Money in chats: red packets (send, claim, read, the refund sweep), transfer cards and the wallet's events. */
#include <stdio.h>
#include <stdlib.h>
#include "api/internal.h"
#include "plaza/id.h"
#include "plaza/log.h"
#include "plaza/metrics.h"

#define EVENT_RED_PACKET_CLAIMED "red_packet.claimed"
#define EVENT_TRANSFER_UPDATED "transfer.updated"

/* ---- events of one job ---- */

static void events_add(pz__api_events_t *ev, int64_t user_id, int64_t seq, pz_str_t payload) {
  if (ev->n == ev->cap) {
    ev->cap = ev->cap ? ev->cap * 2 : 8;
    ev->items = pz_realloc(ev->items, ev->cap * sizeof(*ev->items));
  }
  size_t off = ev->frames.len;
  pz__api_event_frame(&ev->frames, seq, PZ_STR_NULL, payload);
  ev->items[ev->n].user_id = user_id;
  ev->items[ev->n].seq = seq;
  ev->items[ev->n].off = off;
  ev->items[ev->n].len = ev->frames.len - off;
  ev->n++;
}

static void events_fanout(pz__api_events_t *ev, const pz_chat_fanout_t *f, pz_str_t payload) {
  for (unsigned i = 0; i < f->n; i++)
    events_add(ev, f->items[i].user_id, f->items[i].seq, payload);
}

int pz__api_events_user_text(pz_db_t *db, pz__api_events_t *ev, int64_t user_id, const char *type, pz_str_t payload,
                             int64_t now, pz_err_t *err) {
  pz_chat_fanout_t f = {0};
  int rc = pz_chat_publish_user(db, user_id, pz_str(type), payload, now, &f, err);
  if (rc == 0) events_fanout(ev, &f, payload);
  pz_chat_fanout_free(&f);
  return rc;
}

int pz__api_events_user(pz_db_t *db, pz__api_events_t *ev, int64_t user_id, const char *type, json_t *payload,
                        int64_t now, pz_err_t *err) {
  char *text = payload ? json_dumps(payload, JSON_COMPACT) : NULL;
  json_decref(payload);
  if (text == NULL) return pz_err_set(err, PZ_ENOMEM, NULL, NULL);
  int rc = pz__api_events_user_text(db, ev, user_id, type, pz_str(text), now, err);
  free(text);
  return rc;
}

void pz__api_events_push(pz_api_t *api, const pz__api_events_t *ev) {
  for (unsigned i = 0; i < ev->n; i++)
    pz__api_ws_push_event(api, ev->items[i].user_id, ev->items[i].seq, ev->frames.data + ev->items[i].off,
                          ev->items[i].len);
}

void pz__api_events_release(pz__api_events_t *ev) {
  pz_buf_free(&ev->frames);
  pz_free(ev->items);
  memset(ev, 0, sizeof(*ev));
}

/* ---- cards: messages that show money in a chat ---- */

/* Sends a message of type with body (stolen) from sender into conv_id,
 * in the job that moved the money; client_id names the money, so that the
 * card is made once. */
static int card_send(pz_db_t *db, pz__api_events_t *ev, int64_t sender, int64_t conv_id, int64_t msg_id,
                     const char *type, const char *client_id, json_t *body, int64_t now, pz_err_t *err) {
  int rc = 0;
  char *text = body ? json_dumps(body, JSON_COMPACT) : NULL, *payload = NULL;
  json_decref(body);
  pz_msg_rec_t *m = pz_calloc(1, sizeof(*m)), *stored = pz_malloc(sizeof(*stored));
  pz_chat_fanout_t f = {0};
  bool created = false;
  if (text == NULL || strlen(text) > PZ_CHAT_BODY_MAX_BYTES) {
    rc = pz_err_set(err, PZ_ENOMEM, NULL, NULL);
    goto out;
  }
  m->id = msg_id;
  m->conversation_id = conv_id;
  m->sender_id = sender;
  m->created_at = now;
  snprintf(m->client_id, sizeof(m->client_id), "%s", client_id);
  snprintf(m->type, sizeof(m->type), "%s", type);
  m->body_len = strlen(text);
  memcpy(m->body, text, m->body_len + 1);
  json_t *ev_json = json_pack("{s:s,s:o}", "type", PZ_EVENT_MESSAGE_NEW, "message", pz__api_message_json(m));
  payload = ev_json ? json_dumps(ev_json, JSON_COMPACT) : NULL;
  json_decref(ev_json);
  if (payload == NULL) {
    rc = pz_err_set(err, PZ_ENOMEM, NULL, NULL);
    goto out;
  }
  if ((rc = pz_chat_send(db, m, pz_str(payload), stored, &created, &f, err)) < 0) goto out;
  events_fanout(ev, &f, pz_str(payload));
out:
  pz_chat_fanout_free(&f);
  pz_free(m);
  pz_free(stored);
  free(text);
  free(payload);
  return rc;
}

/* The transfer.updated payload of the transfer whose JSON is tj. */
static void transfer_updated_payload(pz_buf_t *b, const char *tj) {
  pz_buf_append_c(b, "{\"type\":\"" EVENT_TRANSFER_UPDATED "\",\"transfer\":");
  pz_buf_append_c(b, tj);
  pz_buf_append_c(b, "}");
}

/* The transfer's JSON is written once and spliced into both events (the
 * same bytes json_pack would give: members in insertion order). */
static int transfer_updated_text(pz_db_t *db, pz__api_events_t *ev, const pz_wallet_transfer_rec_t *t, const char *tj,
                                 int64_t now, pz_err_t *err) {
  pz_buf_t b = {0};
  transfer_updated_payload(&b, tj);
  /* Both sides see every change: the sender's card turns "accepted" or
   * "returned" as the receiver's does. */
  int rc = 0;
  const int64_t users[2] = {t->from_id, t->to_id};
  for (int i = 0; i < 2 && rc == 0; i++)
    rc = pz__api_events_user_text(db, ev, users[i], EVENT_TRANSFER_UPDATED, pz_str_n(b.data, b.len), now, err);
  pz_buf_free(&b);
  return rc;
}

int pz__api_transfer_updated(pz_db_t *db, pz__api_events_t *ev, const pz_wallet_transfer_rec_t *t, int64_t now,
                             pz_err_t *err) {
  char *tj = pz__api_transfer_text(t);
  if (tj == NULL) return pz_err_set(err, PZ_ENOMEM, NULL, NULL);
  int rc = transfer_updated_text(db, ev, t, tj, now, err);
  free(tj);
  return rc;
}


int pz__api_transfer_made(pz_db_t *db, pz__api_events_t *ev, const pz_wallet_transfer_rec_t *t, const char *tj,
                          int64_t msg_id, int64_t now, pz_err_t *err) {
  if (t->conversation_id) {
    char client_id[48];
    snprintf(client_id, sizeof(client_id), "transfer:%lld", (long long)t->id);
    json_t *body = json_pack("{s:s,s:o,s:I,s:s,s:o,s:s}", "type", "transfer", "transfer_id", pz__api_id_json(t->id),
                             "amount", (json_int_t)t->amount, "currency", t->currency, "note", pz__api_text(t->note),
                             "status", pz_store_wallet_transfer_status_name(t->status));
    int rc = card_send(db, ev, t->from_id, t->conversation_id, msg_id, "transfer", client_id, body, now, err);
    if (rc < 0) return rc;
  }
  return transfer_updated_text(db, ev, t, tj, now, err);
}

int pz__api_transfer_log(pz_db_t *db, pz__api_money_t *m, const pz_wallet_transfer_rec_t *t, pz_buf_t *rec) {
  pz_wallet_transfer_log_t l;
  if (pz_wallet_transfer_log(db, m->cfg, t, m->pin, m->now, &l) == 0) return 0;
  memcpy(l.fp, m->fp, sizeof(l.fp));
  /* The same answer and events as transfer_run's. The answer is not kept
   * under the key: a retry rebuilds it from the transfer (wallet.c,
   * transfer_replay), which a fifth of the bytes each transfer adds to the
   * database would otherwise repeat. The seqs and the money are claimed:
   * from here on nothing may fail, and running out of memory stops
   * plazad, as pz_malloc does. */
  char *tj = pz__api_transfer_text(&l.t);
  if (tj == NULL || (m->answer = pz__api_transfer_answer(tj)) == NULL) abort();
  m->answer_status = 201;
  m->answer_len = strlen(m->answer);
  pz_buf_t payload = {0};
  transfer_updated_payload(&payload, tj);
  free(tj);
  pz_str_t event = pz_str_n(payload.data, payload.len);
  int type = pz_store_wallet_transfer_log_encode(&l, PZ_STR(EVENT_TRANSFER_UPDATED), event, PZ_STR_NULL, rec);
  events_add(&m->events, l.t.from_id, l.seqs[0], event);
  events_add(&m->events, l.t.to_id, l.seqs[1], event);
  pz_buf_free(&payload);
  return type;
}

/* ---- encoding ---- */

static const char *const mode_names[] = {"random", "equal"};

static const char *status_name(const pz_wallet_red_packet_rec_t *p, int64_t now) {
  if (p->status == PZ_RED_PACKET_FINISHED) return "finished";
  if (p->status == PZ_RED_PACKET_REFUNDED) return "refunded";
  /* Past its time, the rest goes back at the next sweep: nobody may claim. */
  return p->expires_at <= now ? "expired" : "active";
}

static json_t *red_packet_json(const pz_wallet_red_packet_rec_t *p, int64_t now) {
  json_t *o = json_object();
  json_object_set_new(o, "id", pz__api_id_json(p->id));
  json_object_set_new(o, "sender_id", pz__api_id_json(p->sender_id));
  json_object_set_new(o, "conversation_id", pz__api_id_json(p->conversation_id));
  json_object_set_new(o, "message_id", pz__api_id_json(p->message_id));
  json_object_set_new(o, "total", json_integer(p->total));
  json_object_set_new(o, "count", json_integer(p->count));
  json_object_set_new(o, "mode", json_string(mode_names[p->mode]));
  json_object_set_new(o, "currency", json_string(p->currency));
  json_object_set_new(o, "greeting", pz__api_text(p->greeting));
  json_object_set_new(o, "status", json_string(status_name(p, now)));
  json_object_set_new(o, "remaining_count", json_integer(p->count - p->claimed_count));
  json_object_set_new(o, "created_at", pz__api_time_json(p->created_at));
  json_object_set_new(o, "expires_at", pz__api_time_json(p->expires_at));
  return o;
}

/* ---- the request context ---- */

typedef struct {
  pz__api_money_t m; /* first: the helpers of money.c take it */
  int64_t id, msg_id;
  pz_wallet_red_packet_rec_t packet;
  /* GET: the claims, and the luckiest so far */
  pz_db_t *db;
  json_t *claims;
  int64_t best_amount, best_user;
} rp_ctx_t;

static rp_ctx_t *rp_ctx_new(pz_req_t *req, pz_store_run_fn run) { return pz__api_money_new(req, sizeof(rp_ctx_t), run); }

/* ---- POST /v1/conversations/{id}/red-packets ---- */

static int create_run(pz_db_t *db, pz_store_job_t *job) {
  rp_ctx_t *c = job->data;
  bool found = false, keep = false;
  pz_wallet_idem_rec_t idem;
  int rc = pz_wallet_idem_lookup(db, c->m.me, c->m.key, c->m.fp, &idem, &found, &job->err);
  if (rc < 0) return rc;
  if (found) return pz__api_money_replay(&c->m, &idem, &job->err);
  pz_wallet_red_packet_rec_t stored;
  rc = pz_wallet_red_packet_create(db, c->m.cfg, &c->packet, c->m.pin, c->m.now, c->m.base.api->red_packet_ttl_ms, &stored,
                                   &c->m.retry_after_s, &keep, &job->err);
  if (rc < 0) return pz__api_money_refused(db, &c->m, rc, keep, &job->err);
  /* The card says what the packet is, never how much: the amounts are
   * for whoever opens it. */
  char client_id[48];
  snprintf(client_id, sizeof(client_id), "red_packet:%lld", (long long)stored.id);
  json_t *body = json_pack("{s:s,s:o,s:o,s:I,s:s,s:s}", "type", "red_packet", "red_packet_id",
                           pz__api_id_json(stored.id), "greeting", pz__api_text(stored.greeting), "count",
                           (json_int_t)stored.count, "mode", mode_names[stored.mode], "currency", stored.currency);
  if ((rc = card_send(db, &c->m.events, c->m.me, stored.conversation_id, stored.message_id, "red_packet", client_id, body,
                      c->m.now, &job->err)) < 0)
    return rc;
  return pz__api_money_save(db, &c->m, 201, json_pack("{s:o}", "red_packet", red_packet_json(&stored, c->m.now)), stored.id,
                     &job->err);
}

/* A JSON integer member, required: strings, fractions and 1e3 are refused, never converted. */
static int int_get(json_t *body, const char *key, int64_t *out, pz_err_t *err) {
  json_t *v = json_object_get(body, key);
  if (v == NULL) return pz_err_set(err, PZ_EINVAL, NULL, "%s is required", key);
  if (!json_is_integer(v)) return pz_err_set(err, PZ_EINVAL, NULL, "%s must be a whole number, as a JSON integer", key);
  *out = json_integer_value(v);
  return 0;
}

static void create_authed(pz_req_t *req) {
  pz_err_t err = {0};
  json_t *body;
  pz_str_t currency, mode, greeting;
  bool has_greeting = false;
  int64_t count = 0;
  rp_ctx_t *c = rp_ctx_new(req, create_run);
  pz_wallet_red_packet_rec_t *p = &c->packet;
  if (pz__api_param_id(req, 0, "conversation id", &p->conversation_id, &err) < 0 ||
      pz__api_body(req, &body, &err) < 0 || int_get(body, "total", &p->total, &err) < 0 ||
      int_get(body, "count", &count, &err) < 0 || pz_wallet_red_packet_check(p->total, count, &err) < 0 ||
      pz__api_str(body, "mode", true, &mode, NULL, &err) < 0 ||
      pz__api_str(body, "currency", true, &currency, NULL, &err) < 0 ||
      pz_wallet_currency_check(&c->m.cfg->currencies, currency, p->currency, &err) < 0 ||
      pz__api_str(body, "pin", true, &c->m.pin, NULL, &err) < 0 || pz_wallet_pin_check(c->m.pin, &err) < 0 ||
      pz__api_str(body, "idempotency_key", true, &c->m.key, NULL, &err) < 0 || pz_wallet_key_check(c->m.key, &err) < 0)
    goto fail;
  if (json_is_null(json_object_get(body, "greeting"))) {
    greeting = PZ_STR_NULL;
  } else if (pz__api_str(body, "greeting", false, &greeting, &has_greeting, &err) < 0 ||
             pz_wallet_greeting_check(greeting, &err) < 0) {
    goto fail;
  }
  if (pz_str_eq_c(mode, "random")) {
    p->mode = PZ_RED_PACKET_RANDOM;
  } else if (pz_str_eq_c(mode, "equal")) {
    p->mode = PZ_RED_PACKET_EQUAL;
  } else {
    pz_err_set(&err, PZ_EINVAL, NULL, "mode must be \"random\" or \"equal\"");
    goto fail;
  }
  c->m.has_key = true;
  p->id = pz_id_next();
  p->message_id = pz_id_next(); /* on the loop, as every message's: ids follow the order jobs reach the writer */
  p->sender_id = c->m.me;
  p->count = (unsigned)count;
  /* An empty greeting is none: the card shows the usual wish. */
  if (greeting.len == 0) greeting = PZ_STR("Best wishes");
  memcpy(p->greeting, greeting.ptr, greeting.len);
  p->greeting[greeting.len] = '\0';
  memcpy(p->idem_key, c->m.key.ptr, c->m.key.len);
  p->idem_key[c->m.key.len] = '\0';
  pz_wallet_fp_t fp;
  pz_wallet_fp_init(&fp, "red_packet");
  pz_wallet_fp_int(&fp, p->conversation_id);
  pz_wallet_fp_int(&fp, p->total);
  pz_wallet_fp_int(&fp, count);
  pz_wallet_fp_int(&fp, p->mode);
  pz_wallet_fp_str(&fp, pz_str(p->currency));
  pz_wallet_fp_str(&fp, greeting);
  pz_wallet_fp_final(&fp, c->m.fp);
  c->m.base.done = pz__api_money_done;
  pz__api_write(&c->m.base);
  return;
fail:
  pz__api_fail(req, &err);
}

/* ---- POST /v1/red-packets/{id}/claim ---- */

static int claim_run(pz_db_t *db, pz_store_job_t *job) {
  rp_ctx_t *c = job->data;
  if (c->m.has_key) {
    bool found = false;
    pz_wallet_idem_rec_t idem;
    int rc = pz_wallet_idem_lookup(db, c->m.me, c->m.key, c->m.fp, &idem, &found, &job->err);
    if (rc < 0) return rc;
    if (found) return pz__api_money_replay(&c->m, &idem, &job->err);
  }
  pz_wallet_claim_rec_t claim;
  bool keep = false;
  int rc = pz_wallet_red_packet_claim(db, c->m.me, c->id, c->m.now, &c->packet, &claim, &keep, &job->err);
  /* A refusal that wrote nothing is the key's answer, as a transfer's is. */
  if (rc < 0) return pz__api_money_refused(db, &c->m, rc, keep, &job->err);
  json_t *ev =
      json_pack("{s:s,s:o,s:o,s:o,s:I,s:s}", "type", EVENT_RED_PACKET_CLAIMED, "red_packet_id", pz__api_id_json(c->id),
                "conversation_id", pz__api_id_json(c->packet.conversation_id), "user_id", pz__api_id_json(c->m.me),
                "amount", (json_int_t)claim.amount, "currency", c->packet.currency);
  if ((rc = pz__api_events_user(db, &c->m.events, c->packet.sender_id, EVENT_RED_PACKET_CLAIMED, ev, c->m.now, &job->err)) <
      0)
    return rc;
  return pz__api_money_save(db, &c->m, 200,
                     json_pack("{s:I,s:s,s:o}", "amount", (json_int_t)claim.amount, "currency", c->packet.currency,
                               "red_packet", red_packet_json(&c->packet, c->m.now)),
                     c->id, &job->err);
}

static void claim_authed(pz_req_t *req) {
  pz_err_t err = {0};
  rp_ctx_t *c = rp_ctx_new(req, claim_run);
  if (pz__api_param_id(req, 0, "red packet id", &c->id, &err) < 0) goto fail;
  /* The body is optional: a claim is once per person by nature; a key
   * makes a retry get the first answer rather than already_claimed. */
  if (req->body.len > 0) {
    json_t *body;
    if (pz__api_body(req, &body, &err) < 0 ||
        pz__api_str(body, "idempotency_key", false, &c->m.key, &c->m.has_key, &err) < 0 ||
        (c->m.has_key && pz_wallet_key_check(c->m.key, &err) < 0))
      goto fail;
  }
  if (c->m.has_key) {
    pz_wallet_fp_t fp;
    pz_wallet_fp_init(&fp, "red_packet_claim");
    pz_wallet_fp_int(&fp, c->id);
    pz_wallet_fp_final(&fp, c->m.fp);
  }
  c->m.base.done = pz__api_money_done;
  pz__api_write(&c->m.base);
  return;
fail:
  pz__api_fail(req, &err);
}

/* ---- GET /v1/red-packets/{id} ---- */

static int claim_row(void *arg, const pz_wallet_claim_rec_t *cl, pz_err_t *err) {
  rp_ctx_t *c = arg;
  pz_user_rec_t *u = pz_malloc(sizeof(*u));
  int rc = pz_store_user_get(c->db, cl->user_id, u, err);
  json_t *user = NULL;
  if (rc == 0) {
    user = pz__api_user_json(u);
  } else if (rc == PZ_ENOTFOUND) {
    /* A claimant who deleted their account stays in the list, by id. */
    *err = (pz_err_t){0};
    rc = 0;
    user = json_pack("{s:o}", "id", pz__api_id_json(cl->user_id));
  }
  pz_free(u);
  if (rc < 0) return rc;
  json_array_append_new(c->claims, json_pack("{s:o,s:I,s:o}", "user", user, "amount", (json_int_t)cl->amount,
                                             "claimed_at", pz__api_time_json(cl->claimed_at)));
  /* The first to reach the largest share is the luckiest, as WeChat shows. */
  if (cl->amount > c->best_amount) {
    c->best_amount = cl->amount;
    c->best_user = cl->user_id;
  }
  return 0;
}

static int get_run(pz_db_t *db, pz_store_job_t *job) {
  rp_ctx_t *c = job->data;
  int rc = pz_wallet_red_packet_get(db, c->m.me, c->id, &c->packet, &job->err);
  if (rc < 0) return rc;
  json_t *o = red_packet_json(&c->packet, c->m.now);
  c->m.base.out = json_pack("{s:o}", "red_packet", o);
  c->claims = json_array();
  json_object_set_new(o, "claims", c->claims);
  c->db = db;
  if ((rc = pz_store_wallet_claims_list(db, c->id, claim_row, c, &job->err)) < 0) return rc;
  json_object_set_new(o, "claimed_amount", json_integer(c->packet.claimed_amount));
  bool luck = c->packet.mode == PZ_RED_PACKET_RANDOM && c->packet.status == PZ_RED_PACKET_FINISHED && c->best_user;
  json_object_set_new(o, "luckiest_user_id", luck ? pz__api_id_json(c->best_user) : json_null());
  return 0;
}

static void get_authed(pz_req_t *req) {
  pz_err_t err = {0};
  rp_ctx_t *c = rp_ctx_new(req, get_run);
  if (pz__api_param_id(req, 0, "red packet id", &c->id, &err) < 0) {
    pz__api_fail(req, &err);
    return;
  }
  pz__api_read(&c->m.base);
}

/* ---- the refund sweep ---- */

static int expire_packets(pz__api_sweep_t *s, pz_db_t *db, pz_err_t *err) {
  return pz_wallet_red_packet_expire(db, pz_now_ms(), PZ_WALLET_RED_PACKET_EXPIRE_BATCH, &s->n, err);
}

static const pz__api_sweep_ops_t packet_sweep = {
    .what = "expired red packets", .metric = "wallet_red_packets_refunded",
    .batch = PZ_WALLET_RED_PACKET_EXPIRE_BATCH, .run = expire_packets};

void pz__api_red_packets_start(pz_api_t *api) {
  if (api->wallet == NULL) return;
  api->rp_sweep = pz__api_sweep_start(api, &packet_sweep, api->red_packet_ttl_ms);
}

void pz__api_red_packets_stop(pz_api_t *api) {
  pz__api_sweep_stop(api->rp_sweep);
  api->rp_sweep = NULL;
}

/* ---- routes ---- */

static void create(pz_req_t *req) { pz__api_authed(req, create_authed); }
static void claim(pz_req_t *req) { pz__api_authed(req, claim_authed); }
static void get(pz_req_t *req) { pz__api_authed(req, get_authed); }

void pz__api_red_packets_routes(pz_api_t *api, pz_router_t *r) {
  if (api->wallet == NULL) return;
  /* For tests only (docs/api.md): a red packet lives 24 hours. It can
   * only be shortened. */
  api->red_packet_ttl_ms = pz__api_test_knob("PLAZA_TEST_RED_PACKET_TTL_MS", 1, PZ_WALLET_RED_PACKET_TTL_MS - 1,
                                              PZ_WALLET_RED_PACKET_TTL_MS);
  pz_router_add(r, PZ_HTTP_POST, "/v1/conversations/{id}/red-packets", create, api);
  pz_router_add(r, PZ_HTTP_POST, "/v1/red-packets/{id}/claim", claim, api);
  pz_router_add(r, PZ_HTTP_GET, "/v1/red-packets/{id}", get, api);
}
