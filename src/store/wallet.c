/* SQL for the wallet's ledger, transfers, fundings, PIN state and idempotency records, behind store_wallet.h. */
#include <string.h>
#include "plaza/store_wallet.h"
#include "store/db.h"

/* ---- names ---- */

static const char *const account_kinds[] = {"user", "external", "escrow", "fees"};
static const char *const txn_kinds[PZ_TXN__COUNT] = {
    "topup",    "withdrawal",      "withdrawal_payout", "withdrawal_refund",
    "transfer", "transfer_accept", "transfer_return",   "transfer_expire",
    "red_packet", "red_packet_claim", "red_packet_refund",
    "merchant_payment", "merchant_refund",
};
static const char *const transfer_statuses[] = {"pending", "completed", "returned", "expired"};
static const char *const funding_kinds[] = {"topup", "withdrawal"};
static const char *const funding_statuses[] = {"pending", "completed", "failed"};

#define N_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

const char *pz_store_wallet_txn_name(int kind) {
  return kind >= 0 && kind < PZ_TXN__COUNT ? txn_kinds[kind] : "unknown";
}

const char *pz_store_wallet_transfer_status_name(int status) {
  return status >= 0 && status < N_OF(transfer_statuses) ? transfer_statuses[status] : "unknown";
}

/* ---- accounts and entries ---- */

#define ACCOUNT_COLS "id, user_id, kind, currency, balance"

static void col_account(sqlite3_stmt *st, pz_wallet_account_rec_t *a) {
  a->id = sqlite3_column_int64(st, 0);
  a->user_id = sqlite3_column_int64(st, 1);
  a->kind = pz__db_col_enum(st, 2, account_kinds, N_OF(account_kinds), PZ_ACCT_USER);
  pz__db_col_text(st, 3, a->currency, sizeof(a->currency));
  a->balance = sqlite3_column_int64(st, 4);
}

static const char SQL_ACCOUNT_USER[] =
    "SELECT " ACCOUNT_COLS " FROM wallet_accounts WHERE user_id = ?1 AND currency = ?2 AND kind = 'user'";
/* The system account's kind is a literal, not a parameter: a parameter
 * compared with the `kind = 'user'` of the partial index wallet_accounts_user
 * makes SQLite re-prepare the statement on every bind. */
#define SQL_ACCOUNT_SYSTEM(k) \
  "SELECT " ACCOUNT_COLS " FROM wallet_accounts WHERE kind = '" k "' AND currency = ?2 AND kind <> 'user'"
static const char *const SQL_ACCOUNT_SYSTEMS[] = {
    NULL, SQL_ACCOUNT_SYSTEM("external"), SQL_ACCOUNT_SYSTEM("escrow"), SQL_ACCOUNT_SYSTEM("fees")};

int pz_store_wallet_account_get(pz_db_t *db, int64_t user_id, int kind, const char *currency,
                                pz_wallet_account_rec_t *out, pz_err_t *err) {
  PZ_ASSERT(kind >= 0 && kind < N_OF(account_kinds) && (kind == PZ_ACCT_USER) == (user_id != 0));
  sqlite3_stmt *st = pz__db_stmt(db, kind == PZ_ACCT_USER ? SQL_ACCOUNT_USER : SQL_ACCOUNT_SYSTEMS[kind], err);
  if (st == NULL) return err->code;
  int rc = kind == PZ_ACCT_USER ? PZ__DB_BIND(db, st, err, user_id) : 0;
  if (rc == 0) rc = pz__db_bind_text(db, st, 2, currency, err);
  if (rc == 0) rc = pz__db_step_row(db, st, err);
  if (rc == 0) col_account(st, out);
  return rc;
}

/* A remembered system account: accounts are never deleted, so an id
 * read once stays right, and one created by a job that rolled back is
 * forgotten with every other write of the generation (pz__db_forget_writes). */
static struct pz__sys_account *sys_slot(pz_db_t *db, int kind, const char *currency, bool *hit) {
  struct pz__sys_account *free_slot = &db->sys_accounts[0];
  for (size_t i = 0; i < N_OF(db->sys_accounts); i++) {
    struct pz__sys_account *s = &db->sys_accounts[i];
    bool valid = s->id != 0 && s->gen == db->seq_gen;
    if (valid && s->kind == kind && memcmp(s->currency, currency, PZ_WALLET_CURRENCY_LEN + 1) == 0) {
      *hit = true;
      return s;
    }
    if (!valid) free_slot = s;
  }
  *hit = false;
  return free_slot;
}

static void sys_remember(pz_db_t *db, int kind, const char *currency, int64_t id) {
  bool hit;
  struct pz__sys_account *s = sys_slot(db, kind, currency, &hit);
  *s = (struct pz__sys_account){.id = id, .gen = db->seq_gen, .kind = kind};
  memcpy(s->currency, currency, PZ_WALLET_CURRENCY_LEN + 1);
}

int pz_store_wallet_system_account_id(pz_db_t *db, int kind, const char *currency, int64_t *id, pz_err_t *err) {
  PZ_ASSERT(kind > PZ_ACCT_USER && kind < N_OF(account_kinds));
  bool hit;
  struct pz__sys_account *s = sys_slot(db, kind, currency, &hit);
  if (hit) {
    *id = s->id;
    return 0;
  }
  pz_wallet_account_rec_t a;
  int rc = pz_store_wallet_account_get(db, 0, kind, currency, &a, err);
  if (rc < 0) return rc;
  *id = a.id;
  sys_remember(db, kind, currency, a.id);
  return 0;
}

static const char SQL_ACCOUNT_INSERT[] =
    "INSERT INTO wallet_accounts (id, user_id, kind, currency, balance, created_at) VALUES (?1, ?2, ?3, ?4, 0, ?5)";

int pz_store_wallet_account_insert(pz_db_t *db, const pz_wallet_account_rec_t *a, int64_t now, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_ACCOUNT_INSERT, err);
  if (st == NULL) return err->code;
  int rc = PZ__DB_BIND(db, st, err, a->id);
  if (rc == 0) {
    int src = a->user_id ? sqlite3_bind_int64(st, 2, a->user_id) : sqlite3_bind_null(st, 2);
    if (src != SQLITE_OK) rc = pz__db_fail(db, src, err);
  }
  if (rc == 0) rc = pz__db_bind_text(db, st, 3, account_kinds[a->kind], err);
  if (rc == 0) rc = pz__db_bind_text(db, st, 4, a->currency, err);
  if (rc == 0 && (rc = sqlite3_bind_int64(st, 5, now)) != SQLITE_OK) rc = pz__db_fail(db, rc, err);
  if (rc == 0) rc = pz__db_step_done(db, st, err);
  if (rc == 0 && a->kind != PZ_ACCT_USER) sys_remember(db, a->kind, a->currency, a->id);
  return rc;
}

static const char SQL_ACCOUNTS_OF[] =
    "SELECT " ACCOUNT_COLS " FROM wallet_accounts WHERE user_id = ?1 AND kind = 'user' ORDER BY currency";

int pz_store_wallet_accounts_of(pz_db_t *db, int64_t user_id, pz_store_wallet_account_cb cb, void *arg, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_ACCOUNTS_OF, err);
  if (st == NULL) return err->code;
  int rc = PZ__DB_BIND(db, st, err, user_id);
  if (rc < 0) return rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    pz_wallet_account_rec_t a;
    col_account(st, &a);
    int cb_rc = cb(arg, &a, err);
    if (cb_rc < 0) return cb_rc;
  }
  return rc == SQLITE_DONE ? 0 : pz__db_fail(db, rc, err);
}

static const char SQL_TXN_INSERT[] = "INSERT INTO wallet_txns (id, kind, ref_id, created_at) VALUES (?1, ?2, ?3, ?4)";

int pz_store_wallet_txn_insert(pz_db_t *db, int64_t txn_id, int kind, int64_t ref_id, int64_t now, pz_err_t *err) {
  PZ_ASSERT(kind >= 0 && kind < PZ_TXN__COUNT);
  sqlite3_stmt *st = pz__db_stmt(db, SQL_TXN_INSERT, err);
  if (st == NULL) return err->code;
  int rc = PZ__DB_BIND(db, st, err, txn_id);
  if (rc < 0) return rc;
  if ((rc = sqlite3_bind_text(st, 2, txn_kinds[kind], -1, SQLITE_STATIC)) != SQLITE_OK ||
      (rc = sqlite3_bind_int64(st, 3, ref_id)) != SQLITE_OK || (rc = sqlite3_bind_int64(st, 4, now)) != SQLITE_OK)
    return pz__db_fail(db, rc, err);
  return pz__db_step_done(db, st, err);
}

/* A movement's two entries in one statement: a statement per row cost
 * half again as much, in its own start and end. INSERT OR FAIL: a row
 * that fails ends the statement without undoing the row before it, which
 * spares SQLite a statement journal. With ABORT, the default, such a
 * statement copies every page it changes into one, and at its end cuts
 * the journal back with a walk from its start, as long as all that the
 * enclosing savepoint has copied: under a savepoint that spans many
 * transfers (engine.c, run_group), 43 % of the writer's time. A job whose
 * insert fails fails, and its savepoint undoes the rows anyway. */
static const char SQL_ENTRIES_INSERT[] =
    "INSERT OR FAIL INTO wallet_entries (txn_id, account_id, user_id, amount) VALUES (?1, ?2, ?3, ?4), (?5, ?6, ?7, "
    "?8)";

int pz_store_wallet_entries_insert(pz_db_t *db, const pz_wallet_entry_rec_t e[2], pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_ENTRIES_INSERT, err);
  if (st == NULL) return err->code;
  int rc = SQLITE_OK;
  for (unsigned i = 0; i < 2 && rc == SQLITE_OK; i++) {
    int at = (int)i * 4;
    if ((rc = sqlite3_bind_int64(st, at + 1, e[i].txn_id)) == SQLITE_OK &&
        (rc = sqlite3_bind_int64(st, at + 2, e[i].account_id)) == SQLITE_OK &&
        (rc = e[i].user_id ? sqlite3_bind_int64(st, at + 3, e[i].user_id) : sqlite3_bind_null(st, at + 3)) == SQLITE_OK)
      rc = sqlite3_bind_int64(st, at + 4, e[i].amount);
  }
  return rc != SQLITE_OK ? pz__db_fail(db, rc, err) : pz__db_step_done(db, st, err);
}

static const char SQL_BALANCE_MOVE[] = "UPDATE wallet_accounts SET balance = balance + ?2 WHERE id = ?1";

int pz_store_wallet_balance_move(pz_db_t *db, int64_t account_id, int64_t amount, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_BALANCE_MOVE, err);
  if (st == NULL) return err->code;
  int rc = PZ__DB_BIND(db, st, err, account_id, amount);
  if (rc == 0) rc = pz__db_step_done(db, st, err);
  if (rc == 0 && sqlite3_changes(db->sql) != 1) rc = pz_err_set(err, PZ_ENOTFOUND, NULL, "no such ledger account");
  return rc;
}

/* ---- wallet users ---- */

#define USER_COLS(u) u "pin_hash, " u "pin_failures, " u "pin_locked_until, " u "auto_accept, " u "tier"

/* Fills *out (its user_id set) from USER_COLS at column 0 of st. */
static void col_user(sqlite3_stmt *st, pz_wallet_user_rec_t *out) {
  out->pin_set = sqlite3_column_type(st, 0) == SQLITE_BLOB;
  if (out->pin_set) pz__db_col_blob(st, 0, out->pin_hash, sizeof(out->pin_hash));
  out->pin_failures = sqlite3_column_int(st, 1);
  out->pin_locked_until = sqlite3_column_int64(st, 2);
  out->auto_accept = sqlite3_column_int(st, 3) != 0;
  out->tier = sqlite3_column_int(st, 4);
}

static const char SQL_USER_GET[] = "SELECT " USER_COLS("") " FROM wallet_users WHERE user_id = ?1";

int pz_store_wallet_user_get(pz_db_t *db, int64_t user_id, pz_wallet_user_rec_t *out, pz_err_t *err) {
  memset(out, 0, sizeof(*out));
  out->user_id = user_id;
  sqlite3_stmt *st = pz__db_stmt(db, SQL_USER_GET, err);
  if (st == NULL) return err->code;
  int rc = PZ__DB_BIND(db, st, err, user_id);
  if (rc == 0) rc = pz__db_step_row(db, st, err);
  if (rc == 0) col_user(st, out);
  return rc;
}

static const char SQL_USER_SET_PIN[] =
    "INSERT INTO wallet_users (user_id, pin_hash, pin_failures, pin_locked_until, updated_at)"
    " VALUES (?1, ?2, 0, 0, ?3)"
    " ON CONFLICT (user_id) DO UPDATE SET pin_hash = excluded.pin_hash, pin_failures = 0, pin_locked_until = 0,"
    "  updated_at = excluded.updated_at";

int pz_store_wallet_user_set_pin(pz_db_t *db, int64_t user_id, const uint8_t hash[PZ_WALLET_PIN_HASH_LEN], int64_t now,
                                 pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_USER_SET_PIN, err);
  if (st == NULL) return err->code;
  int rc;
  if ((rc = sqlite3_bind_int64(st, 1, user_id)) != SQLITE_OK ||
      (rc = sqlite3_bind_blob(st, 2, hash, PZ_WALLET_PIN_HASH_LEN, SQLITE_STATIC)) != SQLITE_OK ||
      (rc = sqlite3_bind_int64(st, 3, now)) != SQLITE_OK)
    return pz__db_fail(db, rc, err);
  return pz__db_step_done(db, st, err);
}

static const char SQL_USER_SET_PIN_STATE[] =
    "UPDATE wallet_users SET pin_failures = ?2, pin_locked_until = ?3, updated_at = ?4 WHERE user_id = ?1";

int pz_store_wallet_user_set_pin_state(pz_db_t *db, int64_t user_id, int failures, int64_t locked_until, int64_t now,
                                       pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_USER_SET_PIN_STATE, err);
  if (st == NULL) return err->code;
  int rc = PZ__DB_BIND(db, st, err, user_id, (int64_t)failures, locked_until, now);
  if (rc == 0) rc = pz__db_step_done(db, st, err);
  if (rc == 0 && sqlite3_changes(db->sql) == 0) rc = pz_err_set(err, PZ_ENOTFOUND, NULL, NULL);
  return rc;
}

static const char SQL_USER_SET_AUTO[] =
    "INSERT INTO wallet_users (user_id, auto_accept, updated_at) VALUES (?1, ?2, ?3)"
    " ON CONFLICT (user_id) DO UPDATE SET auto_accept = excluded.auto_accept, updated_at = excluded.updated_at";

int pz_store_wallet_user_set_auto_accept(pz_db_t *db, int64_t user_id, bool on, int64_t now, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_USER_SET_AUTO, err);
  if (st == NULL) return err->code;
  int rc = PZ__DB_BIND(db, st, err, user_id, (int64_t)on, now);
  return rc < 0 ? rc : pz__db_step_done(db, st, err);
}

/* ---- what a payment reads before it moves money ---- */

/* One statement instead of four (PIN state, account, tier, counter): a
 * payment runs it once, on the single writer. */
static const char SQL_PAYER_GET[] =
    "SELECT " USER_COLS("u.") ", a.id, a.balance, d.day, d.amount"
    " FROM wallet_users u"
    " LEFT JOIN wallet_accounts a ON a.user_id = ?1 AND a.currency = ?2 AND a.kind = 'user'"
    " LEFT JOIN wallet_daily_out d ON d.user_id = ?1 AND d.currency = ?2"
    " WHERE u.user_id = ?1";

int pz_store_wallet_payer_get(pz_db_t *db, int64_t user_id, const char *currency, pz_wallet_payer_rec_t *out,
                              pz_err_t *err) {
  memset(out, 0, sizeof(*out));
  out->user.user_id = user_id;
  out->account.user_id = user_id;
  out->account.kind = PZ_ACCT_USER;
  memcpy(out->account.currency, currency, PZ_WALLET_CURRENCY_LEN + 1);
  sqlite3_stmt *st = pz__db_stmt(db, SQL_PAYER_GET, err);
  if (st == NULL) return err->code;
  int rc = PZ__DB_BIND(db, st, err, user_id);
  if (rc == 0) rc = pz__db_bind_text(db, st, 2, currency, err);
  if (rc == 0) rc = pz__db_step_row(db, st, err);
  if (rc < 0) return rc;
  col_user(st, &out->user);
  out->has_account = sqlite3_column_type(st, 5) != SQLITE_NULL;
  out->account.id = sqlite3_column_int64(st, 5);
  out->account.balance = sqlite3_column_int64(st, 6);
  out->daily.day = sqlite3_column_int64(st, 7);
  out->daily.amount = sqlite3_column_int64(st, 8);
  return 0;
}

/* The receiver's row, blocks either way, their auto-accept setting and
 * account: four look-ups of one statement. */
static const char SQL_PAYEE_GET[] =
    "SELECT EXISTS (SELECT 1 FROM blocks WHERE user_id = ?2 AND blocked_id = ?1)"
    "  OR EXISTS (SELECT 1 FROM blocks WHERE user_id = ?1 AND blocked_id = ?2),"
    " coalesce((SELECT auto_accept FROM wallet_users WHERE user_id = ?2), 0),"
    " coalesce((SELECT id FROM wallet_accounts WHERE user_id = ?2 AND currency = ?3 AND kind = 'user'), 0)"
    " FROM users WHERE id = ?2";

int pz_store_wallet_payee_get(pz_db_t *db, int64_t from_id, int64_t to_id, const char *currency,
                              pz_wallet_payee_rec_t *out, pz_err_t *err) {
  memset(out, 0, sizeof(*out));
  sqlite3_stmt *st = pz__db_stmt(db, SQL_PAYEE_GET, err);
  if (st == NULL) return err->code;
  int rc = PZ__DB_BIND(db, st, err, from_id, to_id);
  if (rc == 0) rc = pz__db_bind_text(db, st, 3, currency, err);
  if (rc == 0) rc = pz__db_step_row(db, st, err);
  if (rc < 0) return rc;
  out->blocked = sqlite3_column_int(st, 0) != 0;
  out->auto_accept = sqlite3_column_int(st, 1) != 0;
  out->account_id = sqlite3_column_int64(st, 2);
  return 0;
}

/* ---- idempotency ---- */

static const char SQL_IDEM_GET[] =
    "SELECT fingerprint, status, ref_id, body FROM wallet_idempotency WHERE user_id = ?1 AND key = ?2";

static const char SQL_IDEM_EXISTS[] = "SELECT 1 FROM wallet_idempotency WHERE user_id = ?1 AND key = ?2";

int pz_store_wallet_idem_exists(pz_db_t *db, int64_t user_id, pz_str_t key, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_IDEM_EXISTS, err);
  if (st == NULL) return err->code;
  int rc = PZ__DB_BIND(db, st, err, user_id);
  if (rc == 0 && (rc = pz__db_bind_str(st, 2, key)) != SQLITE_OK) rc = pz__db_fail(db, rc, err);
  return rc < 0 ? rc : pz__db_step_row(db, st, err);
}

int pz_store_wallet_idem_get(pz_db_t *db, int64_t user_id, pz_str_t key, pz_wallet_idem_rec_t *out, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_IDEM_GET, err);
  if (st == NULL) return err->code;
  int rc = PZ__DB_BIND(db, st, err, user_id);
  if (rc == 0 && (rc = pz__db_bind_str(st, 2, key)) != SQLITE_OK) rc = pz__db_fail(db, rc, err);
  if (rc == 0) rc = pz__db_step_row(db, st, err);
  if (rc < 0) return rc;
  pz__db_col_blob(st, 0, out->fingerprint, sizeof(out->fingerprint));
  out->status = sqlite3_column_int(st, 1);
  out->ref_id = sqlite3_column_int64(st, 2);
  pz__db_col_text(st, 3, out->body, sizeof(out->body));
  out->body_len = strlen(out->body);
  return 0;
}

static const char SQL_IDEM_PUT[] =
    "INSERT INTO wallet_idempotency (user_id, key, fingerprint, ref_id, status, body, created_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
    " ON CONFLICT (user_id, key) DO UPDATE SET fingerprint = excluded.fingerprint, ref_id = excluded.ref_id,"
    "  status = excluded.status, body = excluded.body";

int pz_store_wallet_idem_put(pz_db_t *db, int64_t user_id, pz_str_t key, const pz_wallet_idem_rec_t *rec, int64_t now,
                             pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_IDEM_PUT, err);
  if (st == NULL) return err->code;
  int rc;
  if ((rc = sqlite3_bind_int64(st, 1, user_id)) != SQLITE_OK || (rc = pz__db_bind_str(st, 2, key)) != SQLITE_OK ||
      (rc = sqlite3_bind_blob(st, 3, rec->fingerprint, PZ_WALLET_FP_LEN, SQLITE_STATIC)) != SQLITE_OK ||
      (rc = sqlite3_bind_int64(st, 4, rec->ref_id)) != SQLITE_OK ||
      (rc = sqlite3_bind_int(st, 5, rec->status)) != SQLITE_OK ||
      (rc = sqlite3_bind_text(st, 6, rec->body, (int)rec->body_len, SQLITE_STATIC)) != SQLITE_OK ||
      (rc = sqlite3_bind_int64(st, 7, now)) != SQLITE_OK)
    return pz__db_fail(db, rc, err);
  return pz__db_step_done(db, st, err);
}

/* ---- transfers ---- */

#define TRANSFER_COLS                                                                                     \
  "id, from_user_id, to_user_id, amount, currency, note, status, conversation_id, idem_key, created_at, " \
  "expires_at, updated_at"

static void col_transfer(sqlite3_stmt *st, pz_wallet_transfer_rec_t *t) {
  t->id = sqlite3_column_int64(st, 0);
  t->from_id = sqlite3_column_int64(st, 1);
  t->to_id = sqlite3_column_int64(st, 2);
  t->amount = sqlite3_column_int64(st, 3);
  pz__db_col_text(st, 4, t->currency, sizeof(t->currency));
  pz__db_col_text(st, 5, t->note, sizeof(t->note));
  t->status = pz__db_col_enum(st, 6, transfer_statuses, N_OF(transfer_statuses), PZ_TRANSFER_PENDING);
  t->conversation_id = sqlite3_column_int64(st, 7);
  pz__db_col_text(st, 8, t->idem_key, sizeof(t->idem_key));
  t->created_at = sqlite3_column_int64(st, 9);
  t->expires_at = sqlite3_column_int64(st, 10);
  t->updated_at = sqlite3_column_int64(st, 11);
}

static const char SQL_TRANSFER_INSERT[] =
    "INSERT INTO wallet_transfers (" TRANSFER_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";

int pz_store_wallet_transfer_insert(pz_db_t *db, const pz_wallet_transfer_rec_t *t, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_TRANSFER_INSERT, err);
  if (st == NULL) return err->code;
  int rc = PZ__DB_BIND(db, st, err, t->id, t->from_id, t->to_id, t->amount);
  if (rc == 0) rc = pz__db_bind_text(db, st, 5, t->currency, err);
  if (rc == 0) rc = pz__db_bind_text(db, st, 6, t->note, err);
  if (rc == 0) rc = pz__db_bind_text(db, st, 7, transfer_statuses[t->status], err);
  if (rc == 0) rc = pz__db_bind_text(db, st, 9, t->idem_key, err);
  if (rc == 0 && ((rc = sqlite3_bind_int64(st, 8, t->conversation_id)) != SQLITE_OK ||
                  (rc = sqlite3_bind_int64(st, 10, t->created_at)) != SQLITE_OK ||
                  (rc = sqlite3_bind_int64(st, 11, t->expires_at)) != SQLITE_OK ||
                  (rc = sqlite3_bind_int64(st, 12, t->updated_at)) != SQLITE_OK))
    rc = pz__db_fail(db, rc, err);
  return rc < 0 ? rc : pz__db_step_done(db, st, err);
}

static const char SQL_TRANSFER_GET[] = "SELECT " TRANSFER_COLS " FROM wallet_transfers WHERE id = ?1";

int pz_store_wallet_transfer_get(pz_db_t *db, int64_t id, pz_wallet_transfer_rec_t *out, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_TRANSFER_GET, err);
  if (st == NULL) return err->code;
  int rc = PZ__DB_BIND(db, st, err, id);
  if (rc == 0) rc = pz__db_step_row(db, st, err);
  if (rc == 0) col_transfer(st, out);
  return rc;
}

static const char SQL_TRANSFER_SETTLE[] =
    "UPDATE wallet_transfers SET status = ?2, updated_at = ?3 WHERE id = ?1 AND status = 'pending'";

int pz_store_wallet_transfer_settle(pz_db_t *db, int64_t id, int status, int64_t now, bool *changed, pz_err_t *err) {
  PZ_ASSERT(status > PZ_TRANSFER_PENDING && status < N_OF(transfer_statuses));
  sqlite3_stmt *st = pz__db_stmt(db, SQL_TRANSFER_SETTLE, err);
  if (st == NULL) return err->code;
  int rc = PZ__DB_BIND(db, st, err, id);
  if (rc == 0) rc = pz__db_bind_text(db, st, 2, transfer_statuses[status], err);
  if (rc == 0 && (rc = sqlite3_bind_int64(st, 3, now)) != SQLITE_OK) rc = pz__db_fail(db, rc, err);
  if (rc == 0) rc = pz__db_step_done(db, st, err);
  *changed = rc == 0 && sqlite3_changes(db->sql) > 0;
  return rc;
}

static const char SQL_TRANSFER_EXPIRED[] = "SELECT " TRANSFER_COLS
                                           " FROM wallet_transfers"
                                           " WHERE status = 'pending' AND expires_at <= ?1"
                                           " ORDER BY expires_at LIMIT ?2";

int pz_store_wallet_transfer_expired(pz_db_t *db, int64_t now, unsigned limit, pz_store_wallet_transfer_cb cb,
                                     void *arg, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_TRANSFER_EXPIRED, err);
  if (st == NULL) return err->code;
  int rc = PZ__DB_BIND(db, st, err, now, (int64_t)limit);
  if (rc < 0) return rc;
  /* The rows are read whole before any is refunded: the refund updates
   * the table this statement walks. */
  unsigned n = 0;
  pz_wallet_transfer_rec_t *rows = pz_malloc((limit ? limit : 1) * sizeof(*rows));
  while (n < limit && (rc = sqlite3_step(st)) == SQLITE_ROW)
    col_transfer(st, &rows[n++]);
  if (n < limit && rc != SQLITE_DONE) {
    rc = pz__db_fail(db, rc, err);
    goto out;
  }
  sqlite3_reset(st);
  rc = 0;
  for (unsigned i = 0; i < n && rc == 0; i++)
    rc = cb(arg, &rows[i], err);
out:
  pz_free(rows);
  return rc;
}

/* ---- fundings ---- */

#define FUNDING_COLS \
  "id, user_id, kind, status, amount, currency, provider, provider_ref, reason, idem_key, created_at, updated_at"

static const char SQL_FUNDING_INSERT[] =
    "INSERT INTO wallet_fundings (" FUNDING_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";

int pz_store_wallet_funding_insert(pz_db_t *db, const pz_wallet_funding_rec_t *f, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_FUNDING_INSERT, err);
  if (st == NULL) return err->code;
  int rc = PZ__DB_BIND(db, st, err, f->id, f->user_id);
  if (rc == 0) rc = pz__db_bind_text(db, st, 3, funding_kinds[f->kind], err);
  if (rc == 0) rc = pz__db_bind_text(db, st, 4, funding_statuses[f->status], err);
  if (rc == 0 && (rc = sqlite3_bind_int64(st, 5, f->amount)) != SQLITE_OK) rc = pz__db_fail(db, rc, err);
  if (rc == 0) rc = pz__db_bind_text(db, st, 6, f->currency, err);
  if (rc == 0) rc = pz__db_bind_text(db, st, 7, f->provider, err);
  if (rc == 0) rc = pz__db_bind_text(db, st, 8, f->provider_ref, err);
  if (rc == 0) rc = pz__db_bind_text(db, st, 9, f->reason, err);
  if (rc == 0) rc = pz__db_bind_text(db, st, 10, f->idem_key, err);
  if (rc == 0 && ((rc = sqlite3_bind_int64(st, 11, f->created_at)) != SQLITE_OK ||
                  (rc = sqlite3_bind_int64(st, 12, f->updated_at)) != SQLITE_OK))
    rc = pz__db_fail(db, rc, err);
  return rc < 0 ? rc : pz__db_step_done(db, st, err);
}

static const char SQL_FUNDING_GET[] = "SELECT " FUNDING_COLS " FROM wallet_fundings WHERE id = ?1";

int pz_store_wallet_funding_get(pz_db_t *db, int64_t id, pz_wallet_funding_rec_t *out, pz_err_t *err) {
  sqlite3_stmt *st = pz__db_stmt(db, SQL_FUNDING_GET, err);
  if (st == NULL) return err->code;
  int rc = PZ__DB_BIND(db, st, err, id);
  if (rc == 0) rc = pz__db_step_row(db, st, err);
  if (rc < 0) return rc;
  out->id = sqlite3_column_int64(st, 0);
  out->user_id = sqlite3_column_int64(st, 1);
  out->kind = pz__db_col_enum(st, 2, funding_kinds, N_OF(funding_kinds), PZ_FUNDING_TOPUP);
  out->status = pz__db_col_enum(st, 3, funding_statuses, N_OF(funding_statuses), PZ_FUNDING_PENDING);
  out->amount = sqlite3_column_int64(st, 4);
  pz__db_col_text(st, 5, out->currency, sizeof(out->currency));
  pz__db_col_text(st, 6, out->provider, sizeof(out->provider));
  pz__db_col_text(st, 7, out->provider_ref, sizeof(out->provider_ref));
  pz__db_col_text(st, 8, out->reason, sizeof(out->reason));
  pz__db_col_text(st, 9, out->idem_key, sizeof(out->idem_key));
  out->created_at = sqlite3_column_int64(st, 10);
  out->updated_at = sqlite3_column_int64(st, 11);
  return 0;
}

static const char SQL_FUNDING_SETTLE[] =
    "UPDATE wallet_fundings SET status = ?2, provider_ref = ?3, reason = ?4, updated_at = ?5"
    " WHERE id = ?1 AND status = 'pending'";

int pz_store_wallet_funding_settle(pz_db_t *db, int64_t id, int status, const char *provider_ref, const char *reason,
                                   int64_t now, bool *changed, pz_err_t *err) {
  PZ_ASSERT(status > PZ_FUNDING_PENDING && status < N_OF(funding_statuses));
  sqlite3_stmt *st = pz__db_stmt(db, SQL_FUNDING_SETTLE, err);
  if (st == NULL) return err->code;
  int rc = PZ__DB_BIND(db, st, err, id);
  if (rc == 0) rc = pz__db_bind_text(db, st, 2, funding_statuses[status], err);
  if (rc == 0) rc = pz__db_bind_text(db, st, 3, provider_ref ? provider_ref : "", err);
  if (rc == 0) rc = pz__db_bind_text(db, st, 4, reason ? reason : "", err);
  if (rc == 0 && (rc = sqlite3_bind_int64(st, 5, now)) != SQLITE_OK) rc = pz__db_fail(db, rc, err);
  if (rc == 0) rc = pz__db_step_done(db, st, err);
  *changed = rc == 0 && sqlite3_changes(db->sql) > 0;
  return rc;
}
