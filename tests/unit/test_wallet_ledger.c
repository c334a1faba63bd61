/* Unit tests of the ledger rules against a real database: balanced movements, funds, PIN lockout, transfers,
 * idempotency, verify. */
#include <sodium.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "plaza/auth.h"
#include "plaza/id.h"
#include "plaza/wallet.h"
#include "store_fixture.h"

static pz_store_t *st;
static char *dir;
static pz_wallet_config_t cfg;
static int64_t now_ms = 1750000000000LL;

/* Inputs and outputs of the step being run; each step is one committed write job. */
static struct {
  int64_t a, b, id;
  pz_str_t pin;
  unsigned retry, n;
  bool keep, changed, found;
  bool ok;
  pz_wallet_transfer_rec_t t, out;
  pz_wallet_funding_rec_t f;
  int64_t bal[PZ_WALLET_CURRENCIES_MAX];
  uint8_t fp[PZ_WALLET_FP_LEN];
  pz_wallet_idem_rec_t idem;
  unsigned violations;
  int64_t txns;
} T;

static int step(pz_store_run_fn run, pz_err_t *err) {
  return pz_fix_run(st, run, NULL, err);
}

static int64_t make_user(const char *name) {
  return pz_fix_user(st, name, NULL, now_ms);
}

static int run_pin_set(pz_db_t *db, pz_store_job_t *job) {
  return pz_wallet_pin_set(db, &cfg, T.a, T.pin, now_ms, &job->err);
}
/* As the API does: a PIN failure commits, so the job returns 0 and the verdict goes in T.ok. */
static int run_pin_verify(pz_db_t *db, pz_store_job_t *job) {
  int rc = pz_wallet_pin_verify(db, &cfg, T.a, T.pin, now_ms, &T.retry, &job->err);
  T.ok = rc == 0;
  return rc == PZ_EFORBIDDEN || rc == PZ_ELOCKED ? 0 : rc;
}
static int run_topup(pz_db_t *db, pz_store_job_t *job) {
  int rc = pz_wallet_funding_begin(db, &cfg, &T.f, PZ_STR_NULL, now_ms, &T.retry, &T.keep, &job->err);
  if (rc == 0) rc = pz_wallet_funding_settle(db, T.f.id, T.ok, "ref", "declined", now_ms, &T.f, &T.changed, &job->err);
  return rc;
}
static int run_withdraw_begin(pz_db_t *db, pz_store_job_t *job) {
  return pz_wallet_funding_begin(db, &cfg, &T.f, T.pin, now_ms, &T.retry, &T.keep, &job->err);
}
static int run_settle(pz_db_t *db, pz_store_job_t *job) {
  return pz_wallet_funding_settle(db, T.f.id, T.ok, "ref", "declined", now_ms, &T.f, &T.changed, &job->err);
}
static int run_balances(pz_db_t *db, pz_store_job_t *job) {
  return pz_wallet_balances(db, &cfg, T.a, T.bal, &job->err);
}
static int run_transfer(pz_db_t *db, pz_store_job_t *job) {
  return pz_wallet_transfer_create(db, &cfg, &T.t, T.pin, now_ms, &T.out, &T.retry, &T.keep, &job->err);
}
static int run_accept(pz_db_t *db, pz_store_job_t *job) {
  return pz_wallet_transfer_accept(db, T.a, T.id, now_ms, &T.out, &job->err);
}
static int run_return(pz_db_t *db, pz_store_job_t *job) {
  return pz_wallet_transfer_return(db, T.a, T.id, now_ms, &T.out, &job->err);
}
static int run_get(pz_db_t *db, pz_store_job_t *job) {
  return pz_wallet_transfer_get(db, T.a, T.id, &T.out, &job->err);
}
static int run_expire(pz_db_t *db, pz_store_job_t *job) {
  return pz_wallet_transfer_expire(db, now_ms, 100, &T.n, &job->err);
}
static int run_auto(pz_db_t *db, pz_store_job_t *job) {
  return pz_store_wallet_user_set_auto_accept(db, T.a, true, now_ms, &job->err);
}
static int run_idem_save(pz_db_t *db, pz_store_job_t *job) {
  return pz_wallet_idem_save(db, T.a, PZ_STR("key-1"), T.fp, 77, 201, PZ_STR("{\"x\":1}"), now_ms, &job->err);
}
static int run_idem_lookup(pz_db_t *db, pz_store_job_t *job) {
  return pz_wallet_idem_lookup(db, T.a, PZ_STR("key-1"), T.fp, &T.idem, &T.found, &job->err);
}
static int run_verify(pz_db_t *db, pz_store_job_t *job) {
  FILE *devnull = fopen("/dev/null", "w");
  int rc = pz_wallet_verify(db, devnull, &T.violations, &T.txns, &job->err);
  fclose(devnull);
  return rc;
}

/* Every operation is recorded under its idempotency key, as the API does. */
static struct {
  int64_t user, ref;
  const char *key;
} K;
static int run_record_key(pz_db_t *db, pz_store_job_t *job) {
  uint8_t fp[PZ_WALLET_FP_LEN] = {0};
  return pz_wallet_idem_save(db, K.user, pz_str(K.key), fp, K.ref, 201, PZ_STR("{}"), now_ms, &job->err);
}
static void record_key(int64_t user, const char *key, int64_t ref) {
  K.user = user, K.key = key, K.ref = ref;
  CHECK_EQ_INT(step(run_record_key, NULL), 0);
}

static int64_t balance(int64_t user, int i) {
  T.a = user;
  CHECK_EQ_INT(step(run_balances, NULL), 0);
  return T.bal[i];
}

static void topup(int64_t user, int64_t amount, const char *currency, bool ok) {
  pz_fix_topup_rec(&T.f, user, amount, currency, NULL);
  snprintf(T.f.idem_key, sizeof(T.f.idem_key), "k%lld", (long long)T.f.id);
  T.ok = ok;
  CHECK_EQ_INT(step(run_topup, NULL), 0);
  CHECK(T.changed);
  record_key(user, T.f.idem_key, T.f.id);
}

static void set_pin(int64_t user, const char *pin) {
  T.a = user;
  T.pin = pz_str(pin);
  CHECK_EQ_INT(step(run_pin_set, NULL), 0);
}

static int transfer(int64_t from, int64_t to, int64_t amount, const char *pin, pz_err_t *err) {
  memset(&T.t, 0, sizeof(T.t));
  T.t.id = pz_id_next();
  T.t.from_id = from;
  T.t.to_id = to;
  T.t.amount = amount;
  snprintf(T.t.currency, sizeof(T.t.currency), "USD");
  snprintf(T.t.idem_key, sizeof(T.t.idem_key), "t%lld", (long long)T.t.id);
  T.pin = pz_str(pin);
  int rc = step(run_transfer, err);
  if (rc == 0) record_key(from, T.t.idem_key, T.t.id);
  return rc;
}

static void expect_clean(void) {
  T.violations = 99;
  CHECK_EQ_INT(step(run_verify, NULL), 0);
  CHECK_EQ_INT(T.violations, 0);
}

/* ---- tests ---- */

static void test_topup_and_failure(void) {
  int64_t u = make_user("topper");
  topup(u, 1500, "USD", true);
  CHECK_EQ_INT(T.f.status, PZ_FUNDING_COMPLETED);
  topup(u, 999, "USD", false); /* the provider said no: nothing moves */
  CHECK_EQ_INT(T.f.status, PZ_FUNDING_FAILED);
  CHECK_EQ_STR(T.f.reason, "declined");
  topup(u, 20, "EUR", true);
  CHECK_EQ_INT(balance(u, 0), 1500);
  CHECK_EQ_INT(balance(u, 1), 20);
  /* Settling again (a raced retry) moves nothing. */
  T.ok = true;
  CHECK_EQ_INT(step(run_settle, NULL), 0);
  CHECK(!T.changed);
  CHECK_EQ_INT(balance(u, 1), 20);
  expect_clean();
}

static void test_pin_lockout(void) {
  pz_err_t err;
  int64_t u = make_user("pinner");
  T.a = u;
  T.pin = PZ_STR("111111");
  CHECK_EQ_INT(step(run_pin_verify, NULL), 0);
  CHECK(!T.ok); /* no PIN yet */
  set_pin(u, "123456");
  T.pin = PZ_STR("123456");
  CHECK_EQ_INT(step(run_pin_verify, NULL), 0);
  CHECK(T.ok);
  /* Four wrong, one right: the count starts again. */
  T.pin = PZ_STR("000000");
  for (int i = 0; i < 4; i++)
    CHECK_EQ_INT(step(run_pin_verify, NULL), 0);
  T.pin = PZ_STR("123456");
  CHECK_EQ_INT(step(run_pin_verify, NULL), 0);
  CHECK(T.ok);
  /* Five wrong in a row lock, even the right PIN, for 15 minutes. */
  T.pin = PZ_STR("000000");
  for (int i = 0; i < 5; i++) {
    CHECK_EQ_INT(step(run_pin_verify, NULL), 0);
    CHECK(!T.ok);
  }
  CHECK_EQ_INT(T.retry, 15 * 60);
  T.pin = PZ_STR("123456");
  CHECK_EQ_INT(step(run_pin_verify, NULL), 0);
  CHECK(!T.ok);
  /* A debit answers 423 and moves nothing. */
  int64_t v = make_user("pinned_to");
  topup(u, 100, "USD", true);
  CHECK_EQ_INT(transfer(u, v, 50, "123456", &err), PZ_ELOCKED);
  CHECK_EQ_STR(pz_err_code_str(&err), "pin_locked");
  CHECK(T.keep);
  CHECK_EQ_INT(balance(u, 0), 100);
  /* After the lock, the right PIN works. */
  now_ms += PZ_WALLET_PIN_LOCK_MS;
  T.a = u;
  CHECK_EQ_INT(step(run_pin_verify, NULL), 0);
  CHECK(T.ok);
  /* Changing the PIN clears a lock. */
  T.pin = PZ_STR("000000");
  for (int i = 0; i < 5; i++)
    CHECK_EQ_INT(step(run_pin_verify, NULL), 0);
  set_pin(u, "654321");
  T.pin = PZ_STR("654321");
  CHECK_EQ_INT(step(run_pin_verify, NULL), 0);
  CHECK(T.ok);
}

static void test_transfer_accept_return_expire(void) {
  pz_err_t err;
  int64_t a = make_user("sender"), b = make_user("receiver"), c = make_user("stranger");
  set_pin(a, "123456");
  topup(a, 1000, "USD", true);

  CHECK_EQ_INT(transfer(a, b, 300, "123456", &err), 0);
  CHECK_EQ_INT(T.out.status, PZ_TRANSFER_PENDING);
  CHECK_EQ_INT(T.out.expires_at, now_ms + cfg.transfer_ttl_ms);
  int64_t t1 = T.out.id;
  CHECK_EQ_INT(balance(a, 0), 700);
  CHECK_EQ_INT(balance(b, 0), 0); /* in escrow until accepted */
  expect_clean();

  /* Only the receiver accepts; a stranger does not even see it. */
  T.a = c, T.id = t1;
  CHECK_EQ_INT(step(run_accept, NULL), PZ_ENOTFOUND);
  CHECK_EQ_INT(step(run_get, NULL), PZ_ENOTFOUND);
  T.a = a;
  CHECK_EQ_INT(step(run_accept, NULL), PZ_ENOTFOUND);
  CHECK_EQ_INT(step(run_get, NULL), 0);
  T.a = b;
  CHECK_EQ_INT(step(run_accept, NULL), 0);
  CHECK_EQ_INT(T.out.status, PZ_TRANSFER_COMPLETED);
  CHECK_EQ_INT(step(run_accept, NULL), 0); /* again: no change */
  CHECK_EQ_INT(balance(b, 0), 300);
  T.a = b;
  CHECK_EQ_INT(step(run_return, &err), PZ_ECONFLICT);
  CHECK_EQ_STR(pz_err_code_str(&err), "transfer_not_pending");

  /* Returned: back to the sender, and no accept after that. */
  CHECK_EQ_INT(transfer(a, b, 200, "123456", &err), 0);
  T.a = b, T.id = T.out.id;
  CHECK_EQ_INT(step(run_return, NULL), 0);
  CHECK_EQ_INT(T.out.status, PZ_TRANSFER_RETURNED);
  CHECK_EQ_INT(step(run_accept, &err), PZ_ECONFLICT);
  CHECK_EQ_INT(balance(a, 0), 700);
  CHECK_EQ_INT(balance(b, 0), 300);

  /* Expired: refunded by the sweep, once. */
  CHECK_EQ_INT(transfer(a, b, 100, "123456", &err), 0);
  int64_t t3 = T.out.id;
  CHECK_EQ_INT(step(run_expire, NULL), 0);
  CHECK_EQ_INT(T.n, 0);
  now_ms += cfg.transfer_ttl_ms;
  T.a = b, T.id = t3;
  CHECK_EQ_INT(step(run_accept, &err), PZ_ECONFLICT); /* too late, even before the sweep */
  CHECK_EQ_INT(step(run_expire, NULL), 0);
  CHECK_EQ_INT(T.n, 1);
  CHECK_EQ_INT(step(run_expire, NULL), 0);
  CHECK_EQ_INT(T.n, 0);
  CHECK_EQ_INT(balance(a, 0), 700);
  T.a = a;
  CHECK_EQ_INT(step(run_get, NULL), 0);
  CHECK_EQ_INT(T.out.status, PZ_TRANSFER_EXPIRED);
  expect_clean();
}

static int run_block(pz_db_t *db, pz_store_job_t *job) {
  bool created;
  int64_t since;
  pz_user_rec_t u;
  return pz_auth_block(db, T.a, T.b, now_ms, &created, &since, &u, &job->err);
}

static void test_transfer_refusals(void) {
  pz_err_t err;
  int64_t a = make_user("refused"), b = make_user("refused_to"), c = make_user("blocker");
  topup(a, 500, "USD", true);
  CHECK_EQ_INT(transfer(a, b, 100, "123456", &err), PZ_EFORBIDDEN);
  CHECK_EQ_STR(pz_err_code_str(&err), "pin_not_set");
  set_pin(a, "123456");
  CHECK_EQ_INT(transfer(a, b, 501, "123456", &err), PZ_EUNPROCESSABLE);
  CHECK_EQ_STR(pz_err_code_str(&err), "insufficient_funds");
  CHECK_EQ_INT(transfer(a, a, 1, "123456", &err), PZ_EINVAL);
  CHECK_EQ_INT(transfer(a, pz_id_next(), 1, "123456", &err), PZ_ENOTFOUND);
  CHECK_EQ_INT(transfer(a, b, 100, "999999", &err), PZ_EFORBIDDEN);
  CHECK_EQ_STR(pz_err_code_str(&err), "wrong_pin");
  CHECK(strstr(pz_err_message(&err), "4 tries left") != NULL);
  /* Blocked either way. */
  T.a = c, T.b = a;
  CHECK_EQ_INT(step(run_block, NULL), 0);
  CHECK_EQ_INT(transfer(a, c, 1, "123456", &err), PZ_EFORBIDDEN);
  CHECK_EQ_STR(pz_err_code_str(&err), "blocked");
  T.a = a, T.b = b;
  CHECK_EQ_INT(step(run_block, NULL), 0);
  CHECK_EQ_INT(transfer(a, b, 1, "123456", &err), PZ_EFORBIDDEN);
  CHECK_EQ_STR(pz_err_code_str(&err), "blocked");
  CHECK_EQ_INT(balance(a, 0), 500);
  expect_clean();
}

static void test_auto_accept_and_withdrawal(void) {
  pz_err_t err;
  int64_t a = make_user("auto_from"), b = make_user("auto_to");
  set_pin(a, "123456");
  set_pin(b, "222222");
  topup(a, 1000, "USD", true);
  T.a = b;
  CHECK_EQ_INT(step(run_auto, NULL), 0);
  CHECK_EQ_INT(transfer(a, b, 400, "123456", &err), 0);
  CHECK_EQ_INT(T.out.status, PZ_TRANSFER_COMPLETED);
  CHECK_EQ_INT(balance(b, 0), 400);

  /* A withdrawal holds the money in escrow while the provider works. */
  memset(&T.f, 0, sizeof(T.f));
  T.f.id = pz_id_next();
  T.f.user_id = b;
  T.f.kind = PZ_FUNDING_WITHDRAWAL;
  T.f.amount = 150;
  snprintf(T.f.currency, sizeof(T.f.currency), "USD");
  snprintf(T.f.idem_key, sizeof(T.f.idem_key), "w1");
  T.pin = PZ_STR("222222");
  CHECK_EQ_INT(step(run_withdraw_begin, NULL), 0);
  record_key(b, "w1", T.f.id);
  CHECK_EQ_INT(balance(b, 0), 250);
  T.ok = false; /* the provider failed: the money comes back */
  CHECK_EQ_INT(step(run_settle, NULL), 0);
  CHECK_EQ_INT(T.f.status, PZ_FUNDING_FAILED);
  CHECK_EQ_INT(balance(b, 0), 400);
  T.f.id = pz_id_next();
  T.f.amount = 401;
  CHECK_EQ_INT(step(run_withdraw_begin, &err), PZ_EUNPROCESSABLE);
  T.f.amount = 400;
  snprintf(T.f.idem_key, sizeof(T.f.idem_key), "w2");
  CHECK_EQ_INT(step(run_withdraw_begin, NULL), 0);
  record_key(b, "w2", T.f.id);
  T.ok = true;
  CHECK_EQ_INT(step(run_settle, NULL), 0);
  CHECK_EQ_INT(T.f.status, PZ_FUNDING_COMPLETED);
  CHECK_EQ_INT(balance(b, 0), 0);
  expect_clean();
}

static void test_idempotency(void) {
  pz_err_t err;
  T.a = make_user("idem");
  memset(T.fp, 7, sizeof(T.fp));
  CHECK_EQ_INT(step(run_idem_lookup, NULL), 0);
  CHECK(!T.found);
  CHECK_EQ_INT(step(run_idem_save, NULL), 0);
  CHECK_EQ_INT(step(run_idem_lookup, NULL), 0);
  CHECK(T.found);
  CHECK_EQ_INT(T.idem.status, 201);
  CHECK_EQ_INT(T.idem.ref_id, 77);
  CHECK_EQ_STR(T.idem.body, "{\"x\":1}");
  T.fp[0] ^= 1; /* the same key for another request */
  CHECK_EQ_INT(step(run_idem_lookup, &err), PZ_ECONFLICT);
  CHECK_EQ_STR(pz_err_code_str(&err), "idempotency_key_reused");
}

/* What one query gives as an integer (its first column), read beside the store. */
static int64_t raw_int(const char *fmt, ...) {
  char sql[600], path[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(sql, sizeof(sql), fmt, ap);
  va_end(ap);
  snprintf(path, sizeof(path), "%s/plaza.db", dir);
  sqlite3 *raw = NULL;
  sqlite3_stmt *q = NULL;
  int64_t v = -1;
  if (sqlite3_open(path, &raw) == SQLITE_OK && sqlite3_prepare_v2(raw, sql, -1, &q, NULL) == SQLITE_OK &&
      sqlite3_step(q) == SQLITE_ROW)
    v = sqlite3_column_int64(q, 0);
  sqlite3_finalize(q);
  sqlite3_close(raw);
  return v;
}

/* An auto-accepted transfer is one ledger transaction of two entries,
 * from sender to receiver, whether or not the receiver had an account
 * yet; escrow, which holds nothing for it, keeps its balance. */
static void test_auto_accept_ledger_shape(void) {
  int64_t a = make_user("shape_from"), b = make_user("shape_to");
  set_pin(a, "123456");
  topup(a, 1000, "USD", true);
  T.a = b;
  CHECK_EQ_INT(step(run_auto, NULL), 0);
  int64_t escrow = raw_int("SELECT balance FROM wallet_accounts WHERE kind = 'escrow' AND currency = 'USD'");
  for (int i = 0; i < 2; i++) { /* b's first money, then b's account */
    CHECK_EQ_INT(transfer(a, b, 300, "123456", NULL), 0);
    CHECK_EQ_INT(T.out.status, PZ_TRANSFER_COMPLETED);
    int64_t id = T.out.id;
    CHECK_EQ_INT(raw_int("SELECT count(*) FROM wallet_txns WHERE ref_id = %lld AND kind = 'transfer'", (long long)id),
                 1);
    CHECK_EQ_INT(raw_int("SELECT count(*) FROM wallet_txns WHERE ref_id = %lld", (long long)id), 1);
    /* From a to b, balanced. */
    CHECK_EQ_INT(raw_int("SELECT group_concat(coalesce(e.user_id = %lld, 'e') || ':' || e.amount, ' ')"
                         " = '1:-300 0:300'"
                         " FROM (SELECT e.* FROM wallet_entries e JOIN wallet_txns t ON t.id = e.txn_id"
                         " WHERE t.ref_id = %lld ORDER BY e.amount) e",
                         (long long)a, (long long)id),
                 1);
  }
  CHECK_EQ_INT(balance(a, 0), 400);
  CHECK_EQ_INT(balance(b, 0), 600);
  CHECK_EQ_INT(raw_int("SELECT balance FROM wallet_accounts WHERE kind = 'escrow' AND currency = 'USD'"), escrow);
  expect_clean();
}

static int run_escrow_then_fail(pz_db_t *db, pz_store_job_t *job) {
  pz_wallet_account_rec_t escrow;
  int rc = pz_wallet_account(db, 0, PZ_ACCT_ESCROW, "EUR", now_ms, &escrow, &job->err);
  return rc < 0 ? rc : pz_err_set(&job->err, PZ_EUNPROCESSABLE, NULL, "undone");
}

/* A system account made by a job that rolled back is gone, and the
 * writer, which remembers system accounts, does not use it. */
static void test_system_account_rolled_back(void) {
  int64_t a = make_user("eur_from"), b = make_user("eur_to");
  set_pin(a, "123456");
  topup(a, 100, "EUR", true);
  CHECK_EQ_INT(step(run_escrow_then_fail, NULL), PZ_EUNPROCESSABLE);
  CHECK_EQ_INT(raw_int("SELECT count(*) FROM wallet_accounts WHERE kind = 'escrow' AND currency = 'EUR'"), 0);
  memset(&T.t, 0, sizeof(T.t));
  T.t.id = pz_id_next();
  T.t.from_id = a;
  T.t.to_id = b;
  T.t.amount = 60;
  snprintf(T.t.currency, sizeof(T.t.currency), "EUR");
  snprintf(T.t.idem_key, sizeof(T.t.idem_key), "eur1");
  T.pin = PZ_STR("123456");
  CHECK_EQ_INT(step(run_transfer, NULL), 0);
  record_key(a, "eur1", T.t.id);
  CHECK_EQ_INT(T.out.status, PZ_TRANSFER_PENDING);
  CHECK_EQ_INT(raw_int("SELECT balance FROM wallet_accounts WHERE kind = 'escrow' AND currency = 'EUR'"), 60);
  CHECK_EQ_INT(balance(a, 1), 40);
  expect_clean();
}

/* verify finds what a hand edit broke. */
static void test_verify_finds_damage(void) {
  expect_clean();
  CHECK(T.txns > 0);
  char path[600];
  snprintf(path, sizeof(path), "%s/plaza.db", dir);
  sqlite3 *raw = NULL;
  CHECK(sqlite3_open(path, &raw) == SQLITE_OK);
  CHECK(sqlite3_exec(raw,
                     "UPDATE wallet_accounts SET balance = balance + 1 WHERE id ="
                     " (SELECT id FROM wallet_accounts WHERE kind = 'user' ORDER BY id LIMIT 1)",
                     NULL, NULL, NULL) == SQLITE_OK);
  CHECK_EQ_INT(step(run_verify, NULL), 0);
  CHECK_EQ_INT(T.violations, 2); /* the cached balance, and the currency's sum */
  CHECK(sqlite3_exec(
            raw,
            "UPDATE wallet_accounts SET balance = balance - 1 WHERE id ="
            " (SELECT id FROM wallet_accounts WHERE kind = 'user' ORDER BY id LIMIT 1);"
            "UPDATE wallet_entries SET amount = amount + 5 WHERE rowid = (SELECT min(rowid) FROM wallet_entries)",
            NULL, NULL, NULL) == SQLITE_OK);
  CHECK_EQ_INT(step(run_verify, NULL), 0);
  CHECK(T.violations >= 2); /* an unbalanced transaction, and a balance off its entries */
  sqlite3_close(raw);
}

int main(void) {
  if (sodium_init() < 0) return 1;
  dir = pz_fix_open(&st, "wallet-ledger");
  if (dir == NULL) return 1;
  pz_fix_wallet_config(&cfg);
  RUN(test_topup_and_failure);
  RUN(test_pin_lockout);
  RUN(test_transfer_accept_return_expire);
  RUN(test_transfer_refusals);
  RUN(test_auto_accept_and_withdrawal);
  RUN(test_auto_accept_ledger_shape);
  RUN(test_system_account_rolled_back);
  RUN(test_idempotency);
  RUN(test_verify_finds_damage);
  pz_fix_close(st, dir);
  TEST_EXIT();
}
