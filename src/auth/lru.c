/* A fixed-capacity hash table with least-recently-used eviction: chained buckets plus one recency list. */
#include <sodium.h>
#include <string.h>
#include "auth/lru.h"
#include "plaza/error.h"
#include "plaza/str.h"

typedef struct node_s {
  struct node_s *hnext;      /* bucket chain */
  struct node_s *prev, *next; /* recency list: head is most recent */
  uint64_t hash;
  uint8_t key_len;
  uint8_t key[PZ__LRU_KEY_MAX];
  max_align_t value[];
} node_t;

struct pz__lru_s {
  node_t **buckets;
  unsigned mask;
  unsigned count, capacity;
  size_t value_size;
  node_t *head; /* sentinel of the recency list (allocated: node_t ends in a flexible array) */
  uint8_t sip_key[crypto_shorthash_KEYBYTES];
};

pz__lru_t *pz__lru_new(unsigned capacity, size_t value_size) {
  PZ_ASSERT(capacity > 0);
  pz__lru_t *l = pz_calloc(1, sizeof(*l));
  unsigned n = 16;
  while (n < capacity && n < (1u << 30)) n <<= 1;
  l->buckets = pz_calloc(n, sizeof(node_t *));
  l->mask = n - 1;
  l->capacity = capacity;
  l->value_size = value_size;
  l->head = pz_calloc(1, sizeof(node_t));
  l->head->prev = l->head->next = l->head;
  randombytes_buf(l->sip_key, sizeof(l->sip_key));
  return l;
}

void pz__lru_free(pz__lru_t *l) {
  if (l == NULL) return;
  node_t *n = l->head->next;
  while (n != l->head) {
    node_t *next = n->next;
    pz_free(n);
    n = next;
  }
  pz_free(l->buckets);
  pz_free(l->head);
  pz_free(l);
}

static uint64_t hash_key(const pz__lru_t *l, const void *key, size_t len) {
  uint8_t out[crypto_shorthash_BYTES];
  crypto_shorthash(out, key, len, l->sip_key);
  uint64_t h;
  memcpy(&h, out, sizeof(h));
  return h;
}

static void unlink_recent(node_t *n) {
  n->prev->next = n->next;
  n->next->prev = n->prev;
}

static void push_recent(pz__lru_t *l, node_t *n) {
  n->next = l->head->next;
  n->prev = l->head;
  l->head->next->prev = n;
  l->head->next = n;
}

/* The link that points at key's node (or at the NULL ending its chain). */
static node_t **find(pz__lru_t *l, uint64_t h, const void *key, size_t len) {
  node_t **link = &l->buckets[h & l->mask];
  while (*link) {
    node_t *n = *link;
    if (n->hash == h && n->key_len == len && memcmp(n->key, key, len) == 0) break;
    link = &n->hnext;
  }
  return link;
}

static void remove_node(pz__lru_t *l, node_t *n) {
  node_t **link = &l->buckets[n->hash & l->mask];
  while (*link != n) link = &(*link)->hnext;
  *link = n->hnext;
  unlink_recent(n);
  l->count--;
}

void *pz__lru_get(pz__lru_t *l, const void *key, size_t len) {
  if (len > PZ__LRU_KEY_MAX) return NULL;
  node_t *n = *find(l, hash_key(l, key, len), key, len);
  if (n == NULL) return NULL;
  unlink_recent(n);
  push_recent(l, n);
  return n->value;
}

void *pz__lru_put(pz__lru_t *l, const void *key, size_t len, bool *created) {
  PZ_ASSERT(len <= PZ__LRU_KEY_MAX);
  uint64_t h = hash_key(l, key, len);
  node_t **link = find(l, h, key, len);
  node_t *n = *link;
  if (n) {
    unlink_recent(n);
    push_recent(l, n);
    if (created) *created = false;
    return n->value;
  }
  if (l->count >= l->capacity) {
    /* Reuse the least recently used node rather than free and allocate. */
    n = l->head->prev;
    remove_node(l, n);
    link = find(l, h, key, len); /* the eviction may have changed this chain */
  } else {
    n = pz_malloc(sizeof(node_t) + l->value_size);
  }
  memset(n, 0, sizeof(node_t) + l->value_size);
  n->hash = h;
  n->key_len = (uint8_t)len;
  if (len) memcpy(n->key, key, len);
  n->hnext = NULL;
  *link = n;
  push_recent(l, n);
  l->count++;
  if (created) *created = true;
  return n->value;
}

bool pz__lru_del(pz__lru_t *l, const void *key, size_t len) {
  if (len > PZ__LRU_KEY_MAX) return false;
  node_t **link = find(l, hash_key(l, key, len), key, len);
  node_t *n = *link;
  if (n == NULL) return false;
  *link = n->hnext;
  unlink_recent(n);
  l->count--;
  pz_free(n);
  return true;
}

unsigned pz__lru_count(const pz__lru_t *l) { return l->count; }
