/* /v1/merchants, /v1/merchant (the shop's API, by API key) and /v1/pay: QR payments, refunds, and the webhook
 * dispatcher. */
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include "api/internal.h"
#include "plaza/httpc.h"
#include "plaza/id.h"
#include "plaza/log.h"
#include "plaza/merchant.h"
#include "plaza/metrics.h"

/* Webhooks delivered at once at most, and how often the outbox is looked at. */
#define HOOKS_IN_FLIGHT 16
#define HOOKS_POLL_MS 1000

/* ---- the request context ---- */

typedef struct mctx_s mctx_t;
typedef void (*mctx_next_fn)(mctx_t *c);

struct mctx_s {
  pz__api_ctx_t base;
  const pz_wallet_config_t *cfg;
  int64_t me, id, now;
  mctx_next_fn next; /* after the API key resolved */
  uint8_t key_hash[PZ_MERCHANT_KEY_HASH_LEN];
  pz_merchant_rec_t merchant;
  /* PATCH /v1/merchants/me */
  bool set_name, set_url;
  char new_name[PZ_MERCHANT_NAME_MAX_BYTES + 1];
  char new_url[PZ_MERCHANT_URL_MAX + 1];
  /* money-moving calls: as in wallet.c */
  pz_str_t pin, key;
  uint8_t fp[PZ_WALLET_FP_LEN];
  bool failed;
  pz_err_t fail;
  unsigned retry_after_s;
  int answer_status;
  char *answer; /* malloc'd by jansson, or copied from a stored record */
  size_t answer_len;
  char api_key[PZ_MERCHANT_KEY_LEN + 1];
  char secret[PZ_MERCHANT_SECRET_LEN + 1];
  pz_merchant_order_rec_t order;
  pz_merchant_pay_t pay;
  pz_merchant_payment_rec_t payment;
  pz_merchant_refund_rec_t refund;
  bool hook_queued; /* the job queued a webhook: wake the dispatcher once durable */
  pz_paycode_t code;
  pz_buf_t svg;
};

static void mctx_release(void *data) {
  mctx_t *c = data;
  free(c->answer);
  c->answer = NULL;
  pz_buf_free(&c->svg);
  sodium_memzero(c->api_key, sizeof(c->api_key));
  sodium_memzero(c->secret, sizeof(c->secret));
}

static mctx_t *mctx_new(pz_req_t *req, pz_store_run_fn run) {
  mctx_t *c = pz__api_ctx_new(req, sizeof(*c), run);
  c->cfg = c->base.api->wallet;
  c->me = req->user_id;
  c->now = pz_now_ms();
  pz_arena_on_reset(req->arena, mctx_release, c);
  return c;
}

static void hooks_kick(pz_api_t *api);

/* ---- encoding ---- */

static const char *const order_status_names[] = {"pending", "paid", "refunded", "expired"};

/* A payment code as one path segment: ':', '?' and '=' escaped. */
static void code_path(pz_buf_t *b, const char *code) {
  for (const char *p = code; *p; p++) {
    if (*p == ':' || *p == '?' || *p == '=')
      pz_buf_printf(b, "%%%02X", (unsigned char)*p);
    else
      pz_buf_append(b, p, 1);
  }
}

static json_t *merchant_json(const pz_merchant_rec_t *m) {
  char code[PZ_PAYCODE_MAX + 1], url[64];
  pz_paycode_merchant(m->id, code);
  snprintf(url, sizeof(url), "/v1/merchants/%" PRId64 "/qr.svg", m->id);
  json_t *o = json_object();
  json_object_set_new(o, "id", pz__api_id_json(m->id));
  json_object_set_new(o, "name", pz__api_text(m->name));
  json_object_set_new(o, "webhook_url", m->webhook_url[0] ? pz__api_text(m->webhook_url) : json_null());
  json_object_set_new(o, "payment_code", json_string(code));
  json_object_set_new(o, "qr_svg_url", json_string(url));
  json_object_set_new(o, "created_at", pz__api_time_json(m->created_at));
  return o;
}

static int order_status(const pz_merchant_order_rec_t *o, int64_t now) {
  if (o->status == PZ_ORDER_PENDING && o->expires_at <= now) return PZ_ORDER_EXPIRED;
  return o->status;
}

static json_t *order_json(const pz_merchant_order_rec_t *o, int64_t now) {
  char code[PZ_PAYCODE_MAX + 1];
  pz_paycode_order(o->code, code);
  pz_buf_t path = {0};
  pz_buf_append_c(&path, "/v1/pay/");
  code_path(&path, code);
  json_t *j = json_object();
  json_object_set_new(j, "id", pz__api_id_json(o->id));
  json_object_set_new(j, "code", json_string(code));
  json_object_set_new(j, "amount", json_integer(o->amount));
  json_object_set_new(j, "currency", json_string(o->currency));
  json_object_set_new(j, "description", o->kind == PZ_ORDER_DYNAMIC ? pz__api_text(o->description) : json_null());
  json_object_set_new(j, "merchant_order_id",
                      o->merchant_order_id[0] ? pz__api_text(o->merchant_order_id) : json_null());
  json_object_set_new(j, "status", json_string(order_status_names[order_status(o, now)]));
  json_object_set_new(j, "paid_amount", json_integer(o->paid_amount));
  json_object_set_new(j, "refunded_amount", json_integer(o->refunded_amount));
  json_object_set_new(j, "payment_id", o->payment_id ? pz__api_id_json(o->payment_id) : json_null());
  json_object_set_new(j, "created_at", pz__api_time_json(o->created_at));
  json_object_set_new(j, "expires_at", o->kind == PZ_ORDER_DYNAMIC ? pz__api_time_json(o->expires_at) : json_null());
  json_object_set_new(j, "paid_at", o->paid_at ? pz__api_time_json(o->paid_at) : json_null());
  json_object_set_new(j, "pay_url", json_stringn(path.data, path.len));
  pz_buf_append_c(&path, "/qr.svg");
  json_object_set_new(j, "qr_svg_url", json_stringn(path.data, path.len));
  pz_buf_free(&path);
  return j;
}

static json_t *refund_json(const pz_merchant_refund_rec_t *r) {
  json_t *o = json_object();
  json_object_set_new(o, "id", pz__api_id_json(r->id));
  json_object_set_new(o, "order_id", pz__api_id_json(r->order_id));
  json_object_set_new(o, "amount", json_integer(r->amount));
  json_object_set_new(o, "currency", json_string(r->currency));
  json_object_set_new(o, "reason", r->reason[0] ? pz__api_text(r->reason) : json_null());
  json_object_set_new(o, "status", json_string("completed"));
  json_object_set_new(o, "created_at", pz__api_time_json(r->created_at));
  return o;
}

static json_t *payment_json(const pz_merchant_payment_rec_t *p, const pz_merchant_rec_t *m) {
  json_t *o = json_object();
  json_object_set_new(o, "id", pz__api_id_json(p->id));
  json_object_set_new(o, "order_id", pz__api_id_json(p->order_id));
  json_object_set_new(o, "merchant",
                      json_pack("{s:o,s:o}", "id", pz__api_id_json(m->id), "name", pz__api_text(m->name)));
  json_object_set_new(o, "amount", json_integer(p->amount));
  json_object_set_new(o, "currency", json_string(p->currency));
  json_object_set_new(o, "status", json_string("completed"));
  json_object_set_new(o, "created_at", pz__api_time_json(p->created_at));
  return o;
}

/* ---- decoding ---- */

/* An amount is a JSON integer (see wallet.c): anything else is refused, never converted. */
static int amount_get(json_t *body, bool required, int64_t *out, pz_err_t *err) {
  json_t *v = json_object_get(body, "amount");
  *out = 0;
  if (v == NULL) return required ? pz_err_set(err, PZ_EINVAL, NULL, "amount is required") : 0;
  if (!json_is_integer(v))
    return pz_err_set(err, PZ_EINVAL, NULL, "amount must be a whole number of minor units, as a JSON integer");
  *out = json_integer_value(v);
  return pz_wallet_amount_check(*out, err);
}

static void copy_str(char *dst, size_t cap, pz_str_t s) {
  size_t n = s.len < cap - 1 ? s.len : cap - 1;
  if (n) memcpy(dst, s.ptr, n);
  dst[n] = '\0';
}

/* An optional webhook_url: a string (empty clears it) or null. A literal
 * address that is not public is refused here, where the merchant sees why;
 * a name is checked at each delivery, on the addresses it resolves to
 * then. */
static int url_get(pz_api_t *api, json_t *body, char out[PZ_MERCHANT_URL_MAX + 1], bool *present, pz_err_t *err) {
  json_t *v = json_object_get(body, "webhook_url");
  *present = v != NULL;
  out[0] = '\0';
  if (v == NULL || json_is_null(v)) return 0;
  if (!json_is_string(v)) return pz_err_set(err, PZ_EINVAL, NULL, "webhook_url must be a string or null");
  pz_str_t s = pz_str_n(json_string_value(v), json_string_length(v));
  if (s.len == 0) return 0;
  pz_httpc_url_t u;
  int rc = pz_httpc_url_parse(s, &u, err);
  if (rc < 0) return rc;
  if (!api->cfg.private_webhooks && pz_httpc_host_public(&u) == 0)
    return pz_err_set(err, PZ_EINVAL, "webhook_url_private",
                      "webhook_url points at a private or local address; webhooks go to public addresses only");
  copy_str(out, PZ_MERCHANT_URL_MAX + 1, s);
  return 0;
}

/* ---- answers of money-moving calls ----
 *
 * The pattern of money.c, with two differences that keep them apart: the
 * idempotency scope is the merchant for API-key calls (the user for a
 * payer's), and a 400 refusal is not kept as the key's answer. */

/* Serializes body as the answer and stores it under (scope, key) in the job that moved the money. Writer. */
static int answer_save(pz_db_t *db, mctx_t *c, int64_t scope, int status, json_t *body, int64_t ref_id, pz_err_t *err) {
  c->answer = json_dumps(body, JSON_COMPACT);
  json_decref(body);
  if (c->answer == NULL) return pz_err_set(err, PZ_ENOMEM, NULL, NULL);
  c->answer_len = strlen(c->answer);
  c->answer_status = status;
  return pz_wallet_idem_save(db, scope, c->key, c->fp, ref_id, status, pz_str_n(c->answer, c->answer_len), c->now, err);
}

static int answer_replay(mctx_t *c, const pz_wallet_idem_rec_t *idem, pz_err_t *err) {
  return pz__api_answer_replay(idem, &c->answer, &c->answer_len, &c->answer_status, err);
}

/* PIN errors authenticate rather than decide, and a 400 is about the
 * request's form: neither is the key's answer, the client resends. */
static bool not_stored(const pz_err_t *err) {
  const char *code = pz_err_code_str(err);
  int status = pz_err_http_status(err);
  return status == 400 || status >= 500 || strcmp(code, "wrong_pin") == 0 || strcmp(code, "pin_locked") == 0 ||
         strcmp(code, "pin_not_set") == 0;
}

/* A rule refused with *keep: commit what was written (a PIN failure
 * counted) and answer the error; a refusal on the merits is stored as
 * the key's answer, so that a late duplicate cannot move money after all. */
static int refused(pz_db_t *db, mctx_t *c, int64_t scope, int rc, bool keep, pz_err_t *err) {
  if (!keep) return rc;
  if (not_stored(err)) {
    c->failed = true;
    c->fail = *err;
    *err = (pz_err_t){0};
    return 0;
  }
  int status = pz_err_http_status(err);
  json_t *body = json_pack("{s:{s:s,s:s}}", "error", "code", pz_err_code_str(err), "message", pz_err_message(err));
  *err = (pz_err_t){0};
  return answer_save(db, c, scope, status, body, 0, err);
}

static void answer_done(pz__api_ctx_t *base) {
  mctx_t *c = (mctx_t *)base;
  pz_req_t *req = base->req;
  if (base->job.rc < 0) {
    pz__api_fail(req, &base->job.err);
    return;
  }
  if (c->hook_queued) hooks_kick(base->api);
  if (c->failed) {
    pz__api_money_fail(req, &c->fail, c->retry_after_s);
  } else {
    pz_req_add_header(req, "Cache-Control", "no-store");
    pz_req_respond(req, c->answer_status, "application/json", c->answer, c->answer_len);
  }
}

/* Builds the webhook of type about the order and queues it in this job. Writer. */
static int webhook_queue(pz_db_t *db, mctx_t *c, const char *type, const char *what, json_t *obj, pz_err_t *err) {
  pz_merchant_webhook_rec_t *w = pz_calloc(1, sizeof(*w));
  w->id = pz_id_next();
  snprintf(w->type, sizeof(w->type), "%s", type);
  json_t *body = json_pack("{s:o,s:s,s:o,s:{s:o,s:o}}", "id", pz__api_id_json(w->id), "type", type, "created_at",
                           pz__api_time_json(c->now), "data", "order", order_json(&c->order, c->now), what, obj);
  char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
  json_decref(body);
  int rc;
  if (text == NULL) {
    rc = pz_err_set(err, PZ_ENOMEM, NULL, NULL);
    goto out;
  }
  w->body_len = strlen(text);
  if (w->body_len > PZ_MERCHANT_WEBHOOK_BODY_MAX) {
    rc = pz_err_set(err, PZ_EIO, NULL, "webhook body too large");
    goto out;
  }
  memcpy(w->body, text, w->body_len + 1);
  rc = pz_merchant_webhook_queue(db, &c->merchant, w, c->now, &c->hook_queued, err);
out:
  free(text);
  pz_free(w);
  return rc;
}

/* ---- the merchant's API key ---- */

static int key_run(pz_db_t *db, pz_store_job_t *job) {
  mctx_t *c = job->data;
  int rc = pz_store_merchant_by_key(db, c->key_hash, &c->merchant, &job->err);
  if (rc == PZ_ENOTFOUND)
    rc = pz_err_set(&job->err, PZ_EUNAUTH, NULL, "this API key is not valid (rotated, or never was)");
  return rc;
}

static void key_done(pz__api_ctx_t *base) {
  mctx_t *c = (mctx_t *)base;
  if (base->job.rc < 0) {
    pz__api_fail(base->req, &base->job.err);
    return;
  }
  base->done = NULL;
  c->next(c);
}

/* Resolves "Authorization: Bearer pzk_..." to its merchant, then calls next. */
static void key_authed(pz_req_t *req, mctx_next_fn next) {
  mctx_t *c = mctx_new(req, key_run);
  pz_str_t key;
  if (pz_auth_bearer(pz_req_header(req, "Authorization"), &key) < 0 || pz_merchant_key_hash(key, c->key_hash) < 0) {
    pz_err_t err;
    pz_err_set(&err, PZ_EUNAUTH, NULL, "the merchant API wants Authorization: Bearer pzk_...");
    pz__api_fail(req, &err);
    return;
  }
  c->next = next;
  c->base.done = key_done;
  pz__api_read(&c->base);
}

/* ---- POST /v1/merchants ---- */

static int create_run(pz_db_t *db, pz_store_job_t *job) {
  mctx_t *c = job->data;
  int rc = pz_merchant_create(db, &c->merchant, c->now, &job->err);
  if (rc < 0) return rc;
  c->merchant.created_at = c->merchant.updated_at = c->now;
  c->base.status = 201;
  c->base.out = json_pack("{s:o,s:s,s:s}", "merchant", merchant_json(&c->merchant), "api_key", c->api_key,
                          "webhook_secret", c->secret);
  return 0;
}

static void create_authed(pz_req_t *req) {
  pz_err_t err = {0};
  json_t *body;
  pz_str_t name;
  bool present;
  mctx_t *c = mctx_new(req, create_run);
  pz_merchant_rec_t *m = &c->merchant;
  if (pz__api_body(req, &body, &err) < 0 || pz__api_str(body, "name", true, &name, NULL, &err) < 0 ||
      pz_merchant_name_check(name, &err) < 0 || url_get(c->base.api, body, m->webhook_url, &present, &err) < 0) {
    pz__api_fail(req, &err);
    return;
  }
  m->id = pz_id_next();
  m->owner_id = c->me;
  copy_str(m->name, sizeof(m->name), name);
  pz_merchant_key_new(c->api_key, m->api_key_hash);
  pz_merchant_secret_new(c->secret);
  memcpy(m->webhook_secret, c->secret, sizeof(c->secret));
  pz__api_write(&c->base);
}

/* ---- GET, PATCH /v1/merchants/me and POST /v1/merchants/me/keys ---- */

static int mine(pz_db_t *db, mctx_t *c, pz_err_t *err) {
  int rc = pz_store_merchant_by_owner(db, c->me, &c->merchant, err);
  if (rc == PZ_ENOTFOUND) rc = pz_err_set(err, PZ_ENOTFOUND, NULL, "you have no merchant account");
  return rc;
}

static int me_get_run(pz_db_t *db, pz_store_job_t *job) {
  mctx_t *c = job->data;
  int rc = mine(db, c, &job->err);
  if (rc == 0) c->base.out = json_pack("{s:o}", "merchant", merchant_json(&c->merchant));
  return rc;
}

static int me_patch_run(pz_db_t *db, pz_store_job_t *job) {
  mctx_t *c = job->data;
  pz_merchant_rec_t *m = &c->merchant;
  int rc = mine(db, c, &job->err);
  if (rc < 0) return rc;
  if (c->set_name) memcpy(m->name, c->new_name, sizeof(m->name));
  if (c->set_url) memcpy(m->webhook_url, c->new_url, sizeof(m->webhook_url));
  m->updated_at = c->now;
  if ((rc = pz_store_merchant_update(db, m, &job->err)) < 0) return rc;
  c->base.out = json_pack("{s:o}", "merchant", merchant_json(m));
  return 0;
}

static int key_rotate_run(pz_db_t *db, pz_store_job_t *job) {
  mctx_t *c = job->data;
  int rc = mine(db, c, &job->err);
  if (rc < 0) return rc;
  /* The old key stops working with this commit: a leaked key is shut out at once. */
  pz_merchant_key_new(c->api_key, c->merchant.api_key_hash);
  c->merchant.updated_at = c->now;
  if ((rc = pz_store_merchant_update(db, &c->merchant, &job->err)) < 0) return rc;
  c->base.status = 201;
  c->base.out = json_pack("{s:s}", "api_key", c->api_key);
  return 0;
}

static void me_get_authed(pz_req_t *req) { pz__api_read(&mctx_new(req, me_get_run)->base); }
static void key_rotate_authed(pz_req_t *req) { pz__api_write(&mctx_new(req, key_rotate_run)->base); }

static void me_patch_authed(pz_req_t *req) {
  pz_err_t err = {0};
  json_t *body;
  pz_str_t name;
  mctx_t *c = mctx_new(req, me_patch_run);
  if (pz__api_body(req, &body, &err) < 0 || pz__api_str(body, "name", false, &name, &c->set_name, &err) < 0 ||
      (c->set_name && pz_merchant_name_check(name, &err) < 0) ||
      url_get(c->base.api, body, c->new_url, &c->set_url, &err) < 0) {
    pz__api_fail(req, &err);
    return;
  }
  if (c->set_name) copy_str(c->new_name, sizeof(c->new_name), name);
  pz__api_write(&c->base);
}

/* ---- GET /v1/merchants/{id}/qr.svg and GET /v1/pay/{code}/qr.svg: public images ---- */

static void svg_done(pz__api_ctx_t *base) {
  mctx_t *c = (mctx_t *)base;
  if (base->job.rc < 0) {
    pz__api_fail(base->req, &base->job.err);
    return;
  }
  /* The code never changes: a printed sign may be cached. */
  pz_req_add_header(base->req, "Cache-Control", "public, max-age=3600");
  pz_req_add_header(base->req, "X-Content-Type-Options", "nosniff");
  pz_req_add_header(base->req, "Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'");
  pz_req_respond(base->req, 200, "image/svg+xml", c->svg.data, c->svg.len);
}

static int code_svg(mctx_t *c, pz_err_t *err) {
  char text[PZ_PAYCODE_MAX + 1];
  size_t n = c->code.kind == PZ_PAYCODE_MERCHANT ? pz_paycode_merchant(c->code.merchant_id, text)
                                                 : pz_paycode_order(c->code.order_code, text);
  return pz__api_qr_svg(pz_str_n(text, n), &c->svg, err);
}

static int qr_run(pz_db_t *db, pz_store_job_t *job) {
  mctx_t *c = job->data;
  bool has_order;
  int rc = pz_merchant_pay_preview(db, &c->code, &c->merchant, &c->order, &has_order, &job->err);
  return rc < 0 ? rc : code_svg(c, &job->err);
}

static void merchant_qr(pz_req_t *req) {
  pz_err_t err = {0};
  mctx_t *c = mctx_new(req, qr_run);
  c->code.kind = PZ_PAYCODE_MERCHANT;
  if (pz__api_param_id(req, 0, "merchant id", &c->code.merchant_id, &err) < 0) {
    pz__api_fail(req, &err);
    return;
  }
  c->base.done = svg_done;
  pz__api_read(&c->base);
}

static void pay_qr(pz_req_t *req) {
  pz_err_t err = {0};
  mctx_t *c = mctx_new(req, qr_run);
  if (pz_paycode_parse(req->params[0], &c->code, &err) < 0) {
    pz__api_fail(req, &err);
    return;
  }
  c->base.done = svg_done;
  pz__api_read(&c->base);
}

/* ---- POST /v1/merchant/orders ---- */

static int order_create_run(pz_db_t *db, pz_store_job_t *job) {
  mctx_t *c = job->data;
  bool found = false;
  /* Keys of a merchant are scoped by its id, in the wallet's table: ids
   * are unique across users and merchants. */
  pz_wallet_idem_rec_t idem;
  int rc = pz_wallet_idem_lookup(db, c->merchant.id, c->key, c->fp, &idem, &found, &job->err);
  if (rc < 0) return rc;
  if (found) return answer_replay(c, &idem, &job->err);
  pz_merchant_order_rec_t *o = &c->order;
  o->merchant_id = c->merchant.id;
  if ((rc = pz_store_merchant_order_insert(db, o, &job->err)) < 0) return rc;
  return answer_save(db, c, c->merchant.id, 201, json_pack("{s:o}", "order", order_json(o, c->now)), o->id, &job->err);
}

static void order_create_keyed(mctx_t *c) {
  pz_req_t *req = c->base.req;
  pz_err_t err = {0};
  json_t *body, *ttl;
  pz_str_t currency, description, ref;
  bool has_ref = false;
  pz_merchant_order_rec_t *o = &c->order;
  int64_t ttl_s = PZ_MERCHANT_ORDER_TTL_S;
  if (pz__api_body(req, &body, &err) < 0 || amount_get(body, true, &o->amount, &err) < 0 ||
      pz__api_str(body, "currency", true, &currency, NULL, &err) < 0 ||
      pz_wallet_currency_check(&c->cfg->currencies, currency, o->currency, &err) < 0 ||
      pz__api_str(body, "description", true, &description, NULL, &err) < 0 ||
      pz_merchant_description_check(description, &err) < 0 ||
      pz__api_str(body, "merchant_order_id", false, &ref, &has_ref, &err) < 0 ||
      (has_ref && pz_merchant_order_ref_check(ref, &err) < 0) ||
      pz__api_str(body, "idempotency_key", true, &c->key, NULL, &err) < 0 || pz_wallet_key_check(c->key, &err) < 0)
    goto fail;
  if ((ttl = json_object_get(body, "expires_in_s")) != NULL) {
    if (!json_is_integer(ttl) || json_integer_value(ttl) < 1 || json_integer_value(ttl) > PZ_MERCHANT_ORDER_TTL_MAX_S) {
      pz_err_set(&err, PZ_EINVAL, NULL, "expires_in_s must be a whole number of seconds from 1 to %d",
                 PZ_MERCHANT_ORDER_TTL_MAX_S);
      goto fail;
    }
    ttl_s = json_integer_value(ttl);
  }
  o->id = pz_id_next();
  pz_merchant_order_code_new(o->code);
  o->kind = PZ_ORDER_DYNAMIC;
  o->status = PZ_ORDER_PENDING;
  copy_str(o->description, sizeof(o->description), description);
  if (has_ref) copy_str(o->merchant_order_id, sizeof(o->merchant_order_id), ref);
  copy_str(o->idem_key, sizeof(o->idem_key), c->key);
  o->created_at = o->updated_at = c->now;
  o->expires_at = c->now + ttl_s * 1000;
  pz_wallet_fp_t fp;
  pz_wallet_fp_init(&fp, "merchant_order");
  pz_wallet_fp_int(&fp, o->amount);
  pz_wallet_fp_str(&fp, pz_str(o->currency));
  pz_wallet_fp_str(&fp, description);
  pz_wallet_fp_int(&fp, ttl_s);
  pz_wallet_fp_str(&fp, ref);
  pz_wallet_fp_final(&fp, c->fp);
  c->base.job.run = order_create_run;
  c->base.done = answer_done;
  pz__api_write(&c->base);
  return;
fail:
  pz__api_fail(req, &err);
}

/* ---- GET /v1/merchant/orders/{id} ---- */

static int order_get_run(pz_db_t *db, pz_store_job_t *job) {
  mctx_t *c = job->data;
  int rc = pz_merchant_order_get(db, &c->merchant, c->id, &c->order, &job->err);
  if (rc == 0) c->base.out = json_pack("{s:o}", "order", order_json(&c->order, pz_now_ms()));
  return rc;
}

static void order_get_keyed(mctx_t *c) {
  pz_err_t err = {0};
  if (pz__api_param_id(c->base.req, 0, "order id", &c->id, &err) < 0) {
    pz__api_fail(c->base.req, &err);
    return;
  }
  c->base.job.run = order_get_run;
  pz__api_read(&c->base);
}

/* ---- POST /v1/merchant/orders/{id}/refunds ---- */

static int refund_run(pz_db_t *db, pz_store_job_t *job) {
  mctx_t *c = job->data;
  bool found = false, keep = false;
  int64_t scope = c->merchant.id;
  pz_wallet_idem_rec_t idem;
  int rc = pz_wallet_idem_lookup(db, scope, c->key, c->fp, &idem, &found, &job->err);
  if (rc < 0) return rc;
  if (found) return answer_replay(c, &idem, &job->err);
  pz_merchant_refund_rec_t stored;
  rc = pz_merchant_refund(db, &c->merchant, &c->refund, c->now, &stored, &c->order, &keep, &job->err);
  if (rc < 0) return refused(db, c, scope, rc, keep, &job->err);
  if ((rc = webhook_queue(db, c, "order.refunded", "refund", refund_json(&stored), &job->err)) < 0) return rc;
  return answer_save(db, c, scope, 201,
                     json_pack("{s:o,s:o}", "refund", refund_json(&stored), "order", order_json(&c->order, c->now)),
                     stored.id, &job->err);
}

static void refund_keyed(mctx_t *c) {
  pz_req_t *req = c->base.req;
  pz_err_t err = {0};
  json_t *body;
  pz_str_t reason;
  pz_merchant_refund_rec_t *r = &c->refund;
  if (pz__api_param_id(req, 0, "order id", &r->order_id, &err) < 0 || pz__api_body(req, &body, &err) < 0 ||
      amount_get(body, true, &r->amount, &err) < 0 ||
      pz__api_str(body, "idempotency_key", true, &c->key, NULL, &err) < 0 || pz_wallet_key_check(c->key, &err) < 0 ||
      pz__api_str(body, "reason", false, &reason, NULL, &err) < 0 || pz_merchant_reason_check(reason, &err) < 0) {
    pz__api_fail(req, &err);
    return;
  }
  r->id = pz_id_next();
  copy_str(r->reason, sizeof(r->reason), reason);
  copy_str(r->idem_key, sizeof(r->idem_key), c->key);
  pz_wallet_fp_t fp;
  pz_wallet_fp_init(&fp, "merchant_refund");
  pz_wallet_fp_int(&fp, r->order_id);
  pz_wallet_fp_int(&fp, r->amount);
  pz_wallet_fp_str(&fp, reason);
  pz_wallet_fp_final(&fp, c->fp);
  c->base.job.run = refund_run;
  c->base.done = answer_done;
  pz__api_write(&c->base);
}

/* ---- GET /v1/pay/{code}: what the payer is about to pay ---- */

static int preview_run(pz_db_t *db, pz_store_job_t *job) {
  mctx_t *c = job->data;
  bool has_order = false;
  int rc = pz_merchant_pay_preview(db, &c->code, &c->merchant, &c->order, &has_order, &job->err);
  if (rc < 0) return rc;
  const pz_merchant_order_rec_t *o = &c->order;
  int64_t now = pz_now_ms();
  c->base.out = json_pack("{s:{s:o,s:o}}", "merchant", "id", pz__api_id_json(c->merchant.id), "name",
                          pz__api_text(c->merchant.name));
  json_t *out = c->base.out;
  json_object_set_new(out, "order_id", has_order ? pz__api_id_json(o->id) : json_null());
  json_object_set_new(out, "amount", has_order ? json_integer(o->amount) : json_null());
  json_object_set_new(out, "currency", has_order ? json_string(o->currency) : json_null());
  json_object_set_new(out, "description", has_order ? pz__api_text(o->description) : json_null());
  json_object_set_new(out, "status", json_string(has_order ? order_status_names[order_status(o, now)] : "open"));
  json_object_set_new(out, "expires_at", has_order ? pz__api_time_json(o->expires_at) : json_null());
  json_object_set_new(out, "own", json_boolean(c->merchant.owner_id == c->me));
  return 0;
}

static void preview_authed(pz_req_t *req) {
  pz_err_t err = {0};
  mctx_t *c = mctx_new(req, preview_run);
  if (pz_paycode_parse(req->params[0], &c->code, &err) < 0) {
    pz__api_fail(req, &err);
    return;
  }
  pz__api_read(&c->base);
}

/* ---- POST /v1/pay ---- */

static int pay_run(pz_db_t *db, pz_store_job_t *job) {
  mctx_t *c = job->data;
  bool found = false, keep = false;
  pz_wallet_idem_rec_t idem;
  int rc = pz_wallet_idem_lookup(db, c->me, c->key, c->fp, &idem, &found, &job->err);
  if (rc < 0) return rc;
  if (found) return answer_replay(c, &idem, &job->err);
  rc = pz_merchant_pay(db, c->cfg, &c->pay, c->pin, c->now, &c->payment, &c->order, &c->merchant, &c->retry_after_s,
                       &keep, &job->err);
  if (rc < 0) return refused(db, c, c->me, rc, keep, &job->err);
  json_t *hook_payment =
      json_pack("{s:o,s:I,s:s,s:o}", "id", pz__api_id_json(c->payment.id), "amount", (json_int_t)c->payment.amount,
                "currency", c->payment.currency, "created_at", pz__api_time_json(c->now));
  if ((rc = webhook_queue(db, c, "order.paid", "payment", hook_payment, &job->err)) < 0) return rc;
  return answer_save(db, c, c->me, 201, json_pack("{s:o}", "payment", payment_json(&c->payment, &c->merchant)),
                     c->payment.id, &job->err);
}

static void pay_authed(pz_req_t *req) {
  pz_err_t err = {0};
  json_t *body;
  pz_str_t code, currency;
  mctx_t *c = mctx_new(req, pay_run);
  pz_merchant_pay_t *p = &c->pay;
  if (pz__api_body(req, &body, &err) < 0 || pz__api_str(body, "code", true, &code, NULL, &err) < 0 ||
      pz_paycode_parse(code, &p->code, &err) < 0 || amount_get(body, false, &p->amount, &err) < 0 ||
      pz__api_str(body, "currency", true, &currency, NULL, &err) < 0 ||
      pz_wallet_currency_check(&c->cfg->currencies, currency, p->currency, &err) < 0 ||
      pz__api_str(body, "pin", true, &c->pin, NULL, &err) < 0 || pz_wallet_pin_check(c->pin, &err) < 0 ||
      pz__api_str(body, "idempotency_key", true, &c->key, NULL, &err) < 0 || pz_wallet_key_check(c->key, &err) < 0)
    goto fail;
  if (p->code.kind == PZ_PAYCODE_MERCHANT && p->amount == 0) {
    pz_err_set(&err, PZ_EINVAL, NULL, "amount is required: this code leaves the amount to the payer");
    goto fail;
  }
  p->payer_id = c->me;
  p->payment_id = pz_id_next();
  p->order_id = pz_id_next();
  copy_str(p->idem_key, sizeof(p->idem_key), c->key);
  /* The PIN is no part of the request's identity: a retry with the PIN typed again is the same request. */
  pz_wallet_fp_t fp;
  pz_wallet_fp_init(&fp, "merchant_pay");
  pz_wallet_fp_str(&fp, code);
  pz_wallet_fp_int(&fp, p->amount);
  pz_wallet_fp_str(&fp, pz_str(p->currency));
  pz_wallet_fp_final(&fp, c->fp);
  c->base.done = answer_done;
  pz__api_write(&c->base);
  return;
fail:
  pz__api_fail(req, &err);
}

/* ---- the webhook dispatcher ----
 * A timer looks at the outbox every second (a read), and at once after a
 * payment or refund commits. Due rows are claimed in a write job that
 * moves their next_at past the delivery's timeout (a lease, so that no row
 * is sent twice at once, even by two nodes), then posted; each outcome is
 * written in a job of its own. At least once: a crash between the
 * merchant's 2xx and that write sends it again, and merchants deduplicate
 * by the webhook's id. */

enum { PHASE_IDLE = 0, PHASE_CHECK = 1, PHASE_CLAIM = 2 };

typedef struct delivery_s delivery_t;

struct pz__api_hooks_s {
  uv_timer_t timer;
  pz_api_t *api;
  pz_store_job_t job;
  int phase;
  bool found, again, closing, closed;
  unsigned limit, n_flight;
  int64_t now;
  delivery_t *claimed; /* by the claim job, not yet started */
  delivery_t *flight;  /* posts under way */
};

struct delivery_s {
  pz_store_job_t job;
  struct pz__api_hooks_s *h;
  pz_httpc_t *http;
  int rc, status;
  delivery_t *next, **prevp;
  pz_merchant_webhook_rec_t w;
};

typedef struct pz__api_hooks_s hooks_t;

static void hooks_maybe_free(hooks_t *h) {
  if (h->closed && h->phase == PHASE_IDLE && h->n_flight == 0) pz_free(h);
}

static void flight_unlink(delivery_t *d) {
  if (d->prevp) {
    *d->prevp = d->next;
    if (d->next) d->next->prevp = d->prevp;
  }
  d->next = NULL;
  d->prevp = NULL;
}

/* Ends delivery d (its outcome written or dropped). */
static void delivery_end(delivery_t *d) {
  hooks_t *h = d->h;
  pz_api_t *api = h->api;
  flight_unlink(d);
  pz_free(d);
  h->n_flight--;
  hooks_maybe_free(h);
  pz__api_unbusy(api);
}

static int record_run(pz_db_t *db, pz_store_job_t *job) {
  delivery_t *d = job->data;
  return pz_merchant_webhook_result(db, d->w.id, d->w.attempts, d->w.created_at, d->rc == 0 ? d->status : 0,
                                    pz_now_ms(), &job->err);
}

static void record_done(pz_store_job_t *job) {
  delivery_t *d = job->data;
  if (job->rc < 0)
    PZ_LOG(PZ_LOG_ERROR, NULL, "recording a webhook delivery failed", "webhook=%lld error=%s", (long long)d->w.id,
           pz_err_message(&job->err));
  delivery_end(d);
}

static void delivery_record(delivery_t *d) {
  hooks_t *h = d->h;
  bool ok = d->rc == 0 && d->status >= 200 && d->status <= 299;
  pz_metrics_count(ok ? "webhooks_delivered" : "webhook_attempts_failed", 1);
  if (!ok)
    PZ_LOG(PZ_LOG_WARN, NULL, "webhook delivery failed", "webhook=%lld merchant=%lld attempt=%d status=%d error=%s",
           (long long)d->w.id, (long long)d->w.merchant_id, d->w.attempts, d->rc == 0 ? d->status : 0,
           d->rc == 0                ? "non-2xx answer"
           : d->rc == PZ_EFORBIDDEN ? "the URL's host resolves to private or local addresses only"
                                    : pz_strerror(d->rc));
  if (h->closing) {
    /* The lease runs out and a later start sends it again. */
    delivery_end(d);
    return;
  }
  d->job = (pz_store_job_t){.run = record_run, .done = record_done, .data = d};
  if (pz_store_write(h->api->st, &d->job) < 0) delivery_end(d);
}

static void posted(pz_httpc_t *http, int rc, int status, void *data) {
  delivery_t *d = data;
  d->http = NULL;
  d->rc = rc;
  d->status = status;
  delivery_record(d);
}

static void delivery_start(hooks_t *h, delivery_t *d) {
  d->next = h->flight;
  if (h->flight) h->flight->prevp = &d->next;
  h->flight = d;
  d->prevp = &h->flight;
  char sig[PZ_WEBHOOK_SIGNATURE_MAX];
  pz_str_t body = pz_str_n(d->w.body, d->w.body_len);
  /* Signed at each attempt with its own time, so that a receiver can
   * refuse old signatures (replays) without refusing late retries. */
  pz_merchant_sign(d->w.secret, pz_now_ms() / 1000, body, sig);
  char id[24];
  pz_id_format(d->w.id, id);
  const pz_httpc_header_t headers[] = {{"Plaza-Signature", sig}, {"Plaza-Webhook-Id", id}, {"Plaza-Event", d->w.type}};
  pz_err_t err = {0};
  unsigned flags = h->api->cfg.private_webhooks ? 0 : PZ_HTTPC_PUBLIC_ONLY;
  int rc = d->w.url[0] ? pz_httpc_post(h->api->loop, pz_str(d->w.url), headers, 3, body, PZ_WEBHOOK_TIMEOUT_MS, flags,
                                       posted, d, &d->http, &err)
                       : PZ_EINVAL; /* the merchant removed its URL: counted as a failed attempt */
  sodium_memzero(d->w.secret, sizeof(d->w.secret));
  if (rc < 0) {
    d->rc = rc;
    delivery_record(d);
  }
}

typedef struct {
  hooks_t *h;
  pz_db_t *db;
  int64_t now;
} claim_arg_t;

/* Takes one due row: its lease and attempt are written in the claim job. Writer. */
static int claim_row(void *arg, const pz_merchant_webhook_rec_t *w, pz_err_t *err) {
  claim_arg_t *a = arg;
  int rc = pz_store_merchant_webhook_set(a->db, w->id, PZ_WEBHOOK_PENDING, w->attempts + 1,
                                         a->now + PZ_WEBHOOK_LEASE_MS, w->last_status, a->now, err);
  if (rc < 0) return rc;
  delivery_t *d = pz_calloc(1, sizeof(*d));
  d->h = a->h;
  d->w = *w;
  d->w.attempts++;
  d->next = a->h->claimed;
  a->h->claimed = d;
  return 0;
}

static void claimed_free(hooks_t *h) {
  while (h->claimed) {
    delivery_t *d = h->claimed;
    h->claimed = d->next;
    sodium_memzero(d->w.secret, sizeof(d->w.secret));
    pz_free(d);
  }
}

static int claim_run(pz_db_t *db, pz_store_job_t *job) {
  hooks_t *h = job->data;
  claim_arg_t a = {h, db, h->now};
  int rc = pz_store_merchant_webhooks_due(db, h->now, h->limit, claim_row, &a, &job->err);
  /* A failed job is rolled back: its leases were not written, so its rows are not sent. */
  if (rc < 0) claimed_free(h);
  return rc;
}

static int check_run(pz_db_t *db, pz_store_job_t *job) {
  hooks_t *h = job->data;
  return pz_store_merchant_webhook_any_due(db, h->now, &h->found, &job->err);
}

static void hooks_tick(hooks_t *h);

static void hooks_job_done(pz_store_job_t *job) {
  hooks_t *h = job->data;
  pz_api_t *api = h->api;
  int phase = h->phase;
  h->phase = PHASE_IDLE;
  if (job->rc < 0) {
    PZ_LOG(PZ_LOG_ERROR, NULL, "reading the webhook outbox failed", "error=%s", pz_err_message(&job->err));
    claimed_free(h);
  } else if (phase == PHASE_CHECK && h->found && !h->closing) {
    h->again = true; /* claim now */
  } else if (phase == PHASE_CLAIM) {
    while (h->claimed) {
      delivery_t *d = h->claimed;
      h->claimed = d->next;
      if (h->closing) {
        sodium_memzero(d->w.secret, sizeof(d->w.secret));
        pz_free(d);
        continue;
      }
      h->n_flight++;
      pz__api_busy(api);
      delivery_start(h, d);
    }
  }
  bool again = h->again && !h->closing;
  h->again = false;
  if (again) {
    if (phase == PHASE_CHECK && h->found) {
      h->phase = PHASE_CLAIM;
      h->now = pz_now_ms();
      h->limit = HOOKS_IN_FLIGHT - h->n_flight;
      h->job = (pz_store_job_t){.run = claim_run, .done = hooks_job_done, .data = h};
      if (pz_store_write(api->st, &h->job) < 0)
        h->phase = PHASE_IDLE;
      else
        pz__api_busy(api);
    } else {
      hooks_tick(h);
    }
  }
  hooks_maybe_free(h);
  pz__api_unbusy(api);
}

/* Looks at the outbox, unless a look is under way (then once more after it) or enough is in flight. */
static void hooks_tick(hooks_t *h) {
  if (h->closing) return;
  if (h->phase != PHASE_IDLE) {
    h->again = true;
    return;
  }
  if (h->n_flight >= HOOKS_IN_FLIGHT) return;
  h->phase = PHASE_CHECK;
  h->found = false;
  h->now = pz_now_ms();
  h->job = (pz_store_job_t){.run = check_run, .done = hooks_job_done, .data = h};
  if (pz_store_read(h->api->st, &h->job) < 0) {
    h->phase = PHASE_IDLE; /* the store is closing */
    return;
  }
  pz__api_busy(h->api);
}

static void on_hooks_timer(uv_timer_t *t) { hooks_tick(t->data); }

static void hooks_kick(pz_api_t *api) {
  if (api->hooks) hooks_tick(api->hooks);
}

static void hooks_closed(uv_handle_t *handle) {
  hooks_t *h = handle->data;
  h->closed = true;
  hooks_maybe_free(h);
}

void pz__api_merchants_start(pz_api_t *api) {
  if (api->wallet == NULL) return;
  hooks_t *h = pz_calloc(1, sizeof(*h));
  h->api = api;
  uv_timer_init(api->loop, &h->timer);
  h->timer.data = h;
  /* At once for what was due while the server was down, then every second. */
  uv_timer_start(&h->timer, on_hooks_timer, 0, HOOKS_POLL_MS);
  uv_unref((uv_handle_t *)&h->timer);
  api->hooks = h;
}

void pz__api_merchants_stop(pz_api_t *api) {
  hooks_t *h = api->hooks;
  if (h == NULL) return;
  api->hooks = NULL;
  h->closing = true;
  uv_timer_stop(&h->timer);
  uv_close((uv_handle_t *)&h->timer, hooks_closed);
  /* Posts under way stop now; their rows go out again after the lease. */
  while (h->flight) {
    delivery_t *d = h->flight;
    flight_unlink(d);
    if (d->http) pz_httpc_cancel(d->http); /* posted() ends d */
  }
}

/* ---- routes ---- */

static void create(pz_req_t *req) { pz__api_authed(req, create_authed); }
static void me_get(pz_req_t *req) { pz__api_authed(req, me_get_authed); }
static void me_patch(pz_req_t *req) { pz__api_authed(req, me_patch_authed); }
static void key_rotate(pz_req_t *req) { pz__api_authed(req, key_rotate_authed); }
static void preview(pz_req_t *req) { pz__api_authed(req, preview_authed); }
static void pay(pz_req_t *req) { pz__api_authed(req, pay_authed); }
static void order_create(pz_req_t *req) { key_authed(req, order_create_keyed); }
static void order_get(pz_req_t *req) { key_authed(req, order_get_keyed); }
static void refund(pz_req_t *req) { key_authed(req, refund_keyed); }

void pz__api_merchants_routes(pz_api_t *api, pz_router_t *r) {
  if (api->wallet == NULL) return;
  pz_router_add(r, PZ_HTTP_POST, "/v1/merchants", create, api);
  pz_router_add(r, PZ_HTTP_GET, "/v1/merchants/me", me_get, api);
  pz_router_add(r, PZ_HTTP_PATCH, "/v1/merchants/me", me_patch, api);
  pz_router_add(r, PZ_HTTP_POST, "/v1/merchants/me/keys", key_rotate, api);
  pz_router_add(r, PZ_HTTP_GET, "/v1/merchants/{id}/qr.svg", merchant_qr, api);
  pz_router_add(r, PZ_HTTP_POST, "/v1/merchant/orders", order_create, api);
  pz_router_add(r, PZ_HTTP_GET, "/v1/merchant/orders/{id}", order_get, api);
  pz_router_add(r, PZ_HTTP_POST, "/v1/merchant/orders/{id}/refunds", refund, api);
  pz_router_add(r, PZ_HTTP_GET, "/v1/pay/{code}", preview, api);
  pz_router_add(r, PZ_HTTP_GET, "/v1/pay/{code}/qr.svg", pay_qr, api);
  pz_router_add(r, PZ_HTTP_POST, "/v1/pay", pay, api);
}
