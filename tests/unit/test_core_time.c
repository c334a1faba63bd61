/* pz_time_format: RFC 3339 UTC with milliseconds, checked against the C library's gmtime_r over many instants. */
#include <time.h>
#include "plaza/id.h"
#include "test.h"

static void reference(int64_t ms, char out[25]) {
  time_t secs = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  char tmp[96];
  snprintf(tmp, sizeof(tmp), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
           tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
  memcpy(out, tmp, 25);
}

static void test_known_instants(void) {
  char s[25];
  pz_time_format(0, s);
  CHECK_EQ_STR(s, "1970-01-01T00:00:00.000Z");
  pz_time_format(951782400000LL, s); /* a leap day in a century year divisible by 400 */
  CHECK_EQ_STR(s, "2000-02-29T00:00:00.000Z");
  pz_time_format(1795305599999LL, s);
  CHECK_EQ_STR(s, "2026-11-21T23:59:59.999Z");
  pz_time_format(4107542400000LL, s); /* 2100 is not a leap year */
  CHECK_EQ_STR(s, "2100-03-01T00:00:00.000Z");
  pz_time_format(253402300799999LL, s);
  CHECK_EQ_STR(s, "9999-12-31T23:59:59.999Z");
  pz_time_format(INT64_MAX, s); /* beyond four digits of year: the last instant that fits */
  CHECK_EQ_STR(s, "9999-12-31T23:59:59.999Z");
}

/* Every day boundary from 1970 to 2400 plus a spread of instants within days. */
static void test_against_gmtime(void) {
  char got[25], want[25];
  unsigned mismatches = 0;
  for (int64_t day = 0; day < 157000; day++) {
    int64_t base = day * 86400000LL;
    const int64_t offsets[] = {0, 1, 999, 1000, 59999, 3599999, 43200123, 86399999};
    for (unsigned i = 0; i < sizeof(offsets) / sizeof(offsets[0]); i++) {
      int64_t ms = base + offsets[i];
      pz_time_format(ms, got);
      reference(ms, want);
      if (strcmp(got, want) != 0 && mismatches++ < 5) CHECK_EQ_STR(got, want);
    }
  }
  CHECK_EQ_INT(mismatches, 0);
}

int main(void) {
  RUN(test_known_instants);
  RUN(test_against_gmtime);
  TEST_EXIT();
}
