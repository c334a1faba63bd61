/* The ledger's rules inside write jobs: accounts, balanced movements, balances, the payment PIN and idempotency
 * records. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include "plaza/id.h"
#include "plaza/wallet.h"

/* ---- accounts and movements ---- */

int pz_wallet_account(pz_db_t *db, int64_t user_id, int kind, const char *currency, int64_t now,
                      pz_wallet_account_rec_t *out, pz_err_t *err) {
  int rc;
  if (kind == PZ_ACCT_USER) {
    rc = pz_store_wallet_account_get(db, user_id, kind, currency, out, err);
  } else {
    /* Nothing reads a system account's balance (it has no floor): its id is enough. */
    memset(out, 0, sizeof(*out));
    out->kind = kind;
    memcpy(out->currency, currency, PZ_WALLET_CURRENCY_LEN + 1);
    rc = pz_store_wallet_system_account_id(db, kind, currency, &out->id, err);
  }
  if (rc != PZ_ENOTFOUND) return rc;
  *err = (pz_err_t){0};
  /* Accounts come into being with their first movement: a user who never
   * touches a currency costs no row. The writer is the only one creating
   * them, so the get above cannot race another insert. */
  memset(out, 0, sizeof(*out));
  out->id = pz_id_next();
  out->user_id = user_id;
  out->kind = kind;
  memcpy(out->currency, currency, PZ_WALLET_CURRENCY_LEN + 1);
  return pz_store_wallet_account_insert(db, out, now, err);
}

static int insufficient(pz_err_t *err) {
  return pz_err_set(err, PZ_EUNPROCESSABLE, "insufficient_funds", "your balance is too low for this");
}

int pz_wallet_move(pz_db_t *db, int64_t txn_id, int kind, int64_t ref_id, const pz_wallet_account_rec_t *from,
                   const pz_wallet_account_rec_t *to, int64_t amount, int64_t now, pz_err_t *err) {
  /* Both legs are built here, from one amount: a transaction cannot be
   * unbalanced or mix currencies whatever its caller does. */
  PZ_ASSERT(amount > 0 && from->id != to->id && strcmp(from->currency, to->currency) == 0);
  const pz_wallet_entry_rec_t e[2] = {
      {txn_id, from->id, from->user_id, -amount},
      {txn_id, to->id, to->user_id, amount},
  };
  int rc = pz_store_wallet_txn_insert(db, txn_id, kind, ref_id, now, err);
  /* The debit goes first and is its own balance check: a user account
   * that would go below zero fails the schema's CHECK (PZ_ECONFLICT), on
   * the balance as it stands in this job, whatever the caller's copy
   * says. It fails before the daily limit is looked at, so that a
   * movement refused for both reasons says insufficient funds, as the
   * rules' own checks do. (System accounts have no floor.) */
  if (rc == 0) rc = pz_store_wallet_balance_move(db, from->id, -amount, err);
  /* The daily limit is enforced here, where every debit passes, rather
   * than by each rule that makes one. A refusal fails the job, which takes
   * the debit back with it. */
  if (rc == 0 && from->kind == PZ_ACCT_USER && pz_wallet_limit_counts(kind))
    rc = pz_wallet_limit_charge(db, from->user_id, from->currency, amount, now, err);
  if (rc == 0) rc = pz_store_wallet_entries_insert(db, e, err);
  if (rc == 0) rc = pz_store_wallet_balance_move(db, to->id, amount, err);
  return rc == PZ_ECONFLICT ? insufficient(err) : rc;
}

typedef struct {
  const pz_wallet_config_t *cfg;
  int64_t *out;
} balances_t;

static int balance_row(void *arg, const pz_wallet_account_rec_t *a, pz_err_t *err) {
  balances_t *b = arg;
  for (unsigned i = 0; i < b->cfg->currencies.n; i++)
    if (strcmp(b->cfg->currencies.codes[i], a->currency) == 0) b->out[i] = a->balance;
  return 0;
}

int pz_wallet_balances(pz_db_t *db, const pz_wallet_config_t *cfg, int64_t user_id,
                       int64_t out[PZ_WALLET_CURRENCIES_MAX], pz_err_t *err) {
  memset(out, 0, PZ_WALLET_CURRENCIES_MAX * sizeof(int64_t));
  balances_t b = {cfg, out};
  return pz_store_wallet_accounts_of(db, user_id, balance_row, &b, err);
}

/* ---- the payment PIN ---- */

int pz_wallet_pin_set(pz_db_t *db, const pz_wallet_config_t *cfg, int64_t user_id, pz_str_t pin, int64_t now,
                      pz_err_t *err) {
  uint8_t hash[PZ_WALLET_PIN_HASH_LEN];
  pz_wallet_pin_hash(cfg->pin_secret, user_id, pin, hash);
  return pz_store_wallet_user_set_pin(db, user_id, hash, now, err);
}

static unsigned seconds_until(int64_t until, int64_t now) {
  int64_t ms = until - now;
  return ms <= 0 ? 1 : (unsigned)((ms + 999) / 1000);
}

/* Whether pin is u's, whatever its state. */
static bool pin_matches(const pz_wallet_config_t *cfg, const pz_wallet_user_rec_t *u, pz_str_t pin) {
  uint8_t hash[PZ_WALLET_PIN_HASH_LEN];
  pz_wallet_pin_hash(cfg->pin_secret, u->user_id, pin, hash);
  /* Constant time: how far a guess matched must not show in the timing. */
  return sodium_memcmp(hash, u->pin_hash, sizeof(hash)) == 0;
}

bool pz_wallet_pin_clean_match(const pz_wallet_config_t *cfg, const pz_wallet_user_rec_t *u, pz_str_t pin) {
  return u->pin_set && u->pin_failures == 0 && u->pin_locked_until == 0 && pin_matches(cfg, u, pin);
}

/* pz_wallet_pin_verify against u, user_id's PIN state as read in this job. */
static int pin_verify(pz_db_t *db, const pz_wallet_config_t *cfg, const pz_wallet_user_rec_t *u, pz_str_t pin,
                      int64_t now, unsigned *retry_after_s, pz_err_t *err) {
  if (!u->pin_set) return pz_err_set(err, PZ_EFORBIDDEN, "pin_not_set", "set a payment PIN first (PUT /v1/wallet/pin)");
  if (u->pin_locked_until > now) {
    *retry_after_s = seconds_until(u->pin_locked_until, now);
    return pz_err_set(err, PZ_ELOCKED, "pin_locked", "too many wrong PINs; payments are locked for %u more seconds",
                      *retry_after_s);
  }
  if (pin_matches(cfg, u, pin)) {
    if (u->pin_failures == 0 && u->pin_locked_until == 0) return 0;
    return pz_store_wallet_user_set_pin_state(db, u->user_id, 0, 0, now, err);
  }
  /* A lock that ran out starts a fresh count. */
  int failures = (u->pin_locked_until != 0 ? 0 : u->pin_failures) + 1;
  int64_t locked_until = 0;
  if (failures >= PZ_WALLET_PIN_MAX_FAILURES) {
    locked_until = now + PZ_WALLET_PIN_LOCK_MS;
    failures = 0;
  }
  int rc = pz_store_wallet_user_set_pin_state(db, u->user_id, failures, locked_until, now, err);
  if (rc < 0) return rc;
  if (locked_until) {
    *retry_after_s = seconds_until(locked_until, now);
    return pz_err_set(err, PZ_ELOCKED, "pin_locked", "too many wrong PINs; payments are locked for %u seconds",
                      *retry_after_s);
  }
  int left = PZ_WALLET_PIN_MAX_FAILURES - failures;
  return pz_err_set(err, PZ_EFORBIDDEN, "wrong_pin", "wrong PIN; %d %s left before payments lock for 15 minutes", left,
                    left == 1 ? "try" : "tries");
}

int pz_wallet_pin_verify(pz_db_t *db, const pz_wallet_config_t *cfg, int64_t user_id, pz_str_t pin, int64_t now,
                         unsigned *retry_after_s, pz_err_t *err) {
  pz_wallet_user_rec_t u;
  int rc = pz_store_wallet_user_get(db, user_id, &u, err);
  if (rc < 0 && rc != PZ_ENOTFOUND) return rc;
  return pin_verify(db, cfg, &u, pin, now, retry_after_s, err);
}

int pz_wallet_spend_check(pz_db_t *db, const pz_wallet_config_t *cfg, int64_t user_id, const char *currency,
                          int64_t amount, pz_str_t pin, int64_t now, pz_wallet_account_rec_t *from,
                          unsigned *retry_after_s, pz_err_t *err) {
  pz_wallet_payer_rec_t p;
  int rc = pz_store_wallet_payer_get(db, user_id, currency, &p, err);
  if (rc == PZ_ENOTFOUND)
    *err = (pz_err_t){0}; /* no wallet row, so no PIN: pin_verify says so */
  else if (rc < 0)
    return rc;
  if ((rc = pin_verify(db, cfg, &p.user, pin, now, retry_after_s, err)) < 0) return rc;
  if (!p.has_account || p.account.balance < amount)
    return pz_err_set(err, PZ_EUNPROCESSABLE, "insufficient_funds", "your %s balance is too low for this", currency);
  if ((rc = pz_wallet_limit_check_counter(p.user.tier, &p.daily, currency, amount, now, err)) < 0) return rc;
  *from = p.account;
  return 0;
}

/* ---- idempotency ---- */

int pz_wallet_idem_lookup(pz_db_t *db, int64_t user_id, pz_str_t key, const uint8_t fp[PZ_WALLET_FP_LEN],
                          pz_wallet_idem_rec_t *out, bool *found, pz_err_t *err) {
  *found = false;
  int rc = pz_store_wallet_idem_get(db, user_id, key, out, err);
  if (rc == PZ_ENOTFOUND) {
    *err = (pz_err_t){0};
    return 0;
  }
  if (rc < 0) return rc;
  if (memcmp(out->fingerprint, fp, PZ_WALLET_FP_LEN) != 0)
    return pz_err_set(err, PZ_ECONFLICT, "idempotency_key_reused",
                      "this idempotency_key was used for a different request");
  *found = true;
  return 0;
}

int pz_wallet_idem_save(pz_db_t *db, int64_t user_id, pz_str_t key, const uint8_t fp[PZ_WALLET_FP_LEN], int64_t ref_id,
                        int status, pz_str_t body, int64_t now, pz_err_t *err) {
  if (body.len > PZ_WALLET_BODY_MAX) return pz_err_set(err, PZ_EIO, NULL, "response too large to keep");
  pz_wallet_idem_rec_t *rec = pz_malloc(sizeof(*rec));
  memcpy(rec->fingerprint, fp, PZ_WALLET_FP_LEN);
  rec->status = status;
  rec->ref_id = ref_id;
  rec->body_len = body.len;
  if (body.len) memcpy(rec->body, body.ptr, body.len);
  rec->body[body.len] = '\0';
  int rc = pz_store_wallet_idem_put(db, user_id, key, rec, now, err);
  pz_free(rec);
  return rc;
}
