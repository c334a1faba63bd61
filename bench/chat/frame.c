/* bench_chat: a one-pass scanner that picks the few members the bench needs out of a server frame. */
#include <string.h>
#include "bench.h"

typedef struct {
  const char *p, *end;
} cur_t;

static void ws(cur_t *c) {
  while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
    c->p++;
}

/* A string at c->p (on its opening quote): its raw contents in *out. */
static int string(cur_t *c, bc_span_t *out) {
  if (c->p >= c->end || *c->p != '"') return -1;
  const char *start = ++c->p;
  /* memchr to the next quote: it ends the string unless an odd run of
   * backslashes escapes it. Most of a frame is string bytes. */
  while (c->p < c->end) {
    const char *q = memchr(c->p, '"', (size_t)(c->end - c->p));
    if (q == NULL) break;
    size_t slashes = 0;
    while (q - slashes > start && q[-1 - (ptrdiff_t)slashes] == '\\')
      slashes++;
    c->p = q + 1;
    if (slashes % 2 == 0) {
      out->p = start;
      out->n = (size_t)(q - start);
      return 0;
    }
  }
  c->p = c->end;
  return -1;
}

/* Skips any value. Objects and arrays are skipped by counting brackets
 * outside strings: the scanner trusts the server to write JSON and only
 * needs to find where a value ends. */
static int skip(cur_t *c) {
  if (c->p >= c->end) return -1;
  char ch = *c->p;
  if (ch == '"') {
    bc_span_t s;
    return string(c, &s);
  }
  if (ch == '{' || ch == '[') {
    unsigned depth = 0;
    while (c->p < c->end) {
      ch = *c->p;
      if (ch == '"') {
        bc_span_t s;
        if (string(c, &s) < 0) return -1;
        continue;
      }
      if (ch == '{' || ch == '[') depth++;
      if (ch == '}' || ch == ']') {
        c->p++;
        if (--depth == 0) return 0;
        continue;
      }
      c->p++;
    }
    return -1;
  }
  /* number, true, false, null */
  const char *start = c->p;
  while (c->p < c->end && *c->p != ',' && *c->p != '}' && *c->p != ']' && *c->p != ' ' && *c->p != '\n' &&
         *c->p != '\r' && *c->p != '\t')
    c->p++;
  return c->p > start ? 0 : -1;
}

static bool key_is(bc_span_t k, const char *lit, size_t n) { return k.n == n && memcmp(k.p, lit, n) == 0; }
#define KEY(k, lit) key_is(k, lit, sizeof(lit) - 1)

/* Scans an object; nested is true inside "message". */
static int object(cur_t *c, bc_frame_t *f, bool nested) {
  ws(c);
  if (c->p >= c->end || *c->p != '{') return -1;
  c->p++;
  ws(c);
  if (c->p < c->end && *c->p == '}') {
    c->p++;
    return 0;
  }
  for (;;) {
    bc_span_t key;
    ws(c);
    if (string(c, &key) < 0) return -1;
    ws(c);
    if (c->p >= c->end || *c->p != ':') return -1;
    c->p++;
    ws(c);
    if (c->p >= c->end) return -1;
    bc_span_t *want = NULL;
    if (!nested) {
      if (KEY(key, "type"))
        want = &f->type;
      else if (KEY(key, "client_id"))
        want = &f->client_id;
      else if (KEY(key, "code"))
        want = &f->code;
    } else {
      if (KEY(key, "id"))
        want = &f->msg_id;
      else if (KEY(key, "text"))
        want = &f->msg_text;
      else if (KEY(key, "conversation_id"))
        want = &f->msg_conv;
      else if (KEY(key, "sender_id"))
        want = &f->msg_sender;
    }
    int rc;
    if (want && *c->p == '"') {
      rc = string(c, want);
    } else if (!nested && KEY(key, "message") && *c->p == '{') {
      rc = object(c, f, true);
    } else if (!nested && KEY(key, "retry_after") && *c->p >= '0' && *c->p <= '9') {
      /* Digits by hand: the frame is not NUL-terminated. */
      long long v = 0;
      while (c->p < c->end && *c->p >= '0' && *c->p <= '9' && v < 1000000000)
        v = v * 10 + (*c->p++ - '0');
      f->retry_after = v;
      rc = skip(c); /* whatever is left of the number */
      if (rc < 0) rc = 0;
    } else {
      rc = skip(c);
    }
    if (rc < 0) return -1;
    ws(c);
    if (c->p >= c->end) return -1;
    if (*c->p == ',') {
      c->p++;
      continue;
    }
    if (*c->p == '}') {
      c->p++;
      return 0;
    }
    return -1;
  }
}

int bc_frame_scan(const char *json, size_t len, bc_frame_t *f) {
  memset(f, 0, sizeof(*f));
  f->retry_after = -1;
  cur_t c = {json, json + len};
  return object(&c, f, false);
}

bool bc_span_eq(bc_span_t s, const char *lit) { return s.n == strlen(lit) && memcmp(s.p, lit, s.n) == 0; }
