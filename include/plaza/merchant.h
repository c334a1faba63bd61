/* Merchants: accounts with API keys, payment codes, QR payments, refunds and signed webhooks, with no SQL, sockets or
 * JSON. */
#ifndef PLAZA_MERCHANT_H
#define PLAZA_MERCHANT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "plaza/error.h"
#include "plaza/store_merchant.h"
#include "plaza/str.h"
#include "plaza/wallet.h"

/* API keys: the prefix, then 32 random bytes in base64url (43 characters). */
#define PZ_MERCHANT_KEY_PREFIX "pzk_"
#define PZ_MERCHANT_KEY_LEN (4 + 43)
#define PZ_MERCHANT_SECRET_PREFIX "whsec_"
#define PZ_MERCHANT_SECRET_LEN (6 + 43)
/* Payment codes, as QR codes carry them. */
#define PZ_PAYCODE_PREFIX "plaza:pay?"
#define PZ_PAYCODE_MAX 64 /* the longest valid code is shorter */
/* Orders live 15 minutes unless the shop says otherwise, at most 7 days. */
#define PZ_MERCHANT_ORDER_TTL_S 900
#define PZ_MERCHANT_ORDER_TTL_MAX_S (7 * 24 * 3600)
/* Webhooks: retried after 1 s, 2 s, 4 s ... at most an hour apart, for a day. */
#define PZ_WEBHOOK_BACKOFF_FIRST_MS 1000
#define PZ_WEBHOOK_BACKOFF_MAX_MS (3600LL * 1000)
#define PZ_WEBHOOK_GIVE_UP_MS (24LL * 3600 * 1000)
/* A delivery under way holds its row this long (longer than its timeout). */
#define PZ_WEBHOOK_LEASE_MS 30000
#define PZ_WEBHOOK_TIMEOUT_MS 10000
/* A signature older than this is a replay (what docs/api.md tells merchants). */
#define PZ_WEBHOOK_TOLERANCE_S 300

/* ---- payment codes: pure, any thread ---- */

enum { PZ_PAYCODE_MERCHANT = 0, PZ_PAYCODE_ORDER = 1 };

/* A parsed payment code: "plaza:pay?m=<merchant id>" (a static code: the
 * payer says the amount) or "plaza:pay?o=<order code>" (an order). */
typedef struct pz_paycode_s {
  int kind; /* PZ_PAYCODE_* */
  int64_t merchant_id;
  char order_code[PZ_MERCHANT_CODE_LEN + 1];
} pz_paycode_t;

/* Parses s exactly (no spaces, no other parameters); PZ_EINVAL with err
 * saying why for anything else. */
int pz_paycode_parse(pz_str_t s, pz_paycode_t *out, pz_err_t *err);
/* Writes the code of a merchant or of an order into out (PZ_PAYCODE_MAX + 1 bytes); returns its length. */
size_t pz_paycode_merchant(int64_t merchant_id, char out[PZ_PAYCODE_MAX + 1]);
size_t pz_paycode_order(const char *order_code, char out[PZ_PAYCODE_MAX + 1]);

/* ---- input rules: pure, any thread; each 0 or PZ_EINVAL naming the field ---- */

/* 1 to 64 characters of UTF-8, no control characters, not only spaces. */
int pz_merchant_name_check(pz_str_t name, pz_err_t *err);
/* 1 to 140 characters of UTF-8, no control characters. */
int pz_merchant_description_check(pz_str_t s, pz_err_t *err);
/* At most 140 characters of UTF-8, no control characters. */
int pz_merchant_reason_check(pz_str_t s, pz_err_t *err);
/* 1 to 64 characters of printable ASCII. */
int pz_merchant_order_ref_check(pz_str_t s, pz_err_t *err);

/* ---- secrets: any thread ---- */

/* A new API key (NUL-terminated, shown once) and the hash it is stored as. */
void pz_merchant_key_new(char key[PZ_MERCHANT_KEY_LEN + 1], uint8_t hash[PZ_MERCHANT_KEY_HASH_LEN]);
/* The stored hash of key; PZ_EUNAUTH unless it is a well-formed API key. */
int pz_merchant_key_hash(pz_str_t key, uint8_t hash[PZ_MERCHANT_KEY_HASH_LEN]);
/* A new webhook secret (NUL-terminated). */
void pz_merchant_secret_new(char secret[PZ_MERCHANT_SECRET_LEN + 1]);
/* A new order code: 16 random bytes in base64url. */
void pz_merchant_order_code_new(char code[PZ_MERCHANT_CODE_LEN + 1]);
/* The Plaza-Signature header value of body sent at unix time t:
 * "t=<t>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>". out holds 128 bytes. */
#define PZ_WEBHOOK_SIGNATURE_MAX 128
void pz_merchant_sign(const char *secret, int64_t t, pz_str_t body, char out[PZ_WEBHOOK_SIGNATURE_MAX]);
/* How long to wait after the attempts-th failed attempt (1, 2, ...). */
int64_t pz_merchant_backoff_ms(int attempts);

/* ---- rules run inside store write jobs (writer thread) ----
 * Each returns 0 or a negative PZ_E code with err filled; *keep as in
 * wallet.h: true with an error means that nothing but the PIN's state was
 * written, so the caller may commit and store the refusal. */

/* Opens merchant m (id, owner_id, name, webhook_url, api_key_hash,
 * webhook_secret filled and checked by the caller). 409 merchant_exists
 * when the owner has one. */
int pz_merchant_create(pz_db_t *db, const pz_merchant_rec_t *m, int64_t now, pz_err_t *err);

/* A payment as asked: payer_id, the parsed code, amount (0: none given),
 * currency (checked), idem_key; payment_id and order_id (used for the
 * order a static code makes) are new ids. */
typedef struct pz_merchant_pay_s {
  int64_t payer_id;
  pz_paycode_t code;
  int64_t amount;
  char currency[PZ_WALLET_CURRENCY_LEN + 1];
  char idem_key[PZ_WALLET_KEY_MAX + 1];
  int64_t payment_id, order_id;
} pz_merchant_pay_t;

/* What a payer is about to pay, for GET /v1/pay/{code}: the merchant and,
 * for an order, the order (*has_order). 404 for an unknown code. Any job. */
int pz_merchant_pay_preview(pz_db_t *db, const pz_paycode_t *code, pz_merchant_rec_t *merchant,
                            pz_merchant_order_rec_t *order, bool *has_order, pz_err_t *err);
/* Pays: the money moves from the payer to the merchant's owner at once, the
 * order (made now for a static code) is paid. Errors: 404 unknown code;
 * 400 a static code without an amount, an order with another amount or
 * currency, paying one's own merchant; 410 order_expired; 409 order_paid;
 * the PIN errors (*keep); 422 insufficient_funds (*keep). */
int pz_merchant_pay(pz_db_t *db, const pz_wallet_config_t *cfg, const pz_merchant_pay_t *p, pz_str_t pin, int64_t now,
                    pz_merchant_payment_rec_t *payment, pz_merchant_order_rec_t *order, pz_merchant_rec_t *merchant,
                    unsigned *retry_after_s, bool *keep, pz_err_t *err);
/* Order id of merchant m; 404 for another merchant's. Any job. */
int pz_merchant_order_get(pz_db_t *db, const pz_merchant_rec_t *m, int64_t id, pz_merchant_order_rec_t *out,
                          pz_err_t *err);
/* Refunds r->amount of order r->order_id (r: id, order_id, amount,
 * reason, idem_key filled) from the merchant's owner back to the payer.
 * Errors: 404; 409 order_not_paid; 422 refund_exceeds_payment (past what
 * is left of the payment); 422 insufficient_funds (the owner's balance).
 * All of them with *keep. *out and *order as stored after the refund. */
int pz_merchant_refund(pz_db_t *db, const pz_merchant_rec_t *m, const pz_merchant_refund_rec_t *r, int64_t now,
                       pz_merchant_refund_rec_t *out, pz_merchant_order_rec_t *order, bool *keep, pz_err_t *err);

/* Queues webhook w (id, type, body) for merchant m, due at once; a
 * merchant without a webhook URL gets none (*queued false). */
int pz_merchant_webhook_queue(pz_db_t *db, const pz_merchant_rec_t *m, pz_merchant_webhook_rec_t *w, int64_t now,
                              bool *queued, pz_err_t *err);
/* Records the outcome of an attempt at webhook id (attempts made so far,
 * queued at created_at): delivered on a 2xx, else retried after
 * pz_merchant_backoff_ms, or given up after PZ_WEBHOOK_GIVE_UP_MS. */
int pz_merchant_webhook_result(pz_db_t *db, int64_t id, int attempts, int64_t created_at, int http_status, int64_t now,
                               pz_err_t *err);

/* ---- verification ---- */

/* Checks, writing one line per violation to out and counting them in
 * *n_violations: each order's paid and refunded amounts equal its
 * payments and refunds; each payment and refund has exactly one ledger
 * transaction; each has its idempotency record. */
int pz_wallet_merchant_verify(pz_db_t *db, FILE *out, unsigned *n_violations, pz_err_t *err);

#endif
