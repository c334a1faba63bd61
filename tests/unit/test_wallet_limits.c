/* Unit tests of daily limits (parsing, the check inside money movements, tiers, verify), money and date formats, and
 * CSV fields. */
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "api/internal.h"
#include "plaza/auth.h"
#include "plaza/id.h"
#include "plaza/wallet.h"
#include "store_fixture.h"

static pz_store_t *st;
static char *dir;
static pz_wallet_config_t cfg;
static int64_t now_ms = 1750000000000LL; /* 2025-06-15T15:06:40Z */

/* ---- pure rules ---- */

static void test_limits_parse(void) {
  pz_wallet_limits_t l;
  pz_err_t err = {0};
  CHECK_EQ_INT(pz_wallet_limits_parse(PZ_WALLET_DAILY_LIMITS_DEFAULT, &l, &err), 0);
  CHECK_EQ_INT(l.daily[0], 50000);
  CHECK_EQ_INT(l.daily[1], 1000000);
  CHECK_EQ_INT(l.daily[2], 0);
  CHECK_EQ_INT(l.daily[9], 0); /* left out: as the nearest tier below */
  CHECK_EQ_INT(pz_wallet_limits_parse(" 0:100 , 4:700 ", &l, &err), 0);
  CHECK_EQ_INT(l.daily[3], 100);
  CHECK_EQ_INT(l.daily[4], 700);
  CHECK_EQ_INT(l.daily[9], 700);
  CHECK_EQ_INT(pz_wallet_limits_parse("0:999999999999999", &l, &err), 0);
  CHECK_EQ_INT(l.daily[0], 999999999999999LL);
  const char *bad[] = {"",
                       "1:500",
                       "0:",
                       ":5",
                       "0:-1",
                       "0:1.5",
                       "0:1e3",
                       "0:10,0:20",
                       "10:5",
                       "0:5,",
                       "0:5;1:6",
                       "a:1",
                       "0:1000000000000000",
                       "0:5 6"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    err = (pz_err_t){0};
    int rc = pz_wallet_limits_parse(bad[i], &l, &err);
    if (rc != PZ_EINVAL) fprintf(stderr, "accepted daily limits \"%s\"\n", bad[i]);
    CHECK_EQ_INT(rc, PZ_EINVAL);
    CHECK(strlen(pz_err_message(&err)) > 0);
  }
  CHECK_EQ_INT(pz_wallet_limits_parse(NULL, &l, &err), PZ_EINVAL);
}

static void test_limit_kinds(void) {
  CHECK(pz_wallet_limit_counts(PZ_TXN_TRANSFER));
  CHECK(pz_wallet_limit_counts(PZ_TXN_WITHDRAWAL));
  CHECK(pz_wallet_limit_counts(PZ_TXN_RED_PACKET));
  CHECK(pz_wallet_limit_counts(PZ_TXN_MERCHANT_PAYMENT));
  CHECK(!pz_wallet_limit_counts(PZ_TXN_MERCHANT_REFUND));
}

static void test_amount_format(void) {
  char out[32];
  CHECK_EQ_INT(pz_wallet_amount_format(1250, "USD", out), 5);
  CHECK_EQ_STR(out, "12.50");
  pz_wallet_amount_format(-5, "EUR", out);
  CHECK_EQ_STR(out, "-0.05");
  pz_wallet_amount_format(0, "USD", out);
  CHECK_EQ_STR(out, "0.00");
  pz_wallet_amount_format(1500, "JPY", out);
  CHECK_EQ_STR(out, "1500");
  pz_wallet_amount_format(-12345, "KWD", out);
  CHECK_EQ_STR(out, "-12.345");
  pz_wallet_amount_format(INT64_MIN, "USD", out);
  CHECK_EQ_STR(out, "-92233720368547758.08");
  CHECK_EQ_INT(pz_wallet_currency_digits("JPY"), 0);
  CHECK_EQ_INT(pz_wallet_currency_digits("BHD"), 3);
  CHECK_EQ_INT(pz_wallet_currency_digits("USD"), 2);
  CHECK_EQ_INT(pz_wallet_currency_digits("XYZ"), 2);
}

static void test_dates(void) {
  int64_t ms = 0, end = 0;
  char out[11];
  CHECK_EQ_INT(pz_wallet_date_parse(PZ_STR("1970-01-01"), &ms), 0);
  CHECK_EQ_INT(ms, 0);
  CHECK_EQ_INT(pz_wallet_date_parse(PZ_STR("2025-06-15"), &ms), 0);
  CHECK_EQ_INT(ms, 1749945600000LL);
  CHECK_EQ_INT(pz_wallet_date_parse(PZ_STR("2024-02-29"), &ms), 0);
  CHECK_EQ_INT(pz_wallet_date_parse(PZ_STR("2000-02-29"), &ms), 0);
  const char *bad[] = {"2025-02-29", "1900-02-29",  "2025-13-01", "2025-00-10", "2025-06-31", "2025-6-15",
                       "1969-12-31", "2025-06-15T", "2025/06/15", "",           "20250615xx"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    CHECK_EQ_INT(pz_wallet_date_parse(pz_str(bad[i]), &ms), PZ_EINVAL);
  CHECK_EQ_INT(pz_wallet_month_parse(PZ_STR("2025-12"), &ms, &end), 0);
  pz_wallet_date_format(ms, out);
  CHECK_EQ_STR(out, "2025-12-01");
  pz_wallet_date_format(end, out);
  CHECK_EQ_STR(out, "2026-01-01");
  CHECK_EQ_INT(pz_wallet_month_parse(PZ_STR("2024-02"), &ms, &end), 0);
  CHECK_EQ_INT((end - ms) / PZ_WALLET_DAY_MS, 29);
  CHECK_EQ_INT(pz_wallet_month_parse(PZ_STR("2025-13"), &ms, &end), PZ_EINVAL);
  CHECK_EQ_INT(pz_wallet_month_parse(PZ_STR("2025-06-01"), &ms, &end), PZ_EINVAL);
  pz_wallet_date_format(now_ms, out);
  CHECK_EQ_STR(out, "2025-06-15");
  pz_wallet_date_format(1749945600000LL - 1, out);
  CHECK_EQ_STR(out, "2025-06-14");
}

static void csv_is(const char *in, const char *want) {
  pz_buf_t b = {0};
  pz__api_csv_field(&b, in, strlen(in));
  pz_buf_append(&b, "", 1);
  CHECK_EQ_STR(b.data, want);
  pz_buf_free(&b);
}

static void test_csv_fields(void) {
  csv_is("", "");
  csv_is("dinner", "dinner");
  csv_is("rent, june", "\"rent, june\"");
  csv_is("say \"hi\"", "\"say \"\"hi\"\"\"");
  csv_is("two\nlines", "\"two\nlines\"");
  csv_is("cr\rhere", "\"cr\rhere\"");
  csv_is("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0");
  csv_is("+1", "'+1");
  csv_is("-1", "'-1");
  csv_is("@SUM(A1)", "'@SUM(A1)");
  csv_is("\t=x", "'\t=x");
  csv_is("=HYPERLINK(\"x\"),y", "\"'=HYPERLINK(\"\"x\"\"),y\"");
  csv_is("a=b", "a=b"); /* only a leading one is a formula */
  csv_is("中文, ok", "\"中文, ok\"");
}

/* ---- against a database ---- */

static struct {
  int64_t a;
  int tier;
  bool keep, changed;
  unsigned retry, violations;
  int64_t txns, when;
  pz_wallet_transfer_rec_t t, out;
  pz_wallet_funding_rec_t f;
  pz_wallet_allowance_t allow;
  pz_wallet_account_rec_t from, to;
} T;

static int step(pz_store_run_fn run, pz_err_t *err) {
  return pz_fix_run(st, run, NULL, err);
}

static int run_pin(pz_db_t *db, pz_store_job_t *job) {
  return pz_wallet_pin_set(db, &cfg, T.a, PZ_STR("123456"), now_ms, &job->err);
}
static int run_topup(pz_db_t *db, pz_store_job_t *job) {
  int rc = pz_wallet_funding_begin(db, &cfg, &T.f, PZ_STR_NULL, T.when, &T.retry, &T.keep, &job->err);
  if (rc == 0) rc = pz_wallet_funding_settle(db, T.f.id, true, "ref", "", T.when, &T.f, &T.changed, &job->err);
  return rc;
}
static int run_transfer(pz_db_t *db, pz_store_job_t *job) {
  return pz_wallet_transfer_create(db, &cfg, &T.t, PZ_STR("123456"), T.when, &T.out, &T.retry, &T.keep, &job->err);
}
static int run_withdraw(pz_db_t *db, pz_store_job_t *job) {
  return pz_wallet_funding_begin(db, &cfg, &T.f, PZ_STR("123456"), T.when, &T.retry, &T.keep, &job->err);
}
/* A movement straight through pz_wallet_move, as a rule that forgot any check of its own would make. */
static int run_raw_move(pz_db_t *db, pz_store_job_t *job) {
  int rc = pz_wallet_account(db, T.a, PZ_ACCT_USER, "USD", T.when, &T.from, &job->err);
  if (rc == 0) rc = pz_wallet_account(db, 0, PZ_ACCT_ESCROW, "USD", T.when, &T.to, &job->err);
  if (rc == 0) rc = pz_wallet_move(db, pz_id_next(), PZ_TXN_RED_PACKET, 1, &T.from, &T.to, 10, T.when, &job->err);
  return rc;
}
static int run_allowance(pz_db_t *db, pz_store_job_t *job) {
  return pz_wallet_allowance(db, T.a, "USD", T.when, &T.allow, &job->err);
}
static int run_tier(pz_db_t *db, pz_store_job_t *job) { return pz_wallet_tier_set(db, T.a, T.tier, now_ms, &job->err); }
/* The movements here have no idempotency records and the raw one no
 * escrow owner, which verify also reports: T.violations counts only the
 * lines about daily counters. */
static int run_verify(pz_db_t *db, pz_store_job_t *job) {
  char *text = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&text, &len);
  unsigned all = 0;
  int rc = pz_wallet_verify(db, out, &all, &T.txns, &job->err);
  fclose(out);
  T.violations = 0;
  for (const char *p = text; (p = strstr(p, "the daily limit counter")) != NULL; p++)
    T.violations++;
  free(text);
  return rc;
}

static int64_t make_user(const char *name) {
  int64_t id = pz_fix_user(st, name, NULL, now_ms);
  T.a = id;
  CHECK_EQ_INT(step(run_pin, NULL), 0);
  return id;
}

static void topup(int64_t user, int64_t amount) {
  pz_fix_topup_rec(&T.f, user, amount, "USD", NULL);
  T.when = now_ms;
  CHECK_EQ_INT(step(run_topup, NULL), 0);
}

static int transfer(int64_t from, int64_t to, int64_t amount, int64_t when, pz_err_t *err) {
  memset(&T.t, 0, sizeof(T.t));
  T.t.id = pz_id_next();
  T.t.from_id = from;
  T.t.to_id = to;
  T.t.amount = amount;
  snprintf(T.t.currency, sizeof(T.t.currency), "USD");
  T.when = when;
  return step(run_transfer, err);
}

static int64_t remaining(int64_t user, int64_t when) {
  T.a = user;
  T.when = when;
  CHECK_EQ_INT(step(run_allowance, NULL), 0);
  return T.allow.remaining;
}

static void test_limits_in_movements(void) {
  pz_wallet_limits_t l;
  pz_err_t err = {0};
  CHECK_EQ_INT(pz_wallet_limits_parse("0:1000,1:0", &l, &err), 0);
  pz_wallet_limits_set(&l);
  int64_t a = make_user("limited"), b = make_user("receiver");
  topup(a, 100000);
  CHECK_EQ_INT(remaining(a, now_ms), 1000);
  CHECK_EQ_INT(T.allow.tier, 0);
  CHECK_EQ_INT(T.allow.resets_at, 1750032000000LL); /* 2025-06-16T00:00:00Z */

  CHECK_EQ_INT(transfer(a, b, 700, now_ms, NULL), 0);
  CHECK_EQ_INT(remaining(a, now_ms), 300);
  CHECK_EQ_INT(T.allow.used, 700);
  /* Over the limit: refused before anything moved, and the refusal may be kept. */
  CHECK_EQ_INT(transfer(a, b, 301, now_ms, &err), PZ_EUNPROCESSABLE);
  CHECK_EQ_STR(pz_err_code_str(&err), "daily_limit_exceeded");
  CHECK(strstr(pz_err_message(&err), "3.00 USD left today") != NULL);
  CHECK(T.keep);
  /* A withdrawal shares the allowance. */
  memset(&T.f, 0, sizeof(T.f));
  T.f.id = pz_id_next();
  T.f.user_id = a;
  T.f.kind = PZ_FUNDING_WITHDRAWAL;
  T.f.amount = 301;
  snprintf(T.f.currency, sizeof(T.f.currency), "USD");
  snprintf(T.f.provider, sizeof(T.f.provider), "sandbox");
  T.when = now_ms;
  CHECK_EQ_INT(step(run_withdraw, &err), PZ_EUNPROCESSABLE);
  CHECK(T.keep);
  T.f.amount = 290;
  CHECK_EQ_INT(step(run_withdraw, NULL), 0);
  CHECK_EQ_INT(remaining(a, now_ms), 10);
  /* A movement that no rule checked first is still held by pz_wallet_move. */
  T.a = a;
  T.when = now_ms;
  CHECK_EQ_INT(step(run_raw_move, NULL), 0); /* 10: exactly what is left */
  CHECK_EQ_INT(step(run_raw_move, &err), PZ_EUNPROCESSABLE);
  CHECK_EQ_STR(pz_err_code_str(&err), "daily_limit_exceeded");
  CHECK_EQ_INT(remaining(a, now_ms), 0);

  /* The next UTC day starts again; a clock that went back still counts the later day. */
  int64_t tomorrow = now_ms + PZ_WALLET_DAY_MS;
  CHECK_EQ_INT(remaining(a, tomorrow), 1000);
  CHECK_EQ_INT(transfer(a, b, 1000, tomorrow, NULL), 0);
  CHECK_EQ_INT(transfer(a, b, 1, now_ms, &err), PZ_EUNPROCESSABLE);
  CHECK_EQ_INT(remaining(a, tomorrow), 0);

  /* Tier 1 has no limit; tiers out of range are refused. */
  T.a = a;
  T.tier = 1;
  CHECK_EQ_INT(step(run_tier, NULL), 0);
  CHECK_EQ_INT(remaining(a, tomorrow), -1);
  CHECK_EQ_INT(T.allow.used, 1000);
  CHECK_EQ_INT(transfer(a, b, 50000, tomorrow, NULL), 0);
  T.tier = PZ_WALLET_TIERS;
  CHECK_EQ_INT(step(run_tier, &err), PZ_EINVAL);
  T.tier = -1;
  CHECK_EQ_INT(step(run_tier, &err), PZ_EINVAL);
  /* Back to tier 0: what was sent today binds at once. */
  T.tier = 0;
  CHECK_EQ_INT(step(run_tier, NULL), 0);
  CHECK_EQ_INT(remaining(a, tomorrow), 0);
  CHECK_EQ_INT(transfer(a, b, 1, tomorrow, &err), PZ_EUNPROCESSABLE);

  T.violations = 99;
  CHECK_EQ_INT(step(run_verify, NULL), 0);
  CHECK_EQ_INT(T.violations, 0);
}

/* verify finds a counter that undercounts, or one that is missing. */
static void test_verify_counters(void) {
  char path[600];
  snprintf(path, sizeof(path), "%s/plaza.db", dir);
  sqlite3 *raw = NULL;
  CHECK(sqlite3_open(path, &raw) == SQLITE_OK);
  CHECK(sqlite3_exec(raw, "UPDATE wallet_daily_out SET amount = amount - 1", NULL, NULL, NULL) == SQLITE_OK);
  CHECK_EQ_INT(step(run_verify, NULL), 0);
  CHECK_EQ_INT(T.violations, 1);
  CHECK(sqlite3_exec(raw, "UPDATE wallet_daily_out SET amount = amount + 5", NULL, NULL, NULL) == SQLITE_OK);
  CHECK_EQ_INT(step(run_verify, NULL), 0);
  CHECK_EQ_INT(T.violations, 0); /* more than the day's debits is allowed: never less */
  CHECK(sqlite3_exec(raw, "DELETE FROM wallet_daily_out", NULL, NULL, NULL) == SQLITE_OK);
  CHECK_EQ_INT(step(run_verify, NULL), 0);
  CHECK_EQ_INT(T.violations, 1);
  sqlite3_close(raw);
}

int main(void) {
  if (sodium_init() < 0) return 1;
  RUN(test_limits_parse);
  RUN(test_limit_kinds);
  RUN(test_amount_format);
  RUN(test_dates);
  RUN(test_csv_fields);
  dir = pz_fix_open(&st, "wallet-limits");
  if (dir == NULL) return 1;
  pz_fix_wallet_config(&cfg);
  RUN(test_limits_in_movements);
  RUN(test_verify_counters);
  pz_fix_close(st, dir);
  TEST_EXIT();
}
