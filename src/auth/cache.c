/* The session cache: token hash -> session, so that an authenticated request costs no disk read. */
#include "auth/lru.h"
#include "plaza/auth.h"

struct pz_auth_cache_s {
  pz__lru_t *lru;
  uint64_t epoch;
};

pz_auth_cache_t *pz_auth_cache_new(unsigned capacity) {
  pz_auth_cache_t *c = pz_calloc(1, sizeof(*c));
  c->lru = pz__lru_new(capacity, sizeof(pz_auth_session_t));
  return c;
}

void pz_auth_cache_free(pz_auth_cache_t *c) {
  if (c == NULL) return;
  pz__lru_free(c->lru);
  pz_free(c);
}

pz_auth_session_t *pz_auth_cache_get(pz_auth_cache_t *c, const uint8_t hash[PZ_TOKEN_HASH_LEN], int64_t now) {
  pz_auth_session_t *s = pz__lru_get(c->lru, hash, PZ_TOKEN_HASH_LEN);
  if (s && s->expires_at <= now) {
    pz__lru_del(c->lru, hash, PZ_TOKEN_HASH_LEN);
    return NULL;
  }
  return s;
}

uint64_t pz_auth_cache_epoch(const pz_auth_cache_t *c) { return c->epoch; }

void pz_auth_cache_put(pz_auth_cache_t *c, const uint8_t hash[PZ_TOKEN_HASH_LEN], const pz_auth_session_t *s,
                       uint64_t epoch) {
  /* A lookup that read the database while a session was being revoked may
   * have seen it alive: its result must not outlive the revocation. */
  if (epoch != c->epoch) return;
  pz_auth_session_t *v = pz__lru_put(c->lru, hash, PZ_TOKEN_HASH_LEN, NULL);
  *v = *s;
}

void pz_auth_cache_forget(pz_auth_cache_t *c, const uint8_t hash[PZ_TOKEN_HASH_LEN]) {
  pz__lru_del(c->lru, hash, PZ_TOKEN_HASH_LEN);
  c->epoch++;
}

unsigned pz_auth_cache_count(const pz_auth_cache_t *c) { return pz__lru_count(c->lru); }
