/* Unit tests of the account input rules: usernames, passwords, profile text, search prefixes, device labels, address keys, bearer headers. */
#include <stdio.h>
#include <string.h>
#include "plaza/auth.h"

static int failures;

#define CHECK(cond)                                                           \
  do {                                                                        \
    if (!(cond)) {                                                            \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      failures++;                                                             \
    }                                                                         \
  } while (0)

/* Builds a string of n copies of the UTF-8 text unit. */
static pz_str_t repeat(char *buf, size_t cap, const char *unit, size_t n) {
  size_t u = strlen(unit), len = 0;
  for (size_t i = 0; i < n && len + u < cap; i++, len += u) memcpy(buf + len, unit, u);
  buf[len] = '\0';
  return pz_str_n(buf, len);
}

static void test_username(void) {
  char out[PZ_USERNAME_MAX + 1];
  pz_err_t err = {0};
  CHECK(pz_auth_username_norm(PZ_STR("Alice_01"), out, &err) == 0);
  CHECK(strcmp(out, "alice_01") == 0);
  CHECK(pz_auth_username_norm(PZ_STR("abc"), out, &err) == 0);
  CHECK(pz_auth_username_norm(PZ_STR("ab"), out, &err) == PZ_EINVAL);
  CHECK(err.code == PZ_EINVAL && strstr(err.msg, "username") != NULL);
  char buf[64];
  CHECK(pz_auth_username_norm(repeat(buf, sizeof(buf), "a", 32), out, &err) == 0);
  CHECK(strlen(out) == 32);
  CHECK(pz_auth_username_norm(repeat(buf, sizeof(buf), "a", 33), out, &err) == PZ_EINVAL);
  CHECK(pz_auth_username_norm(PZ_STR("bob smith"), out, &err) == PZ_EINVAL);
  CHECK(pz_auth_username_norm(PZ_STR("bob-smith"), out, &err) == PZ_EINVAL);
  CHECK(pz_auth_username_norm(PZ_STR("b\xc3\xb6""b"), out, &err) == PZ_EINVAL); /* "böb" */
  CHECK(pz_auth_username_norm(PZ_STR("bob\0x"), out, &err) == PZ_EINVAL);
  CHECK(pz_auth_username_norm(PZ_STR(""), out, NULL) == PZ_EINVAL);
}

static void test_password(void) {
  pz_err_t err = {0};
  char buf[1024];
  CHECK(pz_auth_password_check(PZ_STR("12345678"), &err) == 0);
  CHECK(pz_auth_password_check(PZ_STR("1234567"), &err) == PZ_EINVAL);
  /* Code points, not bytes: seven two-byte letters are 14 bytes but too short. */
  CHECK(pz_auth_password_check(repeat(buf, sizeof(buf), "\xc3\xa9", 7), &err) == PZ_EINVAL);
  CHECK(pz_auth_password_check(repeat(buf, sizeof(buf), "\xc3\xa9", 8), &err) == 0);
  CHECK(pz_auth_password_check(repeat(buf, sizeof(buf), "x", 256), &err) == 0);
  CHECK(pz_auth_password_check(repeat(buf, sizeof(buf), "x", 257), &err) == PZ_EINVAL);
  CHECK(strstr(err.msg, "256") != NULL);
  CHECK(pz_auth_password_check(PZ_STR("abcdefgh\xff"), &err) == PZ_EUTF8);
  CHECK(pz_auth_password_check(PZ_STR("abcdefg\xed\xa0\x80"), &err) == PZ_EUTF8); /* a surrogate */
}

static void test_profile_text(void) {
  pz_err_t err = {0};
  char buf[4096];
  CHECK(pz_auth_display_name_check(PZ_STR("Alice"), &err) == 0);
  CHECK(pz_auth_display_name_check(PZ_STR(""), &err) == PZ_EINVAL);
  CHECK(strstr(err.msg, "display_name") != NULL);
  CHECK(pz_auth_display_name_check(PZ_STR("   "), &err) == PZ_EINVAL);
  CHECK(pz_auth_display_name_check(PZ_STR("\xe3\x80\x80"), &err) == PZ_EINVAL); /* ideographic space only */
  CHECK(pz_auth_display_name_check(repeat(buf, sizeof(buf), "\xe7\x8e\x8b", 64), &err) == 0); /* 64 x 王 */
  CHECK(pz_auth_display_name_check(repeat(buf, sizeof(buf), "\xe7\x8e\x8b", 65), &err) == PZ_EINVAL);
  CHECK(pz_auth_display_name_check(repeat(buf, sizeof(buf), "\xf0\x9f\x98\x80", 64), &err) == 0); /* 4-byte emoji */
  CHECK(pz_auth_display_name_check(PZ_STR("Al\nice"), &err) == PZ_EINVAL);
  CHECK(strstr(err.msg, "control") != NULL);
  CHECK(pz_auth_display_name_check(PZ_STR("Al\tice"), &err) == PZ_EINVAL);
  CHECK(pz_auth_display_name_check(PZ_STR("Al\x7f"), &err) == PZ_EINVAL);
  CHECK(pz_auth_display_name_check(PZ_STR("Al\xc2\x85"), &err) == PZ_EINVAL); /* U+0085, a C1 control */
  CHECK(pz_auth_display_name_check(PZ_STR("Al\xc3"), &err) == PZ_EUTF8);
  CHECK(pz_auth_display_name_check(PZ_STR("\xc0\xaf"), &err) == PZ_EUTF8); /* overlong '/' */

  CHECK(pz_auth_bio_check(PZ_STR(""), &err) == 0);
  CHECK(pz_auth_bio_check(repeat(buf, sizeof(buf), "b", 280), &err) == 0);
  CHECK(pz_auth_bio_check(repeat(buf, sizeof(buf), "b", 281), &err) == PZ_EINVAL);
  CHECK(strstr(err.msg, "bio") != NULL && strstr(err.msg, "280") != NULL);
  CHECK(pz_auth_bio_check(PZ_STR("line\nbreak"), &err) == PZ_EINVAL);

  CHECK(pz_auth_greeting_check(PZ_STR(""), &err) == 0);
  CHECK(pz_auth_greeting_check(repeat(buf, sizeof(buf), "\xc3\xa9", 140), &err) == 0);
  CHECK(pz_auth_greeting_check(repeat(buf, sizeof(buf), "\xc3\xa9", 141), &err) == PZ_EINVAL);
  CHECK(strstr(err.msg, "greeting") != NULL);
}

static void test_search_prefix(void) {
  char out[PZ_USERNAME_MAX + 1];
  size_t n = 99;
  CHECK(pz_auth_search_prefix(PZ_STR("Al_"), out, &n) && n == 3 && strcmp(out, "al_") == 0);
  CHECK(pz_auth_search_prefix(PZ_STR(""), out, &n) && n == 0);
  CHECK(!pz_auth_search_prefix(PZ_STR("a%"), out, &n));
  CHECK(!pz_auth_search_prefix(PZ_STR("a b"), out, &n));
  char buf[64];
  CHECK(pz_auth_search_prefix(repeat(buf, sizeof(buf), "z", 32), out, &n) && n == 32);
  CHECK(!pz_auth_search_prefix(repeat(buf, sizeof(buf), "z", 33), out, &n));
}

static void test_device_label(void) {
  char out[PZ_DEVICE_MAX_BYTES + 1];
  pz_auth_device_label(PZ_STR("Mozilla/5.0 (X11)"), out);
  CHECK(strcmp(out, "Mozilla/5.0 (X11)") == 0);
  pz_auth_device_label(PZ_STR_NULL, out);
  CHECK(strcmp(out, "unknown") == 0);
  pz_auth_device_label(PZ_STR("a\x01\xc3\xa9z"), out);
  CHECK(strcmp(out, "a???z") == 0);
  char buf[512];
  pz_auth_device_label(repeat(buf, sizeof(buf), "u", 300), out);
  CHECK(strlen(out) == PZ_DEVICE_MAX_BYTES);
}

static void test_addr_key(void) {
  char a[PZ_IP_MAX_BYTES + 1], b[PZ_IP_MAX_BYTES + 1];
  pz_auth_addr_key("203.0.113.7", a);
  CHECK(strcmp(a, "203.0.113.7") == 0);
  pz_auth_addr_key("::ffff:203.0.113.7", a);
  CHECK(strcmp(a, "203.0.113.7") == 0);
  /* Two addresses of one /64 share a key; another /64 does not. */
  pz_auth_addr_key("2001:db8:1:2:aaaa:bbbb:cccc:dddd", a);
  pz_auth_addr_key("2001:db8:1:2::1", b);
  CHECK(strcmp(a, b) == 0);
  CHECK(strcmp(a, "2001:db8:1:2::/64") == 0);
  pz_auth_addr_key("2001:db8:1:3::1", b);
  CHECK(strcmp(a, b) != 0);
  pz_auth_addr_key("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", a);
  CHECK(strcmp(a, "ffff:ffff:ffff:ffff::/64") == 0);
}

static void test_bearer(void) {
  pz_str_t t;
  CHECK(pz_auth_bearer(PZ_STR("Bearer abc"), &t) == 0 && pz_str_eq_c(t, "abc"));
  CHECK(pz_auth_bearer(PZ_STR("bearer   abc  "), &t) == 0 && pz_str_eq_c(t, "abc"));
  CHECK(pz_auth_bearer(PZ_STR("Basic abc"), &t) == PZ_EUNAUTH);
  CHECK(pz_auth_bearer(PZ_STR("Bearer "), &t) == PZ_EUNAUTH);
  CHECK(pz_auth_bearer(PZ_STR("Bearer    "), &t) == PZ_EUNAUTH);
  CHECK(pz_auth_bearer(PZ_STR_NULL, &t) == PZ_EUNAUTH);
  CHECK(pz_auth_bearer(PZ_STR("Bearerabc"), &t) == PZ_EUNAUTH);
}

int main(void) {
  test_username();
  test_password();
  test_profile_text();
  test_search_prefix();
  test_device_label();
  test_addr_key();
  test_bearer();
  if (failures) {
    fprintf(stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  printf("test_auth_rules: ok\n");
  return 0;
}
