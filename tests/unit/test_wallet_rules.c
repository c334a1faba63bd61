/* Unit tests of the wallet's input rules, currency list, PIN hash, fingerprints and PIN secret file. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include "plaza/wallet.h"
#include "test.h"

static void test_amount(void) {
  pz_err_t err = {0};
  CHECK_EQ_INT(pz_wallet_amount_check(1, &err), 0);
  CHECK_EQ_INT(pz_wallet_amount_check(PZ_WALLET_AMOUNT_MAX, &err), 0);
  CHECK_EQ_INT(pz_wallet_amount_check(0, &err), PZ_EINVAL);
  CHECK_EQ_INT(pz_wallet_amount_check(-5, &err), PZ_EINVAL);
  CHECK_EQ_INT(pz_wallet_amount_check(PZ_WALLET_AMOUNT_MAX + 1, &err), PZ_EINVAL);
  CHECK_EQ_INT(pz_wallet_amount_check(INT64_MIN, &err), PZ_EINVAL);
  CHECK(strstr(pz_err_message(&err), "amount") != NULL);
}

static void test_currencies(void) {
  pz_wallet_currencies_t c;
  pz_err_t err = {0};
  char code[4];
  CHECK_EQ_INT(pz_wallet_currencies_parse("USD,EUR", &c, &err), 0);
  CHECK_EQ_INT(c.n, 2);
  CHECK_EQ_STR(c.codes[0], "USD");
  CHECK_EQ_STR(c.codes[1], "EUR");
  CHECK_EQ_INT(pz_wallet_currencies_parse(" JPY , GBP ", &c, &err), 0);
  CHECK_EQ_INT(c.n, 2);
  CHECK_EQ_STR(c.codes[1], "GBP");
  CHECK_EQ_INT(pz_wallet_currencies_parse("usd", &c, &err), PZ_EINVAL);
  CHECK_EQ_INT(pz_wallet_currencies_parse("USD,,EUR", &c, &err), PZ_EINVAL);
  CHECK_EQ_INT(pz_wallet_currencies_parse("USD,USD", &c, &err), PZ_EINVAL);
  CHECK_EQ_INT(pz_wallet_currencies_parse("USDX", &c, &err), PZ_EINVAL);
  CHECK_EQ_INT(pz_wallet_currencies_parse("", &c, &err), PZ_EINVAL);

  CHECK_EQ_INT(pz_wallet_currencies_parse("USD,EUR", &c, &err), 0);
  CHECK_EQ_INT(pz_wallet_currency_check(&c, PZ_STR("EUR"), code, &err), 0);
  CHECK_EQ_STR(code, "EUR");
  err = (pz_err_t){0};
  CHECK_EQ_INT(pz_wallet_currency_check(&c, PZ_STR("GBP"), code, &err), PZ_EINVAL);
  CHECK_EQ_STR(pz_err_code_str(&err), "unknown_currency");
  CHECK_EQ_INT(pz_wallet_currency_check(&c, PZ_STR("usd"), code, &err), PZ_EINVAL);
  CHECK_EQ_INT(pz_wallet_currency_check(&c, PZ_STR("USDX"), code, &err), PZ_EINVAL);
  CHECK_EQ_INT(pz_wallet_currency_check(&c, PZ_STR(""), code, &err), PZ_EINVAL);
}

static void test_pin_key_note(void) {
  pz_err_t err = {0};
  CHECK_EQ_INT(pz_wallet_pin_check(PZ_STR("012345"), &err), 0);
  CHECK_EQ_INT(pz_wallet_pin_check(PZ_STR("12345"), &err), PZ_EINVAL);
  CHECK_EQ_INT(pz_wallet_pin_check(PZ_STR("1234567"), &err), PZ_EINVAL);
  CHECK_EQ_INT(pz_wallet_pin_check(PZ_STR("12345a"), &err), PZ_EINVAL);
  CHECK_EQ_INT(pz_wallet_pin_check(PZ_STR("12 456"), &err), PZ_EINVAL);
  CHECK_EQ_INT(pz_wallet_pin_check(pz_str_n("12\0"
                                            "456",
                                            6),
                                   &err),
               PZ_EINVAL);

  char key[80];
  memset(key, 'k', sizeof(key));
  CHECK_EQ_INT(pz_wallet_key_check(pz_str_n(key, 1), &err), 0);
  CHECK_EQ_INT(pz_wallet_key_check(pz_str_n(key, 64), &err), 0);
  CHECK_EQ_INT(pz_wallet_key_check(pz_str_n(key, 65), &err), PZ_EINVAL);
  CHECK_EQ_INT(pz_wallet_key_check(PZ_STR(""), &err), PZ_EINVAL);
  CHECK_EQ_INT(pz_wallet_key_check(PZ_STR("a b~"), &err), 0);
  CHECK_EQ_INT(pz_wallet_key_check(PZ_STR("tab\there"), &err), PZ_EINVAL);
  CHECK_EQ_INT(pz_wallet_key_check(PZ_STR("caf\xc3\xa9"), &err), PZ_EINVAL);

  CHECK_EQ_INT(pz_wallet_note_check(PZ_STR(""), &err), 0);
  CHECK_EQ_INT(pz_wallet_note_check(PZ_STR("lunch \xf0\x9f\x8d\x9c"), &err), 0);
  CHECK_EQ_INT(pz_wallet_note_check(PZ_STR("line\nbreak"), &err), PZ_EINVAL);
  CHECK_EQ_INT(pz_wallet_note_check(PZ_STR("c1 \xc2\x85"), &err), PZ_EINVAL);
  CHECK_EQ_INT(pz_wallet_note_check(PZ_STR("bad \xff"), &err), PZ_EUTF8);
  char note[PZ_WALLET_NOTE_MAX_CHARS + 2];
  memset(note, 'n', sizeof(note));
  CHECK_EQ_INT(pz_wallet_note_check(pz_str_n(note, PZ_WALLET_NOTE_MAX_CHARS), &err), 0);
  CHECK_EQ_INT(pz_wallet_note_check(pz_str_n(note, PZ_WALLET_NOTE_MAX_CHARS + 1), &err), PZ_EINVAL);
}

static void test_pin_hash(void) {
  uint8_t s1[PZ_WALLET_SECRET_LEN], s2[PZ_WALLET_SECRET_LEN];
  uint8_t h1[32], h2[32], h3[32], h4[32];
  memset(s1, 1, sizeof(s1));
  memset(s2, 2, sizeof(s2));
  pz_wallet_pin_hash(s1, 42, PZ_STR("123456"), h1);
  pz_wallet_pin_hash(s1, 42, PZ_STR("123456"), h2);
  CHECK(memcmp(h1, h2, 32) == 0);
  pz_wallet_pin_hash(s2, 42, PZ_STR("123456"), h3); /* another secret: another hash */
  CHECK(memcmp(h1, h3, 32) != 0);
  pz_wallet_pin_hash(s1, 43, PZ_STR("123456"), h4); /* another user, same PIN: another hash */
  CHECK(memcmp(h1, h4, 32) != 0);
  pz_wallet_pin_hash(s1, 42, PZ_STR("123457"), h4);
  CHECK(memcmp(h1, h4, 32) != 0);
}

static void fp_of(const char *op, const char *a, const char *b, uint8_t out[32]) {
  pz_wallet_fp_t fp;
  pz_wallet_fp_init(&fp, op);
  pz_wallet_fp_str(&fp, pz_str(a));
  pz_wallet_fp_str(&fp, pz_str(b));
  pz_wallet_fp_final(&fp, out);
}

static void test_fingerprint(void) {
  uint8_t x[32], y[32];
  fp_of("transfer", "ab", "c", x);
  fp_of("transfer", "ab", "c", y);
  CHECK(memcmp(x, y, 32) == 0);
  /* Length prefixes: moving a byte between fields is another request. */
  fp_of("transfer", "a", "bc", y);
  CHECK(memcmp(x, y, 32) != 0);
  fp_of("topup", "ab", "c", y);
  CHECK(memcmp(x, y, 32) != 0);
  pz_wallet_fp_t fp;
  pz_wallet_fp_init(&fp, "n");
  pz_wallet_fp_int(&fp, 100);
  pz_wallet_fp_final(&fp, x);
  pz_wallet_fp_init(&fp, "n");
  pz_wallet_fp_int(&fp, 101);
  pz_wallet_fp_final(&fp, y);
  CHECK(memcmp(x, y, 32) != 0);
}

static void test_secret_file(void) {
  char *dir = pz_test_tmpdir("wallet-secret");
  CHECK(dir != NULL);
  if (!dir) return;
  char path[600];
  snprintf(path, sizeof(path), "%s/pin.key", dir);
  uint8_t a[32], b[32];
  pz_err_t err = {0};
  /* Missing and not to be created: an error naming the file. */
  CHECK_EQ_INT(pz_wallet_secret_load(path, false, a, &err), PZ_EIO);
  CHECK(strstr(pz_err_message(&err), "pin.key") != NULL);
  /* Created with mode 0600, then read back the same. */
  CHECK_EQ_INT(pz_wallet_secret_load(path, true, a, &err), 0);
  struct stat sb;
  CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600 && sb.st_size == 32);
  CHECK_EQ_INT(pz_wallet_secret_load(path, true, b, &err), 0);
  CHECK(memcmp(a, b, 32) == 0);
  uint8_t zero[32] = {0};
  CHECK(memcmp(a, zero, 32) != 0);
  /* A file of another size is refused rather than half used. */
  FILE *f = fopen(path, "ab");
  CHECK(f != NULL);
  if (f) {
    fputc('x', f);
    fclose(f);
  }
  CHECK_EQ_INT(pz_wallet_secret_load(path, true, b, &err), PZ_EIO);
  remove(path);
  rmdir(dir);
  free(dir);
}

int main(void) {
  if (sodium_init() < 0) return 1;
  RUN(test_amount);
  RUN(test_currencies);
  RUN(test_pin_key_note);
  RUN(test_pin_hash);
  RUN(test_fingerprint);
  RUN(test_secret_file);
  TEST_EXIT();
}
