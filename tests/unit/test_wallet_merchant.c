/* Unit tests of merchants: payment codes, webhook URLs, signatures, backoff, API keys, and payments, refunds and the
 * webhook outbox against a real database. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "plaza/auth.h"
#include "plaza/httpc.h"
#include "plaza/id.h"
#include "plaza/merchant.h"
#include "store_fixture.h"

static pz_store_t *st;
static char *dir;
static pz_wallet_config_t cfg;
static int64_t now_ms = 1750000000000LL;

/* ---- pure functions ---- */

static void test_paycode(void) {
  pz_paycode_t pc;
  pz_err_t err = {0};
  char buf[PZ_PAYCODE_MAX + 1];
  CHECK_EQ_INT(pz_paycode_parse(PZ_STR("plaza:pay?m=250020011935277056"), &pc, &err), 0);
  CHECK_EQ_INT(pc.kind, PZ_PAYCODE_MERCHANT);
  CHECK(pc.merchant_id == 250020011935277056LL);
  pz_paycode_merchant(pc.merchant_id, buf);
  CHECK_EQ_STR(buf, "plaza:pay?m=250020011935277056");
  CHECK_EQ_INT(pz_paycode_parse(PZ_STR("plaza:pay?o=AbCdEfGhIjKlMnOpQr-_09"), &pc, &err), 0);
  CHECK_EQ_INT(pc.kind, PZ_PAYCODE_ORDER);
  CHECK_EQ_STR(pc.order_code, "AbCdEfGhIjKlMnOpQr-_09");
  pz_paycode_order(pc.order_code, buf);
  CHECK_EQ_STR(buf, "plaza:pay?o=AbCdEfGhIjKlMnOpQr-_09");
  char code[PZ_MERCHANT_CODE_LEN + 1];
  pz_merchant_order_code_new(code);
  pz_paycode_order(code, buf);
  CHECK_EQ_INT(pz_paycode_parse(pz_str(buf), &pc, &err), 0);
  CHECK_EQ_STR(pc.order_code, code);
  static const char *const bad[] = {
      "",
      "plaza:pay?",
      "plaza:pay?m=",
      "plaza:pay?m=0",
      "plaza:pay?m=0123",
      "plaza:pay?m=-1",
      "plaza:pay?m=12a",
      "plaza:pay?m=99999999999999999999",
      "plaza:pay?m=1&x=2",
      " plaza:pay?m=1",
      "PLAZA:pay?m=1",
      "plaza:pay?o=AbCdEfGhIjKlMnOpQr-_0",
      "plaza:pay?o=AbCdEfGhIjKlMnOpQr-_090",
      "plaza:pay?o=AbCdEfGhIjKlMnOpQr+/09",
      "plaza:pay?x=1",
      "plaza:pay?mm1",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    err = (pz_err_t){0};
    if (pz_paycode_parse(pz_str(bad[i]), &pc, &err) != PZ_EINVAL) fprintf(stderr, "accepted: %s\n", bad[i]);
    CHECK_EQ_INT(err.code, PZ_EINVAL);
  }
  CHECK_EQ_INT(pz_paycode_parse(pz_str_n("plaza:pay?m=1\0", 14), &pc, &err), PZ_EINVAL);
}

static void test_url(void) {
  pz_httpc_url_t u;
  pz_err_t err = {0};
  CHECK_EQ_INT(pz_httpc_url_parse(PZ_STR("http://shop.example.com/hooks/plaza?x=1"), &u, &err), 0);
  CHECK_EQ_STR(u.host, "shop.example.com");
  CHECK_EQ_INT(u.port, 80);
  CHECK_EQ_STR(u.path, "/hooks/plaza?x=1");
  CHECK_EQ_INT(pz_httpc_url_parse(PZ_STR("HTTP://127.0.0.1:8081"), &u, &err), 0);
  CHECK_EQ_STR(u.host, "127.0.0.1");
  CHECK_EQ_INT(u.port, 8081);
  CHECK_EQ_STR(u.path, "/");
  CHECK_EQ_INT(pz_httpc_url_parse(PZ_STR("http://[::1]:9000?q"), &u, &err), 0);
  CHECK_EQ_STR(u.host, "::1");
  CHECK(u.ipv6);
  CHECK_EQ_STR(u.path, "/?q");
  static const char *const bad[] = {
      "https://x/",    "ftp://x/",     "http://",         "http:///p",     "http://a b/",      "http://x/#frag",
      "http://u:p@x/", "http://x:0/",  "http://x:65536/", "http://x:/",    "http://x:12ab/",   "http://[::1/",
      "http://[]/",    "http://[zz]/",   "http://[1:::2]/", "http://[::1.2.3]/", "http://x_y/",   "http://x/\x7f",
      "http://\xc3\xa9/", "x",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    err = (pz_err_t){0};
    if (pz_httpc_url_parse(pz_str(bad[i]), &u, &err) != PZ_EINVAL) fprintf(stderr, "accepted: %s\n", bad[i]);
    CHECK_EQ_INT(err.code, PZ_EINVAL);
  }
  char longer[PZ_HTTPC_URL_MAX + 2];
  memset(longer, 'a', sizeof(longer) - 1);
  longer[sizeof(longer) - 1] = '\0';
  memcpy(longer, "http://x/", 9);
  CHECK_EQ_INT(pz_httpc_url_parse(pz_str(longer), &u, &err), PZ_EINVAL);
  longer[PZ_HTTPC_URL_MAX] = '\0';
  CHECK_EQ_INT(pz_httpc_url_parse(pz_str(longer), &u, &err), 0);
}

/* Whether the numeric host of "http://HOST/" is public: 1, 0, or -1 for a name. */
static int host_public(const char *url) {
  pz_httpc_url_t u;
  pz_err_t err = {0};
  CHECK_EQ_INT(pz_httpc_url_parse(pz_str(url), &u, &err), 0);
  return pz_httpc_host_public(&u);
}

static void test_public_addresses(void) {
  static const char *const closed[] = {
      "http://127.0.0.1/",        "http://127.255.1.2/",     "http://10.0.0.1/",          "http://172.16.0.1/",
      "http://172.31.255.255/",   "http://192.168.1.1/",     "http://169.254.169.254/",   "http://100.64.0.1/",
      "http://100.127.255.254/",  "http://0.0.0.0/",         "http://0.1.2.3/",           "http://224.0.0.1/",
      "http://239.255.255.250/",  "http://240.0.0.1/",       "http://255.255.255.255/",   "http://192.0.2.10/",
      "http://198.18.0.1/",       "http://198.51.100.1/",    "http://203.0.113.9/",       "http://192.0.0.8/",
      "http://[::]/",             "http://[::1]/",           "http://[::ffff:127.0.0.1]/", "http://[::ffff:10.0.0.1]/",
      "http://[::127.0.0.1]/",    "http://[fe80::1]/",       "http://[febf::1]/",         "http://[fc00::1]/",
      "http://[fdff:ffff::1]/",   "http://[ff02::1]/",       "http://[2001:db8::1]/",     "http://[64:ff9b::a00:1]/",
      "http://[2002:7f00:1::]/",  "http://[2002:c0a8:101::]/", "http://[2001::1]/",       "http://[fec0::1]/",
      "http://[100::1]/",
  };
  for (size_t i = 0; i < sizeof(closed) / sizeof(closed[0]); i++) {
    if (host_public(closed[i]) != 0) fprintf(stderr, "public: %s\n", closed[i]);
    CHECK_EQ_INT(host_public(closed[i]), 0);
  }
  static const char *const open[] = {
      "http://1.1.1.1/",          "http://8.8.8.8/",         "http://172.15.255.255/",    "http://172.32.0.1/",
      "http://100.63.255.255/",   "http://100.128.0.1/",     "http://169.253.0.1/",       "http://192.169.0.1/",
      "http://203.0.114.7/",      "http://223.255.255.255/", "http://[2606:4700::1111]/", "http://[2a00:1450::1]/",
      "http://[::ffff:8.8.8.8]/", "http://[64:ff9b::808:808]/", "http://[2002:808:808::]/",
  };
  for (size_t i = 0; i < sizeof(open) / sizeof(open[0]); i++) {
    if (host_public(open[i]) != 1) fprintf(stderr, "not public: %s\n", open[i]);
    CHECK_EQ_INT(host_public(open[i]), 1);
  }
  CHECK_EQ_INT(host_public("http://localhost:8080/"), -1);
  CHECK_EQ_INT(host_public("http://shop.example.com/"), -1);
  CHECK(!pz_httpc_addr_public(NULL));
  struct sockaddr_un_like {
    sa_family_t family;
  } other = {AF_UNIX};
  CHECK(!pz_httpc_addr_public((const struct sockaddr *)&other));
}

static void test_sign_backoff_keys(void) {
  char sig[PZ_WEBHOOK_SIGNATURE_MAX];
  /* The vector was computed apart: python3 hmac.new(b"whsec_test", b'1700000000.{"a":1}', sha256). */
  pz_merchant_sign("whsec_test", 1700000000, PZ_STR("{\"a\":1}"), sig);
  CHECK_EQ_STR(sig, "t=1700000000,v1=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789");
  CHECK_EQ_INT(pz_merchant_backoff_ms(1), 1000);
  CHECK_EQ_INT(pz_merchant_backoff_ms(2), 2000);
  CHECK_EQ_INT(pz_merchant_backoff_ms(3), 4000);
  CHECK_EQ_INT(pz_merchant_backoff_ms(12), 2048000);
  CHECK_EQ_INT(pz_merchant_backoff_ms(13), PZ_WEBHOOK_BACKOFF_MAX_MS);
  CHECK_EQ_INT(pz_merchant_backoff_ms(1000), PZ_WEBHOOK_BACKOFF_MAX_MS);

  char key[PZ_MERCHANT_KEY_LEN + 1];
  uint8_t h1[PZ_MERCHANT_KEY_HASH_LEN], h2[PZ_MERCHANT_KEY_HASH_LEN];
  pz_merchant_key_new(key, h1);
  CHECK_EQ_INT(strlen(key), PZ_MERCHANT_KEY_LEN);
  CHECK(strncmp(key, "pzk_", 4) == 0);
  CHECK_EQ_INT(pz_merchant_key_hash(pz_str(key), h2), 0);
  CHECK(memcmp(h1, h2, sizeof(h1)) == 0);
  key[0] = 'x';
  CHECK_EQ_INT(pz_merchant_key_hash(pz_str(key), h2), PZ_EUNAUTH);
  CHECK_EQ_INT(pz_merchant_key_hash(pz_str_n(key, 10), h2), PZ_EUNAUTH);
  char secret[PZ_MERCHANT_SECRET_LEN + 1];
  pz_merchant_secret_new(secret);
  CHECK_EQ_INT(strlen(secret), PZ_MERCHANT_SECRET_LEN);

  pz_err_t err = {0};
  CHECK_EQ_INT(pz_merchant_name_check(PZ_STR("Café 王"), &err), 0);
  CHECK_EQ_INT(pz_merchant_name_check(PZ_STR(""), &err), PZ_EINVAL);
  CHECK_EQ_INT(pz_merchant_name_check(PZ_STR(" \xe3\x80\x80 "), &err), PZ_EINVAL); /* ideographic space */
  CHECK_EQ_INT(pz_merchant_name_check(PZ_STR("a\tb"), &err), PZ_EINVAL);
  CHECK_EQ_INT(pz_merchant_name_check(PZ_STR("\xff"), &err), PZ_EUTF8);
  CHECK_EQ_INT(pz_merchant_reason_check(PZ_STR(""), &err), 0);
}

/* ---- against a database ---- */

static struct {
  int64_t who;
  pz_merchant_rec_t m;
  pz_merchant_pay_t pay;
  pz_merchant_order_rec_t order;
  pz_merchant_payment_rec_t payment;
  pz_merchant_refund_rec_t refund, refund_out;
  pz_wallet_funding_rec_t f;
  unsigned retry, violations;
  bool keep, changed, queued, found;
  int64_t bal[PZ_WALLET_CURRENCIES_MAX];
  int64_t hook_id;
  int attempts, http_status;
  pz_merchant_webhook_rec_t w;
} T;

static int step(pz_store_run_fn run, pz_err_t *err) {
  return pz_fix_run(st, run, NULL, err);
}

static int run_pin(pz_db_t *db, pz_store_job_t *job) {
  return pz_wallet_pin_set(db, &cfg, T.who, PZ_STR("123456"), now_ms, &job->err);
}
static int run_topup(pz_db_t *db, pz_store_job_t *job) {
  int rc = pz_wallet_funding_begin(db, &cfg, &T.f, PZ_STR_NULL, now_ms, &T.retry, &T.keep, &job->err);
  if (rc == 0) rc = pz_wallet_funding_settle(db, T.f.id, true, "ref", "", now_ms, &T.f, &T.changed, &job->err);
  return rc;
}
static int run_balances(pz_db_t *db, pz_store_job_t *job) {
  return pz_wallet_balances(db, &cfg, T.who, T.bal, &job->err);
}

static int64_t balance_of(int64_t who) {
  T.who = who;
  CHECK_EQ_INT(step(run_balances, NULL), 0);
  return T.bal[0];
}

static int64_t make_user(const char *name, int64_t usd) {
  int64_t id = pz_fix_user(st, name, NULL, now_ms);
  T.who = id;
  CHECK_EQ_INT(step(run_pin, NULL), 0);
  if (usd) {
    pz_fix_topup_rec(&T.f, id, usd, "USD", NULL);
    snprintf(T.f.idem_key, sizeof(T.f.idem_key), "topup-%lld", (long long)T.f.id);
    CHECK_EQ_INT(step(run_topup, NULL), 0);
  }
  return id;
}

static int run_create(pz_db_t *db, pz_store_job_t *job) { return pz_merchant_create(db, &T.m, now_ms, &job->err); }

/* As the API does: the payment and its webhook in one job, keyed. */
static int run_pay(pz_db_t *db, pz_store_job_t *job) {
  int rc = pz_merchant_pay(db, &cfg, &T.pay, PZ_STR("123456"), now_ms, &T.payment, &T.order, &T.m, &T.retry, &T.keep,
                           &job->err);
  if (rc < 0) return rc;
  uint8_t fp[PZ_WALLET_FP_LEN] = {1};
  if ((rc = pz_wallet_idem_save(db, T.pay.payer_id, pz_str(T.pay.idem_key), fp, T.payment.id, 201, PZ_STR("{}"), now_ms,
                                &job->err)) < 0)
    return rc;
  memset(&T.w, 0, sizeof(T.w));
  T.w.id = T.hook_id = pz_id_next();
  snprintf(T.w.type, sizeof(T.w.type), "order.paid");
  T.w.body_len = (size_t)snprintf(T.w.body, sizeof(T.w.body), "{\"type\":\"order.paid\"}");
  return pz_merchant_webhook_queue(db, &T.m, &T.w, now_ms, &T.queued, &job->err);
}

static int run_refund(pz_db_t *db, pz_store_job_t *job) {
  int rc = pz_merchant_refund(db, &T.m, &T.refund, now_ms, &T.refund_out, &T.order, &T.keep, &job->err);
  if (rc < 0) return rc;
  uint8_t fp[PZ_WALLET_FP_LEN] = {2};
  return pz_wallet_idem_save(db, T.m.id, pz_str(T.refund.idem_key), fp, T.refund_out.id, 201, PZ_STR("{}"), now_ms,
                             &job->err);
}

static int run_verify(pz_db_t *db, pz_store_job_t *job) {
  T.violations = 0;
  FILE *devnull = fopen("/dev/null", "w");
  int rc = pz_wallet_merchant_verify(db, devnull, &T.violations, &job->err);
  fclose(devnull);
  return rc;
}

static int run_hook_result(pz_db_t *db, pz_store_job_t *job) {
  int rc = pz_merchant_webhook_result(db, T.hook_id, T.attempts, now_ms, T.http_status, now_ms, &job->err);
  if (rc == 0) rc = pz_store_merchant_webhook_get(db, T.hook_id, &T.w, &job->err);
  return rc;
}

static int run_any_due(pz_db_t *db, pz_store_job_t *job) {
  return pz_store_merchant_webhook_any_due(db, now_ms, &T.found, &job->err);
}

static void pay_setup(int64_t payer, const pz_paycode_t *code, int64_t amount) {
  memset(&T.pay, 0, sizeof(T.pay));
  T.pay.payer_id = payer;
  T.pay.code = *code;
  T.pay.amount = amount;
  snprintf(T.pay.currency, sizeof(T.pay.currency), "USD");
  T.pay.payment_id = pz_id_next();
  T.pay.order_id = pz_id_next();
  snprintf(T.pay.idem_key, sizeof(T.pay.idem_key), "pay-%lld", (long long)T.pay.payment_id);
}

static void test_pay_refund_verify(void) {
  int64_t owner = make_user("owner", 0), payer = make_user("payer", 1000);
  pz_err_t err = {0};
  memset(&T.m, 0, sizeof(T.m));
  T.m.id = pz_id_next();
  T.m.owner_id = owner;
  snprintf(T.m.name, sizeof(T.m.name), "Shop");
  snprintf(T.m.webhook_url, sizeof(T.m.webhook_url), "http://127.0.0.1:9/");
  char key[PZ_MERCHANT_KEY_LEN + 1];
  pz_merchant_key_new(key, T.m.api_key_hash);
  pz_merchant_secret_new(T.m.webhook_secret);
  CHECK_EQ_INT(step(run_create, NULL), 0);
  int64_t mid = T.m.id;
  T.m.id = pz_id_next();
  CHECK_EQ_INT(step(run_create, &err), PZ_ECONFLICT);
  CHECK_EQ_STR(pz_err_code_str(&err), "merchant_exists");
  T.m.id = mid;

  pz_paycode_t code = {.kind = PZ_PAYCODE_MERCHANT, .merchant_id = mid};
  pay_setup(owner, &code, 100);
  CHECK_EQ_INT(step(run_pay, &err), PZ_EINVAL); /* one's own merchant */
  pay_setup(payer, &code, 5000);
  CHECK_EQ_INT(step(run_pay, &err), PZ_EUNPROCESSABLE);
  CHECK(T.keep);
  pay_setup(payer, &code, 600);
  CHECK_EQ_INT(step(run_pay, &err), 0);
  CHECK(T.queued);
  CHECK_EQ_INT(T.order.status, PZ_ORDER_PAID);
  CHECK_EQ_INT(balance_of(payer), 400);
  CHECK_EQ_INT(balance_of(owner), 600);

  memset(&T.refund, 0, sizeof(T.refund));
  T.refund.id = pz_id_next();
  T.refund.order_id = T.order.id;
  T.refund.amount = 601;
  snprintf(T.refund.idem_key, sizeof(T.refund.idem_key), "r1");
  CHECK_EQ_INT(step(run_refund, &err), PZ_EUNPROCESSABLE);
  CHECK_EQ_STR(pz_err_code_str(&err), "refund_exceeds_payment");
  T.refund.amount = 600;
  CHECK_EQ_INT(step(run_refund, &err), 0);
  CHECK_EQ_INT(T.order.status, PZ_ORDER_REFUNDED);
  CHECK_EQ_INT(balance_of(payer), 1000);
  CHECK_EQ_INT(balance_of(owner), 0);
  T.refund.id = pz_id_next();
  T.refund.amount = 1;
  snprintf(T.refund.idem_key, sizeof(T.refund.idem_key), "r2");
  CHECK_EQ_INT(step(run_refund, &err), PZ_EUNPROCESSABLE);

  CHECK_EQ_INT(step(run_verify, NULL), 0);
  CHECK_EQ_INT(T.violations, 0);

  /* The outbox: due now; a 500 backs off by a second; a 2xx delivers. */
  CHECK_EQ_INT(step(run_any_due, NULL), 0);
  CHECK(T.found);
  T.attempts = 1;
  T.http_status = 500;
  CHECK_EQ_INT(step(run_hook_result, NULL), 0);
  CHECK_EQ_INT(T.w.status, PZ_WEBHOOK_PENDING);
  CHECK_EQ_INT(T.w.next_at, now_ms + 1000);
  CHECK_EQ_INT(T.w.last_status, 500);
  CHECK_EQ_INT(step(run_any_due, NULL), 0);
  CHECK(!T.found);
  T.attempts = 2;
  T.http_status = 204;
  CHECK_EQ_INT(step(run_hook_result, NULL), 0);
  CHECK_EQ_INT(T.w.status, PZ_WEBHOOK_DELIVERED);
}

int main(void) {
  if (sodium_init() < 0) return 1;
  RUN(test_paycode);
  RUN(test_url);
  RUN(test_public_addresses);
  RUN(test_sign_backoff_keys);
  dir = pz_fix_open(&st, "wallet-merchant");
  if (dir == NULL) return 1;
  pz_fix_wallet_config(&cfg);
  RUN(test_pay_refund_verify);
  pz_fix_close(st, dir);
  TEST_EXIT();
}
