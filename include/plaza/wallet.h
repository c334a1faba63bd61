/* The wallet: money rules (double-entry ledger, payment PIN, transfers, funding providers), with no SQL, sockets or
 * JSON. */
#ifndef PLAZA_WALLET_H
#define PLAZA_WALLET_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <uv.h>
#include "plaza/error.h"
#include "plaza/store_wallet.h"
#include "plaza/str.h"

#define PZ_WALLET_AMOUNT_MAX 1000000000000LL /* 10^12 minor units in one operation */
#define PZ_WALLET_PIN_LEN 6
#define PZ_WALLET_PIN_MAX_FAILURES 5
#define PZ_WALLET_PIN_LOCK_MS (15LL * 60 * 1000)
#define PZ_WALLET_TRANSFER_TTL_MS (24LL * 3600 * 1000)
#define PZ_WALLET_SECRET_LEN 32
#define PZ_WALLET_CURRENCIES_MAX 32
#define PZ_WALLET_LIST_DEFAULT 50
#define PZ_WALLET_LIST_MAX 200
/* Expired transfers refunded per sweep job; a full sweep queues another at once. */
#define PZ_WALLET_EXPIRE_BATCH 256

/* ---- configuration ---- */

/* The enabled ISO 4217 currencies, in the order configured. */
typedef struct pz_wallet_currencies_s {
  unsigned n;
  char codes[PZ_WALLET_CURRENCIES_MAX][PZ_WALLET_CURRENCY_LEN + 1];
} pz_wallet_currencies_t;

typedef struct pz_wallet_provider_s pz_wallet_provider_t;

typedef struct pz_wallet_config_s {
  pz_wallet_currencies_t currencies;
  uint8_t pin_secret[PZ_WALLET_SECRET_LEN]; /* never logged, never stored in the database */
  int64_t transfer_ttl_ms;                  /* PZ_WALLET_TRANSFER_TTL_MS but in tests */
  const pz_wallet_provider_t *provider;     /* borrowed; outlives every request */
} pz_wallet_config_t;

/* Parses a comma-separated list such as "USD,EUR" (spaces around codes
 * allowed; each three capital letters; no duplicates; 1 to
 * PZ_WALLET_CURRENCIES_MAX). Returns 0 or PZ_EINVAL with err saying why. */
int pz_wallet_currencies_parse(const char *list, pz_wallet_currencies_t *out, pz_err_t *err);

/* Loads the 32-byte PIN secret from path. When it is missing and create is
 * true, makes it (mode 0600, random bytes, fsynced, with its directory).
 * Errors (PZ_EIO, the message names the path but never the content): a
 * missing file without create, a file of another size, a read failure. */
int pz_wallet_secret_load(const char *path, bool create, uint8_t out[PZ_WALLET_SECRET_LEN], pz_err_t *err);

/* ---- input rules: pure functions, any thread ----
 * Each returns 0, or PZ_EINVAL (unknown_currency for a currency) with err naming the field. */

/* 1 to PZ_WALLET_AMOUNT_MAX. */
int pz_wallet_amount_check(int64_t amount, pz_err_t *err);
/* One of the enabled currencies; copies it, NUL-terminated, to out. */
int pz_wallet_currency_check(const pz_wallet_currencies_t *cur, pz_str_t code, char out[PZ_WALLET_CURRENCY_LEN + 1],
                             pz_err_t *err);
/* Exactly PZ_WALLET_PIN_LEN ASCII digits. */
int pz_wallet_pin_check(pz_str_t pin, pz_err_t *err);
/* 1 to PZ_WALLET_KEY_MAX bytes of printable ASCII (0x20-0x7E). */
int pz_wallet_key_check(pz_str_t key, pz_err_t *err);
/* At most PZ_WALLET_NOTE_MAX_CHARS code points of UTF-8, no control characters. */
int pz_wallet_note_check(pz_str_t note, pz_err_t *err);

/* The keyed hash a PIN is stored as: BLAKE2b-256 keyed with the server
 * secret over the user id and the PIN, so that equal PINs of two users
 * differ and a copy of the database alone tells nothing. */
void pz_wallet_pin_hash(const uint8_t secret[PZ_WALLET_SECRET_LEN], int64_t user_id, pz_str_t pin,
                        uint8_t out[PZ_WALLET_PIN_HASH_LEN]);

/* A request's fingerprint for idempotency: BLAKE2b-256 of the operation
 * name and its parameters, each length-prefixed so that no two different
 * requests run together into the same bytes. */
typedef struct pz_wallet_fp_s {
  pz_buf_t buf; /* the bytes hashed; released by pz_wallet_fp_final */
} pz_wallet_fp_t;
void pz_wallet_fp_init(pz_wallet_fp_t *fp, const char *op);
void pz_wallet_fp_str(pz_wallet_fp_t *fp, pz_str_t s);
void pz_wallet_fp_int(pz_wallet_fp_t *fp, int64_t v);
void pz_wallet_fp_final(pz_wallet_fp_t *fp, uint8_t out[PZ_WALLET_FP_LEN]);

/* ---- rules run inside store write jobs (writer thread) ----
 * Each returns 0 or a negative PZ_E code with err filled; a failing job is
 * rolled back whole. Where a function says *keep, *keep true with an error
 * means that nothing but the PIN's state (a failure counted, or cleared)
 * was written: the caller may commit (its job returns 0) and answer with
 * the error, so that wrong tries are counted even though the operation
 * failed, and may store the refusal under the idempotency key. */

/* Sets (or changes) user_id's PIN (checked by the caller; the password
 * was verified by the caller) and clears any lock. */
int pz_wallet_pin_set(pz_db_t *db, const pz_wallet_config_t *cfg, int64_t user_id, pz_str_t pin, int64_t now,
                      pz_err_t *err);
/* Checks pin for a debit by user_id. Errors: 403 pin_not_set; 423
 * pin_locked (*retry_after_s: whole seconds to wait); 403 wrong_pin (the
 * failure is written first, and the fifth in a row locks the PIN for
 * PZ_WALLET_PIN_LOCK_MS; the message says how many tries are left). A
 * right PIN clears the failures. Any of these writes is kept by the caller. */
int pz_wallet_pin_verify(pz_db_t *db, const pz_wallet_config_t *cfg, int64_t user_id, pz_str_t pin, int64_t now,
                         unsigned *retry_after_s, pz_err_t *err);

/* Looks up (user_id, key): *found false when unused; true with the stored
 * response in *out when the same request came before (out->status is 0
 * while that operation is under way). 409 idempotency_key_reused when the
 * key was used for a request with another fingerprint. */
int pz_wallet_idem_lookup(pz_db_t *db, int64_t user_id, pz_str_t key, const uint8_t fp[PZ_WALLET_FP_LEN],
                          pz_wallet_idem_rec_t *out, bool *found, pz_err_t *err);
/* Stores the response (status, body; status 0: under way) of (user_id,
 * key), in the job that moved the money. */
int pz_wallet_idem_save(pz_db_t *db, int64_t user_id, pz_str_t key, const uint8_t fp[PZ_WALLET_FP_LEN], int64_t ref_id,
                        int status, pz_str_t body, int64_t now, pz_err_t *err);

/* Moves amount of currency from account `from` to account `to` as ledger
 * transaction txn_id (kind PZ_TXN_*, about ref_id): two entries that sum
 * to zero, the cached balances moved by as much. A user account that
 * would go below zero is 422 insufficient_funds. */
int pz_wallet_move(pz_db_t *db, int64_t txn_id, int kind, int64_t ref_id, const pz_wallet_account_rec_t *from,
                   const pz_wallet_account_rec_t *to, int64_t amount, int64_t now, pz_err_t *err);
/* The account of (user_id, kind, currency), created (balance 0) if missing. */
int pz_wallet_account(pz_db_t *db, int64_t user_id, int kind, const char *currency, int64_t now,
                      pz_wallet_account_rec_t *out, pz_err_t *err);
/* user_id's balance in each enabled currency, in cfg's order (0 where
 * there is no account yet). Any job. */
int pz_wallet_balances(pz_db_t *db, const pz_wallet_config_t *cfg, int64_t user_id,
                       int64_t out[PZ_WALLET_CURRENCIES_MAX], pz_err_t *err);

/* A transfer as asked: id, from_id, to_id, amount, currency, note,
 * conversation_id and idem_key filled and checked by the caller. */
/* Creates it: the money goes from the sender to escrow, pending until the
 * receiver accepts, returns it, or it expires after cfg->transfer_ttl_ms;
 * a receiver who accepts automatically gets it at once (completed). pin
 * guards the debit. *out is the transfer as stored. Errors: 400 to
 * oneself; 404 unknown receiver; 403 blocked (either blocked the other);
 * the PIN errors (*keep); 422 insufficient_funds (*keep). */
int pz_wallet_transfer_create(pz_db_t *db, const pz_wallet_config_t *cfg, const pz_wallet_transfer_rec_t *t,
                              pz_str_t pin, int64_t now, pz_wallet_transfer_rec_t *out, unsigned *retry_after_s,
                              bool *keep, pz_err_t *err);
/* The receiver me accepts transfer id: escrow -> me, completed. Accepting
 * a completed one again changes nothing. 404 unless me is its receiver;
 * 409 transfer_not_pending when returned or expired (or past its expiry,
 * about to be refunded). */
int pz_wallet_transfer_accept(pz_db_t *db, int64_t me, int64_t id, int64_t now, pz_wallet_transfer_rec_t *out,
                              pz_err_t *err);
/* The receiver me sends transfer id back: escrow -> sender, returned.
 * Returning it again changes nothing. 404 unless me is its receiver; 409
 * transfer_not_pending when completed or expired. */
int pz_wallet_transfer_return(pz_db_t *db, int64_t me, int64_t id, int64_t now, pz_wallet_transfer_rec_t *out,
                              pz_err_t *err);
/* Transfer id if me sent or received it; else 404. Any job. */
int pz_wallet_transfer_get(pz_db_t *db, int64_t me, int64_t id, pz_wallet_transfer_rec_t *out, pz_err_t *err);
/* Refunds at most limit pending transfers that expired by now (escrow ->
 * sender, expired); *n is how many. */
int pz_wallet_transfer_expire(pz_db_t *db, int64_t now, unsigned limit, unsigned *n, pz_err_t *err);

/* Starts a funding f (id, user_id, kind, amount, currency, provider,
 * idem_key filled and checked by the caller): a withdrawal checks pin
 * (errors and *keep as for transfers) and moves the money from the user
 * to escrow now, so that it cannot be spent twice while the provider
 * works; a top-up moves nothing yet. Both are stored pending. */
int pz_wallet_funding_begin(pz_db_t *db, const pz_wallet_config_t *cfg, const pz_wallet_funding_rec_t *f, pz_str_t pin,
                            int64_t now, unsigned *retry_after_s, bool *keep, pz_err_t *err);
/* Records the provider's verdict on pending funding id: a top-up that
 * succeeded moves external -> user; a withdrawal moves escrow -> external
 * (succeeded) or escrow -> user (failed). *out is the funding after the
 * call; *changed is false when it was settled before (by a retry that
 * raced this one), in which case nothing moves. */
int pz_wallet_funding_settle(pz_db_t *db, int64_t id, bool ok, const char *provider_ref, const char *reason,
                             int64_t now, pz_wallet_funding_rec_t *out, bool *changed, pz_err_t *err);

/* ---- verification: `plazad ledger verify` ---- */

/* Checks the ledger's invariants (see pz_store_wallet_verify), writing
 * one line per violation to out; *n_violations counts them. */
int pz_wallet_verify(pz_db_t *db, FILE *out, unsigned *n_violations, int64_t *n_txns, pz_err_t *err);

/* ---- funding providers: loop thread ----
 * A provider moves money between Plaza and the outside world (a card
 * network, a bank). Plaza calls topup or withdraw with a request that it
 * owns until done; the provider answers exactly once, later, on the loop
 * thread, by filling rc (0: the money moved; negative: it did not) and
 * provider_ref / reason, then calling req->done. A start that fails at once
 * returns a negative code instead and never calls done. The request id is
 * the provider's idempotency key: Plaza asks again with the same id after
 * a crash, and a provider must then report the first outcome rather than
 * move the money twice. */
typedef struct pz_wallet_funding_req_s pz_wallet_funding_req_t;
struct pz_wallet_funding_req_s {
  int64_t id; /* the funding's id */
  int64_t user_id;
  int kind; /* PZ_FUNDING_TOPUP or PZ_FUNDING_WITHDRAWAL */
  int64_t amount;
  char currency[PZ_WALLET_CURRENCY_LEN + 1];
  /* the answer */
  int rc;
  char provider_ref[PZ_WALLET_REF_MAX + 1];
  char reason[PZ_WALLET_REF_MAX + 1];
  void (*done)(pz_wallet_funding_req_t *req);
  void *data; /* the caller's */
};

struct pz_wallet_provider_s {
  const char *name; /* stored with each funding */
  void *state;
  int (*topup)(void *state, pz_wallet_funding_req_t *req);
  int (*withdraw)(void *state, pz_wallet_funding_req_t *req);
};

/* The built-in sandbox provider: every call succeeds after delay_ms (0:
 * on the next turn of the loop), or fails when fail is true. Loop thread.
 * Free with pz_wallet_sandbox_free once no call is under way (after the
 * loop has run out). */
pz_wallet_provider_t *pz_wallet_sandbox_new(uv_loop_t *loop, unsigned delay_ms, bool fail);
void pz_wallet_sandbox_free(pz_wallet_provider_t *p);

#endif
