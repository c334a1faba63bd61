/* Merchants inside write jobs: accounts, QR payments from payer to owner, refunds back, and the webhook outbox; plus
 * payment codes, API keys and webhook signatures. */
#include "plaza/merchant.h"
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include "plaza/id.h"

#define RANDOM_BYTES 32 /* API keys and webhook secrets: 256 bits */
#define CODE_BYTES 16   /* order codes: 128 bits, not guessable */

_Static_assert(sodium_base64_ENCODED_LEN(RANDOM_BYTES, sodium_base64_VARIANT_URLSAFE_NO_PADDING) == 43 + 1,
               "keys and secrets are 43 characters of base64url");
_Static_assert(sodium_base64_ENCODED_LEN(CODE_BYTES, sodium_base64_VARIANT_URLSAFE_NO_PADDING) ==
                   PZ_MERCHANT_CODE_LEN + 1,
               "order codes are PZ_MERCHANT_CODE_LEN characters of base64url");

static bool is_b64url(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* ---- payment codes ---- */

int pz_paycode_parse(pz_str_t s, pz_paycode_t *out, pz_err_t *err) {
  static const char prefix[] = PZ_PAYCODE_PREFIX;
  const size_t plen = sizeof(prefix) - 1;
  memset(out, 0, sizeof(*out));
  if (s.len <= plen + 2 || s.len > PZ_PAYCODE_MAX || memcmp(s.ptr, prefix, plen) != 0 || s.ptr[plen + 1] != '=')
    goto bad;
  const char *v = s.ptr + plen + 2;
  size_t vlen = s.len - plen - 2;
  switch (s.ptr[plen]) {
    case 'm':
      /* One spelling per code: no leading zeros. */
      if (v[0] == '0' || pz_id_parse(v, vlen, &out->merchant_id) < 0) goto bad;
      out->kind = PZ_PAYCODE_MERCHANT;
      return 0;
    case 'o':
      if (vlen != PZ_MERCHANT_CODE_LEN) goto bad;
      for (size_t i = 0; i < vlen; i++)
        if (!is_b64url(v[i])) goto bad;
      memcpy(out->order_code, v, vlen);
      out->order_code[vlen] = '\0';
      out->kind = PZ_PAYCODE_ORDER;
      return 0;
    default:
      break;
  }
bad:
  memset(out, 0, sizeof(*out));
  return pz_err_set(err, PZ_EINVAL, NULL, "code must be a Plaza payment code, like plaza:pay?m=123");
}

size_t pz_paycode_merchant(int64_t merchant_id, char out[PZ_PAYCODE_MAX + 1]) {
  return (size_t)snprintf(out, PZ_PAYCODE_MAX + 1, PZ_PAYCODE_PREFIX "m=%" PRId64, merchant_id);
}

size_t pz_paycode_order(const char *order_code, char out[PZ_PAYCODE_MAX + 1]) {
  return (size_t)snprintf(out, PZ_PAYCODE_MAX + 1, PZ_PAYCODE_PREFIX "o=%s", order_code);
}

/* ---- input rules ---- */

/* UTF-8 of at most max_chars code points without controls; *blank tells
 * whether it is only spaces (or empty). */
static int text_check(pz_str_t s, const char *field, unsigned max_chars, bool *blank, pz_err_t *err) {
  if (!pz_utf8_valid(s.ptr, s.len)) return pz_err_set(err, PZ_EUTF8, NULL, "%s is not valid UTF-8", field);
  const unsigned char *p = (const unsigned char *)s.ptr, *end = p + s.len;
  unsigned n = 0;
  *blank = true;
  while (p < end) {
    unsigned cp = pz_utf8_next(&p);
    if (pz_cp_is_control(cp)) return pz_err_set(err, PZ_EINVAL, NULL, "%s must not contain control characters", field);
    if (!pz_cp_is_space(cp)) *blank = false;
    if (++n > max_chars) return pz_err_set(err, PZ_EINVAL, NULL, "%s is longer than %u characters", field, max_chars);
  }
  return 0;
}

int pz_merchant_name_check(pz_str_t name, pz_err_t *err) {
  bool blank;
  int rc = text_check(name, "name", PZ_MERCHANT_NAME_MAX_CHARS, &blank, err);
  if (rc == 0 && blank)
    rc = pz_err_set(err, PZ_EINVAL, NULL, "name must be 1 to %d characters, not only spaces",
                    PZ_MERCHANT_NAME_MAX_CHARS);
  return rc;
}

int pz_merchant_description_check(pz_str_t s, pz_err_t *err) {
  bool blank;
  int rc = text_check(s, "description", PZ_WALLET_NOTE_MAX_CHARS, &blank, err);
  if (rc == 0 && blank)
    rc = pz_err_set(err, PZ_EINVAL, NULL, "description must be 1 to %d characters, not only spaces",
                    PZ_WALLET_NOTE_MAX_CHARS);
  return rc;
}

int pz_merchant_reason_check(pz_str_t s, pz_err_t *err) {
  bool blank;
  return text_check(s, "reason", PZ_MERCHANT_REASON_MAX_CHARS, &blank, err);
}

int pz_merchant_order_ref_check(pz_str_t s, pz_err_t *err) {
  bool ok = s.len >= 1 && s.len <= PZ_MERCHANT_ORDER_REF_MAX;
  for (size_t i = 0; ok && i < s.len; i++)
    ok = s.ptr[i] >= 0x20 && s.ptr[i] <= 0x7e;
  return ok ? 0
            : pz_err_set(err, PZ_EINVAL, NULL, "merchant_order_id must be 1 to %d characters of printable ASCII",
                         PZ_MERCHANT_ORDER_REF_MAX);
}

/* ---- secrets ---- */

static void random_b64(char *out, size_t cap, size_t n_bytes) {
  unsigned char raw[RANDOM_BYTES];
  PZ_ASSERT(n_bytes <= sizeof(raw));
  randombytes_buf(raw, n_bytes);
  sodium_bin2base64(out, cap, raw, n_bytes, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  sodium_memzero(raw, sizeof(raw));
}

static void key_hash(const char *key, size_t len, uint8_t hash[PZ_MERCHANT_KEY_HASH_LEN]) {
  /* A plain hash suffices: 256 random bits cannot be found from it by
   * trying candidates, unlike a password. */
  crypto_generichash(hash, PZ_MERCHANT_KEY_HASH_LEN, (const unsigned char *)key, len, NULL, 0);
}

void pz_merchant_key_new(char key[PZ_MERCHANT_KEY_LEN + 1], uint8_t hash[PZ_MERCHANT_KEY_HASH_LEN]) {
  memcpy(key, PZ_MERCHANT_KEY_PREFIX, 4);
  random_b64(key + 4, PZ_MERCHANT_KEY_LEN + 1 - 4, RANDOM_BYTES);
  key_hash(key, PZ_MERCHANT_KEY_LEN, hash);
}

int pz_merchant_key_hash(pz_str_t key, uint8_t hash[PZ_MERCHANT_KEY_HASH_LEN]) {
  if (key.len != PZ_MERCHANT_KEY_LEN || memcmp(key.ptr, PZ_MERCHANT_KEY_PREFIX, 4) != 0) return PZ_EUNAUTH;
  for (size_t i = 4; i < key.len; i++)
    if (!is_b64url(key.ptr[i])) return PZ_EUNAUTH;
  key_hash(key.ptr, key.len, hash);
  return 0;
}

void pz_merchant_secret_new(char secret[PZ_MERCHANT_SECRET_LEN + 1]) {
  memcpy(secret, PZ_MERCHANT_SECRET_PREFIX, 6);
  random_b64(secret + 6, PZ_MERCHANT_SECRET_LEN + 1 - 6, RANDOM_BYTES);
}

void pz_merchant_order_code_new(char code[PZ_MERCHANT_CODE_LEN + 1]) {
  random_b64(code, PZ_MERCHANT_CODE_LEN + 1, CODE_BYTES);
}

void pz_merchant_sign(const char *secret, int64_t t, pz_str_t body, char out[PZ_WEBHOOK_SIGNATURE_MAX]) {
  char ts[24];
  int tlen = snprintf(ts, sizeof(ts), "%" PRId64, t);
  unsigned char mac[crypto_auth_hmacsha256_BYTES];
  crypto_auth_hmacsha256_state h;
  crypto_auth_hmacsha256_init(&h, (const unsigned char *)secret, strlen(secret));
  crypto_auth_hmacsha256_update(&h, (const unsigned char *)ts, (unsigned long long)tlen);
  crypto_auth_hmacsha256_update(&h, (const unsigned char *)".", 1);
  crypto_auth_hmacsha256_update(&h, (const unsigned char *)body.ptr, body.len);
  crypto_auth_hmacsha256_final(&h, mac);
  sodium_memzero(&h, sizeof(h));
  char hex[2 * sizeof(mac) + 1];
  sodium_bin2hex(hex, sizeof(hex), mac, sizeof(mac));
  snprintf(out, PZ_WEBHOOK_SIGNATURE_MAX, "t=%s,v1=%s", ts, hex);
}

int64_t pz_merchant_backoff_ms(int attempts) {
  if (attempts < 1) attempts = 1;
  if (attempts > 40) return PZ_WEBHOOK_BACKOFF_MAX_MS;
  int64_t ms = (int64_t)PZ_WEBHOOK_BACKOFF_FIRST_MS << (attempts - 1);
  return ms > PZ_WEBHOOK_BACKOFF_MAX_MS ? PZ_WEBHOOK_BACKOFF_MAX_MS : ms;
}

/* ---- merchants ---- */

int pz_merchant_create(pz_db_t *db, const pz_merchant_rec_t *m, int64_t now, pz_err_t *err) {
  pz_merchant_rec_t *cur = pz_malloc(sizeof(*cur));
  int rc = pz_store_merchant_by_owner(db, m->owner_id, cur, err);
  pz_free(cur);
  if (rc == 0) return pz_err_set(err, PZ_ECONFLICT, "merchant_exists", "you have a merchant account already");
  if (rc != PZ_ENOTFOUND) return rc;
  *err = (pz_err_t){0};
  pz_merchant_rec_t rec = *m;
  rec.created_at = rec.updated_at = now;
  return pz_store_merchant_insert(db, &rec, err);
}

/* ---- payments ---- */

static int unknown_code(pz_err_t *err) {
  return pz_err_set(err, PZ_ENOTFOUND, NULL, "no merchant or order has this payment code");
}

int pz_merchant_pay_preview(pz_db_t *db, const pz_paycode_t *code, pz_merchant_rec_t *merchant,
                            pz_merchant_order_rec_t *order, bool *has_order, pz_err_t *err) {
  int rc;
  *has_order = code->kind == PZ_PAYCODE_ORDER;
  if (*has_order) {
    rc = pz_store_merchant_order_by_code(db, code->order_code, order, err);
    if (rc == 0) rc = pz_store_merchant_get(db, order->merchant_id, merchant, err);
  } else {
    rc = pz_store_merchant_get(db, code->merchant_id, merchant, err);
  }
  return rc == PZ_ENOTFOUND ? unknown_code(err) : rc;
}

int pz_merchant_pay(pz_db_t *db, const pz_wallet_config_t *cfg, const pz_merchant_pay_t *p, pz_str_t pin, int64_t now,
                    pz_merchant_payment_rec_t *payment, pz_merchant_order_rec_t *order, pz_merchant_rec_t *merchant,
                    unsigned *retry_after_s, bool *keep, pz_err_t *err) {
  /* Until the money moves, a failure has written nothing but, at most,
   * the PIN's state. */
  *keep = true;
  bool has_order = false;
  int rc = pz_merchant_pay_preview(db, &p->code, merchant, order, &has_order, err);
  if (rc < 0) return rc;
  if (merchant->owner_id == p->payer_id)
    return pz_err_set(err, PZ_EINVAL, NULL, "you cannot pay your own merchant account");
  if (has_order) {
    if (strcmp(order->currency, p->currency) != 0)
      return pz_err_set(err, PZ_EINVAL, NULL, "this order is to be paid in %s", order->currency);
    if (p->amount != 0 && p->amount != order->amount)
      return pz_err_set(err, PZ_EINVAL, NULL, "this order is for %" PRId64 "; leave amount out or send that",
                        order->amount);
    if (order->status != PZ_ORDER_PENDING)
      return pz_err_set(err, PZ_ECONFLICT, "order_paid", "this order was paid already");
    if (order->expires_at <= now) {
      rc = pz_err_set(err, PZ_ECONFLICT, "order_expired", "this order expired; ask the shop for a new code");
      err->status = 410;
      return rc;
    }
  } else {
    if (p->amount == 0)
      return pz_err_set(err, PZ_EINVAL, NULL, "amount is required: this code leaves the amount to the payer");
    memset(order, 0, sizeof(*order));
    order->id = p->order_id;
    order->merchant_id = merchant->id;
    pz_merchant_order_code_new(order->code);
    order->kind = PZ_ORDER_STATIC;
    order->status = PZ_ORDER_PENDING;
    order->amount = p->amount;
    memcpy(order->currency, p->currency, sizeof(order->currency));
    memcpy(order->idem_key, p->idem_key, sizeof(order->idem_key));
    order->created_at = order->expires_at = order->updated_at = now;
  }

  /* Checked before anything moves, so that the refusal is kept as the
   * key's answer; pz_wallet_move enforces balance and limit again. */
  pz_wallet_account_rec_t from, to;
  rc = pz_wallet_spend_check(db, cfg, p->payer_id, order->currency, order->amount, pin, now, &from, retry_after_s, err);
  if (rc < 0) return rc;
  *keep = false;

  bool changed = false;
  if (!has_order && (rc = pz_store_merchant_order_insert(db, order, err)) < 0) return rc;
  if ((rc = pz_store_merchant_order_pay(db, order->id, p->payer_id, p->payment_id, now, &changed, err)) < 0) return rc;
  PZ_ASSERT(changed); /* read pending in this same job */
  order->status = PZ_ORDER_PAID;
  order->paid_amount = order->amount;
  order->payer_id = p->payer_id;
  order->payment_id = p->payment_id;
  order->paid_at = order->updated_at = now;

  memset(payment, 0, sizeof(*payment));
  payment->id = p->payment_id;
  payment->order_id = order->id;
  payment->merchant_id = merchant->id;
  payment->payer_id = p->payer_id;
  payment->amount = order->amount;
  memcpy(payment->currency, order->currency, sizeof(payment->currency));
  memcpy(payment->idem_key, p->idem_key, sizeof(payment->idem_key));
  payment->created_at = now;
  /* The merchant's money is its owner's: one balance, one withdrawal path. */
  if ((rc = pz_store_merchant_payment_insert(db, payment, err)) < 0 ||
      (rc = pz_wallet_account(db, merchant->owner_id, PZ_ACCT_USER, order->currency, now, &to, err)) < 0)
    return rc;
  return pz_wallet_move(db, pz_id_next(), PZ_TXN_MERCHANT_PAYMENT, payment->id, &from, &to, order->amount, now, err);
}

int pz_merchant_order_get(pz_db_t *db, const pz_merchant_rec_t *m, int64_t id, pz_merchant_order_rec_t *out,
                          pz_err_t *err) {
  int rc = pz_store_merchant_order_get(db, id, out, err);
  /* Another merchant's order does not exist, as far as this one can tell. */
  if (rc == PZ_ENOTFOUND || (rc == 0 && out->merchant_id != m->id))
    return pz_err_set(err, PZ_ENOTFOUND, NULL, "no such order");
  return rc;
}

int pz_merchant_refund(pz_db_t *db, const pz_merchant_rec_t *m, const pz_merchant_refund_rec_t *r, int64_t now,
                       pz_merchant_refund_rec_t *out, pz_merchant_order_rec_t *order, bool *keep, pz_err_t *err) {
  *keep = true;
  int rc = pz_merchant_order_get(db, m, r->order_id, order, err);
  if (rc < 0) return rc;
  if (order->status == PZ_ORDER_PENDING)
    return pz_err_set(err, PZ_ECONFLICT, "order_not_paid", "this order has not been paid");
  int64_t left = order->paid_amount - order->refunded_amount;
  if (r->amount > left)
    return pz_err_set(err, PZ_EUNPROCESSABLE, "refund_exceeds_payment",
                      "at most %" PRId64 " %s of this payment is left to refund", left, order->currency);
  pz_wallet_account_rec_t from, to;
  rc = pz_store_wallet_account_get(db, m->owner_id, PZ_ACCT_USER, order->currency, &from, err);
  if (rc == PZ_ENOTFOUND || (rc == 0 && from.balance < r->amount))
    return pz_err_set(err, PZ_EUNPROCESSABLE, "insufficient_funds",
                      "the merchant's %s balance is too low for this refund", order->currency);
  if (rc < 0) return rc;
  *keep = false;

  bool changed = false;
  if ((rc = pz_store_merchant_order_refund(db, order->id, r->amount, now, &changed, err)) < 0) return rc;
  PZ_ASSERT(changed); /* checked against the row read in this same job */
  order->refunded_amount += r->amount;
  if (order->refunded_amount == order->paid_amount) order->status = PZ_ORDER_REFUNDED;
  order->updated_at = now;

  *out = *r;
  out->merchant_id = m->id;
  out->payer_id = order->payer_id;
  memcpy(out->currency, order->currency, sizeof(out->currency));
  out->created_at = now;
  if ((rc = pz_store_merchant_refund_insert(db, out, err)) < 0 ||
      (rc = pz_wallet_account(db, order->payer_id, PZ_ACCT_USER, order->currency, now, &to, err)) < 0)
    return rc;
  return pz_wallet_move(db, pz_id_next(), PZ_TXN_MERCHANT_REFUND, out->id, &from, &to, r->amount, now, err);
}

/* ---- the webhook outbox ---- */

int pz_merchant_webhook_queue(pz_db_t *db, const pz_merchant_rec_t *m, pz_merchant_webhook_rec_t *w, int64_t now,
                              bool *queued, pz_err_t *err) {
  *queued = false;
  if (m->webhook_url[0] == '\0') return 0;
  if (w->body_len > PZ_MERCHANT_WEBHOOK_BODY_MAX) return pz_err_set(err, PZ_EIO, NULL, "webhook body too large");
  w->merchant_id = m->id;
  w->status = PZ_WEBHOOK_PENDING;
  w->next_at = now;
  w->created_at = now;
  int rc = pz_store_merchant_webhook_insert(db, w, now, err);
  *queued = rc == 0;
  return rc;
}

int pz_merchant_webhook_result(pz_db_t *db, int64_t id, int attempts, int64_t created_at, int http_status, int64_t now,
                               pz_err_t *err) {
  if (http_status >= 200 && http_status <= 299)
    return pz_store_merchant_webhook_set(db, id, PZ_WEBHOOK_DELIVERED, attempts, now, http_status, now, err);
  int64_t next = now + pz_merchant_backoff_ms(attempts);
  if (next - created_at > PZ_WEBHOOK_GIVE_UP_MS)
    return pz_store_merchant_webhook_set(db, id, PZ_WEBHOOK_FAILED, attempts, now, http_status, now, err);
  return pz_store_merchant_webhook_set(db, id, PZ_WEBHOOK_PENDING, attempts, next, http_status, now, err);
}

/* ---- verification ---- */

typedef struct {
  FILE *out;
  unsigned n;
} report_t;

static int violation(void *arg, const pz_wallet_violation_t *v, pz_err_t *err) {
  (void)err;
  report_t *r = arg;
  r->n++;
  switch (v->kind) {
    case PZ_VERIFY_ORDER_TOTALS:
      fprintf(r->out, "order %" PRId64 ": paid_amount %" PRId64 " but its payments sum to %" PRId64 " %s\n", v->id,
              v->a, v->b, v->currency);
      break;
    case PZ_VERIFY_ORDER_REFUNDS:
      fprintf(r->out,
              "order %" PRId64 ": refunded_amount %" PRId64 " but its refunds sum to %" PRId64
              " %s, or it passes what was paid\n",
              v->id, v->a, v->b, v->currency);
      break;
    case PZ_VERIFY_PAYMENT_LEDGER:
      fprintf(r->out, "merchant payment or refund %" PRId64 " has %" PRId64 " ledger transactions, not 1\n", v->id,
              v->a);
      break;
    default:
      fprintf(r->out,
              "merchant order, payment or refund %" PRId64 " has no idempotency record for key \"%s\" of %" PRId64 "\n",
              v->id, v->key, v->user_id);
  }
  return 0;
}

int pz_wallet_merchant_verify(pz_db_t *db, FILE *out, unsigned *n_violations, pz_err_t *err) {
  report_t r = {out, 0};
  int rc = pz_store_merchant_verify(db, violation, &r, err);
  *n_violations += r.n;
  return rc;
}
