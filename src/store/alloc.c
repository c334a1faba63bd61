/* SQLite's memory: malloc with a size header, as SQLite's own allocator does, but without its global mutex and
 * statistics, and with a per-thread cache of the block size that every write job allocates and frees by the
 * hundred: the 1 KiB chunks of a savepoint's statement journal (temp_store=MEMORY, engine.c). */
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include "store/db.h"

#define CHUNK 1024       /* SQLite's memory journal chunk: sizeof(FileChunk) + 1016 */
#define CACHE_MAX 4096u  /* chunks kept per thread: 4 MiB */

typedef struct {
  void *head; /* cached blocks (user pointers), linked through their first word */
  unsigned n;
} cache_t;

static _Thread_local cache_t cache;
static pthread_key_t exit_key;

/* A thread that ends gives its cached blocks back to malloc. */
static void on_thread_exit(void *unused) {
  (void)unused;
  while (cache.head) {
    void *p = cache.head;
    cache.head = *(void **)p;
    free((sqlite3_int64 *)p - 1);
  }
  cache.n = 0;
}

static void *x_malloc(int n) {
  if (n == CHUNK && cache.head) {
    void *p = cache.head;
    cache.head = *(void **)p;
    cache.n--;
    return p;
  }
  sqlite3_int64 *h = malloc((size_t)n + sizeof(*h));
  if (h == NULL) return NULL;
  h[0] = n;
  return h + 1;
}

static void x_free(void *p) {
  if (p == NULL) return;
  sqlite3_int64 *h = (sqlite3_int64 *)p - 1;
  if (h[0] == CHUNK && cache.n < CACHE_MAX) {
    if (cache.head == NULL) pthread_setspecific(exit_key, &cache); /* non-NULL: the destructor runs */
    *(void **)p = cache.head;
    cache.head = p;
    cache.n++;
    return;
  }
  free(h);
}

static int x_size(void *p) { return p ? (int)((sqlite3_int64 *)p)[-1] : 0; }

static void *x_realloc(void *p, int n) {
  sqlite3_int64 *h = (sqlite3_int64 *)p - 1;
  if (h[0] == CHUNK || n == CHUNK) { /* a cached block must keep its exact size */
    void *q = x_malloc(n);
    if (q) {
      memcpy(q, p, (size_t)(h[0] < n ? h[0] : n));
      x_free(p);
    }
    return q;
  }
  h = realloc(h, (size_t)n + sizeof(*h));
  if (h == NULL) return NULL;
  h[0] = n;
  return h + 1;
}

static int x_roundup(int n) { return (n + 7) & ~7; }
static int x_init(void *unused) {
  (void)unused;
  return SQLITE_OK;
}
static void x_shutdown(void *unused) { (void)unused; }

static uv_once_t once = UV_ONCE_INIT;

static void setup(void) {
  static const sqlite3_mem_methods methods = {x_malloc, x_free, x_realloc, x_size, x_roundup, x_init, x_shutdown, NULL};
  if (pthread_key_create(&exit_key, on_thread_exit) != 0) { /* keep SQLite's allocator */
    pz__store_vfs_register();
    return;
  }
  /* Refused (SQLITE_MISUSE) once SQLite has initialized: then its own
   * allocator stays, which is only slower. */
  if (sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) == SQLITE_OK) sqlite3_config(SQLITE_CONFIG_MALLOC, &methods);
  /* After the allocator: registering initializes SQLite. */
  pz__store_vfs_register();
}

void pz__store_sqlite_setup(void) { uv_once(&once, setup); }
