/* Time-ordered 64-bit ids and clocks. */
#include <pthread.h>
#include <string.h>
#include <time.h>
#include "plaza/id.h"
#include "plaza/str.h"

static pthread_mutex_t id_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned id_node;
static int64_t last_ms;
static unsigned seq;

void pz_id_set_node(unsigned node) { id_node = node & 1023; }

int64_t pz_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t pz_mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* When 4096 ids are taken within one millisecond, or the clock steps back,
 * the id's time part runs ahead of the clock instead of repeating a value:
 * ids stay unique and increasing, and time catches up. */
int64_t pz_id_next(void) {
  pthread_mutex_lock(&id_lock);
  int64_t ms = pz_now_ms() - PZ_ID_EPOCH_MS;
  if (ms > last_ms) {
    last_ms = ms;
    seq = 0;
  } else if (++seq > 4095) {
    last_ms++;
    seq = 0;
  }
  int64_t id = (last_ms << 22) | ((int64_t)id_node << 12) | seq;
  pthread_mutex_unlock(&id_lock);
  return id;
}

size_t pz_id_format(int64_t id, char *out) { return pz_i64_format(id, out); }

int pz_id_parse(const char *s, size_t len, int64_t *out) {
  if (len == 0 || len > 19) return -1;
  uint64_t v = 0;
  for (size_t i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9') return -1;
    v = v * 10 + (uint64_t)(s[i] - '0');
  }
  if (v == 0 || v > (uint64_t)INT64_MAX) return -1;
  *out = (int64_t)v;
  return 0;
}

/* Days since 1970-01-01 to a civil date (H. Hinnant's days_from_civil,
 * inverted): no gmtime_r, whose time-zone lock and field-by-field
 * snprintf made this a hot spot of every JSON answer and event. */
static void civil_from_days(int64_t z, int *y, unsigned *m, unsigned *d) {
  z += 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  unsigned doe = (unsigned)(z - era * 146097);
  unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = (int)(yoe + era * 400) + (*m <= 2);
}

static char *digits(char *p, unsigned v, int n) {
  for (int i = n - 1; i >= 0; i--) {
    p[i] = (char)('0' + v % 10);
    v /= 10;
  }
  return p + n;
}

void pz_time_format(int64_t ms, char *out) {
  /* Years 0000 to 9999: what four digits can say. */
  if (ms < -62167219200000LL) ms = -62167219200000LL;
  if (ms > 253402300799999LL) ms = 253402300799999LL;
  int64_t days = ms >= 0 ? ms / 86400000 : -((-ms + 86399999) / 86400000);
  unsigned in_day = (unsigned)(ms - days * 86400000);
  int y;
  unsigned mo, d;
  civil_from_days(days, &y, &mo, &d);
  char *p = digits(out, (unsigned)y, 4);
  *p++ = '-';
  p = digits(p, mo, 2);
  *p++ = '-';
  p = digits(p, d, 2);
  *p++ = 'T';
  p = digits(p, in_day / 3600000, 2);
  *p++ = ':';
  p = digits(p, in_day / 60000 % 60, 2);
  *p++ = ':';
  p = digits(p, in_day / 1000 % 60, 2);
  *p++ = '.';
  p = digits(p, in_day % 1000, 3);
  *p++ = 'Z';
  *p = '\0';
}
