/* Internal to store/: the connection struct and statement helpers shared by the typed store files. */
#ifndef PLAZA_STORE_DB_H
#define PLAZA_STORE_DB_H

#include <sqlite3.h>
#include "plaza/store.h"

#define PZ_DB_STMT_CACHE 256 /* a power of two: open addressing by SQL text address */

struct pz_db_s {
  sqlite3 *sql;
  /* Prepared statements keyed by the address of their static SQL text. */
  struct {
    const char *key;
    sqlite3_stmt *stmt;
  } cache[PZ_DB_STMT_CACHE];
  unsigned n_cache;
};

/* Returns the cached prepared statement for the static string sql, reset
 * and with its bindings cleared; NULL with err filled (PZ_EIO) when it does
 * not prepare. The statement is reset again when the job ends, so a read
 * transaction never outlives its job. */
sqlite3_stmt *pz__db_stmt(pz_db_t *db, const char *sql, pz_err_t *err);
/* Maps an SQLite result code to a PZ_E code and fills err: constraint
 * violations become PZ_ECONFLICT, everything else PZ_EIO (logged once). */
int pz__db_fail(pz_db_t *db, int sqlite_rc, pz_err_t *err);
/* Runs SQL without results (DDL, PRAGMA); returns 0 or PZ_EIO. */
int pz__db_exec(pz_db_t *db, const char *sql, pz_err_t *err);
/* Binds a view as text (SQLITE_TRANSIENT is not needed: the view outlives the step). */
static inline int pz__db_bind_str(sqlite3_stmt *st, int idx, pz_str_t s) {
  return sqlite3_bind_text(st, idx, s.ptr ? s.ptr : "", (int)s.len, SQLITE_STATIC);
}

/* A list of ids kept in one text column: decimal ids, one space apart
 * (msgops.c). Format writes at most PZ__STORE_IDS_TEXT_MAX(n) bytes with
 * the NUL; parse reads at most max ids and skips anything malformed. */
#define PZ__STORE_IDS_TEXT_MAX(n) ((size_t)(n) * 21 + 1)
void pz__store_ids_format(const int64_t *ids, unsigned n, char *out);
unsigned pz__store_ids_parse(const char *text, int64_t *ids, unsigned max);

/* Schema migrations, applied in order at open; each is one SQL script.
 * Append new ones at the end; never edit one that has shipped. */
extern const char *const pz__migrations[];
extern const unsigned pz__n_migrations;

#endif
