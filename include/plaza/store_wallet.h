/* Typed store functions for the wallet: ledger accounts and entries, transfers, fundings, PIN state, idempotency. */
#ifndef PLAZA_STORE_WALLET_H
#define PLAZA_STORE_WALLET_H

#include <stdbool.h>
#include <stdint.h>
#include "plaza/error.h"
#include "plaza/store.h"
#include "plaza/store_auth.h"
#include "plaza/str.h"

/* Sizes of the stored text; the domain (wallet.h) enforces them on input. */
#define PZ_WALLET_CURRENCY_LEN 3 /* ISO 4217: three capital letters */
#define PZ_WALLET_KEY_MAX 64     /* idempotency keys: printable ASCII */
#define PZ_WALLET_NOTE_MAX_CHARS 140
#define PZ_WALLET_NOTE_MAX_BYTES (PZ_WALLET_NOTE_MAX_CHARS * 4)
#define PZ_WALLET_REF_MAX 63    /* a funding provider's reference or failure reason */
#define PZ_WALLET_BODY_MAX 4096 /* a stored response body */
#define PZ_WALLET_FP_LEN 32     /* a request fingerprint: BLAKE2b-256 */
#define PZ_WALLET_PIN_HASH_LEN 32
#define PZ_WALLET_TIERS 10 /* verification tiers 0 to 9, each with a daily limit (wallet.h) */

/* Ledger accounts: one per user per currency, and per currency one of
 * each system kind. Balances are signed: a credit is a positive entry. */
enum { PZ_ACCT_USER = 0, PZ_ACCT_EXTERNAL = 1, PZ_ACCT_ESCROW = 2, PZ_ACCT_FEES = 3 };

typedef struct pz_wallet_account_rec_s {
  int64_t id;
  int64_t user_id; /* 0 for system accounts */
  int kind;        /* PZ_ACCT_* */
  char currency[PZ_WALLET_CURRENCY_LEN + 1];
  int64_t balance; /* cached: the sum of the account's entries */
} pz_wallet_account_rec_t;

/* What a ledger transaction records. */
enum {
  PZ_TXN_TOPUP = 0,             /* external -> user */
  PZ_TXN_WITHDRAWAL = 1,        /* user -> escrow, while the provider pays out */
  PZ_TXN_WITHDRAWAL_PAYOUT = 2, /* escrow -> external: the provider paid */
  PZ_TXN_WITHDRAWAL_REFUND = 3, /* escrow -> user: the provider failed */
  PZ_TXN_TRANSFER = 4,          /* sender -> escrow */
  PZ_TXN_TRANSFER_ACCEPT = 5,   /* escrow -> receiver */
  PZ_TXN_TRANSFER_RETURN = 6,   /* escrow -> sender: the receiver sent it back */
  PZ_TXN_TRANSFER_EXPIRE = 7,   /* escrow -> sender: not accepted in time */
  PZ_TXN_RED_PACKET = 8,        /* sender -> escrow: a red packet's total */
  PZ_TXN_RED_PACKET_CLAIM = 9,  /* escrow -> claimant: one share */
  PZ_TXN_RED_PACKET_REFUND = 10, /* escrow -> sender: what was left when it expired */
  PZ_TXN_MERCHANT_PAYMENT = 11, /* payer -> the merchant's owner: a QR payment */
  PZ_TXN_MERCHANT_REFUND = 12,  /* the merchant's owner -> payer: a refund */
  PZ_TXN__COUNT
};
/* The stored (and API) name of a PZ_TXN_* kind. */
const char *pz_store_wallet_txn_name(int kind);
/* The stored (and API) name of a PZ_TRANSFER_* status. */
const char *pz_store_wallet_transfer_status_name(int status);

/* One entry of a user's account, as their transaction list shows it. */
typedef struct pz_wallet_entry_view_s {
  int64_t txn_id;
  int kind;       /* PZ_TXN_* */
  int64_t ref_id; /* the transfer or funding it belongs to */
  char currency[PZ_WALLET_CURRENCY_LEN + 1];
  int64_t amount;          /* signed: what it did to the user's balance */
  int64_t counterparty_id; /* the other user of a transfer, else 0 */
  int64_t created_at;
} pz_wallet_entry_view_t;

enum { PZ_TRANSFER_PENDING = 0, PZ_TRANSFER_COMPLETED = 1, PZ_TRANSFER_RETURNED = 2, PZ_TRANSFER_EXPIRED = 3 };

typedef struct pz_wallet_transfer_rec_s {
  int64_t id;
  int64_t from_id, to_id;
  int64_t amount;
  char currency[PZ_WALLET_CURRENCY_LEN + 1];
  char note[PZ_WALLET_NOTE_MAX_BYTES + 1];
  int status;              /* PZ_TRANSFER_* */
  int64_t conversation_id; /* 0 for none */
  char idem_key[PZ_WALLET_KEY_MAX + 1];
  int64_t created_at, expires_at, updated_at;
} pz_wallet_transfer_rec_t;

/* Money in from (top-up) or out to (withdrawal) the outside, through a provider. */
enum { PZ_FUNDING_TOPUP = 0, PZ_FUNDING_WITHDRAWAL = 1 };
enum { PZ_FUNDING_PENDING = 0, PZ_FUNDING_COMPLETED = 1, PZ_FUNDING_FAILED = 2 };

typedef struct pz_wallet_funding_rec_s {
  int64_t id;
  int64_t user_id;
  int kind;   /* PZ_FUNDING_* */
  int status; /* PZ_FUNDING_PENDING, _COMPLETED, _FAILED */
  int64_t amount;
  char currency[PZ_WALLET_CURRENCY_LEN + 1];
  char provider[32];
  char provider_ref[PZ_WALLET_REF_MAX + 1];
  char reason[PZ_WALLET_REF_MAX + 1]; /* why it failed */
  char idem_key[PZ_WALLET_KEY_MAX + 1];
  int64_t created_at, updated_at;
} pz_wallet_funding_rec_t;

/* A user's wallet settings and PIN state; a user without a row has the defaults (no PIN, no auto-accept). */
typedef struct pz_wallet_user_rec_s {
  int64_t user_id;
  bool pin_set;
  uint8_t pin_hash[PZ_WALLET_PIN_HASH_LEN];
  int pin_failures;         /* wrong tries since the last right one or the last lock */
  int64_t pin_locked_until; /* ms; 0 when not locked */
  bool auto_accept;
  int tier; /* verification tier (daily limits) */
} pz_wallet_user_rec_t;

/* An idempotency record: the first response to (user, key). status 0
 * means the operation is under way (a funding waiting for its provider). */
typedef struct pz_wallet_idem_rec_s {
  uint8_t fingerprint[PZ_WALLET_FP_LEN];
  int status;
  int64_t ref_id;
  size_t body_len;
  char body[PZ_WALLET_BODY_MAX + 1];
} pz_wallet_idem_rec_t;

typedef int (*pz_store_wallet_account_cb)(void *arg, const pz_wallet_account_rec_t *a, pz_err_t *err);
typedef int (*pz_store_wallet_transfer_cb)(void *arg, const pz_wallet_transfer_rec_t *t, pz_err_t *err);

/* A broken invariant found by pz_store_wallet_ledger_verify (store_wallet_verify.h). */
enum {
  PZ_VERIFY_TXN_UNBALANCED = 1, /* id: transaction; currency; a: the sum of its entries */
  PZ_VERIFY_BALANCE_CACHE = 2,  /* id: account; currency; a: cached balance; b: sum of entries */
  PZ_VERIFY_CURRENCY_SUM = 3,   /* currency; a: the sum of all balances */
  PZ_VERIFY_NEGATIVE = 4,       /* id: user account; user; currency; a: balance */
  PZ_VERIFY_KEY_REUSED = 5,     /* user; key; a: operations under it */
  PZ_VERIFY_KEY_MISSING = 6,    /* id: operation; user; key: no idempotency record names it */
  PZ_VERIFY_ESCROW = 7,         /* currency; a: escrow balance; b: money of pending transfers and withdrawals */
  PZ_VERIFY_TXN_SHORT = 8,      /* id: transaction with fewer than two entries */
  PZ_VERIFY_RED_PACKET = 9,     /* id: red packet; user: sender; a: money it says was claimed; b: its claims' sum */
  PZ_VERIFY_TXN_MISSING = 10,   /* id: transaction with entries but no row of its own; a: its entries */
  PZ_VERIFY_ENTRY_ACCOUNT = 11, /* id: transaction with an entry of no account; a: the account its entry names */
};

typedef struct pz_wallet_violation_s {
  int kind; /* PZ_VERIFY_* */
  int64_t id, user_id;
  char currency[PZ_WALLET_CURRENCY_LEN + 1];
  char key[PZ_WALLET_KEY_MAX + 1];
  int64_t a, b;
} pz_wallet_violation_t;
typedef int (*pz_store_wallet_violation_cb)(void *arg, const pz_wallet_violation_t *v, pz_err_t *err);

/* Every function below runs inside a store job (writer or reader thread,
 * per its kind), takes the job's connection first, and returns 0 or a
 * negative PZ_E code with err filled: PZ_ENOTFOUND where a row is asked
 * for and absent, PZ_ECONFLICT for a uniqueness or CHECK violation, PZ_EIO
 * for anything the database did wrong. err must not be NULL. */

/* ---- accounts and entries ---- */

/* The account of (user_id, kind, currency); user_id is 0 for system kinds. */
int pz_store_wallet_account_get(pz_db_t *db, int64_t user_id, int kind, const char *currency,
                                pz_wallet_account_rec_t *out, pz_err_t *err);
/* The id of the system account of kind (not PZ_ACCT_USER) in currency;
 * PZ_ENOTFOUND when there is none. The connection remembers it: after the
 * first, a call reads nothing. */
int pz_store_wallet_system_account_id(pz_db_t *db, int kind, const char *currency, int64_t *id, pz_err_t *err);
/* Inserts a (balance 0). Writer. */
int pz_store_wallet_account_insert(pz_db_t *db, const pz_wallet_account_rec_t *a, int64_t now, pz_err_t *err);
/* user_id's accounts, in currency order. */
int pz_store_wallet_accounts_of(pz_db_t *db, int64_t user_id, pz_store_wallet_account_cb cb, void *arg, pz_err_t *err);
/* Inserts the ledger transaction txn_id of kind, about ref_id. Writer. */
int pz_store_wallet_txn_insert(pz_db_t *db, int64_t txn_id, int kind, int64_t ref_id, int64_t now, pz_err_t *err);
/* One entry of a ledger transaction: amount (signed) to account_id, owned by user_id (0 for system accounts). */
typedef struct pz_wallet_entry_rec_s {
  int64_t txn_id;
  int64_t account_id;
  int64_t user_id;
  int64_t amount;
} pz_wallet_entry_rec_t;
/* Inserts a movement's two entries e, in one statement; balances are
 * pz_store_wallet_balance_move's. Writer. */
int pz_store_wallet_entries_insert(pz_db_t *db, const pz_wallet_entry_rec_t e[2], pz_err_t *err);
/* Moves the cached balance of account_id by amount. A user account that
 * would go below zero is PZ_ECONFLICT (the schema's CHECK: the balance
 * check of every debit), an unknown account PZ_ENOTFOUND. Writer. */
int pz_store_wallet_balance_move(pz_db_t *db, int64_t account_id, int64_t amount, pz_err_t *err);

/* ---- wallet users: PIN and settings ---- */

int pz_store_wallet_user_get(pz_db_t *db, int64_t user_id, pz_wallet_user_rec_t *out, pz_err_t *err);
/* Sets the PIN hash and clears failures and lock. Writer. */
int pz_store_wallet_user_set_pin(pz_db_t *db, int64_t user_id, const uint8_t hash[PZ_WALLET_PIN_HASH_LEN], int64_t now,
                                 pz_err_t *err);
/* Records the failure count and lock (user row must exist: a PIN is set). Writer. */
int pz_store_wallet_user_set_pin_state(pz_db_t *db, int64_t user_id, int failures, int64_t locked_until, int64_t now,
                                       pz_err_t *err);
int pz_store_wallet_user_set_auto_accept(pz_db_t *db, int64_t user_id, bool on, int64_t now, pz_err_t *err);

/* ---- what a payment reads before it moves money ---- */

/* What a user sent on one UTC day in one currency: the sum of the debits
 * their daily limit counts (see pz_wallet_limit_counts), kept as one row
 * per (user, currency), moved on to a new day by the first debit of it
 * (store/wallet_limits.c). */
typedef struct pz_wallet_daily_rec_s {
  int64_t day;    /* days since 1970-01-01, UTC */
  int64_t amount; /* minor units */
} pz_wallet_daily_rec_t;

/* The user a debit would come from, read at once: PIN state and tier, the
 * account in the currency and its daily limit's counter. */
typedef struct pz_wallet_payer_rec_s {
  pz_wallet_user_rec_t user;
  bool has_account;                /* else account.id is 0 */
  pz_wallet_account_rec_t account; /* user_id's account in the currency */
  pz_wallet_daily_rec_t daily;     /* {0, 0} without a counter */
} pz_wallet_payer_rec_t;

/* Fills *out for user_id in currency; PZ_ENOTFOUND when user_id has no
 * wallet_users row (so no PIN). */
int pz_store_wallet_payer_get(pz_db_t *db, int64_t user_id, const char *currency, pz_wallet_payer_rec_t *out,
                              pz_err_t *err);

/* What a transfer from from_id needs to know of its receiver to_id. */
typedef struct pz_wallet_payee_rec_s {
  bool blocked;       /* either of the two blocked the other */
  bool auto_accept;   /* to_id accepts transfers automatically */
  int64_t account_id; /* to_id's account in the currency; 0: none yet */
} pz_wallet_payee_rec_t;

/* Fills *out; PZ_ENOTFOUND when to_id is no user. */
int pz_store_wallet_payee_get(pz_db_t *db, int64_t from_id, int64_t to_id, const char *currency,
                              pz_wallet_payee_rec_t *out, pz_err_t *err);

/* ---- idempotency ---- */

int pz_store_wallet_idem_get(pz_db_t *db, int64_t user_id, pz_str_t key, pz_wallet_idem_rec_t *out, pz_err_t *err);
/* 0 when (user_id, key) has a record, PZ_ENOTFOUND when not: the look-up
 * alone, without the record. */
int pz_store_wallet_idem_exists(pz_db_t *db, int64_t user_id, pz_str_t key, pz_err_t *err);
/* Inserts or replaces the record of (user_id, key). Writer. */
int pz_store_wallet_idem_put(pz_db_t *db, int64_t user_id, pz_str_t key, const pz_wallet_idem_rec_t *rec, int64_t now,
                             pz_err_t *err);

/* ---- transfers ---- */

/* A transfer decided on the send log's thread (pz_wallet_transfer_log),
 * with what the writer needs to apply it later without reading anything:
 * completed from its first row, the receiver accepting automatically. */
typedef struct pz_wallet_transfer_log_s {
  pz_wallet_transfer_rec_t t;
  int64_t txn_id;                   /* the ledger transaction */
  int64_t from_account, to_account; /* the two user accounts */
  int64_t day;                      /* the sender's daily counter's day */
  uint8_t fp[PZ_WALLET_FP_LEN];     /* the request's, for its idempotency record */
  int64_t seqs[2];                  /* the sender's and the receiver's event seqs */
} pz_wallet_transfer_log_t;

/* What the send log's thread knows of the transfers it logged that the
 * writer may not have applied yet, since everything logged was last
 * applied (engine.c empties it then, and a write job always applies
 * everything logged first). An account it does not know has its balance
 * in the database; a receiver's is only known once it sent money. Log
 * thread, inside a pz_store_job_t log callback. */
bool pz_store_wallet_log_balance(pz_db_t *db, int64_t account_id, int64_t *balance);
void pz_store_wallet_log_balance_set(pz_db_t *db, int64_t account_id, int64_t balance);
/* The daily counter of the user whose account (in the counter's currency) is account_id. */
bool pz_store_wallet_log_daily(pz_db_t *db, int64_t account_id, pz_wallet_daily_rec_t *d);
void pz_store_wallet_log_daily_set(pz_db_t *db, int64_t account_id, const pz_wallet_daily_rec_t *d);
/* pz_store_wallet_payee_get, remembered until a write job commits. */
int pz_store_wallet_log_payee(pz_db_t *db, int64_t from_id, int64_t to_id, const char *currency,
                              pz_wallet_payee_rec_t *out, pz_err_t *err);
/* Whether a transfer under (user_id, key) was logged; a hash shared by two
 * keys only sends the second transfer to the writer. */
bool pz_store_wallet_log_key_pending(pz_db_t *db, int64_t user_id, pz_str_t key);
void pz_store_wallet_log_key_claim(pz_db_t *db, int64_t user_id, pz_str_t key);
/* Appends to rec the send log record of l, with its events' type and
 * payload and the body its idempotency record keeps (may be empty: a
 * retry then rebuilds the 201 from the transfer); returns the record's
 * type for the log callback to return. Log thread. */
int pz_store_wallet_transfer_log_encode(const pz_wallet_transfer_log_t *l, pz_str_t event_type, pz_str_t event,
                                        pz_str_t answer, pz_buf_t *rec);

int pz_store_wallet_transfer_insert(pz_db_t *db, const pz_wallet_transfer_rec_t *t, pz_err_t *err);
int pz_store_wallet_transfer_get(pz_db_t *db, int64_t id, pz_wallet_transfer_rec_t *out, pz_err_t *err);
/* Moves transfer id from pending to status; *changed is false when it was
 * not pending any more. Writer. */
int pz_store_wallet_transfer_settle(pz_db_t *db, int64_t id, int status, int64_t now, bool *changed, pz_err_t *err);
/* Pending transfers that expired by now, oldest first, at most limit. */
int pz_store_wallet_transfer_expired(pz_db_t *db, int64_t now, unsigned limit, pz_store_wallet_transfer_cb cb,
                                     void *arg, pz_err_t *err);

/* ---- fundings ---- */

int pz_store_wallet_funding_insert(pz_db_t *db, const pz_wallet_funding_rec_t *f, pz_err_t *err);
int pz_store_wallet_funding_get(pz_db_t *db, int64_t id, pz_wallet_funding_rec_t *out, pz_err_t *err);
/* Moves funding id from pending to status with the provider's reference
 * or reason; *changed is false when it was not pending any more. Writer. */
int pz_store_wallet_funding_settle(pz_db_t *db, int64_t id, int status, const char *provider_ref, const char *reason,
                                   int64_t now, bool *changed, pz_err_t *err);

/* ---- red packets (store/red_packets.c) ---- */

#define PZ_RED_PACKET_COUNT_MAX 100
#define PZ_RED_PACKET_GREETING_MAX_CHARS 60
#define PZ_RED_PACKET_GREETING_MAX_BYTES (PZ_RED_PACKET_GREETING_MAX_CHARS * 4)

enum { PZ_RED_PACKET_RANDOM = 0, PZ_RED_PACKET_EQUAL = 1 };
/* Stored states; "expired" is what an active packet past its time shows
 * until the sweep has refunded it. */
enum { PZ_RED_PACKET_ACTIVE = 0, PZ_RED_PACKET_FINISHED = 1, PZ_RED_PACKET_REFUNDED = 2 };

typedef struct pz_wallet_red_packet_rec_s {
  int64_t id;
  int64_t sender_id;
  int64_t conversation_id;
  int64_t message_id; /* the red_packet message that shows it in the chat */
  int64_t total;
  unsigned count; /* shares: 1 to PZ_RED_PACKET_COUNT_MAX */
  int mode;       /* PZ_RED_PACKET_RANDOM or _EQUAL */
  char currency[PZ_WALLET_CURRENCY_LEN + 1];
  char greeting[PZ_RED_PACKET_GREETING_MAX_BYTES + 1];
  int status;             /* PZ_RED_PACKET_* */
  unsigned claimed_count; /* shares taken */
  int64_t claimed_amount; /* money taken */
  char idem_key[PZ_WALLET_KEY_MAX + 1];
  int64_t created_at, expires_at, updated_at;
} pz_wallet_red_packet_rec_t;

/* One share taken: position is 0 for the first claimant. */
typedef struct pz_wallet_claim_rec_s {
  int64_t red_packet_id;
  int64_t user_id;
  unsigned position;
  int64_t amount;
  int64_t claimed_at;
} pz_wallet_claim_rec_t;

typedef int (*pz_store_wallet_red_packet_cb)(void *arg, const pz_wallet_red_packet_rec_t *p, pz_err_t *err);
typedef int (*pz_store_wallet_claim_cb)(void *arg, const pz_wallet_claim_rec_t *c, pz_err_t *err);

/* Inserts packet p (claimed_count and claimed_amount 0). Writer. */
int pz_store_wallet_red_packet_insert(pz_db_t *db, const pz_wallet_red_packet_rec_t *p, pz_err_t *err);
int pz_store_wallet_red_packet_get(pz_db_t *db, int64_t id, pz_wallet_red_packet_rec_t *out, pz_err_t *err);
/* Inserts claim c and moves its packet's claimed_count and claimed_amount
 * on by it (finished with the last share) while the packet is active;
 * PZ_ECONFLICT when c->user_id claimed it already, or the packet is not
 * active or has no share left. Writer. */
int pz_store_wallet_claim_add(pz_db_t *db, const pz_wallet_claim_rec_t *c, int64_t now, pz_err_t *err);
/* user_id's claim of packet red_packet_id. */
int pz_store_wallet_claim_get(pz_db_t *db, int64_t red_packet_id, int64_t user_id, pz_wallet_claim_rec_t *out,
                              pz_err_t *err);
/* The claims of a packet, in the order they were made. */
int pz_store_wallet_claims_list(pz_db_t *db, int64_t red_packet_id, pz_store_wallet_claim_cb cb, void *arg,
                                pz_err_t *err);
/* Moves active packet id to refunded; *changed is false when it was not active. Writer. */
int pz_store_wallet_red_packet_refund(pz_db_t *db, int64_t id, int64_t now, bool *changed, pz_err_t *err);
/* Active packets whose time was up by now, oldest first, at most limit;
 * read whole before cb is called, so cb may change them. */
int pz_store_wallet_red_packets_expired(pz_db_t *db, int64_t now, unsigned limit, pz_store_wallet_red_packet_cb cb,
                                        void *arg, pz_err_t *err);

/* ---- daily limits, history and statements (store/wallet_limits.c) ---- */

/* A history listing: user_id's entries, newest first, that match every filter given. */
typedef struct pz_wallet_history_q_s {
  int64_t user_id;
  int64_t before; /* entries with txn_id < before; 0: from the newest */
  unsigned limit;
  char currency[PZ_WALLET_CURRENCY_LEN + 1]; /* "" for any */
  const char *kinds;                         /* NULL for any, else stored kind names as ",name,name," */
  int64_t from_ms, to_ms;                    /* created_at in [from_ms, to_ms) */
} pz_wallet_history_q_t;

/* One entry as the history shows it: the entry, the note of its transfer
 * and its counterparty's names ("" where there is none). */
typedef struct pz_wallet_history_row_s {
  pz_wallet_entry_view_t e;
  char note[PZ_WALLET_NOTE_MAX_BYTES + 1];
  char counterparty_username[PZ_USERNAME_MAX + 1];
  char counterparty_name[PZ_DISPLAY_NAME_MAX_CHARS * 4 + 1];
} pz_wallet_history_row_t;
typedef int (*pz_store_wallet_history_cb)(void *arg, const pz_wallet_history_row_t *r, pz_err_t *err);

/* One currency of a monthly statement. */
typedef struct pz_wallet_statement_row_s {
  char currency[PZ_WALLET_CURRENCY_LEN + 1];
  int64_t opening;  /* the sum of the entries before the month */
  int64_t credits;  /* the sum of the month's positive entries */
  int64_t debits;   /* minus the sum of its negative entries: >= 0 */
  int64_t count;    /* the month's entries */
} pz_wallet_statement_row_t;
typedef int (*pz_store_wallet_statement_cb)(void *arg, const pz_wallet_statement_row_t *r, pz_err_t *err);

/* A broken invariant of the daily counters (pz_store_wallet_ledger_verify):
 * id: 0; user; currency; a: the counter; b: the debits it counts on its day. */
#define PZ_VERIFY_DAILY_OUT 100

/* user_id's verification tier: 0 without a wallet_users row. */
int pz_store_wallet_tier_get(pz_db_t *db, int64_t user_id, int *tier, pz_err_t *err);
/* Sets it (creating the wallet_users row). Writer. */
int pz_store_wallet_tier_set(pz_db_t *db, int64_t user_id, int tier, int64_t now, pz_err_t *err);
/* The counter of (user_id, currency): {0, 0} when there is none. */
int pz_store_wallet_daily_get(pz_db_t *db, int64_t user_id, const char *currency, pz_wallet_daily_rec_t *out,
                              pz_err_t *err);
/* Adds amount to the counter of (user_id, currency) for day: a counter of
 * an earlier day starts again from amount; one of a later day (the clock
 * went back) takes it too, so that it never counts less than was sent. Writer. */
int pz_store_wallet_daily_add(pz_db_t *db, int64_t user_id, const char *currency, int64_t day, int64_t amount,
                              pz_err_t *err);
/* Adds amount to the counter of (user_id, currency) as pz_store_wallet_daily_add
 * does, if the counter exists and stays within caps[tier] for user_id's
 * tier (read by the same statement; INT64_MAX: no limit): *charged. Else
 * changes nothing (*charged false): no counter yet, or over the limit. Writer. */
int pz_store_wallet_daily_charge(pz_db_t *db, int64_t user_id, const char *currency, int64_t day, int64_t amount,
                                 const int64_t caps[PZ_WALLET_TIERS], bool *charged, pz_err_t *err);
/* Calls cb with each entry of q, newest first, at most q->limit. */
int pz_store_wallet_history(pz_db_t *db, const pz_wallet_history_q_t *q, pz_store_wallet_history_cb cb, void *arg,
                            pz_err_t *err);
/* Calls cb once per currency in which user_id has entries before end_ms,
 * in currency order, with the month [start_ms, end_ms) summed up. */
int pz_store_wallet_statement(pz_db_t *db, int64_t user_id, int64_t start_ms, int64_t end_ms,
                              pz_store_wallet_statement_cb cb, void *arg, pz_err_t *err);

#endif
