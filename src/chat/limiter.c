/* The per-user send rate limit: token buckets in a fixed, set-associative table. */
#include <sodium.h>
#include "plaza/chat.h"

#define WAYS 4
#define MILLI 1000 /* a message costs this many milli-tokens */

typedef struct {
  int64_t user_id; /* 0: free */
  int64_t stamp_ms;
  int64_t tokens; /* milli-tokens at stamp_ms */
} slot_t;

struct pz_chat_limiter_s {
  slot_t *slots;
  unsigned n_sets; /* a power of two */
  uint64_t key;
  int64_t rate;  /* tokens a second, that is milli-tokens a millisecond */
  int64_t burst; /* milli-tokens */
};

pz_chat_limiter_t *pz_chat_limiter_new(unsigned capacity, unsigned rate, unsigned burst) {
  PZ_ASSERT(rate > 0 && burst > 0);
  pz_chat_limiter_t *l = pz_calloc(1, sizeof(*l));
  l->n_sets = 1;
  while (l->n_sets * WAYS < capacity)
    l->n_sets *= 2;
  l->slots = pz_calloc((size_t)l->n_sets * WAYS, sizeof(slot_t));
  /* Ids are handed out by the server, yet a keyed spread costs nothing and
   * keeps sets even whatever the id pattern. */
  randombytes_buf(&l->key, sizeof(l->key));
  l->rate = rate;
  l->burst = (int64_t)burst * MILLI;
  return l;
}

void pz_chat_limiter_free(pz_chat_limiter_t *l) {
  if (l == NULL) return;
  pz_free(l->slots);
  pz_free(l);
}

/* The slot's milli-tokens at now, refilled since its stamp. */
static int64_t level(const pz_chat_limiter_t *l, const slot_t *s, int64_t now_ms) {
  if (s->user_id == 0) return INT64_MAX;
  int64_t elapsed = now_ms > s->stamp_ms ? now_ms - s->stamp_ms : 0; /* a clock that steps back refills nothing */
  if (elapsed > l->burst / l->rate + 1) return l->burst;
  int64_t t = s->tokens + elapsed * l->rate;
  return t < l->burst ? t : l->burst;
}

int pz_chat_limiter_take(pz_chat_limiter_t *l, int64_t user_id, int64_t now_ms, unsigned *retry_after_s) {
  *retry_after_s = 0;
  uint64_t h = ((uint64_t)user_id ^ l->key) * 0x9E3779B97F4A7C15ull;
  slot_t *set = &l->slots[(size_t)((h >> 32) & (l->n_sets - 1)) * WAYS];
  slot_t *s = NULL, *fullest = &set[0];
  int64_t fullest_level = -1;
  for (unsigned i = 0; i < WAYS; i++) {
    if (set[i].user_id == user_id) {
      s = &set[i];
      break;
    }
    int64_t lv = level(l, &set[i], now_ms);
    if (lv > fullest_level) {
      fullest_level = lv;
      fullest = &set[i];
    }
  }
  int64_t tokens;
  if (s) {
    tokens = level(l, s, now_ms);
  } else {
    s = fullest;
    s->user_id = user_id;
    s->stamp_ms = now_ms;
    tokens = l->burst;
  }
  if (now_ms > s->stamp_ms) s->stamp_ms = now_ms;
  if (tokens >= MILLI) {
    s->tokens = tokens - MILLI;
    return 0;
  }
  s->tokens = tokens;
  int64_t wait_ms = (MILLI - tokens + l->rate - 1) / l->rate;
  *retry_after_s = (unsigned)((wait_ms + 999) / 1000);
  if (*retry_after_s == 0) *retry_after_s = 1;
  return PZ_ERATE;
}
