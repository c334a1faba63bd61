/* bench_chat: clocks, buffers, latency samples, /proc reading and addresses. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "bench.h"

uint64_t bc_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void bc_die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("bench_chat: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

void *bc_xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (p == NULL) bc_die("out of memory (%zu bytes)", n);
  return p;
}

void *bc_xcalloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (p == NULL) bc_die("out of memory (%zu x %zu bytes)", n, size);
  return p;
}

void *bc_xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (q == NULL) bc_die("out of memory (%zu bytes)", n);
  return q;
}

void bc_buf_reserve(bc_buf_t *b, size_t extra) {
  if (b->cap - b->len >= extra) return;
  size_t cap = b->cap ? b->cap : 256;
  while (cap - b->len < extra)
    cap *= 2;
  b->data = bc_xrealloc(b->data, cap);
  b->cap = cap;
}

void bc_buf_append(bc_buf_t *b, const void *p, size_t n) {
  bc_buf_reserve(b, n);
  memcpy(b->data + b->len, p, n);
  b->len += n;
}

void bc_buf_printf(bc_buf_t *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) bc_die("bad format");
  bc_buf_reserve(b, (size_t)n + 1);
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

void bc_buf_consume(bc_buf_t *b, size_t n) {
  if (n >= b->len) {
    b->len = 0;
    return;
  }
  memmove(b->data, b->data + n, b->len - n);
  b->len -= n;
}

void bc_buf_free(bc_buf_t *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

void bc_samples_add(bc_samples_t *s, uint64_t ns) {
  if (s->n == s->cap) {
    s->cap = s->cap ? s->cap * 2 : 4096;
    s->v = bc_xrealloc(s->v, s->cap * sizeof(*s->v));
  }
  s->v[s->n++] = ns;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

uint64_t bc_samples_quantile(bc_samples_t *s, double q) {
  if (s->n == 0) return 0;
  qsort(s->v, s->n, sizeof(*s->v), cmp_u64);
  /* Nearest rank: the smallest sample with at least q of them at or below it. */
  size_t rank = (size_t)(q * (double)s->n + 0.999999);
  if (rank < 1) rank = 1;
  if (rank > s->n) rank = s->n;
  return s->v[rank - 1];
}

void bc_samples_free(bc_samples_t *s) {
  free(s->v);
  s->v = NULL;
  s->n = s->cap = 0;
}

long bc_rss_kib(int pid) {
  char path[64], line[256];
  snprintf(path, sizeof(path), "/proc/%d/status", pid);
  FILE *f = fopen(path, "r");
  if (f == NULL) return -1;
  long kib = -1;
  while (fgets(line, sizeof(line), f)) {
    if (strncmp(line, "VmRSS:", 6) == 0) {
      kib = strtol(line + 6, NULL, 10);
      break;
    }
  }
  fclose(f);
  return kib;
}

int bc_parse_addr(const char *s, struct sockaddr_in *addr) {
  char host[64];
  const char *colon = strrchr(s, ':');
  if (colon == NULL || (size_t)(colon - s) >= sizeof(host)) return -1;
  memcpy(host, s, (size_t)(colon - s));
  host[colon - s] = '\0';
  char *end;
  errno = 0;
  long port = strtol(colon + 1, &end, 10);
  if (errno || *end || port <= 0 || port > 65535) return -1;
  memset(addr, 0, sizeof(*addr));
  addr->sin_family = AF_INET;
  addr->sin_port = htons((uint16_t)port);
  return inet_pton(AF_INET, host, &addr->sin_addr) == 1 ? 0 : -1;
}

uint32_t bc_rand32(uint64_t *state) {
  /* xorshift64*: a state that is never zero (seeded so) stays non-zero. */
  uint64_t x = *state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *state = x;
  return (uint32_t)((x * 0x2545F4914F6CDD1Dull) >> 32);
}

double bc_cpu_seconds(int pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof(path), "/proc/%d/stat", pid);
  FILE *f = fopen(path, "re");
  if (f == NULL) return -1;
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  /* The command name may hold spaces and parentheses: fields restart after the last ')'. */
  char *p = strrchr(buf, ')');
  if (p == NULL) return -1;
  unsigned long utime = 0, stime = 0;
  if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2) return -1;
  return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}
