/* SQL for the wallet's tiers and daily counters, the filtered history and monthly statements, behind store_wallet.h. */
#include <string.h>
#include "plaza/store_wallet.h"
#include "store/db.h"

/* ---- tiers ---- */

static const char SQL_TIER_GET[] = "SELECT tier FROM wallet_users WHERE user_id = ?1";

int pz_store_wallet_tier_get(pz_db_t *db, int64_t user_id, int *tier, pz_err_t *err) {
  *tier = 0;
  sqlite3_stmt *st = pz__db_stmt(db, SQL_TIER_GET, err);
  if (st == NULL) return err->code;
  int rc = PZ__DB_BIND(db, st, err, user_id);
  if (rc == 0) rc = pz__db_step_row(db, st, err);
  if (rc == PZ_ENOTFOUND) {
    *err = (pz_err_t){0};
    return 0;
  }
  if (rc == 0) *tier = sqlite3_column_int(st, 0);
  return rc;
}

static const char SQL_TIER_SET[] =
    "INSERT INTO wallet_users (user_id, tier, updated_at) VALUES (?1, ?2, ?3)"
    " ON CONFLICT (user_id) DO UPDATE SET tier = excluded.tier, updated_at = excluded.updated_at";

int pz_store_wallet_tier_set(pz_db_t *db, int64_t user_id, int tier, int64_t now, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_TIER_SET, err);
  if (st == NULL) return err->code;
  int rc = PZ__DB_BIND(db, st, err, user_id, (int64_t)tier, now);
  return rc < 0 ? rc : pz__db_step_done(db, st, err);
}

/* ---- daily counters ---- */

static const char SQL_DAILY_GET[] = "SELECT day, amount FROM wallet_daily_out WHERE user_id = ?1 AND currency = ?2";

int pz_store_wallet_daily_get(pz_db_t *db, int64_t user_id, const char *currency, pz_wallet_daily_rec_t *out,
                              pz_err_t *err) {
  *out = (pz_wallet_daily_rec_t){0, 0};
  sqlite3_stmt *st = pz__db_stmt(db, SQL_DAILY_GET, err);
  if (st == NULL) return err->code;
  int rc = PZ__DB_BIND(db, st, err, user_id);
  if (rc == 0) rc = pz__db_bind_text(db, st, 2, currency, err);
  if (rc == 0) rc = pz__db_step_row(db, st, err);
  if (rc == PZ_ENOTFOUND) {
    *err = (pz_err_t){0};
    return 0;
  }
  if (rc == 0) {
    out->day = sqlite3_column_int64(st, 0);
    out->amount = sqlite3_column_int64(st, 1);
  }
  return rc;
}

/* ?1 to ?4 of the statements that move a counter. */
static int bind_counter(pz_db_t *db, sqlite3_stmt *st, int64_t user_id, const char *currency, int64_t day,
                        int64_t amount, pz_err_t *err) {
  int rc = PZ__DB_BIND(db, st, err, user_id);
  if (rc == 0) rc = pz__db_bind_text(db, st, 2, currency, err);
  if (rc == 0 &&
      ((rc = sqlite3_bind_int64(st, 3, day)) != SQLITE_OK || (rc = sqlite3_bind_int64(st, 4, amount)) != SQLITE_OK))
    rc = pz__db_fail(db, rc, err);
  return rc;
}

static const char SQL_DAILY_ADD[] =
    "INSERT INTO wallet_daily_out (user_id, currency, day, amount) VALUES (?1, ?2, ?3, ?4)"
    " ON CONFLICT (user_id, currency) DO UPDATE SET"
    "  amount = CASE WHEN excluded.day <= day THEN amount + excluded.amount ELSE excluded.amount END,"
    "  day = max(day, excluded.day)";

int pz_store_wallet_daily_add(pz_db_t *db, int64_t user_id, const char *currency, int64_t day, int64_t amount,
                              pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_DAILY_ADD, err);
  if (st == NULL) return err->code;
  int rc = bind_counter(db, st, user_id, currency, day, amount, err);
  return rc < 0 ? rc : pz__db_step_done(db, st, err);
}

/* The counter moves as in SQL_DAILY_ADD, and only while the sum stays
 * within the cap of the user's tier (clamped to 0-9 like
 * pz_wallet_limit_of), bound as ?5 to ?14. */
static const char SQL_DAILY_CHARGE[] =
    "UPDATE wallet_daily_out SET amount = CASE WHEN ?3 <= day THEN amount + ?4 ELSE ?4 END, day = max(day, ?3)"
    " WHERE user_id = ?1 AND currency = ?2"
    "  AND CASE WHEN ?3 <= day THEN amount + ?4 ELSE ?4 END <= coalesce("
    "   (SELECT CASE max(0, min(9, tier)) WHEN 1 THEN ?6 WHEN 2 THEN ?7 WHEN 3 THEN ?8 WHEN 4 THEN ?9 WHEN 5 THEN ?10"
    "     WHEN 6 THEN ?11 WHEN 7 THEN ?12 WHEN 8 THEN ?13 WHEN 9 THEN ?14 ELSE ?5 END"
    "    FROM wallet_users WHERE user_id = ?1), ?5)";
_Static_assert(PZ_WALLET_TIERS == 10, "SQL_DAILY_CHARGE names ten tiers");

int pz_store_wallet_daily_charge(pz_db_t *db, int64_t user_id, const char *currency, int64_t day, int64_t amount,
                                 const int64_t caps[PZ_WALLET_TIERS], bool *charged, pz_err_t *err) {
  *charged = false;
  sqlite3_stmt *st = pz__db_stmt(db, SQL_DAILY_CHARGE, err);
  if (st == NULL) return err->code;
  int rc = bind_counter(db, st, user_id, currency, day, amount, err);
  for (int t = 0; rc == 0 && t < PZ_WALLET_TIERS; t++)
    if ((rc = sqlite3_bind_int64(st, 5 + t, caps[t])) != SQLITE_OK) rc = pz__db_fail(db, rc, err);
  if (rc == 0) rc = pz__db_step_done(db, st, err);
  *charged = rc == 0 && sqlite3_changes(db->sql) > 0;
  return rc;
}

/* ---- history ---- */

/* The kind filter is one bound text of ",name,name,", so that one
 * prepared statement serves every combination of filters. The walk goes
 * down the (user_id, txn_id) index, newest first. */
static const char SQL_HISTORY[] =
    "SELECT e.txn_id, " PZ__DB_ENTRY_KIND
    ", t.ref_id, a.currency, e.amount, t.created_at, coalesce(p.cp, 0),"
    "  coalesce(p.note, ''),"
    "  coalesce(u.username, ''), coalesce(u.display_name, '')"
    " FROM wallet_entries e"
    " JOIN wallet_txns t ON t.id = e.txn_id"
    " JOIN wallet_accounts a ON a.id = e.account_id"
    " LEFT JOIN (SELECT id, note, CASE WHEN from_user_id = ?1 THEN to_user_id ELSE from_user_id END AS cp"
    "   FROM wallet_transfers) p ON p.id = t.ref_id AND t.kind LIKE 'transfer%'"
    " LEFT JOIN users u ON u.id = p.cp"
    " WHERE e.user_id = ?1 AND e.txn_id < ?2"
    "  AND (?3 = '' OR a.currency = ?3)"
    "  AND (?4 = '' OR instr(?4, ',' || " PZ__DB_ENTRY_KIND
    " || ',') > 0)"
    "  AND t.created_at >= ?5 AND t.created_at < ?6"
    " ORDER BY e.txn_id DESC LIMIT ?7";

int pz_store_wallet_history(pz_db_t *db, const pz_wallet_history_q_t *q, pz_store_wallet_history_cb cb, void *arg,
                            pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_HISTORY, err);
  if (st == NULL) return err->code;
  int rc = PZ__DB_BIND(db, st, err, q->user_id, q->before > 0 ? q->before : INT64_MAX);
  if (rc == 0) rc = pz__db_bind_text(db, st, 3, q->currency, err);
  if (rc == 0) rc = pz__db_bind_text(db, st, 4, q->kinds ? q->kinds : "", err);
  if (rc == 0 && ((rc = sqlite3_bind_int64(st, 5, q->from_ms)) != SQLITE_OK ||
                  (rc = sqlite3_bind_int64(st, 6, q->to_ms)) != SQLITE_OK ||
                  (rc = sqlite3_bind_int64(st, 7, (int64_t)q->limit)) != SQLITE_OK))
    rc = pz__db_fail(db, rc, err);
  if (rc < 0) return rc;
  /* A row is large (names, note): one on the heap serves the walk. */
  pz_wallet_history_row_t *r = pz_malloc(sizeof(*r));
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    memset(&r->e, 0, sizeof(r->e));
    r->e.txn_id = sqlite3_column_int64(st, 0);
    const char *kind = (const char *)sqlite3_column_text(st, 1);
    r->e.kind = -1;
    for (int k = 0; kind && k < PZ_TXN__COUNT; k++)
      if (strcmp(kind, pz_store_wallet_txn_name(k)) == 0) r->e.kind = k;
    r->e.ref_id = sqlite3_column_int64(st, 2);
    pz__db_col_text(st, 3, r->e.currency, sizeof(r->e.currency));
    r->e.amount = sqlite3_column_int64(st, 4);
    r->e.created_at = sqlite3_column_int64(st, 5);
    r->e.counterparty_id = sqlite3_column_int64(st, 6);
    pz__db_col_text(st, 7, r->note, sizeof(r->note));
    pz__db_col_text(st, 8, r->counterparty_username, sizeof(r->counterparty_username));
    pz__db_col_text(st, 9, r->counterparty_name, sizeof(r->counterparty_name));
    if ((rc = cb(arg, r, err)) < 0) goto out;
  }
  rc = rc == SQLITE_DONE ? 0 : pz__db_fail(db, rc, err);
out:
  pz_free(r);
  return rc;
}

/* ---- statements ---- */

static const char SQL_STATEMENT[] =
    "SELECT a.currency,"
    "  coalesce(sum(CASE WHEN t.created_at < ?2 THEN e.amount END), 0),"
    "  coalesce(sum(CASE WHEN t.created_at >= ?2 AND e.amount > 0 THEN e.amount END), 0),"
    "  coalesce(sum(CASE WHEN t.created_at >= ?2 AND e.amount < 0 THEN -e.amount END), 0),"
    "  count(CASE WHEN t.created_at >= ?2 THEN 1 END)"
    " FROM wallet_entries e"
    " JOIN wallet_txns t ON t.id = e.txn_id"
    " JOIN wallet_accounts a ON a.id = e.account_id"
    " WHERE e.user_id = ?1 AND t.created_at < ?3"
    " GROUP BY a.currency ORDER BY a.currency";

int pz_store_wallet_statement(pz_db_t *db, int64_t user_id, int64_t start_ms, int64_t end_ms,
                              pz_store_wallet_statement_cb cb, void *arg, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_STATEMENT, err);
  if (st == NULL) return err->code;
  int rc = PZ__DB_BIND(db, st, err, user_id, start_ms, end_ms);
  if (rc < 0) return rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    pz_wallet_statement_row_t r;
    pz__db_col_text(st, 0, r.currency, sizeof(r.currency));
    r.opening = sqlite3_column_int64(st, 1);
    r.credits = sqlite3_column_int64(st, 2);
    r.debits = sqlite3_column_int64(st, 3);
    r.count = sqlite3_column_int64(st, 4);
    int cb_rc = cb(arg, &r, err);
    if (cb_rc < 0) return cb_rc;
  }
  return rc == SQLITE_DONE ? 0 : pz__db_fail(db, rc, err);
}
