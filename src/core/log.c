/* JSON-lines logs on stderr: one write(2) per line, so lines from threads never interleave. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "plaza/id.h"
#include "plaza/log.h"
#include "plaza/str.h"

int pz_log_level = PZ_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

int pz_log_parse_level(const char *s) {
  for (int i = 0; i < 4; i++)
    if (strcmp(s, level_names[i]) == 0) return i;
  return -1;
}

/* Appends the `key=%conv` list as JSON members. The conversions are the
 * handful this project uses; anything else is a programming error and is
 * written as null rather than read from the va_list wrongly. */
static void append_fields(pz_buf_t *b, const char *f, va_list ap) {
  while (*f) {
    while (*f == ' ') f++;
    const char *key = f;
    while (*f && *f != '=') f++;
    if (*f != '=') break;
    pz_buf_append_c(b, ",\"");
    pz_buf_append(b, key, (size_t)(f - key));
    pz_buf_append_c(b, "\":");
    f++;
    if (*f != '%') break;
    f++;
    char tmp[48];
    if (strncmp(f, ".*s", 3) == 0) {
      int n = va_arg(ap, int);
      const char *s = va_arg(ap, const char *);
      pz_buf_append_c(b, "\"");
      if (s && n > 0) pz_buf_append_json_escaped(b, s, (size_t)n);
      pz_buf_append_c(b, "\"");
      f += 3;
    } else if (*f == 's') {
      const char *s = va_arg(ap, const char *);
      pz_buf_append_c(b, "\"");
      if (s) pz_buf_append_json_escaped(b, s, strlen(s));
      pz_buf_append_c(b, "\"");
      f += 1;
    } else if (*f == 'd') {
      snprintf(tmp, sizeof(tmp), "%d", va_arg(ap, int));
      pz_buf_append_c(b, tmp);
      f += 1;
    } else if (*f == 'u') {
      snprintf(tmp, sizeof(tmp), "%u", va_arg(ap, unsigned));
      pz_buf_append_c(b, tmp);
      f += 1;
    } else if (strncmp(f, "lld", 3) == 0) {
      snprintf(tmp, sizeof(tmp), "%lld", va_arg(ap, long long));
      pz_buf_append_c(b, tmp);
      f += 3;
    } else if (strncmp(f, "llu", 3) == 0) {
      snprintf(tmp, sizeof(tmp), "%llu", va_arg(ap, unsigned long long));
      pz_buf_append_c(b, tmp);
      f += 3;
    } else if (strncmp(f, "ld", 2) == 0) {
      snprintf(tmp, sizeof(tmp), "%ld", va_arg(ap, long));
      pz_buf_append_c(b, tmp);
      f += 2;
    } else if (strncmp(f, "lu", 2) == 0) {
      snprintf(tmp, sizeof(tmp), "%lu", va_arg(ap, unsigned long));
      pz_buf_append_c(b, tmp);
      f += 2;
    } else if (strncmp(f, "zu", 2) == 0) {
      snprintf(tmp, sizeof(tmp), "%zu", va_arg(ap, size_t));
      pz_buf_append_c(b, tmp);
      f += 2;
    } else if (*f == 'f') {
      snprintf(tmp, sizeof(tmp), "%.6g", va_arg(ap, double));
      pz_buf_append_c(b, tmp);
      f += 1;
    } else {
      pz_buf_append_c(b, "null");
      break;
    }
  }
}

void pz_log_write(int level, const char *rid, const char *msg, const char *fields, ...) {
  char ts[32];
  pz_time_format(pz_now_ms(), ts);
  pz_buf_t line = {0};
  pz_buf_t *out = &line;
  pz_buf_printf(out, "{\"ts\":\"%s\",\"level\":\"%s\"", ts, level_names[level & 3]);
  if (rid && *rid) {
    pz_buf_append_c(out, ",\"req\":\"");
    pz_buf_append_json_escaped(out, rid, strlen(rid));
    pz_buf_append_c(out, "\"");
  }
  pz_buf_append_c(out, ",\"msg\":\"");
  pz_buf_append_json_escaped(out, msg, strlen(msg));
  pz_buf_append_c(out, "\"");
  if (fields && *fields) {
    va_list ap;
    va_start(ap, fields);
    append_fields(out, fields, ap);
    va_end(ap);
  }
  pz_buf_append_c(out, "}\n");
  ssize_t rc = write(STDERR_FILENO, out->data, out->len);
  (void)rc;
  pz_buf_free(out);
}
