/* Internal to store/: the connection struct and statement helpers shared by the typed store files. */
#ifndef PLAZA_STORE_DB_H
#define PLAZA_STORE_DB_H

#include <sqlite3.h>
#include <string.h>
#include "plaza/store.h"
#include "plaza/store_chat.h"
#include "plaza/store_wallet.h"

typedef struct pz__log_pending_s pz__log_pending_t;

#define PZ_DB_STMT_CACHE 256 /* a power of two: open addressing by SQL text address */

struct pz_db_s {
  sqlite3 *sql;
  /* Prepared statements keyed by the address of their static SQL text. */
  struct {
    const char *key;
    sqlite3_stmt *stmt;
  } cache[PZ_DB_STMT_CACHE];
  unsigned n_cache;
  /* PZ__DB_BATCH_* bits: work a job left for the end of its batch. */
  unsigned batch_pending;
  /* The last seq of event streams this connection appended to (chat.c),
   * each valid in the generation it was written in. Whatever undoes
   * writes (a job's ROLLBACK TO, a batch's ROLLBACK) starts a new one:
   * pz__db_forget_writes. Allocated at the first append. */
  struct pz__seq_slot *seqs;
  uint64_t seq_gen;
  /* The search index's mark (chat.c's fts_added) as this connection last
   * read it, valid while fts_mark_gen is seq_gen + 1; the batch's end
   * moves the mark and voids it (0). */
  int64_t fts_mark;
  uint64_t fts_mark_gen;
  /* The log thread's connection only: what it logged ahead of the writer. */
  pz__log_pending_t *pending;
  /* Ids of the wallet's system accounts (escrow, external, fees per
   * currency) as this connection read or wrote them (store/wallet.c),
   * each valid in the seq_gen it was remembered in: one look-up fewer per
   * movement through escrow. */
  struct pz__sys_account {
    int64_t id;
    uint64_t gen;
    int kind;
    char currency[4];
  } sys_accounts[8];
};

/* What the connection remembers of its own writes is void from here: the
 * transaction or a savepoint of it was rolled back. */
static inline void pz__db_forget_writes(pz_db_t *db) { db->seq_gen++; }

/* Work done once per batch rather than once per job: a store function sets
 * the bit in db->batch_pending, and the writer calls pz__store_batch_end
 * after the batch's last job, outside every job's savepoint, just before the
 * COMMIT. A failure there fails the whole batch (every job gets PZ_EIO). */
#define PZ__DB_BATCH_FTS 1u /* messages waiting to be indexed for search */
int pz__store_batch_end(pz_db_t *db, pz_err_t *err);

/* Inserts user_id's event seq (the caller chose it) and remembers it as
 * the stream's last (chat.c). Writer. */
int pz__store_event_put(pz_db_t *db, int64_t user_id, int64_t seq, pz_str_t type, int64_t message_id, pz_str_t payload,
                        int64_t now, pz_err_t *err);

/* ---- the send log (engine.c, msglog.c) ---- */

/* Record types of the send log. */
#define PZ__LOG_MSG 1u      /* a new message with its events (msglog.c) */
#define PZ__LOG_TRANSFER 2u /* a completed transfer with its ledger rows, key and events (msglog.c) */

/* What the log thread has claimed and not yet seen applied: each stream's
 * last seq claimed, and the client ids of messages logged. Owned by the log
 * thread's connection (db->pending) and emptied once the writer has applied
 * everything logged. */
void pz__log_pending_clear(pz__log_pending_t *p);
/* The log thread, before a batch's checks: what it remembers of
 * conversations (pz_store_send_facts) is forgotten unless gen, the count
 * of committed write jobs, is the one it was read at; no record of the
 * batch will have an lsn above lsn_bound; the database has every record up
 * to applied (what was claimed for them may be forgotten). */
void pz__log_batch_begin(pz_db_t *db, uint64_t gen, uint64_t lsn_bound, uint64_t applied);
void pz__log_pending_free(pz__log_pending_t *p);

/* Applies a PZ__LOG_MSG record inside the writer's transaction: the
 * message row and its members' events with their logged seqs. PZ_EINVAL
 * for a record that does not decode. Writer. */
int pz__store_msg_log_apply(pz_db_t *db, const void *rec, uint32_t len, pz_err_t *err);
/* Decodes a PZ__LOG_MSG record into m (event and the pairs borrowed from
 * rec, fan allocated with pz_malloc): 0, or PZ_EINVAL. For apply and the
 * fuzz target. */
int pz__store_msg_log_decode(const void *rec, uint32_t len, pz_msg_rec_t *m, pz_str_t *event, pz_store_user_seq_t **fan,
                             unsigned *n_fan);

/* Applies a PZ__LOG_TRANSFER record inside the writer's transaction: the
 * transfer, its ledger transaction, entries and balances, the daily
 * counter, the idempotency record and both parties' events. PZ_EINVAL for
 * a record that does not decode, PZ_ECONFLICT for one the schema refuses
 * (a balance below zero: only through a bug). Writer. */
int pz__store_transfer_log_apply(pz_db_t *db, const void *rec, uint32_t len, pz_err_t *err);
/* Decodes a PZ__LOG_TRANSFER record into l (the strings borrowed from
 * rec): 0, or PZ_EINVAL. For apply and the fuzz target. */
int pz__store_transfer_log_decode(const void *rec, uint32_t len, pz_wallet_transfer_log_t *l, pz_str_t *event_type,
                                  pz_str_t *event, pz_str_t *answer);

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
/* Steps a statement that returns no rows: 0, or the failure. */
static inline int pz__db_step_done(pz_db_t *db, sqlite3_stmt *st, pz_err_t *err) {
  int rc = sqlite3_step(st);
  return rc == SQLITE_DONE ? 0 : pz__db_fail(db, rc, err);
}

/* Steps a statement that returns at most one row: 0 with a row, PZ_ENOTFOUND without. */
static inline int pz__db_step_row(pz_db_t *db, sqlite3_stmt *st, pz_err_t *err) {
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) return 0;
  if (rc == SQLITE_DONE) return pz_err_set(err, PZ_ENOTFOUND, NULL, NULL);
  return pz__db_fail(db, rc, err);
}

/* Binds n int64 parameters, from parameter 1 on. */
static inline int pz__db_bind_i64(pz_db_t *db, sqlite3_stmt *st, int n, const int64_t *v, pz_err_t *err) {
  for (int i = 0; i < n; i++) {
    int rc = sqlite3_bind_int64(st, i + 1, v[i]);
    if (rc != SQLITE_OK) return pz__db_fail(db, rc, err);
  }
  return 0;
}

/* PZ__DB_BIND(db, st, err, a, b, c) binds a, b, c as parameters 1, 2, 3. */
#define PZ__DB_BIND(db, st, err, ...)                                                                  \
  pz__db_bind_i64((db), (st), (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (int64_t[]){__VA_ARGS__}, \
                  (err))

/* Binds NUL-terminated s as text; the caller keeps s until the step. */
static inline int pz__db_bind_text(pz_db_t *db, sqlite3_stmt *st, int idx, const char *s, pz_err_t *err) {
  int rc = sqlite3_bind_text(st, idx, s, -1, SQLITE_STATIC);
  return rc == SQLITE_OK ? 0 : pz__db_fail(db, rc, err);
}

/* ---- row helpers ---- */

/* Copies text column i into dst (cap bytes with its NUL) and returns the
 * length copied. Stored text was checked against these sizes on the way
 * in: the cut only keeps memory safe should a row be edited by hand. */
static inline size_t pz__db_col_text(sqlite3_stmt *st, int i, char *dst, size_t cap) {
  const unsigned char *s = sqlite3_column_text(st, i);
  size_t n = s ? (size_t)sqlite3_column_bytes(st, i) : 0;
  if (n >= cap) n = cap - 1;
  if (n) memcpy(dst, s, n);
  dst[n] = '\0';
  return n;
}

/* Copies blob column i into dst (len bytes, zero-filled past the blob). */
static inline void pz__db_col_blob(sqlite3_stmt *st, int i, void *dst, size_t len) {
  const void *b = sqlite3_column_blob(st, i);
  size_t n = b ? (size_t)sqlite3_column_bytes(st, i) : 0;
  memset(dst, 0, len);
  if (b) memcpy(dst, b, n < len ? n : len);
}

/* The index of column i's text in names[0..n); dflt when NULL or unknown. */
static inline int pz__db_col_enum(sqlite3_stmt *st, int i, const char *const *names, int n, int dflt) {
  const char *s = (const char *)sqlite3_column_text(st, i);
  for (int k = 0; s && k < n; k++)
    if (strcmp(s, names[k]) == 0) return k;
  return dflt;
}

/* Binds a view as text (SQLITE_TRANSIENT is not needed: the view outlives the step). */
static inline int pz__db_bind_str(sqlite3_stmt *st, int idx, pz_str_t s) {
  return sqlite3_bind_text(st, idx, s.ptr ? s.ptr : "", (int)s.len, SQLITE_STATIC);
}

/* The kind a user's entry e of ledger transaction t is in their history.
 * A transfer credits a user only when it went to them in one movement,
 * auto-accepted: that credit is their transfer_accept, as the movement
 * out of escrow is when they accept by hand. */
#define PZ__DB_ENTRY_KIND "(CASE WHEN t.kind = 'transfer' AND e.amount > 0 THEN 'transfer_accept' ELSE t.kind END)"

/* A list of ids kept in one text column: decimal ids, one space apart
 * (msgops.c). Format writes at most PZ__STORE_IDS_TEXT_MAX(n) bytes with
 * the NUL; parse reads at most max ids and skips anything malformed. */
#define PZ__STORE_IDS_TEXT_MAX(n) ((size_t)(n) * 21 + 1)
void pz__store_ids_format(const int64_t *ids, unsigned n, char *out);
unsigned pz__store_ids_parse(const char *text, int64_t *ids, unsigned max);

/* Configures SQLite's allocator (alloc.c) before its first use, then
 * registers the VFS of vfs.c; once per process. */
void pz__store_sqlite_setup(void);
/* Registers the "plaza" VFS (vfs.c): the default one, with each commit's
 * WAL frames written in one call. */
void pz__store_vfs_register(void);
/* "plaza" once registered, else NULL (SQLite's default VFS). */
const char *pz__store_vfs_name(void);

/* Schema migrations, applied in order at open; each is one SQL script.
 * Append new ones at the end; never edit one that has shipped. */
extern const char *const pz__migrations[];
extern const unsigned pz__n_migrations;

#endif
