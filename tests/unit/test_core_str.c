/* pz_i64_format, pz_id_format and pz_buf_append_i64: the digits printf's "%lld" gives, over edges and many values. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include "plaza/id.h"
#include "plaza/str.h"
#include "test.h"

static void check_one(int64_t v) {
  char want[32], got[32];
  snprintf(want, sizeof(want), "%" PRId64, v);
  memset(got, 'x', sizeof(got));
  CHECK_EQ_INT(pz_i64_format(v, got), strlen(want));
  CHECK_EQ_STR(got, want);
  CHECK_EQ_INT(pz_id_format(v, got), strlen(want));
  CHECK_EQ_STR(got, want);
  pz_buf_t b = {0};
  pz_buf_append_c(&b, "[");
  pz_buf_append_i64(&b, v);
  pz_buf_append_c(&b, "]");
  char framed[40];
  snprintf(framed, sizeof(framed), "[%s]", want);
  CHECK_EQ_INT(b.len, strlen(framed));
  CHECK(b.len == strlen(framed) && memcmp(b.data, framed, b.len) == 0);
  pz_buf_free(&b);
}

static void test_edges(void) {
  const int64_t small[] = {0, 1, -1, 9, 10, -10, 99, 100, -101};
  const int64_t large[] = {999999999, 1000000000, 250057691181875201LL, INT64_MAX, INT64_MAX - 1, INT64_MIN + 1};
  for (size_t i = 0; i < sizeof(small) / sizeof(small[0]); i++)
    check_one(small[i]);
  for (size_t i = 0; i < sizeof(large) / sizeof(large[0]); i++)
    check_one(large[i]);
  check_one(INT64_MIN); /* no positive twin */
}

static void test_many(void) {
  uint64_t x = 88172645463325252ull; /* xorshift64 */
  for (int i = 0; i < 100000; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    check_one((int64_t)(x >> (i % 64))); /* every magnitude, both signs */
    check_one((int64_t)x);
  }
}

int main(void) {
  RUN(test_edges);
  RUN(test_many);
  TEST_EXIT();
}
