/* Log-in rate limits: failures per key in a fixed window, in a table of bounded size. */
#include "auth/lru.h"
#include "plaza/auth.h"

typedef struct {
  int64_t window_start; /* ms; the window runs from the first failure */
  unsigned failures;
} slot_t;

struct pz_auth_limiter_s {
  pz__lru_t *lru;
  unsigned max_failures;
  int64_t window_ms;
};

pz_auth_limiter_t *pz_auth_limiter_new(unsigned capacity, unsigned max_failures, unsigned window_s) {
  pz_auth_limiter_t *l = pz_calloc(1, sizeof(*l));
  l->lru = pz__lru_new(capacity, sizeof(slot_t));
  l->max_failures = max_failures;
  l->window_ms = (int64_t)window_s * 1000;
  return l;
}

void pz_auth_limiter_free(pz_auth_limiter_t *l) {
  if (l == NULL) return;
  pz__lru_free(l->lru);
  pz_free(l);
}

static pz_str_t cut(pz_str_t key) {
  if (key.len > PZ__LRU_KEY_MAX) key.len = PZ__LRU_KEY_MAX;
  return key;
}

int pz_auth_limiter_check(pz_auth_limiter_t *l, pz_str_t key, int64_t now_ms, unsigned *retry_after_s) {
  key = cut(key);
  *retry_after_s = 0;
  slot_t *s = pz__lru_get(l->lru, key.ptr, key.len);
  if (s == NULL) return 0;
  int64_t end = s->window_start + l->window_ms;
  if (now_ms >= end) {
    pz__lru_del(l->lru, key.ptr, key.len);
    return 0;
  }
  if (s->failures < l->max_failures) return 0;
  int64_t wait_ms = end - now_ms;
  *retry_after_s = (unsigned)((wait_ms + 999) / 1000);
  return PZ_ERATE;
}

void pz_auth_limiter_fail(pz_auth_limiter_t *l, pz_str_t key, int64_t now_ms) {
  key = cut(key);
  bool created;
  slot_t *s = pz__lru_put(l->lru, key.ptr, key.len, &created);
  if (created || now_ms >= s->window_start + l->window_ms) {
    s->window_start = now_ms;
    s->failures = 0;
  }
  s->failures++;
}

void pz_auth_limiter_forgive(pz_auth_limiter_t *l, pz_str_t key, bool all) {
  key = cut(key);
  slot_t *s = pz__lru_get(l->lru, key.ptr, key.len);
  if (s == NULL) return;
  if (all || s->failures <= 1)
    pz__lru_del(l->lru, key.ptr, key.len);
  else
    s->failures--;
}

unsigned pz_auth_limiter_count(const pz_auth_limiter_t *l) { return pz__lru_count(l->lru); }
