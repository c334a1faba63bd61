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
  int64_t test_fail_amount;                 /* tests only: a transfer of this amount fails after its writes; 0 none */
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

/* The checks before a debit that user_id starts, in the order a refusal
 * tells them: the PIN (pz_wallet_pin_verify, whose writes the caller
 * keeps), then the balance (422 insufficient_funds), then the daily limit
 * (422 daily_limit_exceeded), all from one read. *from is the account to
 * debit, as read. pz_wallet_move enforces balance and limit again. */
int pz_wallet_spend_check(pz_db_t *db, const pz_wallet_config_t *cfg, int64_t user_id, const char *currency,
                          int64_t amount, pz_str_t pin, int64_t now, pz_wallet_account_rec_t *from,
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
 * would go below zero is 422 insufficient_funds, a debit over the user's
 * daily limit 422 daily_limit_exceeded (pz_wallet_limit_charge). Such a
 * refusal may come after some of the movement was written: the caller's
 * job must fail with it, as every rule's does (checks whose refusal a
 * job keeps come before, as in pz_wallet_spend_check). */
int pz_wallet_move(pz_db_t *db, int64_t txn_id, int kind, int64_t ref_id, const pz_wallet_account_rec_t *from,
                   const pz_wallet_account_rec_t *to, int64_t amount, int64_t now, pz_err_t *err);
/* The account of (user_id, kind, currency), created (balance 0) if
 * missing. Of a system account, only id, kind and currency are filled:
 * its balance is not read. */
int pz_wallet_account(pz_db_t *db, int64_t user_id, int kind, const char *currency, int64_t now,
                      pz_wallet_account_rec_t *out, pz_err_t *err);
/* user_id's balance in each enabled currency, in cfg's order (0 where
 * there is no account yet). Any job. */
int pz_wallet_balances(pz_db_t *db, const pz_wallet_config_t *cfg, int64_t user_id,
                       int64_t out[PZ_WALLET_CURRENCIES_MAX], pz_err_t *err);

/* Whether pin is u's PIN with nothing about the PIN to write: set, not
 * locked, no wrong try counted since the last right one. Any thread. */
bool pz_wallet_pin_clean_match(const pz_wallet_config_t *cfg, const pz_wallet_user_rec_t *u, pz_str_t pin);

/* Decides transfer t (as for pz_wallet_transfer_create, the idempotency
 * key in t->idem_key) on the send log's thread, counting the transfers
 * logged and not yet applied (pz_store_wallet_log_*): 1 with *out filled
 * and the sender's balance, daily counter, key and both event seqs
 * claimed, when it can be made at once and completed, with nothing but
 * its own rows to write. 0 for everything else, which the writer does as
 * before: a transfer in a chat, to a receiver who accepts by hand or has
 * no account in the currency yet, a wrong PIN or one with wrong tries to
 * forget, too little money (as far as the log knows), the daily limit,
 * a key already used, a block, an unknown receiver, any error reading.
 * Log thread. */
int pz_wallet_transfer_log(pz_db_t *db, const pz_wallet_config_t *cfg, const pz_wallet_transfer_rec_t *t, pz_str_t pin,
                           int64_t now, pz_wallet_transfer_log_t *out);

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

/* Checks the ledger's invariants (see pz_store_wallet_ledger_verify), writing
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

/* ---- red packets and transfers in chats (red_packets.c) ---- */

#define PZ_WALLET_RED_PACKET_TTL_MS (24LL * 3600 * 1000)
/* Expired red packets refunded per sweep job; a full sweep queues another at once. */
#define PZ_WALLET_RED_PACKET_EXPIRE_BATCH 256

/* A greeting: at most PZ_RED_PACKET_GREETING_MAX_CHARS code points of
 * UTF-8, no control characters. Any thread. */
int pz_wallet_greeting_check(pz_str_t greeting, pz_err_t *err);
/* total (as pz_wallet_amount_check) in count shares: count 1 to
 * PZ_RED_PACKET_COUNT_MAX, and every share at least one minor unit
 * (total >= count). 400 naming the field. Any thread. */
int pz_wallet_red_packet_check(int64_t total, int64_t count, pz_err_t *err);
/* The share of the next claimant of a packet of total in count shares,
 * when left money and n_left shares remain (1 <= n_left <= count, left >=
 * n_left). Equal mode: total / count, the remainder one unit each to the
 * first claimants. Random mode, WeChat's "double average": uniform in
 * [1, 2 * left / n_left - 1] from libsodium's generator, and the last
 * claimant gets what is left; every share is at least 1, the shares sum
 * to total, and each claimant's expected share is total / count whatever
 * their place. Any thread (libsodium initialized). */
int64_t pz_wallet_red_packet_share(int mode, int64_t total, unsigned count, int64_t left, unsigned n_left);

/* Makes red packet p (id, sender_id, conversation_id, message_id, total,
 * count, mode, currency, greeting and idem_key filled and checked by the
 * caller): total moves from the sender to escrow at once, and the packet
 * is active until now + ttl_ms. *out is the packet as stored. Errors: 404
 * no such conversation; 403 not_member; 400 a count above 1 in a direct
 * chat; 403 blocked (in a direct chat, either blocked the other); the PIN
 * errors (*keep); 422 insufficient_funds (*keep). Writer. */
int pz_wallet_red_packet_create(pz_db_t *db, const pz_wallet_config_t *cfg, const pz_wallet_red_packet_rec_t *p,
                                pz_str_t pin, int64_t now, int64_t ttl_ms, pz_wallet_red_packet_rec_t *out,
                                unsigned *retry_after_s, bool *keep, pz_err_t *err);
/* me opens red packet id: the next share (pz_wallet_red_packet_share,
 * decided here, on the writer, so that claims never overspend) moves from
 * escrow to me. *out is the packet after the claim, *claim mine. Errors:
 * 404 no such red packet; 403 not_member (of its conversation); 403
 * not_recipient (its sender, in a direct chat); 409 already_claimed; 409
 * red_packet_empty (every share taken); 410 red_packet_expired; each of
 * these with *keep true: nothing was written. Writer. */
int pz_wallet_red_packet_claim(pz_db_t *db, int64_t me, int64_t id, int64_t now, pz_wallet_red_packet_rec_t *out,
                               pz_wallet_claim_rec_t *claim, bool *keep, pz_err_t *err);
/* Red packet id for me, a member of its conversation: 404; 403 not_member. Any job. */
int pz_wallet_red_packet_get(pz_db_t *db, int64_t me, int64_t id, pz_wallet_red_packet_rec_t *out, pz_err_t *err);
/* Refunds what is left of at most limit active packets whose time was up
 * by now (escrow -> sender, refunded); *n is how many. Writer. */
int pz_wallet_red_packet_expire(pz_db_t *db, int64_t now, unsigned limit, unsigned *n, pz_err_t *err);

/* A transfer sent into a chat: 400 unless conv_id is the direct chat of
 * from_id and to_id. Any job. */
int pz_wallet_transfer_chat_check(pz_db_t *db, int64_t from_id, int64_t to_id, int64_t conv_id, pz_err_t *err);
/* As pz_wallet_transfer_expire, calling cb (may be NULL) with each
 * transfer once it is refunded, in the same job. Writer. */
int pz_wallet_transfer_expire_each(pz_db_t *db, int64_t now, unsigned limit, unsigned *n,
                                   pz_store_wallet_transfer_cb cb, void *arg, pz_err_t *err);

/* ---- daily limits by verification tier (limits.c) ----
 * Each user has a tier (0 until an operator sets another with `plazad
 * user tier`); each tier has a daily limit on what its users may send out
 * per currency per UTC day, in minor units. It is enforced in
 * pz_wallet_move, for every movement out of a user's account whose kind
 * pz_wallet_limit_counts, inside the job that moves the money: no caller
 * can forget it. */

/* PZ_WALLET_TIERS (store_wallet.h): tiers 0 to 9. */
#define PZ_WALLET_DAILY_LIMITS_DEFAULT "0:50000,1:1000000,2:0"
#define PZ_WALLET_DAY_MS (24LL * 3600 * 1000)

typedef struct pz_wallet_limits_s {
  int64_t daily[PZ_WALLET_TIERS]; /* minor units per currency per UTC day; 0: no limit */
} pz_wallet_limits_t;

/* Parses "tier:amount,..." such as "0:50000,1:1000000,2:0" (0: no limit).
 * Tier 0 must be given; a tier not given has the limit of the nearest
 * lower one given. Returns 0 or PZ_EINVAL with err saying why. */
int pz_wallet_limits_parse(const char *list, pz_wallet_limits_t *out, pz_err_t *err);
/* Installs the limits of this process (copied). Call once at start,
 * before the first job that moves money; until then no tier has a limit. */
void pz_wallet_limits_set(const pz_wallet_limits_t *limits);
/* The daily limit of tier (0: none); a tier past the last has the last one's. Any thread. */
int64_t pz_wallet_limit_of(int tier);
/* True when a movement of kind out of a user's account counts toward the
 * user's daily limit: every kind but those a user does not start for
 * their own spending (a merchant's refund to its payer). */
bool pz_wallet_limit_counts(int kind);

/* Where user_id stands today in currency. */
typedef struct pz_wallet_allowance_s {
  int tier;
  int64_t daily;     /* 0: no limit */
  int64_t used;      /* sent out today */
  int64_t remaining; /* -1: no limit */
  int64_t resets_at; /* ms: the next UTC midnight */
} pz_wallet_allowance_t;
int pz_wallet_allowance(pz_db_t *db, int64_t user_id, const char *currency, int64_t now, pz_wallet_allowance_t *out,
                        pz_err_t *err);
/* 0 when user_id may send amount of currency today, else 422
 * daily_limit_exceeded with the remaining amount in the message. Writes
 * nothing: a rule calls it before it moves money, so that the refusal
 * may be kept as the idempotency key's answer. */
int pz_wallet_limit_check(pz_db_t *db, int64_t user_id, const char *currency, int64_t amount, int64_t now,
                          pz_err_t *err);
/* pz_wallet_limit_check on a tier and counter read already (a rule's own
 * read, pz_wallet_spend_check): the same answer, no statement. */
int pz_wallet_limit_check_counter(int tier, const pz_wallet_daily_rec_t *d, const char *currency, int64_t amount,
                                  int64_t now, pz_err_t *err);
/* pz_wallet_limit_check, then counts amount as sent today. pz_wallet_move
 * calls it; nothing else needs to. Writer. */
int pz_wallet_limit_charge(pz_db_t *db, int64_t user_id, const char *currency, int64_t amount, int64_t now,
                           pz_err_t *err);
/* Sets user_id's tier (0 to PZ_WALLET_TIERS - 1; else 400). Writer. */
int pz_wallet_tier_set(pz_db_t *db, int64_t user_id, int tier, int64_t now, pz_err_t *err);

/* ---- money and calendar formats (history.c): pure, any thread ---- */

/* Digits after the decimal point of currency's minor unit (ISO 4217): 0
 * for JPY, KRW..., 3 for BHD, KWD..., 2 for the rest. */
int pz_wallet_currency_digits(const char *currency);
/* Writes amount (minor units, signed) of currency as a decimal string
 * ("-12.50", "1200" for JPY) into out (at least 32 bytes); returns its length. */
size_t pz_wallet_amount_format(int64_t amount, const char *currency, char *out);
/* "YYYY-MM-DD" (years 1970 to 9999) -> ms of its UTC midnight. 0 or PZ_EINVAL. */
int pz_wallet_date_parse(pz_str_t s, int64_t *ms);
/* "YYYY-MM" -> ms of the UTC midnights that start the month and the next. 0 or PZ_EINVAL. */
int pz_wallet_month_parse(pz_str_t s, int64_t *start_ms, int64_t *end_ms);
/* ms -> "YYYY-MM-DD" into out (at least 11 bytes). */
void pz_wallet_date_format(int64_t ms, char *out);

#endif
