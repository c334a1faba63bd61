/* Unit tests of the in-memory tables of auth/: log-in rate limits and the session cache, both bounded in size. */
#include <sodium.h>
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

#define T0 1700000000000LL /* an arbitrary "now" in ms */

static void test_limiter_window(void) {
  pz_auth_limiter_t *l = pz_auth_limiter_new(100, 5, 900);
  unsigned retry = 0;
  pz_str_t alice = PZ_STR("alice"), bob = PZ_STR("bob");
  for (int i = 0; i < 5; i++) {
    CHECK(pz_auth_limiter_check(l, alice, T0 + i * 1000, &retry) == 0);
    pz_auth_limiter_fail(l, alice, T0 + i * 1000);
  }
  /* The sixth try within the window is refused, with the time to wait. */
  CHECK(pz_auth_limiter_check(l, alice, T0 + 10000, &retry) == PZ_ERATE);
  CHECK(retry == 890);
  CHECK(pz_auth_limiter_check(l, alice, T0 + 899500, &retry) == PZ_ERATE);
  CHECK(retry == 1);
  /* Other keys are not affected. */
  CHECK(pz_auth_limiter_check(l, bob, T0 + 10000, &retry) == 0 && retry == 0);
  /* The window ends 15 minutes after the first failure. */
  CHECK(pz_auth_limiter_check(l, alice, T0 + 900000, &retry) == 0);
  pz_auth_limiter_fail(l, alice, T0 + 900000);
  CHECK(pz_auth_limiter_check(l, alice, T0 + 900001, &retry) == 0);
  pz_auth_limiter_free(l);
}

static void test_limiter_forgive(void) {
  pz_auth_limiter_t *l = pz_auth_limiter_new(100, 3, 60);
  unsigned retry;
  pz_str_t k = PZ_STR("10.0.0.1");
  for (int i = 0; i < 3; i++) pz_auth_limiter_fail(l, k, T0);
  CHECK(pz_auth_limiter_check(l, k, T0, &retry) == PZ_ERATE);
  pz_auth_limiter_forgive(l, k, false); /* one attempt taken back */
  CHECK(pz_auth_limiter_check(l, k, T0, &retry) == 0);
  pz_auth_limiter_fail(l, k, T0);
  CHECK(pz_auth_limiter_check(l, k, T0, &retry) == PZ_ERATE);
  pz_auth_limiter_forgive(l, k, true); /* a success clears the slate */
  CHECK(pz_auth_limiter_check(l, k, T0, &retry) == 0);
  CHECK(pz_auth_limiter_count(l) == 0);
  pz_auth_limiter_forgive(l, PZ_STR("never seen"), true);
  /* Keys longer than 64 bytes are cut, not refused. */
  char longkey[200];
  memset(longkey, 'k', sizeof(longkey));
  for (int i = 0; i < 3; i++) pz_auth_limiter_fail(l, pz_str_n(longkey, sizeof(longkey)), T0);
  CHECK(pz_auth_limiter_check(l, pz_str_n(longkey, 100), T0, &retry) == PZ_ERATE);
  pz_auth_limiter_free(l);
}

static void test_limiter_bounded(void) {
  /* However many keys come, the table holds at most its capacity, and the
   * keys it forgets are the least recently touched. */
  pz_auth_limiter_t *l = pz_auth_limiter_new(64, 1, 60);
  unsigned retry;
  pz_auth_limiter_fail(l, PZ_STR("victim"), T0);
  char key[32];
  for (int i = 0; i < 10000; i++) {
    snprintf(key, sizeof(key), "k%d", i);
    pz_auth_limiter_fail(l, pz_str(key), T0);
    if (i % 16 == 0) CHECK(pz_auth_limiter_check(l, PZ_STR("victim"), T0, &retry) == PZ_ERATE);
  }
  CHECK(pz_auth_limiter_count(l) == 64);
  CHECK(pz_auth_limiter_check(l, PZ_STR("k9999"), T0, &retry) == PZ_ERATE);
  CHECK(pz_auth_limiter_check(l, PZ_STR("k0"), T0, &retry) == 0); /* forgotten */
  pz_auth_limiter_free(l);
}

static void hash_of(int i, uint8_t h[PZ_TOKEN_HASH_LEN]) {
  char tok[PZ_TOKEN_LEN + 1];
  memset(tok, 'A', PZ_TOKEN_LEN);
  tok[PZ_TOKEN_LEN] = '\0';
  snprintf(tok, sizeof(tok), "%010d", i);
  tok[10] = 'A';
  CHECK(pz_auth_token_hash(pz_str_n(tok, PZ_TOKEN_LEN), h) == 0);
}

static void test_cache(void) {
  pz_auth_cache_t *c = pz_auth_cache_new(4);
  uint8_t h[8][PZ_TOKEN_HASH_LEN];
  for (int i = 0; i < 8; i++) hash_of(i, h[i]);
  pz_auth_session_t s = {.session_id = 11, .user_id = 22, .expires_at = T0 + 1000, .last_seen_at = T0};
  CHECK(pz_auth_cache_get(c, h[0], T0) == NULL);
  pz_auth_cache_put(c, h[0], &s, pz_auth_cache_epoch(c));
  pz_auth_session_t *got = pz_auth_cache_get(c, h[0], T0);
  CHECK(got && got->session_id == 11 && got->user_id == 22);
  /* Expired sessions do not resolve, and leave the cache. */
  CHECK(pz_auth_cache_get(c, h[0], T0 + 1000) == NULL);
  CHECK(pz_auth_cache_count(c) == 0);

  /* Revocation: the entry is gone at once. */
  s.expires_at = T0 + 100000;
  pz_auth_cache_put(c, h[1], &s, pz_auth_cache_epoch(c));
  CHECK(pz_auth_cache_get(c, h[1], T0) != NULL);
  pz_auth_cache_forget(c, h[1]);
  CHECK(pz_auth_cache_get(c, h[1], T0) == NULL);

  /* A lookup that began before a revocation cannot put back what it read. */
  uint64_t epoch = pz_auth_cache_epoch(c);
  pz_auth_cache_forget(c, h[2]);
  pz_auth_cache_put(c, h[2], &s, epoch);
  CHECK(pz_auth_cache_get(c, h[2], T0) == NULL);

  /* Bounded, least recently used first out. */
  for (int i = 3; i < 7; i++) pz_auth_cache_put(c, h[i], &s, pz_auth_cache_epoch(c));
  CHECK(pz_auth_cache_count(c) == 4);
  CHECK(pz_auth_cache_get(c, h[3], T0) != NULL); /* 3 is now the most recent */
  pz_auth_cache_put(c, h[7], &s, pz_auth_cache_epoch(c));
  CHECK(pz_auth_cache_count(c) == 4);
  CHECK(pz_auth_cache_get(c, h[4], T0) == NULL); /* the least recent went */
  CHECK(pz_auth_cache_get(c, h[3], T0) != NULL);
  CHECK(pz_auth_cache_get(c, h[7], T0) != NULL);
  pz_auth_cache_free(c);
}

int main(void) {
  if (sodium_init() < 0) return 1;
  test_limiter_window();
  test_limiter_forgive();
  test_limiter_bounded();
  test_cache();
  if (failures) {
    fprintf(stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  printf("test_auth_limits: ok\n");
  return 0;
}
