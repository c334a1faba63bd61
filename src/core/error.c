/* The error table: PZ_E codes to descriptions, HTTP statuses and API codes. */
#include <stdarg.h>
#include "plaza/error.h"

typedef struct {
  int status;
  const char *api_code;
  const char *msg;
} entry_t;

static const entry_t table[] = {
#define PZ_ERR_ROW(name, status, code, msg) {status, code, msg},
    PZ_ERRORS(PZ_ERR_ROW)
#undef PZ_ERR_ROW
};

static const entry_t *lookup(int code) {
  if (code <= PZ__ERR_FIRST || code >= PZ__ERR_LAST) return NULL;
  return &table[code - PZ__ERR_FIRST - 1];
}

const char *pz_strerror(int code) {
  const entry_t *e = lookup(code);
  return code == 0 ? "success" : e ? e->msg : "unknown error";
}

int pz_err_status(int code) {
  const entry_t *e = lookup(code);
  return e ? e->status : 500;
}

const char *pz_err_api_code(int code) {
  const entry_t *e = lookup(code);
  return e ? e->api_code : "internal";
}

int pz_err_set(pz_err_t *err, int code, const char *api_code, const char *fmt, ...) {
  if (err == NULL) return code;
  err->code = code;
  err->status = 0;
  err->api_code = api_code;
  err->msg[0] = '\0';
  if (fmt != NULL) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
  }
  return code;
}

int pz_err_http_status(const pz_err_t *err) {
  return err->status ? err->status : pz_err_status(err->code);
}

const char *pz_err_code_str(const pz_err_t *err) {
  return err->api_code ? err->api_code : pz_err_api_code(err->code);
}

const char *pz_err_message(const pz_err_t *err) {
  return err->msg[0] ? err->msg : pz_strerror(err->code);
}
