/* Transfers between users inside write jobs: sender to escrow, then escrow to the receiver or back to the sender; or,
 * to a receiver who accepts automatically, sender to receiver. */
#include <string.h>
#include "plaza/id.h"
#include "plaza/store_chat.h"
#include "plaza/wallet.h"

static int not_found(pz_err_t *err) { return pz_err_set(err, PZ_ENOTFOUND, NULL, "no such transfer"); }

static int not_pending(pz_err_t *err, const pz_wallet_transfer_rec_t *t) {
  static const char *const what[] = {"pending", "accepted", "returned", "refunded after it expired"};
  return pz_err_set(err, PZ_ECONFLICT, "transfer_not_pending", "this transfer was %s already", what[t->status]);
}

/* Pays a transfer's money out of escrow: to the receiver (completed) or
 * back to the sender (returned, expired). */
static int pay_out(pz_db_t *db, const pz_wallet_transfer_rec_t *t, int status, const pz_wallet_account_rec_t *escrow,
                   int64_t now, pz_err_t *err) {
  static const int txn_kind[] = {0, PZ_TXN_TRANSFER_ACCEPT, PZ_TXN_TRANSFER_RETURN, PZ_TXN_TRANSFER_EXPIRE};
  pz_wallet_account_rec_t to;
  int64_t dest = status == PZ_TRANSFER_COMPLETED ? t->to_id : t->from_id;
  int rc = pz_wallet_account(db, dest, PZ_ACCT_USER, t->currency, now, &to, err);
  return rc < 0 ? rc : pz_wallet_move(db, pz_id_next(), txn_kind[status], t->id, escrow, &to, t->amount, now, err);
}

/* Moves a pending transfer's money out of escrow, to the receiver or back
 * to the sender, and gives it its final status. */
static int settle(pz_db_t *db, pz_wallet_transfer_rec_t *t, int status, int64_t now, pz_err_t *err) {
  pz_wallet_account_rec_t escrow;
  bool changed = false;
  int rc = pz_store_wallet_transfer_settle(db, t->id, status, now, &changed, err);
  if (rc < 0) return rc;
  PZ_ASSERT(changed); /* the caller read it pending in this same job */
  if ((rc = pz_wallet_account(db, 0, PZ_ACCT_ESCROW, t->currency, now, &escrow, err)) < 0 ||
      (rc = pay_out(db, t, status, &escrow, now, err)) < 0)
    return rc;
  t->status = status;
  t->updated_at = now;
  return 0;
}

int pz_wallet_transfer_create(pz_db_t *db, const pz_wallet_config_t *cfg, const pz_wallet_transfer_rec_t *t,
                              pz_str_t pin, int64_t now, pz_wallet_transfer_rec_t *out, unsigned *retry_after_s,
                              bool *keep, pz_err_t *err) {
  /* Until the money moves, a failure has written nothing but, at most,
   * the PIN's state. */
  *keep = true;
  if (t->from_id == t->to_id) return pz_err_set(err, PZ_EINVAL, NULL, "you cannot send money to yourself");
  pz_wallet_payee_rec_t payee;
  int rc = pz_store_wallet_payee_get(db, t->from_id, t->to_id, t->currency, &payee, err);
  if (rc == PZ_ENOTFOUND) return pz_err_set(err, PZ_ENOTFOUND, NULL, "no such user");
  if (rc < 0) return rc;
  if (payee.blocked) return pz_err_set(err, PZ_EFORBIDDEN, "blocked", "one of you blocked the other");
  /* Checked before anything moves, so that the refusal is kept as the
   * key's answer; pz_wallet_move enforces balance and limit again. */
  pz_wallet_account_rec_t from;
  rc = pz_wallet_spend_check(db, cfg, t->from_id, t->currency, t->amount, pin, now, &from, retry_after_s, err);
  if (rc < 0) return rc;
  *keep = false;

  *out = *t;
  out->status = payee.auto_accept ? PZ_TRANSFER_COMPLETED : PZ_TRANSFER_PENDING;
  out->created_at = out->updated_at = now;
  out->expires_at = now + cfg->transfer_ttl_ms;
  if ((rc = pz_store_wallet_transfer_insert(db, out, err)) < 0) return rc;
  if (!payee.auto_accept) {
    /* Held in escrow until the receiver accepts or returns it, or it expires. */
    pz_wallet_account_rec_t escrow;
    if ((rc = pz_wallet_account(db, 0, PZ_ACCT_ESCROW, t->currency, now, &escrow, err)) < 0) return rc;
    return pz_wallet_move(db, pz_id_next(), PZ_TXN_TRANSFER, out->id, &from, &escrow, t->amount, now, err);
  }
  /* A receiver who accepts automatically gets a transfer that is
   * completed from its first row, and the money at once: one movement from
   * sender to receiver, with nothing to hold. (Older ledgers hold such
   * transfers as two movements through escrow; the history tells both
   * alike: the receiver's credit is a transfer_accept.) */
  pz_wallet_account_rec_t to = {.id = payee.account_id, .user_id = t->to_id, .kind = PZ_ACCT_USER};
  memcpy(to.currency, t->currency, sizeof(to.currency));
  if (to.id == 0 && (rc = pz_wallet_account(db, t->to_id, PZ_ACCT_USER, t->currency, now, &to, err)) < 0) return rc;
  return pz_wallet_move(db, pz_id_next(), PZ_TXN_TRANSFER, out->id, &from, &to, t->amount, now, err);
}

int pz_wallet_transfer_log(pz_db_t *db, const pz_wallet_config_t *cfg, const pz_wallet_transfer_rec_t *t, pz_str_t pin,
                           int64_t now, pz_wallet_transfer_log_t *out) {
  pz_str_t key = pz_str(t->idem_key);
  if (t->conversation_id || t->from_id == t->to_id || key.len == 0 ||
      pz_store_wallet_log_key_pending(db, t->from_id, key))
    return 0;
  /* Reads alone: whatever fails here is the writer's to tell. */
  pz_err_t err = {0};
  if (pz_store_wallet_idem_exists(db, t->from_id, key, &err) != PZ_ENOTFOUND)
    return 0; /* a retry: the writer replays it */
  pz_wallet_payee_rec_t payee;
  pz_wallet_payer_rec_t p;
  if (pz_store_wallet_log_payee(db, t->from_id, t->to_id, t->currency, &payee, &err) < 0 || payee.blocked ||
      !payee.auto_accept || payee.account_id == 0 ||
      pz_store_wallet_payer_get(db, t->from_id, t->currency, &p, &err) < 0 || !p.has_account ||
      !pz_wallet_pin_clean_match(cfg, &p.user, pin))
    return 0;
  int64_t balance = p.account.balance;
  pz_store_wallet_log_balance(db, p.account.id, &balance);
  pz_wallet_daily_rec_t d = p.daily;
  pz_store_wallet_log_daily(db, p.account.id, &d);
  if (balance < t->amount || pz_wallet_limit_check_counter(p.user.tier, &d, t->currency, t->amount, now, &err) < 0)
    return 0;

  if (pz_store_event_claim(db, t->from_id, &out->seqs[0], &err) < 0) return 0;
  if (pz_store_event_claim(db, t->to_id, &out->seqs[1], &err) < 0) {
    pz_store_event_unclaim(db, t->from_id);
    return 0;
  }
  pz_store_wallet_log_key_claim(db, t->from_id, key);
  pz_store_wallet_log_balance_set(db, p.account.id, balance - t->amount);
  /* A receiver the log does not know yet keeps the balance the database
   * gives when it first sends: short of what was logged to it, never more
   * than it has. */
  int64_t to_balance;
  if (pz_store_wallet_log_balance(db, payee.account_id, &to_balance))
    pz_store_wallet_log_balance_set(db, payee.account_id, to_balance + t->amount);
  /* The counter moves as pz_store_wallet_daily_add moves it. */
  int64_t day = now / PZ_WALLET_DAY_MS;
  if (day <= d.day) {
    d.amount += t->amount;
  } else {
    d.day = day;
    d.amount = t->amount;
  }
  pz_store_wallet_log_daily_set(db, p.account.id, &d);

  out->t = *t;
  out->t.status = PZ_TRANSFER_COMPLETED;
  out->t.created_at = out->t.updated_at = now;
  out->t.expires_at = now + cfg->transfer_ttl_ms;
  out->txn_id = pz_id_next();
  out->from_account = p.account.id;
  out->to_account = payee.account_id;
  out->day = day;
  return 1;
}

/* Loads transfer id for its receiver me. */
static int load_received(pz_db_t *db, int64_t me, int64_t id, pz_wallet_transfer_rec_t *out, pz_err_t *err) {
  int rc = pz_store_wallet_transfer_get(db, id, out, err);
  if (rc == PZ_ENOTFOUND || (rc == 0 && out->to_id != me)) return not_found(err);
  return rc;
}

int pz_wallet_transfer_accept(pz_db_t *db, int64_t me, int64_t id, int64_t now, pz_wallet_transfer_rec_t *out,
                              pz_err_t *err) {
  int rc = load_received(db, me, id, out, err);
  if (rc < 0 || out->status == PZ_TRANSFER_COMPLETED) return rc;
  if (out->status != PZ_TRANSFER_PENDING) return not_pending(err, out);
  /* Past its time, the money belongs back with the sender, whom the sweep
   * is about to refund; the receiver is too late. */
  if (out->expires_at <= now)
    return pz_err_set(err, PZ_ECONFLICT, "transfer_not_pending", "this transfer expired and goes back to its sender");
  return settle(db, out, PZ_TRANSFER_COMPLETED, now, err);
}

int pz_wallet_transfer_return(pz_db_t *db, int64_t me, int64_t id, int64_t now, pz_wallet_transfer_rec_t *out,
                              pz_err_t *err) {
  int rc = load_received(db, me, id, out, err);
  if (rc < 0 || out->status == PZ_TRANSFER_RETURNED) return rc;
  if (out->status != PZ_TRANSFER_PENDING) return not_pending(err, out);
  return settle(db, out, PZ_TRANSFER_RETURNED, now, err);
}

int pz_wallet_transfer_get(pz_db_t *db, int64_t me, int64_t id, pz_wallet_transfer_rec_t *out, pz_err_t *err) {
  int rc = pz_store_wallet_transfer_get(db, id, out, err);
  /* Someone else's transfer does not exist, as far as me can tell. */
  if (rc == PZ_ENOTFOUND || (rc == 0 && out->from_id != me && out->to_id != me)) return not_found(err);
  return rc;
}

typedef struct {
  pz_db_t *db;
  int64_t now;
  unsigned n;
  pz_store_wallet_transfer_cb cb;
  void *arg;
} expire_t;

static int expire_row(void *arg, const pz_wallet_transfer_rec_t *t, pz_err_t *err) {
  expire_t *e = arg;
  pz_wallet_transfer_rec_t copy = *t;
  int rc = settle(e->db, &copy, PZ_TRANSFER_EXPIRED, e->now, err);
  if (rc == 0) e->n++;
  if (rc == 0 && e->cb) rc = e->cb(e->arg, &copy, err);
  return rc;
}

int pz_wallet_transfer_expire_each(pz_db_t *db, int64_t now, unsigned limit, unsigned *n,
                                   pz_store_wallet_transfer_cb cb, void *arg, pz_err_t *err) {
  expire_t e = {db, now, 0, cb, arg};
  int rc = pz_store_wallet_transfer_expired(db, now, limit, expire_row, &e, err);
  *n = e.n;
  return rc;
}

int pz_wallet_transfer_expire(pz_db_t *db, int64_t now, unsigned limit, unsigned *n, pz_err_t *err) {
  return pz_wallet_transfer_expire_each(db, now, limit, n, NULL, NULL, err);
}
