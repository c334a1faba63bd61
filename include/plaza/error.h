/* Error codes: one X-macro table gives the enum, pz_strerror, the HTTP status and the API code. */
#ifndef PLAZA_ERROR_H
#define PLAZA_ERROR_H

#include <stdio.h>
#include <stdlib.h>

/* X(name, http_status, api_code, message) */
#define PZ_ERRORS(X)                                                              \
  X(EINVAL, 400, "invalid_request", "invalid request")                            \
  X(EJSON, 400, "malformed_json", "request body is not valid JSON")               \
  X(EUTF8, 400, "invalid_utf8", "text is not valid UTF-8")                        \
  X(EUNAUTH, 401, "unauthorized", "missing, invalid or expired token")            \
  X(EFORBIDDEN, 403, "forbidden", "not allowed")                                  \
  X(ENOTFOUND, 404, "not_found", "not found")                                     \
  X(EMETHOD, 405, "method_not_allowed", "method not allowed")                     \
  X(ETIMEDOUT, 408, "request_timeout", "request took too long")                   \
  X(ECONFLICT, 409, "conflict", "conflict with the current state")                \
  X(ETOOBIG, 413, "payload_too_large", "request body too large")                  \
  X(EMEDIA, 415, "unsupported_media_type", "unsupported content type")            \
  X(EUNPROCESSABLE, 422, "unprocessable", "request cannot be carried out")        \
  X(ELOCKED, 423, "locked", "locked")                                             \
  X(ERATE, 429, "rate_limited", "too many requests")                              \
  X(EHDRTOOBIG, 431, "headers_too_large", "request headers too large")            \
  X(ENOMEM, 500, "internal", "out of memory")                                     \
  X(EIO, 500, "internal", "internal error")                                       \
  X(EUNAVAIL, 503, "unavailable", "service unavailable")                          \
  X(ESHUTDOWN, 503, "shutting_down", "server is shutting down")

enum {
  PZ_OK = 0,
  PZ__ERR_FIRST = -1000,
#define PZ_ERR_ENUM(name, status, code, msg) PZ_##name,
  PZ_ERRORS(PZ_ERR_ENUM)
#undef PZ_ERR_ENUM
  PZ__ERR_LAST
};

/* Detail of a failure, filled where it happens. No allocation: the
 * api_code and message point to static strings or into msg_buf. */
typedef struct pz_err_s {
  int code;             /* a PZ_E... value, 0 when unset */
  int status;           /* HTTP status; 0 means "from the table" */
  const char *api_code; /* snake_case code for clients; NULL means "from the table" */
  char msg[160];        /* human text; empty means "from the table" */
} pz_err_t;

/* Returns the static description of a PZ_E... code. Any thread. */
const char *pz_strerror(int code);
/* Returns the HTTP status of code (500 for unknown codes). */
int pz_err_status(int code);
/* Returns the API code string of code ("internal" for unknown codes). */
const char *pz_err_api_code(int code);

/* Fills err (if not NULL) and returns code, so that a failure site can
 * write `return pz_err_set(err, PZ_ECONFLICT, "username_taken", "...")`.
 * api_code and fmt may be NULL for the table's defaults. */
int pz_err_set(pz_err_t *err, int code, const char *api_code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The effective status / code / message of err, with table defaults. */
int pz_err_http_status(const pz_err_t *err);
const char *pz_err_code_str(const pz_err_t *err);
const char *pz_err_message(const pz_err_t *err);

/* Invariants of our own code, never input. Active in every build. */
#define PZ_ASSERT(cond)                                                           \
  do {                                                                            \
    if (!(cond)) {                                                                \
      fprintf(stderr, "assertion failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      abort();                                                                    \
    }                                                                             \
  } while (0)

#endif
