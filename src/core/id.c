/* Time-ordered 64-bit ids and clocks. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "plaza/id.h"

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

size_t pz_id_format(int64_t id, char *out) {
  int n = snprintf(out, 21, "%lld", (long long)id);
  return n < 0 ? 0 : (size_t)n;
}

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

void pz_time_format(int64_t ms, char *out) {
  time_t secs = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  /* Formatted in a roomy buffer: the compiler cannot know the fields are small. */
  char tmp[96];
  snprintf(tmp, sizeof(tmp), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
           tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
  memcpy(out, tmp, 24);
  out[24] = '\0';
}
