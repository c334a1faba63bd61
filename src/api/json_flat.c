/* A fast parse of the JSON most requests are: one flat object of strings, integers, booleans and nulls. */
#include <jansson.h>
#include <string.h>
#include "api/internal.h"

/* jansson's parser spent 26k instructions on a 150-byte send frame (a
 * string buffer per token, a hash table, a UTF-8 pass per string): half of
 * the loop thread's work per message. Most frames and request bodies are
 * a flat object whose values are strings without \u escapes, integers,
 * booleans or null; this builds the same jansson object for those in one
 * pass. Anything else, valid or not, is left to json_loadb: nested values,
 * reals, \u escapes, duplicate keys, control characters, bytes after the
 * object. So every answer, error or not, is jansson's own; fuzz/json
 * checks that the two agree on arbitrary input. */

#define FLAT_KEYS_MAX 16
#define FLAT_STR_MAX 24576 /* a text of 4,096 characters, escaped */

static const char *skip_ws(const char *p, const char *end) {
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
    p++;
  return p;
}

/* A string at p (after its opening quote) into out; the position after
 * its closing quote, or NULL to leave the input to jansson. */
static const char *flat_string(const char *p, const char *end, char *out, size_t *n) {
  size_t len = 0;
  while (p < end) {
    unsigned char c = (unsigned char)*p++;
    if (c == '"') {
      out[len] = '\0';
      *n = len;
      return pz_utf8_valid(out, len) ? p : NULL;
    }
    if (c < 0x20 || len + 1 >= FLAT_STR_MAX) return NULL;
    if (c == '\\') {
      if (p == end) return NULL;
      switch (*p++) {
        case '"': c = '"'; break;
        case '\\': c = '\\'; break;
        case '/': c = '/'; break;
        case 'b': c = '\b'; break;
        case 'f': c = '\f'; break;
        case 'n': c = '\n'; break;
        case 'r': c = '\r'; break;
        case 't': c = '\t'; break;
        default: return NULL; /* \u and anything else: jansson's */
      }
    }
    out[len++] = (char)c;
  }
  return NULL;
}

/* An integer of at most 18 digits (no overflow), as JSON writes it: no
 * leading zero, no fraction or exponent (those are jansson's). */
static const char *flat_integer(const char *p, const char *end, json_int_t *out) {
  bool neg = p < end && *p == '-';
  if (neg) p++;
  const char *start = p;
  json_int_t v = 0;
  while (p < end && *p >= '0' && *p <= '9' && p - start < 18)
    v = v * 10 + (*p++ - '0');
  size_t digits = (size_t)(p - start);
  if (digits == 0 || (digits > 1 && *start == '0')) return NULL;
  if (p < end && (*p == '.' || *p == 'e' || *p == 'E' || (*p >= '0' && *p <= '9'))) return NULL;
  *out = neg ? -v : v;
  return p;
}

static bool word_at(const char *p, const char *end, const char *w, size_t n) {
  return (size_t)(end - p) >= n && memcmp(p, w, n) == 0;
}

/* The object of data, built as json_loadb would with
 * JSON_REJECT_DUPLICATES; NULL when this input is jansson's to parse. */
static json_t *flat_object(const char *data, size_t len) {
  const char *p = data, *end = data + len;
  p = skip_ws(p, end);
  if (p == end || *p++ != '{') return NULL;
  json_t *obj = json_object();
  if (obj == NULL) return NULL;
  char key[256];
  static _Thread_local char value[FLAT_STR_MAX];
  unsigned n_keys = 0;
  p = skip_ws(p, end);
  if (p < end && *p == '}') {
    p++;
    goto done;
  }
  for (;;) {
    size_t key_len, value_len;
    if (p == end || *p++ != '"' || n_keys == FLAT_KEYS_MAX) goto other;
    /* Keys are short: a longer one is jansson's. */
    const char *q = p;
    while (q < end && *q != '"' && *q != '\\' && q - p < (ptrdiff_t)sizeof(key) - 1)
      q++;
    if (q == end || *q != '"') goto other;
    if ((p = flat_string(p, end, key, &key_len)) == NULL || json_object_getn(obj, key, key_len)) goto other;
    p = skip_ws(p, end);
    if (p == end || *p++ != ':') goto other;
    p = skip_ws(p, end);
    if (p == end) goto other;
    json_t *v = NULL;
    if (*p == '"') {
      if ((p = flat_string(p + 1, end, value, &value_len)) == NULL) goto other;
      v = json_stringn_nocheck(value, value_len);
    } else if (*p == '-' || (*p >= '0' && *p <= '9')) {
      json_int_t i;
      if ((p = flat_integer(p, end, &i)) == NULL) goto other;
      v = json_integer(i);
    } else if (word_at(p, end, "true", 4)) {
      p += 4;
      v = json_true();
    } else if (word_at(p, end, "false", 5)) {
      p += 5;
      v = json_false();
    } else if (word_at(p, end, "null", 4)) {
      p += 4;
      v = json_null();
    } else {
      goto other;
    }
    if (v == NULL || json_object_setn_new_nocheck(obj, key, key_len, v) != 0) goto other;
    n_keys++;
    p = skip_ws(p, end);
    if (p == end) goto other;
    if (*p == '}') {
      p++;
      break;
    }
    if (*p++ != ',') goto other;
    p = skip_ws(p, end);
  }
done:
  if (skip_ws(p, end) != end) goto other;
  return obj;
other:
  json_decref(obj);
  return NULL;
}

json_t *pz__api_json_load(const char *data, size_t len, size_t flags, json_error_t *error) {
  PZ_ASSERT(flags & JSON_REJECT_DUPLICATES);
  json_t *v = flat_object(data, len);
  return v ? v : json_loadb(data, len, flags, error);
}

json_t *pz__api_json_load_flat(const char *data, size_t len) { return flat_object(data, len); }
