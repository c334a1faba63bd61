/* Typed store functions for merchants: merchant accounts, orders, payments, refunds and the webhook outbox. */
#ifndef PLAZA_STORE_MERCHANT_H
#define PLAZA_STORE_MERCHANT_H

#include <stdbool.h>
#include <stdint.h>
#include "plaza/error.h"
#include "plaza/store.h"
#include "plaza/store_wallet.h"
#include "plaza/str.h"

/* Sizes of the stored text; the rules (merchant.h) enforce them on input. */
#define PZ_MERCHANT_NAME_MAX_CHARS 64
#define PZ_MERCHANT_NAME_MAX_BYTES (PZ_MERCHANT_NAME_MAX_CHARS * 4)
#define PZ_MERCHANT_URL_MAX 512
#define PZ_MERCHANT_KEY_HASH_LEN 32  /* BLAKE2b-256 of an API key */
#define PZ_MERCHANT_SECRET_MAX 63    /* "whsec_" and 43 characters of base64url */
#define PZ_MERCHANT_CODE_LEN 22      /* an order's code: 16 random bytes in base64url */
#define PZ_MERCHANT_ORDER_REF_MAX 64 /* the shop's own order id: printable ASCII */
#define PZ_MERCHANT_REASON_MAX_CHARS 140
#define PZ_MERCHANT_REASON_MAX_BYTES (PZ_MERCHANT_REASON_MAX_CHARS * 4)
#define PZ_MERCHANT_WEBHOOK_BODY_MAX 8192
#define PZ_MERCHANT_WEBHOOK_TYPE_MAX 31

typedef struct pz_merchant_rec_s {
  int64_t id;
  int64_t owner_id; /* the user whose wallet the merchant's money is */
  char name[PZ_MERCHANT_NAME_MAX_BYTES + 1];
  char webhook_url[PZ_MERCHANT_URL_MAX + 1]; /* "" for none */
  uint8_t api_key_hash[PZ_MERCHANT_KEY_HASH_LEN];
  char webhook_secret[PZ_MERCHANT_SECRET_MAX + 1]; /* never logged */
  int64_t created_at, updated_at;
} pz_merchant_rec_t;

/* A dynamic order is made by the shop with a fixed amount and an expiry;
 * a static one is made by the payment of a static code, paid at once. */
enum { PZ_ORDER_DYNAMIC = 0, PZ_ORDER_STATIC = 1 };
/* PZ_ORDER_EXPIRED is never stored: a pending order past its expiry is expired. */
enum { PZ_ORDER_PENDING = 0, PZ_ORDER_PAID = 1, PZ_ORDER_REFUNDED = 2, PZ_ORDER_EXPIRED = 3 };

typedef struct pz_merchant_order_rec_s {
  int64_t id;
  int64_t merchant_id;
  char code[PZ_MERCHANT_CODE_LEN + 1];
  int kind;   /* PZ_ORDER_DYNAMIC, PZ_ORDER_STATIC */
  int status; /* PZ_ORDER_PENDING, _PAID, _REFUNDED (refunded in full) */
  int64_t amount;
  char currency[PZ_WALLET_CURRENCY_LEN + 1];
  char description[PZ_WALLET_NOTE_MAX_BYTES + 1];
  char merchant_order_id[PZ_MERCHANT_ORDER_REF_MAX + 1];
  int64_t paid_amount, refunded_amount;
  int64_t payer_id, payment_id; /* 0 until paid */
  char idem_key[PZ_WALLET_KEY_MAX + 1];
  int64_t created_at, expires_at, paid_at, updated_at;
} pz_merchant_order_rec_t;

typedef struct pz_merchant_payment_rec_s {
  int64_t id;
  int64_t order_id, merchant_id, payer_id;
  int64_t amount;
  char currency[PZ_WALLET_CURRENCY_LEN + 1];
  char idem_key[PZ_WALLET_KEY_MAX + 1]; /* the payer's */
  int64_t created_at;
} pz_merchant_payment_rec_t;

typedef struct pz_merchant_refund_rec_s {
  int64_t id;
  int64_t order_id, merchant_id, payer_id;
  int64_t amount;
  char currency[PZ_WALLET_CURRENCY_LEN + 1];
  char reason[PZ_MERCHANT_REASON_MAX_BYTES + 1];
  char idem_key[PZ_WALLET_KEY_MAX + 1]; /* the merchant's */
  int64_t created_at;
} pz_merchant_refund_rec_t;

enum { PZ_WEBHOOK_PENDING = 0, PZ_WEBHOOK_DELIVERED = 1, PZ_WEBHOOK_FAILED = 2 };

/* A webhook of the outbox, with where and how to deliver it (the merchant's
 * current URL and secret). Large: allocate it. */
typedef struct pz_merchant_webhook_rec_s {
  int64_t id;
  int64_t merchant_id;
  char type[PZ_MERCHANT_WEBHOOK_TYPE_MAX + 1];
  int status; /* PZ_WEBHOOK_* */
  int attempts;
  int64_t next_at;
  int last_status; /* the HTTP status of the last attempt; 0 when none came */
  int64_t created_at;
  size_t body_len;
  char body[PZ_MERCHANT_WEBHOOK_BODY_MAX + 1];
  char url[PZ_MERCHANT_URL_MAX + 1];
  char secret[PZ_MERCHANT_SECRET_MAX + 1];
} pz_merchant_webhook_rec_t;

typedef int (*pz_store_merchant_webhook_cb)(void *arg, const pz_merchant_webhook_rec_t *w, pz_err_t *err);

/* Every function below runs inside a store job (writer or reader thread,
 * per its kind), takes the job's connection first, and returns 0 or a
 * negative PZ_E code with err filled: PZ_ENOTFOUND where a row is asked
 * for and absent, PZ_ECONFLICT for a uniqueness or CHECK violation, PZ_EIO
 * for anything the database did wrong. err must not be NULL. */

/* ---- merchants ---- */

/* Writer. PZ_ECONFLICT when the owner has a merchant already. */
int pz_store_merchant_insert(pz_db_t *db, const pz_merchant_rec_t *m, pz_err_t *err);
int pz_store_merchant_get(pz_db_t *db, int64_t id, pz_merchant_rec_t *out, pz_err_t *err);
int pz_store_merchant_by_owner(pz_db_t *db, int64_t owner_id, pz_merchant_rec_t *out, pz_err_t *err);
int pz_store_merchant_by_key(pz_db_t *db, const uint8_t hash[PZ_MERCHANT_KEY_HASH_LEN], pz_merchant_rec_t *out,
                             pz_err_t *err);
/* Writes name, webhook_url, api_key_hash and updated_at of m. Writer. */
int pz_store_merchant_update(pz_db_t *db, const pz_merchant_rec_t *m, pz_err_t *err);

/* ---- orders, payments, refunds ---- */

int pz_store_merchant_order_insert(pz_db_t *db, const pz_merchant_order_rec_t *o, pz_err_t *err);
int pz_store_merchant_order_get(pz_db_t *db, int64_t id, pz_merchant_order_rec_t *out, pz_err_t *err);
int pz_store_merchant_order_by_code(pz_db_t *db, const char *code, pz_merchant_order_rec_t *out, pz_err_t *err);
/* Marks pending order id paid in full by payer_id with payment_id;
 * *changed is false when it was not pending any more. Writer. */
int pz_store_merchant_order_pay(pz_db_t *db, int64_t id, int64_t payer_id, int64_t payment_id, int64_t now,
                                bool *changed, pz_err_t *err);
/* Adds amount to order id's refunds, refunded in full when they reach what
 * was paid; *changed is false when that would pass what was paid. Writer. */
int pz_store_merchant_order_refund(pz_db_t *db, int64_t id, int64_t amount, int64_t now, bool *changed, pz_err_t *err);
int pz_store_merchant_payment_insert(pz_db_t *db, const pz_merchant_payment_rec_t *p, pz_err_t *err);
int pz_store_merchant_payment_get(pz_db_t *db, int64_t id, pz_merchant_payment_rec_t *out, pz_err_t *err);
int pz_store_merchant_refund_insert(pz_db_t *db, const pz_merchant_refund_rec_t *r, pz_err_t *err);

/* ---- the webhook outbox ---- */

/* Queues a webhook (id, merchant_id, type, body; due at next_at). Writer. */
int pz_store_merchant_webhook_insert(pz_db_t *db, const pz_merchant_webhook_rec_t *w, int64_t now, pz_err_t *err);
/* *found tells whether some pending webhook is due by now. Reader. */
int pz_store_merchant_webhook_any_due(pz_db_t *db, int64_t now, bool *found, pz_err_t *err);
/* Pending webhooks due by now, oldest due first, at most limit, with
 * their merchant's URL and secret. */
int pz_store_merchant_webhooks_due(pz_db_t *db, int64_t now, unsigned limit, pz_store_merchant_webhook_cb cb, void *arg,
                                   pz_err_t *err);
/* Sets webhook id's status, attempts, next_at and last_status. Writer. */
int pz_store_merchant_webhook_set(pz_db_t *db, int64_t id, int status, int attempts, int64_t next_at, int last_status,
                                  int64_t now, pz_err_t *err);
/* Webhook id as stored (url and secret left empty). */
int pz_store_merchant_webhook_get(pz_db_t *db, int64_t id, pz_merchant_webhook_rec_t *out, pz_err_t *err);

/* ---- verification ---- */

/* Checks the merchants' invariants (see pz_wallet_merchant_verify) with
 * set-based queries, calling cb once per violation. Kinds: */
enum {
  PZ_VERIFY_ORDER_TOTALS = 40,   /* id: order; a: paid_amount; b: the payments' sum */
  PZ_VERIFY_ORDER_REFUNDS = 41,  /* id: order; a: refunded_amount; b: the refunds' sum (or more than paid) */
  PZ_VERIFY_PAYMENT_LEDGER = 42, /* id: payment or refund; a: ledger transactions for it (want 1) */
  PZ_VERIFY_MERCHANT_KEY = 43,   /* id: order, payment or refund; user: scope; key: no idempotency record names it */
};
int pz_store_merchant_verify(pz_db_t *db, pz_store_wallet_violation_cb cb, void *arg, pz_err_t *err);

#endif
