/* JSON-lines logging with a request id. The level is checked before arguments are built. */
#ifndef PLAZA_LOG_H
#define PLAZA_LOG_H

enum { PZ_LOG_DEBUG = 0, PZ_LOG_INFO = 1, PZ_LOG_WARN = 2, PZ_LOG_ERROR = 3 };

extern int pz_log_level;

/* fields is a space-separated list of `key=%conv` pairs; %s and %.*s values
 * are written as escaped JSON strings, %d %u %ld %lld %lu %llu %zu %f as numbers.
 * Example: PZ_LOG(PZ_LOG_WARN, rid, "bad request", "status=%d path=%.*s", 400, n, p).
 * Never pass a token, password or PIN. Any thread (one write(2) per line). */
#define PZ_LOG(level, rid, msg, ...)                                              \
  do {                                                                            \
    if ((level) >= pz_log_level) pz_log_write((level), (rid), (msg), __VA_ARGS__); \
  } while (0)

void pz_log_write(int level, const char *rid, const char *msg, const char *fields, ...);
/* Parses "debug", "info", "warn", "error"; returns -1 for anything else. */
int pz_log_parse_level(const char *s);

#endif
