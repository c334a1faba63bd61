/* Unit tests of `plazad ledger verify` (store/wallet_verify.c, wallet/verify.c): a sound ledger passes, and each
 * kind of damage done behind the server's back is named, the same on the writer (two connections) as on a reader. */
#include <inttypes.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "plaza/auth.h"
#include "plaza/id.h"
#include "plaza/wallet.h"
#include "store/db.h" /* a bare read connection, as a reader job has */
#include "store_fixture.h"

static pz_store_t *st;
static char *dir;
static sqlite3 *raw; /* another process editing the database */
static pz_wallet_config_t cfg;
static int64_t now_ms = 1750000000000LL;

static struct {
  int64_t a;
  pz_str_t pin;
  unsigned retry;
  bool keep, changed;
  pz_wallet_transfer_rec_t t, out;
  pz_wallet_funding_rec_t f;
  const char *key;
  int64_t ref;
} T;

/* What the last verify printed and counted. */
static struct {
  char *text;
  unsigned n;
  int64_t txns;
} V;

static int step(pz_store_run_fn run) {
  pz_err_t err = {0};
  int rc = pz_fix_run(st, run, NULL, &err);
  if (rc < 0) fprintf(stderr, "step failed: %s\n", pz_err_message(&err));
  return rc;
}

static int run_pin_set(pz_db_t *db, pz_store_job_t *job) {
  return pz_wallet_pin_set(db, &cfg, T.a, T.pin, now_ms, &job->err);
}
static int run_auto(pz_db_t *db, pz_store_job_t *job) {
  return pz_store_wallet_user_set_auto_accept(db, T.a, true, now_ms, &job->err);
}
static int run_topup(pz_db_t *db, pz_store_job_t *job) {
  int rc = pz_wallet_funding_begin(db, &cfg, &T.f, PZ_STR_NULL, now_ms, &T.retry, &T.keep, &job->err);
  if (rc == 0) rc = pz_wallet_funding_settle(db, T.f.id, true, "ref", NULL, now_ms, &T.f, &T.changed, &job->err);
  return rc;
}
static int run_transfer(pz_db_t *db, pz_store_job_t *job) {
  return pz_wallet_transfer_create(db, &cfg, &T.t, T.pin, now_ms, &T.out, &T.retry, &T.keep, &job->err);
}
/* Every operation is recorded under its idempotency key, as the API does. */
static int run_record_key(pz_db_t *db, pz_store_job_t *job) {
  uint8_t fp[PZ_WALLET_FP_LEN] = {0};
  return pz_wallet_idem_save(db, T.a, pz_str(T.key), fp, T.ref, 201, PZ_STR("{}"), now_ms, &job->err);
}

static void record_key(int64_t user, const char *key, int64_t ref) {
  T.a = user, T.key = key, T.ref = ref;
  CHECK_EQ_INT(step(run_record_key), 0);
}

static int64_t make_user(const char *name, const char *pin, bool auto_accept) {
  int64_t id = pz_fix_user(st, name, NULL, now_ms);
  T.a = id;
  T.pin = pz_str(pin);
  CHECK_EQ_INT(step(run_pin_set), 0);
  if (auto_accept) CHECK_EQ_INT(step(run_auto), 0);
  return id;
}

static void topup(int64_t user, int64_t amount, const char *currency, const char *key) {
  pz_fix_topup_rec(&T.f, user, amount, currency, key);
  CHECK_EQ_INT(step(run_topup), 0);
  record_key(user, key, T.f.id);
}

/* Returns the transfer's id. */
static int64_t transfer(int64_t from, int64_t to, int64_t amount, const char *pin, const char *key) {
  memset(&T.t, 0, sizeof(T.t));
  T.t.id = pz_id_next();
  T.t.from_id = from;
  T.t.to_id = to;
  T.t.amount = amount;
  snprintf(T.t.currency, sizeof(T.t.currency), "USD");
  snprintf(T.t.idem_key, sizeof(T.t.idem_key), "%s", key);
  T.pin = pz_str(pin);
  CHECK_EQ_INT(step(run_transfer), 0);
  record_key(from, key, T.t.id);
  return T.t.id;
}

/* ---- running verify both ways ---- */

static int run_verify(pz_db_t *db, pz_store_job_t *job) {
  size_t len = 0;
  FILE *out = open_memstream(&V.text, &len);
  int rc = pz_wallet_verify(db, out, &V.n, &V.txns, &job->err);
  fclose(out);
  return rc;
}

/* As a reader job runs it: a read-only connection inside a read transaction. */
static int verify_on_reader(char **text, unsigned *n) {
  char path[600];
  snprintf(path, sizeof(path), "%s/plaza.db", dir);
  pz_db_t *db = calloc(1, sizeof(*db));
  int rc = -1;
  if (db && sqlite3_open_v2(path, &db->sql, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
      sqlite3_exec(db->sql, "BEGIN", NULL, NULL, NULL) == SQLITE_OK) {
    size_t len = 0;
    int64_t txns = 0;
    pz_err_t err = {0};
    FILE *out = open_memstream(text, &len);
    rc = pz_wallet_verify(db, out, n, &txns, &err);
    fclose(out);
    CHECK_EQ_INT(txns, V.txns);
    for (sqlite3_stmt *s = sqlite3_next_stmt(db->sql, NULL); s; s = sqlite3_next_stmt(db->sql, s))
      sqlite3_reset(s);
    sqlite3_exec(db->sql, "COMMIT", NULL, NULL, NULL);
  }
  if (db) {
    for (unsigned i = 0; i < PZ_DB_STMT_CACHE; i++)
      sqlite3_finalize(db->cache[i].stmt);
    sqlite3_close(db->sql);
  }
  free(db);
  return rc;
}

/* Runs verify on the writer and on a reader, expects the same lines from
 * both, and returns how many violations they counted. */
static unsigned verify(void) {
  free(V.text);
  V.text = NULL;
  V.n = 99;
  CHECK_EQ_INT(step(run_verify), 0);
  char *text = NULL;
  unsigned n = 98;
  CHECK_EQ_INT(verify_on_reader(&text, &n), 0);
  CHECK_EQ_INT(n, V.n);
  CHECK_EQ_STR(text, V.text);
  free(text);
  return V.n;
}

/* Whether the last verify printed a line holding part. */
static bool said(const char *part) {
  for (const char *line = V.text; line && *line;) {
    const char *nl = strchr(line, '\n');
    size_t n = nl ? (size_t)(nl - line) : strlen(line);
    char buf[512];
    snprintf(buf, sizeof(buf), "%.*s", (int)n, line);
    if (strstr(buf, part)) return true;
    line = nl ? nl + 1 : NULL;
  }
  fprintf(stderr, "no line with \"%s\" in:\n%s", part, V.text ? V.text : "(nothing)\n");
  return false;
}

static void edit(const char *sql) {
  char *msg = NULL;
  if (sqlite3_exec(raw, sql, NULL, NULL, &msg) != SQLITE_OK) {
    fprintf(stderr, "edit failed: %s: %s\n", msg ? msg : "?", sql);
    pz_test_failures++;
  }
  sqlite3_free(msg);
}

static int64_t query_int(const char *sql) {
  sqlite3_stmt *s = NULL;
  int64_t v = -1;
  if (sqlite3_prepare_v2(raw, sql, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
    v = sqlite3_column_int64(s, 0);
  sqlite3_finalize(s);
  return v;
}

/* ---- the ledger: three users, top-ups in two currencies, a completed and a pending transfer ---- */

static int64_t ua, ub, uc, done_id, pending_id;

static void build(void) {
  ua = make_user("alice", "123456", false);
  ub = make_user("bob", "222222", true);
  uc = make_user("carol", "333333", false);
  topup(ua, 1000, "USD", "top-1");
  topup(ua, 50, "EUR", "top-2");
  done_id = transfer(ua, ub, 300, "123456", "pay-1");
  CHECK_EQ_INT(T.out.status, PZ_TRANSFER_COMPLETED);
  pending_id = transfer(ua, uc, 200, "123456", "pay-2");
  CHECK_EQ_INT(T.out.status, PZ_TRANSFER_PENDING);
}

static char sql[1024];
#define EDIT(...) (snprintf(sql, sizeof(sql), __VA_ARGS__), edit(sql))
#define QUERY(...) (snprintf(sql, sizeof(sql), __VA_ARGS__), query_int(sql))

/* ---- tests ---- */

static void test_sound_ledger(void) {
  CHECK_EQ_INT(verify(), 0);
  /* Top-ups (2), the auto-accepted transfer (1: straight to bob), the pending one (1: to escrow). */
  CHECK_EQ_INT(V.txns, 4);
  CHECK(V.text && V.text[0] == '\0');
}

static void test_cached_balance(void) {
  int64_t acct = QUERY("SELECT id FROM wallet_accounts WHERE user_id = %" PRId64 " AND currency = 'USD'", ua);
  EDIT("UPDATE wallet_accounts SET balance = balance + 1 WHERE id = %" PRId64, acct);
  CHECK_EQ_INT(verify(), 2);
  snprintf(sql, sizeof(sql),
           "account %" PRId64 " (user %" PRId64 ", USD): cached balance 501 but its entries sum to 500", acct, ua);
  CHECK(said(sql));
  CHECK(said("currency USD: all balances sum to 1, not 0"));
  EDIT("UPDATE wallet_accounts SET balance = balance - 1 WHERE id = %" PRId64, acct);
  CHECK_EQ_INT(verify(), 0);
}

static void test_unbalanced_and_short(void) {
  int64_t txn = QUERY("SELECT id FROM wallet_txns WHERE ref_id = %" PRId64 " AND kind = 'transfer'", done_id);
  int64_t row = QUERY("SELECT rowid FROM wallet_entries WHERE txn_id = %" PRId64 " AND amount < 0", txn);
  EDIT("UPDATE wallet_entries SET amount = amount + 5 WHERE rowid = %" PRId64, row);
  CHECK_EQ_INT(verify(), 2);
  snprintf(sql, sizeof(sql), "unbalanced transaction %" PRId64 ": its USD entries sum to 5, not 0", txn);
  CHECK(said(sql));
  CHECK(said("cached balance"));
  EDIT("UPDATE wallet_entries SET amount = amount - 5 WHERE rowid = %" PRId64, row);
  CHECK_EQ_INT(verify(), 0);

  /* One leg gone: short, unbalanced, and a balance off its entries. */
  EDIT("CREATE TABLE saved AS SELECT rowid AS r, * FROM wallet_entries WHERE rowid = %" PRId64, row);
  EDIT("DELETE FROM wallet_entries WHERE rowid = %" PRId64, row);
  CHECK_EQ_INT(verify(), 3);
  snprintf(sql, sizeof(sql), "transaction %" PRId64 " has 1 entries; every movement has two", txn);
  CHECK(said(sql));
  snprintf(sql, sizeof(sql), "unbalanced transaction %" PRId64 ":", txn);
  CHECK(said(sql));
  EDIT(
      "INSERT INTO wallet_entries (rowid, txn_id, account_id, user_id, amount)"
      " SELECT r, txn_id, account_id, user_id, amount FROM saved; DROP TABLE saved");

  /* A transaction with no entry at all, and one whose entries miss in two currencies. */
  EDIT("INSERT INTO wallet_txns (id, kind, ref_id, created_at) VALUES (7, 'transfer', 0, %" PRId64 ")", now_ms);
  int64_t eur = QUERY("SELECT id FROM wallet_accounts WHERE user_id = %" PRId64 " AND currency = 'EUR'", ua);
  EDIT("UPDATE wallet_entries SET amount = amount - 2 WHERE rowid = %" PRId64, row);
  EDIT("INSERT INTO wallet_entries (txn_id, account_id, user_id, amount) VALUES (%" PRId64 ", %" PRId64 ", %" PRId64
       ", 3)",
       txn, eur, ua);
  CHECK_EQ_INT(verify(), 6); /* short 7; unbalanced in EUR and in USD; two balances; the day debited 2 more */
  CHECK(said("transaction 7 has 0 entries"));
  snprintf(sql, sizeof(sql), "unbalanced transaction %" PRId64 ": its EUR entries sum to 3, not 0", txn);
  CHECK(said(sql));
  snprintf(sql, sizeof(sql), "unbalanced transaction %" PRId64 ": its USD entries sum to -2, not 0", txn);
  CHECK(said(sql));
  /* Per transaction, currencies come in order. */
  CHECK(V.text && strstr(V.text, "EUR entries") < strstr(V.text, "USD entries"));
  EDIT("DELETE FROM wallet_txns WHERE id = 7");
  EDIT("DELETE FROM wallet_entries WHERE txn_id = %" PRId64 " AND account_id = %" PRId64, txn, eur);
  EDIT("UPDATE wallet_entries SET amount = amount + 2 WHERE rowid = %" PRId64, row);
  CHECK_EQ_INT(verify(), 0);
}

static void test_negative_and_escrow(void) {
  int64_t acct = QUERY("SELECT id FROM wallet_accounts WHERE user_id = %" PRId64 " AND currency = 'USD'", ub);
  EDIT(
      "PRAGMA ignore_check_constraints = 1;"
      " UPDATE wallet_accounts SET balance = -4 WHERE id = %" PRId64
      ";"
      " PRAGMA ignore_check_constraints = 0",
      acct);
  CHECK(verify() >= 1);
  snprintf(sql, sizeof(sql), "account %" PRId64 " of user %" PRId64 " is negative: -4 USD", acct, ub);
  CHECK(said(sql));
  EDIT("UPDATE wallet_accounts SET balance = 300 WHERE id = %" PRId64, acct);
  CHECK_EQ_INT(verify(), 0);

  /* The pending transfer said returned, its money still in escrow. */
  EDIT("UPDATE wallet_transfers SET status = 'returned' WHERE id = %" PRId64, pending_id);
  CHECK_EQ_INT(verify(), 1);
  CHECK(said("currency USD: escrow holds 200 but pending transfers and withdrawals add up to 0"));
  EDIT("UPDATE wallet_transfers SET status = 'pending' WHERE id = %" PRId64, pending_id);
  CHECK_EQ_INT(verify(), 0);
}

static void test_keys(void) {
  /* A record lost: its operation is named. */
  EDIT("CREATE TABLE saved AS SELECT * FROM wallet_idempotency WHERE key = 'pay-2'");
  EDIT("DELETE FROM wallet_idempotency WHERE key = 'pay-2'");
  CHECK_EQ_INT(verify(), 1);
  snprintf(sql, sizeof(sql),
           "operation %" PRId64 " of user %" PRId64 " has no idempotency record for its key \"pay-2\"", pending_id, ua);
  CHECK(said(sql));
  EDIT("INSERT INTO wallet_idempotency SELECT * FROM saved; DROP TABLE saved");
  CHECK_EQ_INT(verify(), 0);

  /* Two operations under one key: the key is named, and the one its record does not answer for. */
  EDIT("UPDATE wallet_transfers SET idem_key = 'pay-1' WHERE id = %" PRId64, pending_id);
  CHECK_EQ_INT(verify(), 2);
  snprintf(sql, sizeof(sql), "idempotency key \"pay-1\" of user %" PRId64 " started 2 operations", ua);
  CHECK(said(sql));
  snprintf(sql, sizeof(sql),
           "operation %" PRId64 " of user %" PRId64 " has no idempotency record for its key \"pay-1\"", pending_id, ua);
  CHECK(said(sql));
  /* A key is one per user across kinds: a transfer under the key of a top-up. */
  EDIT("UPDATE wallet_transfers SET idem_key = 'top-1' WHERE id = %" PRId64, pending_id);
  CHECK_EQ_INT(verify(), 2);
  snprintf(sql, sizeof(sql), "idempotency key \"top-1\" of user %" PRId64 " started 2 operations", ua);
  CHECK(said(sql));
  /* Under another user's name, the same key is another key. */
  EDIT("UPDATE wallet_transfers SET from_user_id = %" PRId64 ", idem_key = 'pay-1' WHERE id = %" PRId64, ub,
       pending_id);
  CHECK_EQ_INT(verify(), 1); /* only its own record is missing */
  CHECK(said("has no idempotency record for its key \"pay-1\""));
  EDIT("UPDATE wallet_transfers SET from_user_id = %" PRId64 ", idem_key = 'pay-2' WHERE id = %" PRId64, ua,
       pending_id);
  CHECK_EQ_INT(verify(), 0);

  /* A record that answers for another operation. */
  EDIT("UPDATE wallet_idempotency SET ref_id = ref_id + 1 WHERE key = 'top-2'");
  CHECK_EQ_INT(verify(), 1);
  CHECK(said("has no idempotency record for its key \"top-2\""));
  EDIT("UPDATE wallet_idempotency SET ref_id = ref_id - 1 WHERE key = 'top-2'");
  CHECK_EQ_INT(verify(), 0);
}

static void test_daily_counter(void) {
  CHECK(QUERY("SELECT count(*) FROM wallet_daily_out WHERE user_id = %" PRId64, ua) == 1);
  EDIT("UPDATE wallet_daily_out SET amount = amount - 1 WHERE user_id = %" PRId64, ua);
  CHECK_EQ_INT(verify(), 1);
  snprintf(sql, sizeof(sql),
           "user %" PRId64 " (USD): the daily limit counter holds 499 but that day's debits add up to 500", ua);
  CHECK(said(sql));
  EDIT("UPDATE wallet_daily_out SET amount = amount + 1 WHERE user_id = %" PRId64, ua);
  CHECK_EQ_INT(verify(), 0);
}

/* An entry written after those of later transactions (as a clock set back
 * across a restart would): the check reads again in key order, and says
 * each thing once. */
static void test_entries_out_of_order(void) {
  int64_t txn = QUERY("SELECT id FROM wallet_txns ORDER BY id LIMIT 1");
  int64_t acct = QUERY("SELECT id FROM wallet_accounts WHERE user_id = %" PRId64 " AND currency = 'USD'", ub);
  EDIT("INSERT INTO wallet_entries (txn_id, account_id, user_id, amount) VALUES (%" PRId64 ", %" PRId64 ", %" PRId64
       ", 1)",
       txn, acct, ub);
  CHECK_EQ_INT(verify(), 2);
  snprintf(sql, sizeof(sql), "unbalanced transaction %" PRId64 ": its USD entries sum to 1, not 0", txn);
  CHECK(said(sql));
  snprintf(sql, sizeof(sql),
           "account %" PRId64 " (user %" PRId64 ", USD): cached balance 300 but its entries sum to 301", acct, ub);
  CHECK(said(sql));
  EDIT("DELETE FROM wallet_entries WHERE txn_id = %" PRId64 " AND account_id = %" PRId64, txn, acct);
  CHECK_EQ_INT(verify(), 0);
}

/* Entries the schema no longer checks against their parents (migration
 * 18): one of a transaction that has no row, one of no account. */
static void test_orphan_entries(void) {
  int64_t a = QUERY("SELECT id FROM wallet_accounts WHERE user_id = %" PRId64 " AND currency = 'USD'", ua);
  int64_t b = QUERY("SELECT id FROM wallet_accounts WHERE user_id = %" PRId64 " AND currency = 'USD'", ub);
  EDIT("INSERT INTO wallet_entries (txn_id, account_id, user_id, amount) VALUES (9, %" PRId64 ", %" PRId64
       ", 4), (9, %" PRId64 ", %" PRId64 ", -4)",
       a, ua, b, ub);
  CHECK_EQ_INT(verify(), 3); /* the missing row, and the two balances its entries moved */
  CHECK(said("transaction 9 has 2 entries but no transaction row"));
  snprintf(sql, sizeof(sql),
           "account %" PRId64 " (user %" PRId64 ", USD): cached balance 500 but its entries sum to 504", a, ua);
  CHECK(said(sql));
  EDIT("DELETE FROM wallet_entries WHERE txn_id = 9");
  CHECK_EQ_INT(verify(), 0);

  int64_t txn = QUERY("SELECT id FROM wallet_txns WHERE ref_id = %" PRId64 " AND kind = 'transfer'", done_id);
  EDIT("INSERT INTO wallet_entries (txn_id, account_id, user_id, amount) VALUES (%" PRId64 ", 999999, NULL, 5)", txn);
  CHECK_EQ_INT(verify(), 1);
  snprintf(sql, sizeof(sql), "an entry of transaction %" PRId64 " names account 999999, which does not exist", txn);
  CHECK(said(sql));
  EDIT("DELETE FROM wallet_entries WHERE account_id = 999999");
  CHECK_EQ_INT(verify(), 0);
}

/* More broken transactions than the first reading holds back. */
static void test_many_violations(void) {
  EDIT(
      "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 70000)"
      " INSERT INTO wallet_txns (id, kind, ref_id, created_at) SELECT i, 'transfer', 0, 0 FROM n");
  CHECK_EQ_INT(verify(), 70000);
  CHECK(said("transaction 1 has 0 entries"));
  CHECK(said("transaction 70000 has 0 entries"));
  CHECK_EQ_INT(V.txns, 70004);
  EDIT("DELETE FROM wallet_txns WHERE id <= 70000");
  CHECK_EQ_INT(verify(), 0);
}

int main(void) {
  if (sodium_init() < 0) return 1;
  dir = pz_fix_open(&st, "wallet-verify");
  if (dir == NULL) return 1;
  pz_fix_wallet_config(&cfg);
  char path[600];
  snprintf(path, sizeof(path), "%s/plaza.db", dir);
  CHECK(sqlite3_open(path, &raw) == SQLITE_OK);
  sqlite3_busy_timeout(raw, 5000);
  build();
  RUN(test_sound_ledger);
  RUN(test_cached_balance);
  RUN(test_unbalanced_and_short);
  RUN(test_negative_and_escrow);
  RUN(test_keys);
  RUN(test_daily_counter);
  RUN(test_entries_out_of_order);
  RUN(test_orphan_entries);
  RUN(test_many_violations);
  sqlite3_close(raw);
  free(V.text);
  pz_fix_close(st, dir);
  TEST_EXIT();
}
