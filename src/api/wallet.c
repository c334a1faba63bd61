/* /v1/wallet: balances, payment PIN, top-ups and withdrawals, transfers, settings, and the expiry sweep. */
#include <stdio.h>
#include <stdlib.h>
#include "api/internal.h"
#include "plaza/id.h"
#include "plaza/log.h"
#include "plaza/metrics.h"

/* ---- encoding ---- */

static const char *const funding_status_names[] = {"pending", "completed", "failed"};

static json_t *transfer_json(const pz_wallet_transfer_rec_t *t) {
  json_t *o = json_object();
  json_object_set_new(o, "id", pz__api_id_json(t->id));
  json_object_set_new(o, "from_user_id", pz__api_id_json(t->from_id));
  json_object_set_new(o, "to_user_id", pz__api_id_json(t->to_id));
  json_object_set_new(o, "amount", json_integer(t->amount));
  json_object_set_new(o, "currency", json_string(t->currency));
  json_object_set_new(o, "note", pz__api_text(t->note));
  json_object_set_new(o, "status", json_string(pz_store_wallet_transfer_status_name(t->status)));
  json_object_set_new(o, "created_at", pz__api_time_json(t->created_at));
  json_object_set_new(o, "expires_at", pz__api_time_json(t->expires_at));
  json_object_set_new(o, "updated_at", pz__api_time_json(t->updated_at));
  json_object_set_new(o, "conversation_id", t->conversation_id ? pz__api_id_json(t->conversation_id) : json_null());
  return o;
}

json_t *pz__api_transfer_json(const pz_wallet_transfer_rec_t *t) { return transfer_json(t); }

/* What transfer_json gives, written straight into text: this runs on the
 * writer, two or three times per transfer, where building and dumping a
 * jansson tree cost a tenth of a transfer's time. tests/api compare the
 * two through the API (the answer and the events carry the same object). */
char *pz__api_transfer_text(const pz_wallet_transfer_rec_t *t) {
  pz_buf_t b = {0};
  pz_buf_reserve(&b, 384);
  pz__api_put_id(&b, "{\"id\":", t->id);
  pz__api_put_id(&b, ",\"from_user_id\":", t->from_id);
  pz__api_put_id(&b, ",\"to_user_id\":", t->to_id);
  pz_buf_append_c(&b, ",\"amount\":");
  pz_buf_append_i64(&b, t->amount);
  pz__api_put_text(&b, ",\"currency\":", t->currency, strlen(t->currency));
  pz__api_put_text(&b, ",\"note\":", t->note, strlen(t->note));
  const char *status = pz_store_wallet_transfer_status_name(t->status);
  pz__api_put_text(&b, ",\"status\":", status, strlen(status));
  pz__api_put_time(&b, ",\"created_at\":", t->created_at);
  pz__api_put_time(&b, ",\"expires_at\":", t->expires_at);
  pz__api_put_time(&b, ",\"updated_at\":", t->updated_at);
  if (t->conversation_id)
    pz__api_put_id(&b, ",\"conversation_id\":", t->conversation_id);
  else
    pz_buf_append_c(&b, ",\"conversation_id\":null");
  pz_buf_append_c(&b, "}");
  return pz__api_buf_take(&b);
}

static json_t *funding_json(const pz_wallet_funding_rec_t *f) {
  json_t *o = json_object();
  json_object_set_new(o, "id", pz__api_id_json(f->id));
  json_object_set_new(o, "status", json_string(funding_status_names[f->status]));
  json_object_set_new(o, "amount", json_integer(f->amount));
  json_object_set_new(o, "currency", json_string(f->currency));
  json_object_set_new(o, "provider", pz__api_text(f->provider));
  json_object_set_new(o, "failure_reason", f->status == PZ_FUNDING_FAILED ? pz__api_text(f->reason) : json_null());
  json_object_set_new(o, "created_at", pz__api_time_json(f->created_at));
  return o;
}

/* ---- decoding ---- */

/* An amount is a JSON integer: a string, a fraction, 1e3 (a real number
 * in JSON's grammar), true or null is refused, never converted. Integers
 * beyond 64 bits do not parse at all (malformed_json). */
static int amount_get(json_t *body, int64_t *out, pz_err_t *err) {
  json_t *v = json_object_get(body, "amount");
  if (v == NULL) return pz_err_set(err, PZ_EINVAL, NULL, "amount is required");
  if (!json_is_integer(v))
    return pz_err_set(err, PZ_EINVAL, NULL, "amount must be a whole number of minor units, as a JSON integer");
  *out = json_integer_value(v);
  return pz_wallet_amount_check(*out, err);
}

/* ---- the request context ---- */

typedef struct {
  pz__api_money_t m; /* first: the helpers of money.c take it (its events:
                      * transfer.updated and a transfer's card, red_packets.c) */
  int64_t id;
  pz_wallet_transfer_rec_t transfer;
  bool auto_accept;
  int64_t card_msg_id; /* a transfer's card message, its id made on the loop */
  /* What only one kind of request uses: the loop zeroes a context for
   * every request, so it is kept small. */
  union {
    struct { /* top-ups and withdrawals */
      pz_wallet_funding_rec_t funding;
      pz_wallet_funding_req_t provider_req;
      bool resume; /* a funding whose provider call was cut off: ask again */
    };
    struct { /* PUT /v1/wallet/pin: the password's check */
      pz_user_rec_t user;
      char hash[PZ_PASSWORD_HASH_MAX + 1];
    };
  };
} wallet_ctx_t;

static wallet_ctx_t *wallet_ctx_new(pz_req_t *req, pz_store_run_fn run) {
  return pz__api_money_new(req, sizeof(wallet_ctx_t), run);
}

/* ---- PUT /v1/wallet/pin ---- */

static int pin_set_run(pz_db_t *db, pz_store_job_t *job) {
  wallet_ctx_t *c = job->data;
  return pz_wallet_pin_set(db, c->m.cfg, c->m.me, c->m.pin, c->m.now, &job->err);
}

static void pin_verified(pz__api_ctx_t *base) {
  wallet_ctx_t *c = (wallet_ctx_t *)base;
  pz_api_t *api = base->api;
  if (base->pw.rc == PZ_EUNAUTH) {
    pz_auth_limiter_fail(api->fail_account, pz_str(c->user.username), pz_now_ms());
    pz_err_t err;
    pz_err_set(&err, PZ_EUNAUTH, "invalid_credentials", "wrong password");
    pz__api_fail(base->req, &err);
    return;
  }
  if (base->pw.rc < 0) {
    pz__api_fail_pw(base);
    return;
  }
  pz_auth_limiter_forgive(api->fail_account, pz_str(c->user.username), true);
  base->job.run = pin_set_run;
  base->done = NULL;
  base->out = NULL; /* 204 */
  pz__api_write(base);
}

static int pin_user_run(pz_db_t *db, pz_store_job_t *job) {
  wallet_ctx_t *c = job->data;
  int rc = pz_store_user_get(db, c->m.me, &c->user, &job->err);
  if (rc == 0) rc = pz_store_user_find(db, pz_str(c->user.username), &c->user, c->hash, &job->err);
  return rc;
}

static void pin_user_done(pz__api_ctx_t *base) {
  wallet_ctx_t *c = (wallet_ctx_t *)base;
  pz_req_t *req = base->req;
  if (base->job.rc < 0) {
    pz__api_fail(req, &base->job.err);
    return;
  }
  /* The password guards the PIN: guesses at it count against the
   * account's log-in limit, so that a stolen session cannot try them
   * faster than a log-in could. */
  unsigned retry = 0;
  if (pz_auth_limiter_check(base->api->fail_account, pz_str(c->user.username), pz_now_ms(), &retry) < 0) {
    char secs[16];
    snprintf(secs, sizeof(secs), "%u", retry);
    pz_req_add_header(req, "Retry-After", secs);
    pz_err_t err;
    pz_err_set(&err, PZ_ERATE, "too_many_attempts", "too many wrong passwords; try again in %u seconds", retry);
    pz__api_fail(req, &err);
    return;
  }
  base->pw.op = PZ_AUTH_PW_VERIFY;
  base->pw.hash = c->hash;
  base->pw_done = pin_verified;
  if (pz__api_hash(base) < 0) pz__api_fail_busy(req);
}

static void pin_put_authed(pz_req_t *req) {
  pz_err_t err = {0};
  json_t *body;
  pz_str_t password;
  wallet_ctx_t *c = wallet_ctx_new(req, pin_user_run);
  if (pz__api_body(req, &body, &err) < 0 || pz__api_str(body, "pin", true, &c->m.pin, NULL, &err) < 0 ||
      pz_wallet_pin_check(c->m.pin, &err) < 0 || pz__api_str(body, "password", true, &password, NULL, &err) < 0) {
    pz__api_fail(req, &err);
    return;
  }
  if (pz_auth_password_check(password, NULL) < 0) {
    pz_err_set(&err, PZ_EUNAUTH, "invalid_credentials", "wrong password");
    pz__api_fail(req, &err);
    return;
  }
  c->m.base.pw.password = password;
  c->m.base.done = pin_user_done;
  pz__api_read(&c->m.base);
}

/* ---- GET /v1/wallet ---- */

static int balances_run(pz_db_t *db, pz_store_job_t *job) {
  wallet_ctx_t *c = job->data;
  int64_t bal[PZ_WALLET_CURRENCIES_MAX];
  int rc = pz_wallet_balances(db, c->m.cfg, c->m.me, bal, &job->err);
  if (rc < 0) return rc;
  json_t *list = json_array();
  for (unsigned i = 0; i < c->m.cfg->currencies.n; i++)
    json_array_append_new(
        list, json_pack("{s:s,s:I}", "currency", c->m.cfg->currencies.codes[i], "available", (json_int_t)bal[i]));
  pz_wallet_user_rec_t u;
  rc = pz_store_wallet_user_get(db, c->m.me, &u, &job->err);
  if (rc < 0 && rc != PZ_ENOTFOUND) return rc;
  job->err = (pz_err_t){0};
  c->m.base.out = json_pack("{s:o,s:b}", "balances", list, "pin_set", u.pin_set);
  return 0;
}

static void balances_authed(pz_req_t *req) { pz__api_read(&wallet_ctx_new(req, balances_run)->m.base); }

/* ---- GET and PATCH /v1/wallet/settings ---- */

static int settings_json(pz_db_t *db, wallet_ctx_t *c, pz_err_t *err) {
  pz_wallet_user_rec_t u;
  int rc = pz_store_wallet_user_get(db, c->m.me, &u, err);
  if (rc < 0 && rc != PZ_ENOTFOUND) return rc;
  *err = (pz_err_t){0};
  c->m.base.out = json_pack("{s:b}", "auto_accept_transfers", u.auto_accept);
  return 0;
}

static int settings_get_run(pz_db_t *db, pz_store_job_t *job) { return settings_json(db, job->data, &job->err); }

static int settings_set_run(pz_db_t *db, pz_store_job_t *job) {
  wallet_ctx_t *c = job->data;
  int rc = pz_store_wallet_user_set_auto_accept(db, c->m.me, c->auto_accept, c->m.now, &job->err);
  return rc < 0 ? rc : settings_json(db, c, &job->err);
}

static void settings_get_authed(pz_req_t *req) { pz__api_read(&wallet_ctx_new(req, settings_get_run)->m.base); }

static void settings_patch_authed(pz_req_t *req) {
  pz_err_t err = {0};
  json_t *body;
  wallet_ctx_t *c = wallet_ctx_new(req, settings_set_run);
  if (pz__api_body(req, &body, &err) < 0) goto fail;
  json_t *v = json_object_get(body, "auto_accept_transfers");
  if (!json_is_boolean(v)) {
    pz_err_set(&err, PZ_EINVAL, NULL, "auto_accept_transfers must be true or false");
    goto fail;
  }
  c->auto_accept = json_is_true(v);
  pz__api_write(&c->m.base);
  return;
fail:
  pz__api_fail(req, &err);
}

/* ---- POST /v1/wallet/topups and /v1/wallet/withdrawals ---- */

static int settle_run(pz_db_t *db, pz_store_job_t *job) {
  wallet_ctx_t *c = job->data;
  pz_wallet_funding_req_t *p = &c->provider_req;
  bool changed = false;
  c->m.now = pz_now_ms();
  int rc = pz_wallet_funding_settle(db, p->id, p->rc == 0, p->provider_ref, p->reason, c->m.now, &c->funding, &changed,
                                    &job->err);
  if (rc < 0) return rc;
  if (!changed) {
    /* A retry of the same request settled it first: its answer stands. */
    bool found = false;
    pz_wallet_idem_rec_t idem;
    if ((rc = pz_wallet_idem_lookup(db, c->m.me, c->m.key, c->m.fp, &idem, &found, &job->err)) < 0) return rc;
    PZ_ASSERT(found && idem.status != 0); /* settled and saved in one job */
    return pz__api_money_replay(&c->m, &idem, &job->err);
  }
  const char *name = c->funding.kind == PZ_FUNDING_TOPUP ? "topup" : "withdrawal";
  return pz__api_money_save(db, &c->m, 201, json_pack("{s:o}", name, funding_json(&c->funding)), c->funding.id, &job->err);
}

static void provider_done(pz_wallet_funding_req_t *p) {
  wallet_ctx_t *c = p->data;
  pz_api_t *api = c->m.base.api;
  if (p->rc < 0)
    PZ_LOG(PZ_LOG_WARN, c->m.base.req->id, "funding failed at the provider", "funding=%lld reason=%s", (long long)p->id,
           p->reason);
  c->m.base.job.run = settle_run;
  c->m.base.done = pz__api_money_done;
  pz__api_write(&c->m.base);
  pz__api_unbusy(api); /* the provider's call is over; the job holds the api now */
}

static void begun(pz__api_ctx_t *base) {
  wallet_ctx_t *c = (wallet_ctx_t *)base;
  if (base->job.rc < 0 || c->m.failed || c->m.answer) {
    pz__api_money_done(base);
    return;
  }
  const pz_wallet_provider_t *prov = c->m.cfg->provider;
  pz_wallet_funding_req_t *p = &c->provider_req;
  memset(p, 0, sizeof(*p));
  p->id = c->funding.id;
  p->user_id = c->m.me;
  p->kind = c->funding.kind;
  p->amount = c->funding.amount;
  memcpy(p->currency, c->funding.currency, sizeof(p->currency));
  p->done = provider_done;
  p->data = c;
  pz__api_busy(base->api);
  int rc = (p->kind == PZ_FUNDING_TOPUP ? prov->topup : prov->withdraw)(prov->state, p);
  if (rc < 0) {
    /* Refused outright: settled as failed like any other failure. */
    p->rc = rc;
    snprintf(p->reason, sizeof(p->reason), "the provider refused the request: %s", pz_strerror(rc));
    provider_done(p);
  }
}

static int begin_run(pz_db_t *db, pz_store_job_t *job) {
  wallet_ctx_t *c = job->data;
  bool found = false, keep = false;
  pz_wallet_idem_rec_t idem;
  int rc = pz_wallet_idem_lookup(db, c->m.me, c->m.key, c->m.fp, &idem, &found, &job->err);
  if (rc < 0) return rc;
  if (found && idem.status != 0) return pz__api_money_replay(&c->m, &idem, &job->err);
  if (found) {
    /* The first attempt never heard from the provider (a crash, or it is
     * still waiting): ask again with the same id, which the provider
     * answers once. */
    c->resume = true;
    return pz_store_wallet_funding_get(db, idem.ref_id, &c->funding, &job->err);
  }
  rc = pz_wallet_funding_begin(db, c->m.cfg, &c->funding, c->m.pin, c->m.now, &c->m.retry_after_s, &keep, &job->err);
  if (rc < 0) return pz__api_money_refused(db, &c->m, rc, keep, &job->err);
  return pz_wallet_idem_save(db, c->m.me, c->m.key, c->m.fp, c->funding.id, 0, PZ_STR(""), c->m.now, &job->err);
}

static void funding_post(pz_req_t *req, int kind) {
  pz_err_t err = {0};
  json_t *body;
  pz_str_t currency;
  wallet_ctx_t *c = wallet_ctx_new(req, begin_run);
  pz_wallet_funding_rec_t *f = &c->funding;
  if (pz__api_body(req, &body, &err) < 0 || amount_get(body, &f->amount, &err) < 0 ||
      pz__api_str(body, "currency", true, &currency, NULL, &err) < 0 ||
      pz_wallet_currency_check(&c->m.cfg->currencies, currency, f->currency, &err) < 0 ||
      pz__api_str(body, "idempotency_key", true, &c->m.key, &c->m.has_key, &err) < 0 || pz_wallet_key_check(c->m.key, &err) < 0)
    goto fail;
  if (kind == PZ_FUNDING_WITHDRAWAL &&
      (pz__api_str(body, "pin", true, &c->m.pin, NULL, &err) < 0 || pz_wallet_pin_check(c->m.pin, &err) < 0))
    goto fail;
  f->id = pz_id_next();
  f->user_id = c->m.me;
  f->kind = kind;
  snprintf(f->provider, sizeof(f->provider), "%s", c->m.cfg->provider->name);
  memcpy(f->idem_key, c->m.key.ptr, c->m.key.len);
  f->idem_key[c->m.key.len] = '\0';
  /* The PIN is no part of the request's identity: a retry with a PIN
   * typed again is the same request. */
  pz_wallet_fp_t fp;
  pz_wallet_fp_init(&fp, kind == PZ_FUNDING_TOPUP ? "topup" : "withdrawal");
  pz_wallet_fp_int(&fp, f->amount);
  pz_wallet_fp_str(&fp, pz_str(f->currency));
  pz_wallet_fp_final(&fp, c->m.fp);
  c->m.base.done = begun;
  pz__api_write(&c->m.base);
  return;
fail:
  pz__api_fail(req, &err);
}

static void topup_authed(pz_req_t *req) { funding_post(req, PZ_FUNDING_TOPUP); }
static void withdraw_authed(pz_req_t *req) { funding_post(req, PZ_FUNDING_WITHDRAWAL); }

/* ---- POST /v1/wallet/transfers ---- */

char *pz__api_transfer_answer(const char *tj) {
  static const char head[] = "{\"transfer\":";
  size_t len = strlen(tj);
  char *answer = malloc(sizeof(head) - 1 + len + 2);
  if (answer) {
    memcpy(answer, head, sizeof(head) - 1);
    memcpy(answer + sizeof(head) - 1, tj, len);
    memcpy(answer + sizeof(head) - 1 + len, "}", 2);
  }
  return answer;
}

/* The first answer to a transfer made in the send log, which keeps none
 * under its key: the transfer as it is, completed from its first row and
 * never changed since, gives the same bytes. */
static int transfer_replay(pz_db_t *db, wallet_ctx_t *c, int64_t id, pz_err_t *err) {
  pz_wallet_transfer_rec_t t;
  int rc = pz_store_wallet_transfer_get(db, id, &t, err);
  if (rc < 0) return rc;
  char *tj = pz__api_transfer_text(&t);
  char *answer = tj ? pz__api_transfer_answer(tj) : NULL;
  free(tj);
  if (answer == NULL) return pz_err_set(err, PZ_ENOMEM, NULL, NULL);
  c->m.answer = answer;
  c->m.answer_len = strlen(answer);
  c->m.answer_status = 201;
  return 0;
}

static int transfer_run(pz_db_t *db, pz_store_job_t *job) {
  wallet_ctx_t *c = job->data;
  bool found = false, keep = false;
  pz_wallet_idem_rec_t idem;
  int rc = pz_wallet_idem_lookup(db, c->m.me, c->m.key, c->m.fp, &idem, &found, &job->err);
  if (rc < 0) return rc;
  if (found && idem.status == 201 && idem.body_len == 0) return transfer_replay(db, c, idem.ref_id, &job->err);
  if (found) return pz__api_money_replay(&c->m, &idem, &job->err);
  pz_wallet_transfer_rec_t stored;
  if (c->transfer.conversation_id &&
      (rc = pz_wallet_transfer_chat_check(db, c->m.me, c->transfer.to_id, c->transfer.conversation_id, &job->err)) < 0)
    return rc;
  rc =
      pz_wallet_transfer_create(db, c->m.cfg, &c->transfer, c->m.pin, c->m.now, &stored, &c->m.retry_after_s, &keep, &job->err);
  if (rc < 0) return pz__api_money_refused(db, &c->m, rc, keep, &job->err);
  /* The card in the chat and the events go in the job that moved the
   * money; the transfer's JSON is written once for them and the answer. */
  char *tj = pz__api_transfer_text(&stored);
  if (tj == NULL) return pz_err_set(&job->err, PZ_ENOMEM, NULL, NULL);
  if ((rc = pz__api_transfer_made(db, &c->m.events, &stored, tj, c->card_msg_id, c->m.now, &job->err)) == 0)
    rc = pz__api_money_keep(db, &c->m, 201, pz__api_transfer_answer(tj), stored.id, &job->err);
  free(tj);
  /* Tests only (PLAZA_TEST_FAIL_TRANSFER_AMOUNT): a failure after every
   * write, which no rule makes, so that the writer's rerun is tried. */
  if (rc == 0 && c->transfer.amount == c->m.cfg->test_fail_amount)
    rc = pz_err_set(&job->err, PZ_EIO, NULL, "test: this transfer fails after its writes");
  return rc;
}

/* A transfer the log thread can decide alone is durable in the send log,
 * and answered, before the writer has applied it (engine.c). */
static int transfer_log(pz_db_t *db, pz_store_job_t *job, pz_buf_t *rec) {
  wallet_ctx_t *c = job->data;
  /* Tests only: the failure after every write is the writer's to make. */
  if (!c->m.has_key || c->transfer.amount == c->m.cfg->test_fail_amount) return 0;
  return pz__api_transfer_log(db, &c->m, &c->transfer, rec);
}

static void transfer_authed(pz_req_t *req) {
  pz_err_t err = {0};
  json_t *body;
  pz_str_t currency, note;
  wallet_ctx_t *c = wallet_ctx_new(req, transfer_run);
  pz_wallet_transfer_rec_t *t = &c->transfer;
  if (pz__api_body(req, &body, &err) < 0 || pz__api_id(body, "to_user_id", &t->to_id, &err) < 0 ||
      amount_get(body, &t->amount, &err) < 0 || pz__api_str(body, "currency", true, &currency, NULL, &err) < 0 ||
      pz_wallet_currency_check(&c->m.cfg->currencies, currency, t->currency, &err) < 0 ||
      pz__api_str(body, "pin", true, &c->m.pin, NULL, &err) < 0 || pz_wallet_pin_check(c->m.pin, &err) < 0 ||
      pz__api_str(body, "idempotency_key", true, &c->m.key, &c->m.has_key, &err) < 0 || pz_wallet_key_check(c->m.key, &err) < 0 ||
      pz__api_str(body, "note", false, &note, NULL, &err) < 0 || pz_wallet_note_check(note, &err) < 0)
    goto fail;
  if (t->to_id == c->m.me) {
    pz_err_set(&err, PZ_EINVAL, NULL, "you cannot send money to yourself");
    goto fail;
  }
  json_t *conv = json_object_get(body, "conversation_id");
  if (conv != NULL && !json_is_null(conv) && pz__api_id(body, "conversation_id", &t->conversation_id, &err) < 0)
    goto fail;
  if (t->conversation_id) c->card_msg_id = pz_id_next(); /* on the loop, as every message's */
  t->id = pz_id_next();
  t->from_id = c->m.me;
  if (note.len) memcpy(t->note, note.ptr, note.len);
  t->note[note.len] = '\0';
  memcpy(t->idem_key, c->m.key.ptr, c->m.key.len);
  t->idem_key[c->m.key.len] = '\0';
  pz_wallet_fp_t fp;
  pz_wallet_fp_init(&fp, "transfer");
  pz_wallet_fp_int(&fp, t->to_id);
  pz_wallet_fp_int(&fp, t->amount);
  pz_wallet_fp_str(&fp, pz_str(t->currency));
  pz_wallet_fp_str(&fp, note);
  /* Only when given, so that a request without it keeps its fingerprint. */
  if (t->conversation_id) pz_wallet_fp_int(&fp, t->conversation_id);
  pz_wallet_fp_final(&fp, c->m.fp);
  c->m.base.done = pz__api_money_done;
  /* transfer_run checks the PIN, the balance and the limit before it
   * writes, and keeps nothing in c but what pz__api_money_rerun resets. */
  c->m.base.job.rerun = pz__api_money_rerun;
  c->m.base.job.log = transfer_log;
  pz__api_write(&c->m.base);
  return;
fail:
  pz__api_fail(req, &err);
}

/* ---- accept, return, get ---- */

static int transfer_out(wallet_ctx_t *c, int rc) {
  if (rc == 0) c->m.base.out = json_pack("{s:o}", "transfer", transfer_json(&c->transfer));
  return rc;
}

/* transfer.updated to both parties when the status moved from before. Writer. */
static int transfer_changed(pz_db_t *db, wallet_ctx_t *c, int before, int rc, pz_err_t *err) {
  if (rc == 0 && c->transfer.status != before) rc = pz__api_transfer_updated(db, &c->m.events, &c->transfer, c->m.now, err);
  return transfer_out(c, rc);
}

/* The status before the change; -1 when it cannot be read (the change then reports why). */
static int status_before(pz_db_t *db, wallet_ctx_t *c) {
  pz_err_t ignored = {0};
  return pz_wallet_transfer_get(db, c->m.me, c->id, &c->transfer, &ignored) == 0 ? c->transfer.status : -1;
}

static int accept_run(pz_db_t *db, pz_store_job_t *job) {
  wallet_ctx_t *c = job->data;
  int before = status_before(db, c);
  return transfer_changed(db, c, before,
                          pz_wallet_transfer_accept(db, c->m.me, c->id, c->m.now, &c->transfer, &job->err), &job->err);
}

static int return_run(pz_db_t *db, pz_store_job_t *job) {
  wallet_ctx_t *c = job->data;
  int before = status_before(db, c);
  return transfer_changed(db, c, before,
                          pz_wallet_transfer_return(db, c->m.me, c->id, c->m.now, &c->transfer, &job->err), &job->err);
}

static void transfer_op_done(pz__api_ctx_t *base) {
  wallet_ctx_t *c = (wallet_ctx_t *)base;
  if (base->job.rc == 0) pz__api_events_push(base->api, &c->m.events);
  pz__api_finish(base);
}

static int transfer_get_run(pz_db_t *db, pz_store_job_t *job) {
  wallet_ctx_t *c = job->data;
  return transfer_out(c, pz_wallet_transfer_get(db, c->m.me, c->id, &c->transfer, &job->err));
}

static void transfer_op(pz_req_t *req, pz_store_run_fn run, bool write) {
  pz_err_t err = {0};
  wallet_ctx_t *c = wallet_ctx_new(req, run);
  if (pz__api_param_id(req, 0, "transfer id", &c->id, &err) < 0) {
    pz__api_fail(req, &err);
    return;
  }
  c->m.base.done = transfer_op_done;
  if (write)
    pz__api_write(&c->m.base);
  else
    pz__api_read(&c->m.base);
}

static void accept_authed(pz_req_t *req) { transfer_op(req, accept_run, true); }
static void return_authed(pz_req_t *req) { transfer_op(req, return_run, true); }
static void transfer_get_authed(pz_req_t *req) { transfer_op(req, transfer_get_run, false); }

/* ---- the expiry sweep ---- */

typedef struct {
  pz__api_sweep_t *sweep;
  pz_db_t *db;
  int64_t now;
} expiry_t;

static int sweep_refunded(void *arg, const pz_wallet_transfer_rec_t *t, pz_err_t *err) {
  expiry_t *x = arg;
  return pz__api_transfer_updated(x->db, &x->sweep->events, t, x->now, err);
}

static int expire_transfers(pz__api_sweep_t *s, pz_db_t *db, pz_err_t *err) {
  expiry_t x = {s, db, pz_now_ms()};
  return pz_wallet_transfer_expire_each(db, x.now, PZ_WALLET_EXPIRE_BATCH, &s->n, sweep_refunded, &x, err);
}

static const pz__api_sweep_ops_t transfer_sweep = {
    .what = "expired transfers", .metric = "wallet_transfers_expired", .batch = PZ_WALLET_EXPIRE_BATCH,
    .run = expire_transfers};

void pz__api_wallet_start(pz_api_t *api) {
  if (api->wallet == NULL) return;
  api->sweep = pz__api_sweep_start(api, &transfer_sweep, api->wallet->transfer_ttl_ms);
}

void pz__api_wallet_stop(pz_api_t *api) {
  pz__api_sweep_stop(api->sweep);
  api->sweep = NULL;
}

/* ---- routes ---- */

static void pin_put(pz_req_t *req) { pz__api_authed(req, pin_put_authed); }
static void balances(pz_req_t *req) { pz__api_authed(req, balances_authed); }
static void settings_get(pz_req_t *req) { pz__api_authed(req, settings_get_authed); }
static void settings_patch(pz_req_t *req) { pz__api_authed(req, settings_patch_authed); }
static void topup(pz_req_t *req) { pz__api_authed(req, topup_authed); }
static void withdraw(pz_req_t *req) { pz__api_authed(req, withdraw_authed); }
static void transfer(pz_req_t *req) { pz__api_authed(req, transfer_authed); }
static void transfer_get(pz_req_t *req) { pz__api_authed(req, transfer_get_authed); }
static void accept_transfer(pz_req_t *req) { pz__api_authed(req, accept_authed); }
static void give_back(pz_req_t *req) { pz__api_authed(req, return_authed); }

void pz__api_wallet_routes(pz_api_t *api, pz_router_t *r) {
  if (api->wallet == NULL) return;
  pz_router_add(r, PZ_HTTP_GET, "/v1/wallet", balances, api);
  pz_router_add(r, PZ_HTTP_PUT, "/v1/wallet/pin", pin_put, api);
  pz_router_add(r, PZ_HTTP_GET, "/v1/wallet/settings", settings_get, api);
  pz_router_add(r, PZ_HTTP_PATCH, "/v1/wallet/settings", settings_patch, api);
  pz_router_add(r, PZ_HTTP_POST, "/v1/wallet/topups", topup, api);
  pz_router_add(r, PZ_HTTP_POST, "/v1/wallet/withdrawals", withdraw, api);
  pz_router_add(r, PZ_HTTP_POST, "/v1/wallet/transfers", transfer, api);
  pz_router_add(r, PZ_HTTP_GET, "/v1/wallet/transfers/{id}", transfer_get, api);
  pz_router_add(r, PZ_HTTP_POST, "/v1/wallet/transfers/{id}/accept", accept_transfer, api);
  pz_router_add(r, PZ_HTTP_POST, "/v1/wallet/transfers/{id}/return", give_back, api);
}
