/* Top-ups and withdrawals inside write jobs: a pending record before the provider is asked, the money moved on its
 * verdict. */
#include <string.h>
#include "plaza/id.h"
#include "plaza/wallet.h"

int pz_wallet_funding_begin(pz_db_t *db, const pz_wallet_config_t *cfg, const pz_wallet_funding_rec_t *f, pz_str_t pin,
                            int64_t now, unsigned *retry_after_s, bool *keep, pz_err_t *err) {
  /* Until the money moves, a failure has written nothing but, at most,
   * the PIN's state. */
  *keep = true;
  pz_wallet_funding_rec_t rec = *f;
  rec.status = PZ_FUNDING_PENDING;
  rec.created_at = rec.updated_at = now;
  int rc;
  if (f->kind == PZ_FUNDING_WITHDRAWAL) {
    pz_wallet_account_rec_t from, escrow;
    /* Before anything moves, so that the refusal is the key's answer. */
    rc = pz_wallet_spend_check(db, cfg, f->user_id, f->currency, f->amount, pin, now, &from, retry_after_s, err);
    if (rc < 0) return rc;
    *keep = false;
    /* The money leaves the balance before the provider is asked, so that
     * it cannot be spent again while the payout is under way. */
    if ((rc = pz_store_wallet_funding_insert(db, &rec, err)) < 0 ||
        (rc = pz_wallet_account(db, 0, PZ_ACCT_ESCROW, f->currency, now, &escrow, err)) < 0)
      return rc;
    return pz_wallet_move(db, pz_id_next(), PZ_TXN_WITHDRAWAL, f->id, &from, &escrow, f->amount, now, err);
  }
  *keep = false;
  return pz_store_wallet_funding_insert(db, &rec, err);
}

int pz_wallet_funding_settle(pz_db_t *db, int64_t id, bool ok, const char *provider_ref, const char *reason,
                             int64_t now, pz_wallet_funding_rec_t *out, bool *changed, pz_err_t *err) {
  int rc = pz_store_wallet_funding_settle(db, id, ok ? PZ_FUNDING_COMPLETED : PZ_FUNDING_FAILED, provider_ref,
                                          ok ? "" : reason, now, changed, err);
  if (rc == 0) rc = pz_store_wallet_funding_get(db, id, out, err);
  if (rc < 0 || !*changed) return rc;
  pz_wallet_account_rec_t user, system;
  int64_t txn = pz_id_next();
  if (out->kind == PZ_FUNDING_TOPUP) {
    if (!ok) return 0; /* nothing had moved */
    if ((rc = pz_wallet_account(db, 0, PZ_ACCT_EXTERNAL, out->currency, now, &system, err)) < 0 ||
        (rc = pz_wallet_account(db, out->user_id, PZ_ACCT_USER, out->currency, now, &user, err)) < 0)
      return rc;
    return pz_wallet_move(db, txn, PZ_TXN_TOPUP, id, &system, &user, out->amount, now, err);
  }
  pz_wallet_account_rec_t escrow;
  if ((rc = pz_wallet_account(db, 0, PZ_ACCT_ESCROW, out->currency, now, &escrow, err)) < 0) return rc;
  if (ok) {
    if ((rc = pz_wallet_account(db, 0, PZ_ACCT_EXTERNAL, out->currency, now, &system, err)) < 0) return rc;
    return pz_wallet_move(db, txn, PZ_TXN_WITHDRAWAL_PAYOUT, id, &escrow, &system, out->amount, now, err);
  }
  if ((rc = pz_wallet_account(db, out->user_id, PZ_ACCT_USER, out->currency, now, &user, err)) < 0) return rc;
  return pz_wallet_move(db, txn, PZ_TXN_WITHDRAWAL_REFUND, id, &escrow, &user, out->amount, now, err);
}
