/* Unit tests of session tokens and their hashes, Argon2id passwords, and the bounded Argon2 queue. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>
#include "plaza/auth.h"

static int failures;

#define CHECK(cond)                                                           \
  do {                                                                        \
    if (!(cond)) {                                                            \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      failures++;                                                             \
    }                                                                         \
  } while (0)

static void test_tokens(void) {
  char t1[PZ_TOKEN_LEN + 1], t2[PZ_TOKEN_LEN + 1];
  uint8_t h1[PZ_TOKEN_HASH_LEN], h2[PZ_TOKEN_HASH_LEN], h[PZ_TOKEN_HASH_LEN];
  pz_auth_token_new(t1, h1);
  pz_auth_token_new(t2, h2);
  CHECK(strlen(t1) == PZ_TOKEN_LEN);
  for (size_t i = 0; i < PZ_TOKEN_LEN; i++)
    CHECK(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", t1[i]) != NULL);
  CHECK(strcmp(t1, t2) != 0);
  CHECK(memcmp(h1, h2, sizeof(h1)) != 0);
  /* The token decodes to 32 bytes: 256 bits of randomness. */
  unsigned char raw[64];
  size_t raw_len = 0;
  CHECK(sodium_base642bin(raw, sizeof(raw), t1, strlen(t1), NULL, &raw_len, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) == 0);
  CHECK(raw_len == 32);
  /* What the client presents hashes to what was stored; nothing else does. */
  CHECK(pz_auth_token_hash(pz_str(t1), h) == 0 && memcmp(h, h1, sizeof(h)) == 0);
  char other[PZ_TOKEN_LEN + 1];
  memcpy(other, t1, sizeof(other));
  other[0] = other[0] == 'A' ? 'B' : 'A';
  CHECK(pz_auth_token_hash(pz_str(other), h) == 0 && memcmp(h, h1, sizeof(h)) != 0);
  /* Shapes we never issue are refused before any lookup. */
  CHECK(pz_auth_token_hash(pz_str_n(t1, PZ_TOKEN_LEN - 1), h) == PZ_EUNAUTH);
  CHECK(pz_auth_token_hash(PZ_STR_NULL, h) == PZ_EUNAUTH);
  char longer[PZ_TOKEN_LEN + 2];
  memcpy(longer, t1, PZ_TOKEN_LEN);
  longer[PZ_TOKEN_LEN] = 'A';
  longer[PZ_TOKEN_LEN + 1] = '\0';
  CHECK(pz_auth_token_hash(pz_str(longer), h) == PZ_EUNAUTH);
  other[5] = '+';
  CHECK(pz_auth_token_hash(pz_str(other), h) == PZ_EUNAUTH);
}

static void test_passwords(void) {
  char hash[PZ_PASSWORD_HASH_MAX + 1];
  CHECK(pz_auth_password_hash(PZ_STR("correct horse"), hash) == 0);
  CHECK(strncmp(hash, "$argon2id$", 10) == 0);
  CHECK(strstr(hash, "correct") == NULL);
  CHECK(pz_auth_password_verify(hash, PZ_STR("correct horse")) == 0);
  CHECK(pz_auth_password_verify(hash, PZ_STR("correct horsE")) == PZ_EUNAUTH);
  CHECK(pz_auth_password_verify(hash, PZ_STR("")) == PZ_EUNAUTH);
  CHECK(pz_auth_password_verify("not a hash", PZ_STR("correct horse")) == PZ_EUNAUTH);
  /* Salted: the same password hashes differently each time. */
  char again[PZ_PASSWORD_HASH_MAX + 1];
  CHECK(pz_auth_password_hash(PZ_STR("correct horse"), again) == 0);
  CHECK(strcmp(hash, again) != 0);
}

static int n_done;

static void job_done(pz_auth_pw_job_t *job) { n_done++; }

static void test_queue(void) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  /* One runs, one waits, the third is refused. */
  pz_auth_pwq_t *q = pz_auth_pwq_new(&loop, 1, 1);
  char stored[PZ_PASSWORD_HASH_MAX + 1];
  CHECK(pz_auth_password_hash(PZ_STR("hunter22"), stored) == 0);
  pz_auth_pw_job_t hash_job = {.op = PZ_AUTH_PW_HASH, .password = PZ_STR("sesame1234"), .done = job_done};
  pz_auth_pw_job_t good = {.op = PZ_AUTH_PW_VERIFY, .password = PZ_STR("hunter22"), .hash = stored, .done = job_done};
  pz_auth_pw_job_t bad = {.op = PZ_AUTH_PW_VERIFY, .password = PZ_STR("hunter23"), .hash = stored, .done = job_done};
  pz_auth_pw_job_t unknown = {.op = PZ_AUTH_PW_VERIFY, .password = PZ_STR("hunter22"), .hash = NULL, .done = job_done};
  CHECK(pz_auth_pwq_submit(q, &hash_job) == 0);
  CHECK(pz_auth_pwq_submit(q, &good) == 0);
  CHECK(pz_auth_pwq_submit(q, &bad) == PZ_EUNAVAIL);
  CHECK(pz_auth_pwq_pending(q) == 2);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(n_done == 2);
  CHECK(pz_auth_pwq_pending(q) == 0);
  CHECK(hash_job.rc == 0 && pz_auth_password_verify(hash_job.hash_out, PZ_STR("sesame1234")) == 0);
  CHECK(good.rc == 0);
  /* Room again once the queue drained; an unknown user is a "no", never a "yes". */
  CHECK(pz_auth_pwq_submit(q, &bad) == 0);
  CHECK(pz_auth_pwq_submit(q, &unknown) == 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(n_done == 4);
  CHECK(bad.rc == PZ_EUNAUTH);
  CHECK(unknown.rc == PZ_EUNAUTH);
  pz_auth_pwq_free(q);
  uv_loop_close(&loop);
}

int main(void) {
  if (sodium_init() < 0) return 1;
  test_tokens();
  test_passwords();
  test_queue();
  if (failures) {
    fprintf(stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  printf("test_auth_token: ok\n");
  return 0;
}
