/* Strings as {ptr, len} views, growable byte buffers and request arenas. */
#ifndef PLAZA_STR_H
#define PLAZA_STR_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <string.h>

/* A view: borrowed bytes, not NUL-terminated unless said so. */
typedef struct pz_str_s {
  const char *ptr;
  size_t len;
} pz_str_t;

#define PZ_STR(lit) ((pz_str_t){(lit), sizeof(lit) - 1})
#define PZ_STR_NULL ((pz_str_t){NULL, 0})

static inline pz_str_t pz_str(const char *s) { return (pz_str_t){s, s ? strlen(s) : 0}; }
static inline pz_str_t pz_str_n(const char *s, size_t n) { return (pz_str_t){s, n}; }
static inline bool pz_str_eq(pz_str_t a, pz_str_t b) {
  return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}
static inline bool pz_str_eq_c(pz_str_t a, const char *b) { return pz_str_eq(a, pz_str(b)); }
/* ASCII case-insensitive comparison, for header names. */
bool pz_str_ieq(pz_str_t a, pz_str_t b);
bool pz_str_has_prefix(pz_str_t s, pz_str_t prefix);
/* True when s[0..len) is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
bool pz_utf8_valid(const char *s, size_t len);
/* Number of code points in valid UTF-8 text. */
size_t pz_utf8_count(const char *s, size_t len);
/* Decodes the code point at *p of text already checked with pz_utf8_valid,
 * and advances *p past it. */
unsigned pz_utf8_next(const unsigned char **p);
/* C0 controls (tab and line breaks included), DEL and C1 controls: they
 * render differently in every client, or not at all. */
static inline bool pz_cp_is_control(unsigned cp) { return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F); }
/* White space and invisible separators, ASCII or not: text made only of
 * these shows as nothing. */
bool pz_cp_is_space(unsigned cp);

/* Writes v in decimal, as "%lld" would (without printf's cost), into out
 * (at least 21 bytes) with a NUL; returns the length. */
size_t pz_i64_format(int64_t v, char *out);

/* A growable byte buffer. Owner frees with pz_buf_free. Allocation failure aborts. */
typedef struct pz_buf_s {
  char *data;
  size_t len;
  size_t cap;
} pz_buf_t;

void pz_buf_reserve(pz_buf_t *b, size_t extra);
void pz_buf_append(pz_buf_t *b, const void *data, size_t len);
static inline void pz_buf_append_str(pz_buf_t *b, pz_str_t s) { pz_buf_append(b, s.ptr, s.len); }
static inline void pz_buf_append_c(pz_buf_t *b, const char *s) { pz_buf_append(b, s, strlen(s)); }
void pz_buf_printf(pz_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends v in decimal, as "%lld" would, without printf's cost. */
void pz_buf_append_i64(pz_buf_t *b, int64_t v);
/* Removes the first n bytes. */
void pz_buf_consume(pz_buf_t *b, size_t n);
void pz_buf_free(pz_buf_t *b);
/* Appends s JSON-escaped, without the surrounding quotes, as jansson
 * does: \" \\ \b \f \n \r \t, other control bytes as \u00XX (upper-case
 * hex), everything else as it is. */
void pz_buf_append_json_escaped(pz_buf_t *b, const char *s, size_t len);

/* An arena for the temporary memory of one request or one WebSocket
 * message: everything allocated from it, and every cleanup registered on
 * it, goes at pz_arena_reset/pz_arena_free. Single-threaded. */
typedef struct pz_arena_s pz_arena_t;
typedef void (*pz_arena_cleanup_cb)(void *data);

pz_arena_t *pz_arena_new(size_t first_block);
void pz_arena_free(pz_arena_t *a);
/* Runs the cleanups (last registered first) and frees all but the first block. */
void pz_arena_reset(pz_arena_t *a);
/* 16-byte aligned; never NULL (allocation failure aborts). */
void *pz_arena_alloc(pz_arena_t *a, size_t size);
void *pz_arena_calloc(pz_arena_t *a, size_t n, size_t size);
/* Copies s into the arena, NUL-terminated. */
char *pz_arena_strndup(pz_arena_t *a, const char *s, size_t len);
static inline char *pz_arena_cstr(pz_arena_t *a, pz_str_t s) { return pz_arena_strndup(a, s.ptr, s.len); }
char *pz_arena_printf(pz_arena_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pz_arena_on_reset(pz_arena_t *a, pz_arena_cleanup_cb cb, void *data);

/* Counted allocation for long-lived objects: abort on failure, and a
 * process-wide count of live bytes for /metrics. */
void *pz_malloc(size_t size);
void *pz_calloc(size_t n, size_t size);
void *pz_realloc(void *p, size_t size);
char *pz_strdup(const char *s);
void pz_free(void *p);
/* Bytes currently held through pz_malloc and friends. Any thread. */
size_t pz_mem_live(void);

#endif
