/* Views, UTF-8 validation, growable buffers, request arenas and counted allocation. */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include "plaza/error.h"
#include "plaza/str.h"

/* ---- counted allocation ---- */

/* Each block carries its size in front, so that /metrics can report the
 * bytes held by long-lived objects without a platform malloc_usable_size. */
typedef union {
  size_t size;
  max_align_t align;
} hdr_t;

static _Atomic size_t live_bytes;

size_t pz_mem_live(void) { return atomic_load_explicit(&live_bytes, memory_order_relaxed); }

static void oom(size_t size) {
  fprintf(stderr, "{\"level\":\"error\",\"msg\":\"out of memory\",\"size\":%zu}\n", size);
  abort();
}

void *pz_malloc(size_t size) {
  if (size > SIZE_MAX - sizeof(hdr_t)) oom(size);
  hdr_t *h = malloc(sizeof(hdr_t) + size);
  if (h == NULL) oom(size);
  h->size = size;
  atomic_fetch_add_explicit(&live_bytes, size, memory_order_relaxed);
  return h + 1;
}

void *pz_calloc(size_t n, size_t size) {
  if (size != 0 && n > SIZE_MAX / size) oom(SIZE_MAX);
  void *p = pz_malloc(n * size);
  memset(p, 0, n * size);
  return p;
}

void *pz_realloc(void *p, size_t size) {
  if (p == NULL) return pz_malloc(size);
  if (size > SIZE_MAX - sizeof(hdr_t)) oom(size);
  hdr_t *h = (hdr_t *)p - 1;
  size_t old = h->size;
  hdr_t *nh = realloc(h, sizeof(hdr_t) + size);
  if (nh == NULL) oom(size);
  nh->size = size;
  if (size >= old)
    atomic_fetch_add_explicit(&live_bytes, size - old, memory_order_relaxed);
  else
    atomic_fetch_sub_explicit(&live_bytes, old - size, memory_order_relaxed);
  return nh + 1;
}

char *pz_strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = pz_malloc(n);
  memcpy(d, s, n);
  return d;
}

void pz_free(void *p) {
  if (p == NULL) return;
  hdr_t *h = (hdr_t *)p - 1;
  atomic_fetch_sub_explicit(&live_bytes, h->size, memory_order_relaxed);
  free(h);
}

/* ---- views ---- */

static inline unsigned char lower(unsigned char c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

bool pz_str_ieq(pz_str_t a, pz_str_t b) {
  if (a.len != b.len) return false;
  for (size_t i = 0; i < a.len; i++)
    if (lower((unsigned char)a.ptr[i]) != lower((unsigned char)b.ptr[i])) return false;
  return true;
}

bool pz_str_has_prefix(pz_str_t s, pz_str_t prefix) {
  return s.len >= prefix.len && (prefix.len == 0 || memcmp(s.ptr, prefix.ptr, prefix.len) == 0);
}

bool pz_utf8_valid(const char *s, size_t len) {
  if (len == 0) return true; /* s may be NULL, and NULL + 0 is undefined */
  const unsigned char *p = (const unsigned char *)s, *end = p + len;
  while (p < end) {
    unsigned c = *p;
    if (c < 0x80) {
      p++;
      continue;
    }
    size_t n;
    unsigned cp, min;
    if ((c & 0xE0) == 0xC0) {
      n = 2, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      n = 3, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      n = 4, cp = c & 0x07, min = 0x10000;
    } else {
      return false;
    }
    if ((size_t)(end - p) < n) return false;
    for (size_t i = 1; i < n; i++) {
      if ((p[i] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    p += n;
  }
  return true;
}

size_t pz_utf8_count(const char *s, size_t len) {
  size_t n = 0;
  for (size_t i = 0; i < len; i++)
    if (((unsigned char)s[i] & 0xC0) != 0x80) n++;
  return n;
}

unsigned pz_utf8_next(const unsigned char **p) {
  const unsigned char *s = *p;
  unsigned c = s[0];
  if (c < 0x80) {
    *p = s + 1;
    return c;
  }
  if ((c & 0xE0) == 0xC0) {
    *p = s + 2;
    return ((c & 0x1F) << 6) | (s[1] & 0x3F);
  }
  if ((c & 0xF0) == 0xE0) {
    *p = s + 3;
    return ((c & 0x0F) << 12) | ((s[1] & 0x3F) << 6) | (s[2] & 0x3F);
  }
  *p = s + 4;
  return ((c & 0x07) << 18) | ((s[1] & 0x3F) << 12) | ((s[2] & 0x3F) << 6) | (s[3] & 0x3F);
}

bool pz_cp_is_space(unsigned cp) {
  return cp == 0x20 || cp == 0x09 || cp == 0x0A || cp == 0x0D || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200B) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
         cp == 0x3000 || cp == 0xFEFF;
}

size_t pz_i64_format(int64_t v, char *out) {
  char tmp[20];
  size_t n = 0, len = 0;
  /* Negated as unsigned, so that INT64_MIN has its digits too. */
  uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
  do {
    tmp[n++] = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  if (v < 0) out[len++] = '-';
  while (n)
    out[len++] = tmp[--n];
  out[len] = '\0';
  return len;
}

/* ---- buffers ---- */

void pz_buf_reserve(pz_buf_t *b, size_t extra) {
  if (b->cap - b->len >= extra) return;
  if (extra > SIZE_MAX / 2 - b->len) oom(SIZE_MAX);
  size_t cap = b->cap ? b->cap : 256;
  while (cap - b->len < extra) cap *= 2;
  b->data = pz_realloc(b->data, cap);
  b->cap = cap;
}

void pz_buf_append(pz_buf_t *b, const void *data, size_t len) {
  if (len == 0) return;
  pz_buf_reserve(b, len);
  memcpy(b->data + b->len, data, len);
  b->len += len;
}

void pz_buf_printf(pz_buf_t *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(b->data ? b->data + b->len : NULL, b->data ? b->cap - b->len : 0, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if (b->data == NULL || (size_t)n >= b->cap - b->len) {
    pz_buf_reserve(b, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
  }
  b->len += (size_t)n;
}

void pz_buf_append_i64(pz_buf_t *b, int64_t v) {
  char s[21];
  pz_buf_append(b, s, pz_i64_format(v, s));
}

void pz_buf_consume(pz_buf_t *b, size_t n) {
  if (n >= b->len) {
    b->len = 0;
    return;
  }
  memmove(b->data, b->data + n, b->len - n);
  b->len -= n;
}

void pz_buf_free(pz_buf_t *b) {
  pz_free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

/* Writes s escaped to out (room for 6 * len bytes); returns the end. */
static char *json_escape(char *out, const char *s, size_t len) {
  static const char hex[] = "0123456789ABCDEF";
  char *p = out;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c != '"' && c != '\\') {
      *p++ = (char)c;
      continue;
    }
    *p++ = '\\';
    switch (c) {
      case '"': *p++ = '"'; break;
      case '\\': *p++ = '\\'; break;
      case '\b': *p++ = 'b'; break;
      case '\f': *p++ = 'f'; break;
      case '\n': *p++ = 'n'; break;
      case '\r': *p++ = 'r'; break;
      case '\t': *p++ = 't'; break;
      default:
        memcpy(p, "u00", 3);
        p[3] = hex[c >> 4];
        p[4] = hex[c & 15];
        p += 5;
    }
  }
  return p;
}

void pz_buf_append_json_escaped(pz_buf_t *b, const char *s, size_t len) {
  pz_buf_reserve(b, len > SIZE_MAX / 6 ? SIZE_MAX : 6 * len); /* the latter aborts as out of memory */
  b->len = (size_t)(json_escape(b->data + b->len, s, len) - b->data);
}

/* ---- arenas ---- */

typedef struct block_s {
  struct block_s *next;
  size_t size, used;
  max_align_t data[];
} block_t;

typedef struct cleanup_s {
  struct cleanup_s *next;
  pz_arena_cleanup_cb cb;
  void *data;
} cleanup_t;

struct pz_arena_s {
  block_t *head;  /* current block; the first block is last in the chain */
  cleanup_t *cleanups;
  size_t first_size;
};

static block_t *block_new(size_t size) {
  block_t *b = pz_malloc(sizeof(block_t) + size);
  b->next = NULL;
  b->size = size;
  b->used = 0;
  return b;
}

pz_arena_t *pz_arena_new(size_t first_block) {
  pz_arena_t *a = pz_malloc(sizeof(*a));
  a->first_size = first_block ? first_block : 4096;
  a->head = block_new(a->first_size);
  a->cleanups = NULL;
  return a;
}

void pz_arena_reset(pz_arena_t *a) {
  while (a->cleanups) {
    cleanup_t *c = a->cleanups;
    a->cleanups = c->next;
    c->cb(c->data);
  }
  while (a->head->next) {
    block_t *b = a->head;
    a->head = b->next;
    pz_free(b);
  }
  a->head->used = 0;
}

void pz_arena_free(pz_arena_t *a) {
  if (a == NULL) return;
  pz_arena_reset(a);
  pz_free(a->head);
  pz_free(a);
}

void *pz_arena_alloc(pz_arena_t *a, size_t size) {
  size = (size + 15) & ~(size_t)15;
  if (size == 0) size = 16;
  block_t *b = a->head;
  if (b->size - b->used < size) {
    size_t bsize = a->first_size * 2;
    if (bsize < size) bsize = size;
    b = block_new(bsize);
    b->next = a->head;
    a->head = b;
  }
  void *p = (char *)b->data + b->used;
  b->used += size;
  return p;
}

void *pz_arena_calloc(pz_arena_t *a, size_t n, size_t size) {
  if (size != 0 && n > SIZE_MAX / size) oom(SIZE_MAX);
  void *p = pz_arena_alloc(a, n * size);
  memset(p, 0, n * size);
  return p;
}

char *pz_arena_strndup(pz_arena_t *a, const char *s, size_t len) {
  char *d = pz_arena_alloc(a, len + 1);
  if (len) memcpy(d, s, len);
  d[len] = '\0';
  return d;
}

char *pz_arena_printf(pz_arena_t *a, const char *fmt, ...) {
  /* Most strings fit the first guess; a longer one is formatted again. */
  size_t cap = 128;
  char *d = pz_arena_alloc(a, cap);
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(d, cap, fmt, ap);
  va_end(ap);
  if (n >= 0 && (size_t)n >= cap) {
    d = pz_arena_alloc(a, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(d, (size_t)n + 1, fmt, ap);
    va_end(ap);
  } else if (n < 0) {
    d[0] = '\0';
  }
  return d;
}

void pz_arena_on_reset(pz_arena_t *a, pz_arena_cleanup_cb cb, void *data) {
  cleanup_t *c = pz_arena_alloc(a, sizeof(*c));
  c->cb = cb;
  c->data = data;
  c->next = a->cleanups;
  a->cleanups = c;
}
