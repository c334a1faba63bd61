/* Internal to auth/: a fixed-capacity hash table with least-recently-used eviction, for caches and rate limits. */
#ifndef PLAZA_AUTH_LRU_H
#define PLAZA_AUTH_LRU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PZ__LRU_KEY_MAX 64

/* Keys are byte strings of at most PZ__LRU_KEY_MAX bytes; each entry holds
 * a value of value_size bytes. Buckets are chosen by a keyed SipHash with a
 * random key per table, so that clients cannot aim keys at one chain.
 * Single-threaded. */
typedef struct pz__lru_s pz__lru_t;

pz__lru_t *pz__lru_new(unsigned capacity, size_t value_size);
void pz__lru_free(pz__lru_t *l);
/* The value of key, marked most recently used; NULL when absent. */
void *pz__lru_get(pz__lru_t *l, const void *key, size_t len);
/* The value of key, created (zeroed) if absent, evicting the least recently
 * used entry when the table is full; marked most recently used. */
void *pz__lru_put(pz__lru_t *l, const void *key, size_t len, bool *created);
/* Removes key; false when it was absent. */
bool pz__lru_del(pz__lru_t *l, const void *key, size_t len);
unsigned pz__lru_count(const pz__lru_t *l);

#endif
